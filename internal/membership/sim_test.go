package membership

import (
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// simNode is one engine with its own clock: local = offset + rate × real.
type simNode struct {
	name   string
	eng    *Engine
	rate   float64
	offset time.Duration
	frozen bool // a paused process: its clock runs, it does nothing
	events []model.Event
	leases []LeaseChanged
}

func (n *simNode) local(real time.Duration) time.Duration {
	return n.offset + time.Duration(float64(real)*n.rate)
}

type inflight struct {
	at   time.Duration // real delivery time
	to   string
	beat Heartbeat
}

// sim drives engines with a simulated clock and a lossy, delaying network.
type sim struct {
	t     testing.TB
	now   time.Duration // real time
	nodes map[string]*simNode
	order []string
	links int
	// cut[from][to][link] drops packets from→to on that link.
	cut     map[[2]string]map[int]bool
	net     []inflight
	rng     *rand.Rand
	maxLag  time.Duration
	sent    int
	cfgBase Config
}

func newSim(t testing.TB, names []string, witness string, links int, timing Config, seed int64) *sim {
	s := &sim{t: t, nodes: map[string]*simNode{}, order: names, links: links,
		cut: map[[2]string]map[int]bool{}, rng: rand.New(rand.NewSource(seed)), cfgBase: timing}
	for i, name := range names {
		s.nodes[name] = &simNode{name: name, rate: 1}
		s.boot(name, uint64(i+1))
		_ = witness
	}
	return s
}

func (s *sim) members() []Member {
	var ms []Member
	for _, n := range s.order {
		ms = append(ms, Member{Name: n, Links: s.links})
	}
	return ms
}

func (s *sim) boot(name string, inc uint64) {
	n := s.nodes[name]
	cfg := s.cfgBase
	cfg.Self, cfg.Incarnation, cfg.Members = name, inc, s.members()
	if n.eng != nil {
		cfg.Refused = n.eng.refused // what PersistRefusals wrote
	}
	eng, err := New(cfg, n.local(s.now))
	if err != nil {
		s.t.Fatal(err)
	}
	n.eng = eng
}

func (s *sim) setCut(from, to string, link int, cut bool) {
	k := [2]string{from, to}
	if s.cut[k] == nil {
		s.cut[k] = map[int]bool{}
	}
	s.cut[k][link] = cut
}

// isolate cuts every link between name and everybody else, both ways.
func (s *sim) isolate(name string, cut bool) {
	for _, o := range s.order {
		if o == name {
			continue
		}
		for l := 0; l < s.links; l++ {
			s.setCut(name, o, l, cut)
			s.setCut(o, name, l, cut)
		}
	}
}

func (s *sim) apply(n *simNode, acts []Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case Emit:
			n.events = append(n.events, a.Event)
		case LeaseChanged:
			n.leases = append(n.leases, a)
		case Send:
			for _, to := range s.order {
				if to == n.name {
					continue
				}
				for l := 0; l < s.links; l++ {
					if s.cut[[2]string{n.name, to}][l] {
						continue
					}
					lag := time.Duration(0)
					if s.maxLag > 0 {
						lag = time.Duration(s.rng.Int63n(int64(s.maxLag)))
					}
					s.net = append(s.net, inflight{at: s.now + lag + time.Millisecond, to: to, beat: Heartbeat{
						From: n.name, Link: l, Incarnation: a.Incarnation, Seq: a.Seq,
						Lease: a.Lease, LeaseHeld: a.LeaseHeld, Peers: a.Peers}})
					s.sent++
				}
			}
		}
	}
}

// run advances real time by d in 1 ms steps, delivering packets and ticking engines.
func (s *sim) run(d time.Duration, check func()) {
	end := s.now + d
	for s.now < end {
		s.now += time.Millisecond
		sort.SliceStable(s.net, func(i, j int) bool { return s.net[i].at < s.net[j].at })
		k := 0
		for k < len(s.net) && s.net[k].at <= s.now {
			m := s.net[k]
			k++
			n := s.nodes[m.to]
			if n.frozen || n.eng == nil {
				continue
			}
			s.apply(n, n.eng.Step(m.beat, n.local(s.now)))
		}
		s.net = s.net[k:]
		for _, name := range s.order {
			n := s.nodes[name]
			if n.frozen || n.eng == nil {
				continue
			}
			local := n.local(s.now)
			if local >= n.eng.NextWake(local-time.Millisecond) || s.now%(10*time.Millisecond) == 0 {
				s.apply(n, n.eng.Step(Tick{}, local))
			}
		}
		if check != nil {
			check()
		}
	}
}

func (s *sim) state(observer, peer string) model.NodeState {
	v := s.nodes[observer].eng.View(s.nodes[observer].local(s.now))
	for _, p := range v.Peers {
		if p.Name == peer {
			return p.State
		}
	}
	s.t.Fatalf("%s has no peer %s", observer, peer)
	return ""
}

func (s *sim) lease(name string) (Epoch, bool) {
	n := s.nodes[name]
	return n.eng.LeaseValid(n.local(s.now))
}

func firstEvent(evs []model.Event, kind model.EventKind, node string) (model.Event, bool) {
	for _, e := range evs {
		if e.Kind == kind && e.Node == node {
			return e, true
		}
	}
	return model.Event{}, false
}

func defaultTiming() Config {
	return Config{Keepalive: 200 * time.Millisecond, Warntime: time.Second, Deadtime: 2 * time.Second,
		Initdead: 10 * time.Second, Lease: leaseFor(2*time.Second, 200*time.Millisecond, 0.01)}
}

func tunedTiming() Config {
	return Config{Keepalive: 50 * time.Millisecond, Warntime: 250 * time.Millisecond, Deadtime: 500 * time.Millisecond,
		Initdead: 2 * time.Second, Lease: leaseFor(500*time.Millisecond, 50*time.Millisecond, 0.01)}
}

func leaseFor(dead, keep time.Duration, drift float64) time.Duration {
	return time.Duration(float64(dead-2*keep) / ((1 + drift) * (1 + drift)))
}
