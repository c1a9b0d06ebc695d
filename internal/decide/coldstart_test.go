package decide

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// young builds a world where web ran on a and a's lease is over, as seen by a
// coordinator up for 2 s (initdead 10 s), with a in the given state.
func young(t *testing.T, seen, alive bool) *world {
	w := newWorld(t, group("web", "manual", "a", "b"))
	expectOne(t, w.decide(), model.EventGroupAssigned, "a")
	w.report("a", "web", model.EventGroupStarted)
	w.uptime = 2 * time.Second
	w.kill("a")
	w.expire("a")
	a := w.nodes["a"]
	a.Seen, a.Alive = seen, alive
	w.nodes["a"] = a
	return w
}

// S5: after a cold start, the group waits (up to initdead) for its preferred
// node, whether that node has not been heard yet or has just been heard and
// holds no lease yet (its first heartbeat proves its old lease over first).
func TestColdStartWaitsForThePreferredNode(t *testing.T) {
	for _, tc := range []struct {
		name        string
		seen, alive bool
	}{{"not heard yet", false, false}, {"heard, no lease yet", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			w := young(t, tc.seen, tc.alive)
			if evs := w.decide(); len(evs) != 0 {
				t.Fatalf("within initdead: %+v", evs)
			}
			w.revive("a", time.Second)
			expectOne(t, w.decide(), model.EventGroupAssigned, "a")
		})
	}
	// Never back within initdead: b takes it then.
	w := young(t, false, false)
	w.uptime = 11 * time.Second
	expectOne(t, w.decide(), model.EventGroupAssigned, "b")
}

// S1 in a young cluster: the preferred node was heard, ran the group and died.
// There is nothing to wait for: b takes over at once, not at initdead.
func TestYoungClusterTakesOverFromADeadPreferredNode(t *testing.T) {
	w := young(t, true, false)
	expectOne(t, w.decide(), model.EventGroupAssigned, "b")
}
