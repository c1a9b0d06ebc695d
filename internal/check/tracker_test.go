package check

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// A result script: 'o' success, 'x' failure, one per second.
func TestTrackerRiseFall(t *testing.T) {
	cases := []struct {
		name       string
		rise, fall int
		results    string
		want       string // state after each result: u(nknown) U(p) D(own)
		changes    string // '*' where Observe reported a change
	}{
		{"defaults up after 2", 0, 0, "ooo", "uUU", " * "},
		{"defaults down after 3", 0, 0, "xxxx", "uuDD", "  * "},
		{"up then 2 failures stay up", 0, 0, "ooxxo", "uUUUU", " *   "},
		{"up then 3 failures go down", 0, 0, "ooxxx", "uUUUD", " *  *"},
		{"failures not consecutive", 0, 0, "ooxxoxxoxx", "uUUUUUUUUU", " *        "},
		{"down needs rise to come back", 0, 0, "xxxoxoo", "uuDDDDU", "  *   *"},
		{"single success after outage is not enough", 0, 0, "xxxoxxx", "uuDDDDD", "  *    "},
		{"rise 1 fall 1 follows every result", 1, 1, "oxox", "UDUD", "****"},
		{"rise 3 fall 2", 3, 2, "ooxooo" + "xx", "uuuuuU" + "UD", "     *" + " *"},
		{"unknown leaves to down first", 0, 0, "oxxx", "uuuD", "   *"},
		{"flap never settles", 0, 0, "oxoxoxox", "uuuuuuuu", "        "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(tc.rise, tc.fall)
			var got, changes []byte
			for i, r := range tc.results {
				changed, st := tr.Observe(Result{OK: r == 'o'}, at(float64(i)))
				if st != tr.State() {
					t.Fatalf("Observe returned %s, State() says %s", st, tr.State())
				}
				got = append(got, "uUD"[st])
				if changed {
					changes = append(changes, '*')
				} else {
					changes = append(changes, ' ')
				}
			}
			if string(got) != tc.want {
				t.Errorf("states %q, want %q", got, tc.want)
			}
			if string(changes) != tc.changes {
				t.Errorf("changes %q, want %q", changes, tc.changes)
			}
		})
	}
}

func TestTrackerSinceAndLast(t *testing.T) {
	var tr Tracker // zero value: defaults
	if tr.State() != Unknown || !tr.Since().IsZero() {
		t.Fatalf("zero tracker: %s since %v", tr.State(), tr.Since())
	}
	if _, _, ok := tr.Last(); ok {
		t.Fatal("Last before any result")
	}
	tr.Observe(Result{OK: true}, at(0))
	tr.Observe(Result{OK: true}, at(2))
	tr.Observe(Result{OK: true, Detail: "HTTP 200"}, at(4))
	if tr.State() != Up || !tr.Since().Equal(at(2)) {
		t.Fatalf("got %s since %v, want up since %v", tr.State(), tr.Since(), at(2))
	}
	if r, when, ok := tr.Last(); !ok || r.Detail != "HTTP 200" || !when.Equal(at(4)) {
		t.Fatalf("Last = %v %v %v", r, when, ok)
	}
	tr.Observe(Result{}, at(6))
	tr.Observe(Result{}, at(8))
	if tr.Streak() != -2 {
		t.Fatalf("streak %d, want -2", tr.Streak())
	}
	tr.Observe(Result{}, at(10))
	if tr.State() != Down || !tr.Since().Equal(at(10)) {
		t.Fatalf("got %s since %v", tr.State(), tr.Since())
	}
	// Counters saturate: a long outage does not make recovery slower.
	for i := 0; i < 1000; i++ {
		tr.Observe(Result{}, at(12+float64(i)))
	}
	tr.Observe(Result{OK: true}, at(2000))
	if changed, st := tr.Observe(Result{OK: true}, at(2002)); !changed || st != Up {
		t.Fatalf("after a long outage two successes gave %v %s", changed, st)
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{Unknown, Up, Down} {
		b, _ := s.MarshalText()
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%s round trip: %v %v", s, back, err)
		}
	}
	var s State
	if err := s.UnmarshalText([]byte("sideways")); err == nil {
		t.Error("bad state accepted")
	}
	if State(9).String() != "state(9)" {
		t.Error(State(9).String())
	}
}
