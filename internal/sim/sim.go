package sim

import (
	"fmt"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

// Simulated behaviour of the parts the cores do not model.
const (
	tick          = time.Millisecond
	netDelay      = time.Millisecond
	decideEvery   = 100 * time.Millisecond
	startTime     = 500 * time.Millisecond // a group's resources take this long to start
	leaderElected = 300 * time.Millisecond // a new coordinator needs this long after the old one is gone
)

// Line is one decision or observation in the output.
type Line struct {
	At    time.Duration
	Event model.Event
}

func (l Line) String() string {
	ev := l.Event
	about := ev.Node
	if ev.Group != "" {
		about = ev.Group
		if ev.Node != "" {
			about += " @" + ev.Node
		}
		if ev.Target != "" {
			about += " -> " + ev.Target
		}
	}
	return fmt.Sprintf("%8.3fs  %-10s %-20s %-22s %s", l.At.Seconds(), ev.Reporter, ev.Kind, about, ev.Reason)
}

// shown are the kinds a simulation prints: decisions and what explains them.
var shown = map[model.EventKind]bool{
	model.EventNodeDead: true, model.EventNodeAlive: true, model.EventLeaseLost: true, model.EventQuorumLost: true,
	model.EventCoordinatorChange: true, model.EventGroupAssigned: true, model.EventGroupReleased: true,
	model.EventGroupStarted: true, model.EventGroupStopped: true, model.EventGroupLost: true, model.EventGroupRestarting: true,
	model.EventGroupFailed: true, model.EventFlagSet: true, model.EventFlagCleared: true, model.EventPublicLost: true,
	model.EventPublicRegained: true, model.EventSplitBrain: true, model.EventIntruderStop: true, model.EventMoveRequested: true,
	model.EventFailbackAuthorised: true, model.EventMaintenanceOn: true, model.EventMaintenanceOff: true,
}

type node struct {
	name     string
	witness  bool
	eng      *membership.Engine
	inc      uint64
	up       bool // powered
	frozen   bool
	refused  map[string]membership.Epoch
	groups   map[string]*groupCopy
	handmade map[string]bool // groups started by hand here (S9)
	pending  []model.Event   // reports waiting for a coordinator
}

// groupCopy is a node's copy of a group: the emulated group worker.
type groupCopy struct {
	running    bool
	startingAt time.Duration // >0: started, running once now reaches it
	releaseAck uint64
	lostAck    uint64
	intrAck    uint64
	restarts   []time.Duration
	failed     bool // check_fail: the service is broken here
}

type packet struct {
	at   time.Duration
	to   string
	beat membership.Heartbeat
}

// Sim is one simulated cluster.
type Sim struct {
	cfg       *config.Config
	now       time.Duration
	nodes     map[string]*node
	order     []string
	links     int
	cut       map[[2]string]map[int]bool // from,to -> link -> dropped
	inflight  []packet
	state     *clusterstate.State
	index     uint64
	leader    string
	noLeader  time.Duration // when the coordinator went away
	lastRound time.Duration
	out       []Line
	base      time.Time

	violations   []string
	observations map[string]*observation
	reported     map[string]bool // split brains already raised (group/node)
}

// New builds a simulation of cfg's cluster; every node is powered on at time 0.
func New(cfg *config.Config) (*Sim, error) {
	s := &Sim{cfg: cfg, nodes: map[string]*node{}, cut: map[[2]string]map[int]bool{}, state: clusterstate.New(),
		observations: map[string]*observation{}, reported: map[string]bool{},
		base: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, n := range cfg.Nodes {
		s.order = append(s.order, n.Name)
		s.links = max(s.links, len(n.Addresses))
		s.nodes[n.Name] = &node{name: n.Name, witness: n.Witness, refused: map[string]membership.Epoch{}}
	}
	sort.Strings(s.order)
	for _, n := range s.order {
		if err := s.boot(n); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Sim) boot(name string) error {
	n := s.nodes[name]
	n.inc++
	t := s.cfg.Cluster.Timing
	var members []membership.Member
	for _, cn := range s.cfg.Nodes {
		members = append(members, membership.Member{Name: cn.Name, Witness: cn.Witness, Links: len(cn.Addresses)})
	}
	eng, err := membership.New(membership.Config{Self: name, Incarnation: n.inc*100 + uint64(indexOf(s.order, name)), Members: members,
		Keepalive: t.Keepalive.D(), Warntime: t.Warntime.D(), Deadtime: t.Deadtime.D(), Initdead: t.Initdead.D(),
		Lease: t.LeaseDuration(), Refused: n.refused}, s.now)
	if err != nil {
		return fmt.Errorf("simulate %s: %w", name, err)
	}
	n.eng, n.up, n.frozen = eng, true, false
	n.groups, n.handmade = map[string]*groupCopy{}, map[string]bool{}
	for _, g := range s.cfg.Groups {
		n.groups[g.Name] = &groupCopy{}
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// Run plays the scenario and returns what happened, in order.
func (s *Sim) Run(sc *Scenario) []Line {
	end := sc.Duration.D()
	if end == 0 {
		if len(sc.Steps) > 0 {
			end = sc.Steps[len(sc.Steps)-1].At.D()
		}
		end += 30 * time.Second
	}
	next := 0
	for s.now = 0; s.now <= end; s.now += tick {
		for next < len(sc.Steps) && sc.Steps[next].At.D() <= s.now {
			s.step(sc.Steps[next])
			next++
		}
		s.deliver()
		for _, name := range s.order {
			s.tickNode(s.nodes[name])
		}
		s.coordinate()
		s.checkSafety()
	}
	return s.out
}

// Violations lists every moment two nodes served one group at once.
func (s *Sim) Violations() []string { return s.violations }

// checkSafety: a copy serves while its node runs it and, if frozen, still holds the
// lease (the kernel gate closes at lease expiry even if the agent cannot run).
func (s *Sim) checkSafety() {
	for _, g := range s.cfg.Groups {
		var holders []string
		for _, name := range s.order {
			n := s.nodes[name]
			c := n.groups[g.Name]
			if !n.up || !c.running {
				continue
			}
			if _, held := n.eng.LeaseValid(s.now); n.frozen && !held {
				continue
			}
			holders = append(holders, name)
		}
		if len(holders) > 1 && len(s.violations) < 10 { // the first ones say enough
			s.violations = append(s.violations, fmt.Sprintf("%.3fs: group %s served by %v", s.now.Seconds(), g.Name, holders))
		}
	}
}

func (s *Sim) running(n *node) bool { return n.up && !n.frozen }

func (s *Sim) deliver() {
	k := 0
	for k < len(s.inflight) && s.inflight[k].at <= s.now {
		p := s.inflight[k]
		k++
		if n := s.nodes[p.to]; s.running(n) {
			s.apply(n, n.eng.Step(p.beat, s.now))
		}
	}
	s.inflight = s.inflight[k:]
}

func (s *Sim) tickNode(n *node) {
	if !s.running(n) {
		return
	}
	if s.now >= n.eng.NextWake(s.now-tick) {
		s.apply(n, n.eng.Step(membership.Tick{}, s.now))
	}
	s.work(n)
}

func (s *Sim) apply(n *node, acts []membership.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case membership.Send:
			s.send(n, a)
		case membership.Emit:
			if shown[a.Event.Kind] {
				s.record(n, a.Event)
			}
		case membership.PersistRefusals:
			n.refused = a.Refused
		case membership.LeaseChanged:
			if !a.Held {
				s.selfFence(n)
			}
		}
	}
}

func (s *Sim) send(n *node, a membership.Send) {
	for _, to := range s.order {
		if to == n.name {
			continue
		}
		for l := 0; l < s.links; l++ {
			if s.cut[[2]string{n.name, to}][l] {
				continue
			}
			s.inflight = append(s.inflight, packet{at: s.now + netDelay, to: to, beat: membership.Heartbeat{
				From: n.name, Link: l, Incarnation: a.Incarnation, Seq: a.Seq, Lease: a.Lease, LeaseHeld: a.LeaseHeld, Peers: a.Peers}})
		}
	}
}

// record shows an event and, like the agent's shipper, hands it to the coordinator
// (held back while there is none).
func (s *Sim) record(n *node, ev model.Event) {
	ev.Time = s.base.Add(s.now)
	if ev.Reporter == "" {
		ev.Reporter = n.name
	}
	s.out = append(s.out, Line{At: s.now, Event: ev})
	n.pending = append(n.pending, ev)
}

// commit appends to the replicated state.
func (s *Sim) commit(ev model.Event) model.Event {
	s.index++
	ev.Index = s.index
	s.state.Apply(ev)
	return ev
}
