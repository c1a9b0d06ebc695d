package availability

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestFailovers(t *testing.T) {
	released := func(d time.Duration, from, to string) model.Event {
		return model.Event{Time: at(d), Kind: model.EventGroupReleased, Reporter: "q", Node: from, Target: to, Group: "web"}
	}
	cases := []struct {
		name     string
		events   []model.Event
		counted  int
		duration []time.Duration
	}{
		{name: "initial placement is no failover", events: running()},
		{
			name:    "takeover after node_dead: from the death to the new start",
			events:  running(dead(10*min, "a", "b"), assigned(10*min+sec, "b"), started(10*min+3*sec, "b")),
			counted: 1, duration: []time.Duration{3 * sec},
		},
		{
			name: "lease_lost committed late but earlier: the earliest report wins",
			events: running(dead(10*min, "a", "b"), assigned(10*min+sec, "b"), leaseLost(9*min+58*sec, "a"),
				started(10*min+3*sec, "b")),
			counted: 1, duration: []time.Duration{5 * sec},
		},
		{
			name:    "takeover whose failure reports commit after the start: measured from the assignment",
			events:  running(assigned(10*min, "b"), started(10*min+2*sec, "b"), dead(9*min, "a", "q")),
			counted: 1, duration: []time.Duration{2 * sec},
		},
		{
			name: "release after group_failed is a failover",
			events: running(report(10*min, model.EventGroupFailed, "a"), released(10*min+sec, "a", "b"),
				report(10*min+2*sec, model.EventGroupStopped, "a"), assigned(10*min+3*sec, "b"), started(10*min+4*sec, "b")),
			counted: 1, duration: []time.Duration{4 * sec},
		},
		{
			name: "operator move is not",
			events: running(released(10*min, "a", "b"), report(10*min+sec, model.EventGroupStopped, "a"),
				assigned(10*min+2*sec, "b"), started(10*min+3*sec, "b")),
		},
		{
			name:   "holder regains a lease and keeps the group: not a failover",
			events: running(leaseLost(10*min, "a"), assigned(10*min+sec, "a"), started(10*min+2*sec, "a")),
		},
		{
			name:    "node_dead about a node that does not hold the group changes nothing",
			events:  running(dead(10*min, "b", "a"), assigned(11*min, "b"), started(11*min+sec, "b")),
			counted: 1, duration: []time.Duration{sec},
		},
		{
			name: "two failovers in a row",
			events: running(dead(10*min, "a", "b"), assigned(10*min+sec, "b"), started(10*min+2*sec, "b"),
				dead(20*min, "b", "a"), assigned(20*min+sec, "a"), started(20*min+5*sec, "a")),
			counted: 2, duration: []time.Duration{2 * sec, 5 * sec},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFailovers()
			counted := 0
			var durs []time.Duration
			for _, ev := range tc.events {
				c, d := f.Apply(ev)
				if c != nil {
					counted++
				}
				if d != nil {
					durs = append(durs, d.Duration())
				}
			}
			if counted != tc.counted || len(durs) != len(tc.duration) {
				t.Fatalf("counted %d, done %v; want %d, %v", counted, durs, tc.counted, tc.duration)
			}
			for i := range durs {
				if durs[i] != tc.duration[i] {
					t.Errorf("duration %d: %v, want %v", i, durs[i], tc.duration[i])
				}
			}
		})
	}
}
