package agent

import (
	"testing"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

// A lost verdict about the previous holder's copy is not passed on to the node
// the group then moves to: it would restart, or fail and flag, its fresh start
// (found by the lab test of S7). A verdict given under the node's own assignment is.
func TestDesiredLostVerdictOnlyForOwnAssignment(t *testing.T) {
	ep := membership.Epoch{Incarnation: 7, Gen: 1}
	v := &membership.View{Epoch: ep, LeaseHeld: true}
	st := clusterstate.New()
	apply := func(ev model.Event) {
		ev.Index = st.LastIndex + 1
		ev.Group = "web"
		st.Apply(ev)
	}
	apply(model.Event{Kind: model.EventGroupAssigned, Node: "a", Epoch: "1.1"})
	apply(model.Event{Kind: model.EventGroupLost, Node: "a"})
	lost := st.LastIndex
	if d := desiredFor("a", st, "web", v); d.LostAt != lost {
		t.Fatalf("holder a: LostAt %d, want the verdict #%d", d.LostAt, lost)
	}
	apply(model.Event{Kind: model.EventFlagSet, Node: "a"})
	apply(model.Event{Kind: model.EventGroupReleased, Node: "a", Target: "b"})
	apply(model.Event{Kind: model.EventGroupAssigned, Node: "b", Epoch: ep.String()})
	d := desiredFor("b", st, "web", v)
	if !d.Run || d.LostAt != 0 {
		t.Fatalf("new holder b: run %v LostAt %d, want to run and no verdict (#%d was about a)", d.Run, d.LostAt, lost)
	}
	apply(model.Event{Kind: model.EventGroupLost, Node: "b"})
	if d := desiredFor("b", st, "web", v); d.LostAt != st.LastIndex {
		t.Fatalf("holder b: LostAt %d, want its own verdict #%d", d.LostAt, st.LastIndex)
	}
}
