package decide

import (
	"fmt"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
)

// lostVerdict says whether the holder's copy of the group is lost: some check is
// down for a majority of the observers that see the public network (never on one
// observer's word, unless the check is local), past the start or takeover grace.
// A verdict is given once per start: the holder restarts (or gives up) and a new
// start opens a new round.
func lostVerdict(in Input, g config.Group, st clusterstate.Group) (model.Event, bool) {
	if len(g.Checks) == 0 || in.Now.IsZero() {
		return model.Event{}, false
	}
	started, ok := st.Reports[st.Node]
	if !ok || started.State != clusterstate.RunRunning || st.LostAt > started.Index {
		return model.Event{}, false
	}
	grace := g.StartGrace.D()
	if st.Takeover {
		grace = g.TakeoverGrace.D()
	}
	if in.Now.Before(started.Time.Add(grace)) {
		return model.Event{}, false
	}
	for _, c := range g.Checks {
		obs := observations(in, c, st)
		if lost, reason := check.Lost(obs, in.Now, c.LostAfter.D()); lost {
			return model.Event{Kind: model.EventGroupLost, Severity: model.SeverityCritical, Node: st.Node,
				Reason: fmt.Sprintf("check %s: %s", c.DisplayName(), reason)}, true
		}
	}
	return model.Event{}, false
}

// observations are the latest reports of the observers the coordinator hears now:
// a stale "up" from a dead node must not hold a verdict back for ever.
func observations(in Input, c check.Check, st clusterstate.Group) map[string]check.Observation {
	out := map[string]check.Observation{}
	for observer, r := range st.Checks[c.DisplayName()] {
		if n, ok := in.Nodes[observer]; !ok || !n.Alive {
			continue
		}
		if c.Observers.Mode == check.ObserveLocal && observer != st.Node {
			continue
		}
		if c.Observers.Mode == check.ObserveNodes && !inList(c.Observers.Nodes, observer) {
			continue
		}
		var state check.State
		if err := state.UnmarshalText([]byte(r.State)); err != nil {
			continue
		}
		out[observer] = check.Observation{State: state, Since: r.Since, SeesPublic: !in.State.PublicLost[observer]}
	}
	return out
}

// publicLossMove releases a group whose holder lost its public network when another
// node could serve it (S2, which Heartbeat+DRBD cannot do). A standby that lost its
// public network is simply not a candidate (S3).
func publicLossMove(in Input, st clusterstate.Group, cands []Node) (model.Event, bool) {
	if !in.State.PublicLost[st.Node] {
		return model.Event{}, false
	}
	for _, c := range cands {
		if c.Name != st.Node {
			return release(st, []Node{c}, st.Node+" lost its public network: moving to "+c.Name)
		}
	}
	return model.Event{}, false
}
