package whatif

import (
	"fmt"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/decide"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

// Scenario is what the operator asks about.
type Scenario struct {
	Down  []string            // nodes that die (power off, or cut off from the quorum)
	Fail  map[string][]string // group -> nodes where it fails (flags)
	Clear map[string][]string // group -> nodes whose flag is cleared
}

// Placement is where a group runs.
type Placement struct {
	Group string
	Node  string // "" when nowhere
}

// Result is before/after plus the decisions in order, with their reasons.
type Result struct {
	Before, After []Placement
	Decisions     []model.Event
	Warnings      []string
}

// maxRounds stops a scenario that would not settle (it cannot, but never loop for ever).
const maxRounds = 1000

// Run places the groups as the coordinator would on a healthy cluster (or takes
// the given live state), applies the scenario and lets the coordinator settle.
// Nodes in Down are treated as gone with their leases surely over.
func Run(cfg *config.Config, live *clusterstate.State, sc Scenario) (Result, error) {
	for _, n := range sc.Down {
		if _, ok := cfg.Node(n); !ok {
			return Result{}, fmt.Errorf("--down %q: no such node (nodes: %v)", n, cfg.NodeNames())
		}
	}
	w := newWorld(cfg, live)
	if live == nil {
		w.settle(nil)
	}
	res := Result{Before: w.placements()}
	for _, n := range sc.Down {
		w.down[n] = true
	}
	for g, nodes := range sc.Fail {
		for _, n := range nodes {
			w.apply(model.Event{Kind: model.EventFlagSet, Group: g, Node: n, Reason: "simulated failure"})
		}
	}
	for g, nodes := range sc.Clear {
		for _, n := range nodes {
			w.apply(model.Event{Kind: model.EventFlagCleared, Group: g, Node: n, Reason: "simulated flag clear"})
		}
	}
	voters := len(cfg.Nodes) - len(w.down)
	if voters < membership.Majority(len(cfg.Nodes)) {
		// Without quorum nobody holds a lease: every node stops its groups and no
		// coordinator can decide anything.
		res.Warnings = append(res.Warnings, fmt.Sprintf("only %d of %d voters left: no quorum, so no node holds a lease and nothing runs anywhere", voters, len(cfg.Nodes)))
		res.After = emptyPlacements(cfg)
		return res, nil
	}
	w.settle(&res.Decisions)
	res.After = w.placements()
	return res, nil
}

type world struct {
	cfg   *config.Config
	state *clusterstate.State
	index uint64
	down  map[string]bool
}

func newWorld(cfg *config.Config, live *clusterstate.State) *world {
	w := &world{cfg: cfg, state: clusterstate.New(), down: map[string]bool{}}
	if live != nil {
		w.state, w.index = live.Clone(), live.LastIndex
	}
	return w
}

func (w *world) apply(ev model.Event) {
	w.index++
	ev.Index = w.index
	w.state.Apply(ev)
}

func (w *world) epoch(n string) membership.Epoch {
	for i, node := range w.cfg.Nodes {
		if node.Name == n {
			return membership.Epoch{Incarnation: uint64(i + 1), Gen: 1}
		}
	}
	return membership.Epoch{}
}

// settle runs decision rounds until nothing changes. Released groups are reported
// stopped at once by their holder, and started groups running, as agents would.
func (w *world) settle(log *[]model.Event) {
	nodes := map[string]decide.Node{}
	for _, n := range w.cfg.Nodes {
		nodes[n.Name] = decide.Node{Name: n.Name, Witness: n.Witness, Eligible: !w.down[n.Name], Epoch: w.epoch(n.Name), AliveFor: time.Hour}
	}
	// Live assignments carry real epochs; the simulation's nodes hold them still.
	for _, g := range w.state.Groups {
		if ep, err := membership.ParseEpoch(g.Epoch); err == nil && g.Node != "" {
			if n, ok := nodes[g.Node]; ok && !w.down[g.Node] {
				n.Epoch = ep
				nodes[g.Node] = n
			}
		}
	}
	in := decide.Input{Coordinator: "simulation", Groups: w.cfg.Groups, State: w.state, Nodes: nodes,
		Uptime: time.Hour, Initdead: w.cfg.Cluster.Timing.Initdead.D(),
		SurelyExpired: func(n string, _ membership.Epoch) bool { return w.down[n] }}
	for round := 0; round < maxRounds; round++ {
		evs := decide.Decide(in)
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			w.apply(ev)
			if log != nil {
				*log = append(*log, ev)
			}
			switch ev.Kind {
			case model.EventGroupReleased:
				w.apply(model.Event{Kind: model.EventGroupStopped, Reporter: ev.Node, Group: ev.Group})
			case model.EventGroupAssigned:
				w.apply(model.Event{Kind: model.EventGroupStarted, Reporter: ev.Node, Group: ev.Group})
			}
		}
	}
}

func (w *world) placements() []Placement {
	var out []Placement
	for _, g := range w.cfg.Groups {
		st := w.state.Get(g.Name)
		p := Placement{Group: g.Name}
		if !st.Releasing && !w.down[st.Node] {
			p.Node = st.Node
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

func emptyPlacements(cfg *config.Config) []Placement {
	var out []Placement
	for _, g := range cfg.Groups {
		out = append(out, Placement{Group: g.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}
