package clusterstate

import (
	"testing"

	"github.com/vigil-ha/vigil/internal/model"
)

// TestRolesFollowResourceRoleEvents: the latest resource_role event per resource
// and node is the role shown; a clone does not share the maps.
func TestRolesFollowResourceRoleEvents(t *testing.T) {
	s := New()
	for i, ev := range []model.Event{
		{Reporter: "a", State: model.RoleUnpromoted},
		{Reporter: "b", State: model.RoleUnpromoted},
		{Reporter: "a", State: model.RolePromoted},
		{Reporter: "a", State: model.RoleUnpromoted},
		{Reporter: "b", State: model.RolePromoted},
	} {
		ev.Index, ev.Kind, ev.Group, ev.Resource, ev.Node = uint64(i+1), model.EventResourceRole, "db", "drbd", ev.Reporter
		s.Apply(ev)
	}
	got := s.Get("db").Roles["drbd"]
	if got["a"] != model.RoleUnpromoted || got["b"] != model.RolePromoted || len(got) != 2 {
		t.Fatalf("roles %v", got)
	}
	c := s.Clone()
	s.Apply(model.Event{Index: 6, Kind: model.EventResourceRole, Group: "db", Resource: "drbd", Reporter: "a", State: model.RoleStopped})
	if r := c.Get("db").Roles["drbd"]["a"]; r != model.RoleUnpromoted {
		t.Fatalf("the clone changed with the original: %s", r)
	}
	// A group restored from a snapshot taken before roles existed has no map yet.
	s.Groups["old"] = &Group{}
	s.Apply(model.Event{Index: 7, Kind: model.EventResourceRole, Group: "old", Resource: "drbd", Reporter: "a", State: model.RolePromoted})
	if r := s.Get("old").Roles["drbd"]["a"]; r != model.RolePromoted {
		t.Fatalf("old group: %q", r)
	}
}
