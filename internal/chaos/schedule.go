package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is one sort of fault the nemesis injects.
type Kind string

// The faults. Each lasts Fault.Hold, then heals.
const (
	// Kill is kill -9 of the agent (its process group; the services it
	// started live on as orphans), restarted when the fault heals.
	Kill Kind = "kill9_restart"
	// Stop is SIGSTOP of the agent alone, SIGCONT when it heals.
	Stop Kind = "sigstop_agent"
	// Freeze pauses the whole node like a suspended VM: every process
	// stopped and its links down (lab Freeze/Thaw).
	Freeze Kind = "freeze_node"
	// CutHeartbeat and CutPublic unplug one of the node's two cables.
	CutHeartbeat Kind = "cut_heartbeat"
	CutPublic    Kind = "cut_public"
	// Partition drops every frame between Nodes and Others; OneWay only
	// those Nodes send to Others.
	Partition Kind = "partition"
	OneWay    Kind = "partition_oneway"
	// Loss loses Percent of the frames on the node's cable of Network.
	Loss Kind = "packet_loss"
	// DiskFull fills the node's state directory (a small tmpfs).
	DiskFull Kind = "disk_full"
	// Delay holds every packet the node sends or receives on Network for
	// Latency.
	Delay Kind = "delay"
)

// AllKinds lists every fault kind, in a fixed order.
var AllKinds = []Kind{Kill, Stop, Freeze, CutHeartbeat, CutPublic, Partition, OneWay, Loss, DiskFull, Delay}

// Operator actions the nemesis issues while a fault holds.
const (
	OpMove        = "move"
	OpFailback    = "failback"
	OpFlagsClear  = "flags_clear"
	OpMaintenance = "maintenance" // on, then off at once (off retried until acknowledged)
)

// Fault is one trial's fault, as the schedule draws it. Nodes are concrete
// names, except that OnHolder asks the runner to put the node holding
// Group first (in Nodes[0], swapped with whoever was drawn there), so that
// about half the faults hit the node that matters most.
type Fault struct {
	Trial    int           `json:"trial"`
	Kind     Kind          `json:"kind"`
	Nodes    []string      `json:"nodes"`
	Others   []string      `json:"others,omitempty"` // the other side of a partition
	Network  string        `json:"network,omitempty"`
	Percent  int           `json:"percent,omitempty"`
	Latency  time.Duration `json:"latency,omitempty"`
	Hold     time.Duration `json:"hold"`
	OnHolder bool          `json:"on_holder,omitempty"`
	Group    string        `json:"group,omitempty"`
	Op       *OpPlan       `json:"op,omitempty"`
}

// OpPlan is an operator action issued After the fault began, through Via.
type OpPlan struct {
	Kind  string        `json:"kind"`
	Group string        `json:"group"`
	Node  string        `json:"node,omitempty"` // move target
	Via   string        `json:"via"`
	After time.Duration `json:"after"`
}

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trial %d: %s on %s", f.Trial, f.Kind, strings.Join(f.Nodes, ","))
	if len(f.Others) > 0 {
		fmt.Fprintf(&b, " | %s", strings.Join(f.Others, ","))
	}
	switch f.Kind {
	case Loss:
		fmt.Fprintf(&b, " (%d%% on %s)", f.Percent, f.Network)
	case Delay:
		fmt.Fprintf(&b, " (%v on %s)", f.Latency, f.Network)
	}
	fmt.Fprintf(&b, " for %v", f.Hold)
	if f.OnHolder {
		fmt.Fprintf(&b, " (aimed at %s's holder)", f.Group)
	}
	if f.Op != nil {
		fmt.Fprintf(&b, "; op %s %s", f.Op.Kind, f.Op.Group)
		if f.Op.Node != "" {
			fmt.Fprintf(&b, " to %s", f.Op.Node)
		}
		fmt.Fprintf(&b, " via %s at +%v", f.Op.Via, f.Op.After)
	}
	return b.String()
}

// Plan describes the cluster the schedule is for.
type Plan struct {
	Seed uint64
	// Nodes are every voter, the witness included; Runners those that can
	// hold groups. Groups maps each group to its nodes.
	Nodes   []string
	Runners []string
	Groups  map[string][]string
	// Networks are the cables ("public", "heartbeat").
	Networks []string
	// Kinds to draw from; AllKinds if empty.
	Kinds []Kind
	// Deadtime scales the hold times: from half of it (a fault the
	// cluster should ride out) to three times it (one it must act on).
	Deadtime time.Duration
	// OpChance is the probability, in percent, that a trial carries an
	// operator action.
	OpChance int
}

// Schedule draws faults from a seed: the same Plan gives the same faults
// in the same order, so a failing run can be replayed.
type Schedule struct {
	plan   Plan
	rng    *rand.Rand
	trial  int
	groups []string
}

// NewSchedule starts a schedule.
func NewSchedule(p Plan) (*Schedule, error) {
	switch {
	case len(p.Nodes) < 2:
		return nil, fmt.Errorf("chaos plan: want at least 2 nodes, got %v", p.Nodes)
	case len(p.Runners) == 0:
		return nil, fmt.Errorf("chaos plan: no node can run groups")
	case len(p.Groups) == 0:
		return nil, fmt.Errorf("chaos plan: no groups")
	case len(p.Networks) == 0:
		return nil, fmt.Errorf("chaos plan: no networks")
	case p.Deadtime <= 0:
		return nil, fmt.Errorf("chaos plan: deadtime %v", p.Deadtime)
	}
	if len(p.Kinds) == 0 {
		p.Kinds = AllKinds
	}
	s := &Schedule{plan: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))}
	for g := range p.Groups {
		s.groups = append(s.groups, g)
	}
	slices.Sort(s.groups) // map order must not leak into the schedule
	return s, nil
}

// Next draws the next trial's fault.
func (s *Schedule) Next() Fault {
	p, r := s.plan, s.rng
	s.trial++
	f := Fault{Trial: s.trial, Kind: p.Kinds[r.IntN(len(p.Kinds))]}
	f.Group = s.groups[r.IntN(len(s.groups))]
	// Hold: 0.5 to 3 deadtimes, in 100 ms steps.
	lo, hi := p.Deadtime/2, 3*p.Deadtime
	f.Hold = (lo + time.Duration(r.Int64N(int64(hi-lo)+1))).Round(100 * time.Millisecond)
	pick := func(from []string) string { return from[r.IntN(len(from))] }
	switch f.Kind {
	case Partition, OneWay:
		// A random split: one side of 1 to n-1 nodes.
		nodes := slices.Clone(p.Nodes)
		r.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
		k := 1 + r.IntN(len(nodes)-1)
		f.Nodes, f.Others = nodes[:k], nodes[k:]
		slices.Sort(f.Nodes)
		slices.Sort(f.Others)
	case Loss:
		f.Nodes = []string{pick(p.Nodes)}
		f.Network = pick(p.Networks)
		f.Percent = []int{10, 30, 50, 80}[r.IntN(4)]
	case Delay:
		f.Nodes = []string{pick(p.Nodes)}
		f.Network = pick(p.Networks)
		f.Latency = []time.Duration{50, 200, 500, 1000}[r.IntN(4)] * time.Millisecond
	case DiskFull, Kill, Stop, Freeze, CutHeartbeat, CutPublic:
		f.Nodes = []string{pick(p.Nodes)}
	}
	f.OnHolder = r.IntN(2) == 0
	if r.IntN(100) < p.OpChance {
		op := &OpPlan{Group: f.Group, Via: pick(p.Nodes), After: time.Duration(r.Int64N(int64(f.Hold) + 1)).Round(10 * time.Millisecond)}
		op.Kind = []string{OpMove, OpFailback, OpFlagsClear, OpMaintenance}[r.IntN(4)]
		if op.Kind == OpMove {
			op.Node = pick(p.Groups[f.Group])
		}
		f.Op = op
	}
	return f
}

// AimAt puts holder on the fault's first side: for a one-node fault it
// becomes the target; for a partition it joins Nodes (leaving Others), so
// the split keeps its sizes.
func (f Fault) AimAt(holder string) Fault {
	if holder == "" {
		return f
	}
	if f.Kind != Partition && f.Kind != OneWay {
		f.Nodes = []string{holder}
		return f
	}
	if slices.Contains(f.Nodes, holder) {
		return f
	}
	i := slices.Index(f.Others, holder)
	if i < 0 {
		return f
	}
	nodes, others := slices.Clone(f.Nodes), slices.Clone(f.Others)
	nodes[0], others[i] = others[i], nodes[0]
	slices.Sort(nodes)
	slices.Sort(others)
	f.Nodes, f.Others = nodes, others
	return f
}
