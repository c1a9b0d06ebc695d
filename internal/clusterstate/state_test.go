package clusterstate

import (
	"testing"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestTakeoverOnlyAfterAFailureElsewhere(t *testing.T) {
	s := New()
	i := uint64(0)
	apply := func(kind model.EventKind, node string) {
		i++
		s.Apply(model.Event{Index: i, Kind: kind, Group: "web", Node: node, Epoch: "1.1"})
	}
	steps := []struct {
		kind     model.EventKind
		node     string
		takeover bool
	}{
		{model.EventGroupAssigned, "a", false}, // first placement
		{model.EventGroupAssigned, "b", true},  // a's lease ran out with the group
		{model.EventGroupAssigned, "b", false}, // b regained a lease and keeps it
		{model.EventGroupReleased, "b", false}, // operator move or failback: a clean release
		{model.EventGroupAssigned, "a", false}, // ... is no takeover
		{model.EventFlagSet, "a", false},       // the group failed on a
		{model.EventGroupReleased, "a", false}, // released because of it
		{model.EventGroupAssigned, "b", true},  // b takes over after a failure
	}
	for n, st := range steps {
		apply(st.kind, st.node)
		if got := s.Get("web").Takeover; got != st.takeover {
			t.Fatalf("step %d (%s %s): takeover %v, want %v", n, st.kind, st.node, got, st.takeover)
		}
	}
}
