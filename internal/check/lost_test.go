package check

import (
	"strings"
	"testing"
	"time"
)

func down(since float64, public bool) Observation {
	return Observation{State: Down, Since: at(since), SeesPublic: public}
}

func up(public bool) Observation { return Observation{State: Up, Since: at(0), SeesPublic: public} }

func TestLost(t *testing.T) {
	const la = 10 * time.Second
	cases := []struct {
		name   string
		obs    map[string]Observation
		now    float64
		after  time.Duration
		lost   bool
		reason []string // substrings the reason must contain
	}{
		{"all three down long enough", map[string]Observation{
			"a": down(0, true), "b": down(1, true), "c": down(2, true)}, 12, la, true,
			[]string{"3 of 3 eligible observers", "(a, b, c)", "majority of 2", "10s or more"}},
		{"majority reached exactly at lost_after of the second", map[string]Observation{
			"a": down(0, true), "b": down(3, true), "c": up(true)}, 13, la, true,
			[]string{"2 of 3", "(a, b)"}},
		{"majority not yet long enough", map[string]Observation{
			"a": down(0, true), "b": down(3, true), "c": up(true)}, 12.5, la, false,
			[]string{"2 of 3", "majority of 2 for 9.5s of 10s", "lost at 12:00:13.000"}},
		{"one of three is no majority", map[string]Observation{
			"a": down(0, true), "b": up(true), "c": up(true)}, 100, la, false,
			[]string{"1 of 3 eligible observers see it down (a); 2 needed"}},
		{"a check failing on one observer only never moves the group", map[string]Observation{
			"a": down(0, true), "b": up(true), "c": up(true)}, 1e6, la, false, nil},
		{"observers without public network are not counted", map[string]Observation{
			"a": down(0, false), "b": down(0, false), "c": up(true)}, 100, la, false,
			[]string{"0 of 1 eligible observer", "not counted, no public network: a, b"}},
		{"the eligible minority decides when it is the majority of the eligible", map[string]Observation{
			"a": down(0, true), "b": up(false), "c": up(false)}, 100, la, true,
			[]string{"1 of 1 eligible observer", "not counted, no public network: b, c"}},
		{"two of four is not a majority", map[string]Observation{
			"a": down(0, true), "b": down(0, true), "c": up(true), "d": up(true)}, 100, la, false,
			[]string{"2 of 4", "3 needed"}},
		{"three of four is", map[string]Observation{
			"a": down(0, true), "b": down(0, true), "c": down(5, true), "d": up(true)}, 15, la, true, nil},
		{"unknown observers count against", map[string]Observation{
			"a": down(0, true), "b": {State: Unknown, SeesPublic: true}, "c": {State: Unknown, SeesPublic: true}}, 100, la, false,
			[]string{"no verdict yet from b, c"}},
		{"nobody sees the public network", map[string]Observation{
			"a": down(0, false), "b": down(0, false)}, 100, la, false,
			[]string{"no observer can see the public network (a, b)"}},
		{"no observations", map[string]Observation{}, 100, la, false, []string{"no observer reports"}},
		{"single observer decides alone", map[string]Observation{
			"a": down(0, true)}, 10, la, true, []string{"the only observer, a"}},
		{"single observer decides even without public network", map[string]Observation{
			"a": down(0, false)}, 10, la, true, []string{"the only observer, a"}},
		{"single observer not yet", map[string]Observation{
			"a": down(0, true)}, 9.999, la, false, []string{"the only observer, a, sees it down, for 9.999s of 10s"}},
		{"single observer up", map[string]Observation{"a": up(true)}, 100, la, false, []string{"0 of 1 observer"}},
		{"lost_after 0 means the default", map[string]Observation{
			"a": down(0, true)}, 9, 0, false, []string{"of 10s"}},
		{"down without since never counts", map[string]Observation{
			"a": {State: Down, SeesPublic: true}, "b": {State: Down, SeesPublic: true}, "c": down(0, true)}, 1e6, la, false,
			[]string{"3 of 3", "2 needed"}},
		{"since in the future (skew) is not yet", map[string]Observation{
			"a": down(50, true)}, 10, la, false, []string{"for 0s of 10s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lost, reason := Lost(tc.obs, at(tc.now), tc.after)
			if lost != tc.lost {
				t.Errorf("lost = %v, want %v (%s)", lost, tc.lost, reason)
			}
			for _, s := range tc.reason {
				if !strings.Contains(reason, s) {
					t.Errorf("reason %q lacks %q", reason, s)
				}
			}
			// LostAt agrees with Lost at, just before and just after its answer.
			if when, ok := LostAt(tc.obs, tc.after); ok {
				if l, _ := Lost(tc.obs, when, tc.after); !l {
					t.Errorf("not lost at LostAt %v", when)
				}
				if l, _ := Lost(tc.obs, when.Add(-time.Nanosecond), tc.after); l {
					t.Errorf("lost before LostAt %v", when)
				}
				if lost != !at(tc.now).Before(when) {
					t.Errorf("Lost=%v but LostAt=%v now=%v", lost, when, at(tc.now))
				}
			} else if lost {
				t.Errorf("lost, but LostAt says never")
			}
		})
	}
}

// Lost is a function of the observations, not of map order or names: checked
// against a dumb recount over many generated cases.
func TestLostAgainstRecount(t *testing.T) {
	states := []State{Unknown, Up, Down}
	names := []string{"a", "b", "c", "d", "e"}
	const la = 10 * time.Second
	n := 0
	for mask := 0; mask < 1<<10; mask++ {
		for size := 2; size <= 5; size++ {
			obs := map[string]Observation{}
			m := mask
			for i := 0; i < size; i++ {
				st := states[(m+i)%3]
				obs[names[i]] = Observation{State: st, Since: at(float64((m >> i) % 7 * 3)), SeesPublic: (m>>i)&1 == 1 || i == 0}
			}
			now := at(float64(mask % 31))
			eligible, longDown := 0, 0
			for _, o := range obs {
				if !o.SeesPublic {
					continue
				}
				eligible++
				if o.State == Down && now.Sub(o.Since) >= la {
					longDown++
				}
			}
			want := eligible > 0 && longDown*2 > eligible
			if got, reason := Lost(obs, now, la); got != want {
				t.Fatalf("%v at %v: Lost=%v want %v (%s)", obs, now, got, want, reason)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no cases")
	}
}

func TestIsolated(t *testing.T) {
	d := func(name string, s float64) TargetState { return TargetState{Name: name, State: Down, Since: at(s)} }
	cases := []struct {
		name    string
		targets []TargetState
		want    bool
		reason  string
	}{
		{"no targets: feature off", nil, false, "no public targets configured"},
		{"all down", []TargetState{d("icmp 192.0.2.1", 1), d("tcp 192.0.2.2:53", 3), d("http http://192.0.2.3/", 2)}, true,
			"all 3 public targets down (icmp 192.0.2.1, tcp 192.0.2.2:53, http http://192.0.2.3/), the last since 12:00:03.000"},
		{"one up is enough", []TargetState{d("a", 1), {Name: "b", State: Up}, d("c", 1)}, false,
			"1 of 3 public targets up (b); 2 down (a, c)"},
		{"unknown is not down", []TargetState{d("a", 1), {Name: "b"}, d("c", 1)}, false,
			"1 not yet known (b); 2 down (a, c)"},
		{"all unknown at start", []TargetState{{Name: "a"}, {Name: "b"}, {Name: "c"}}, false, "3 not yet known (a, b, c)"},
		{"single target down", []TargetState{d("a", 0)}, true, "all 1 public targets down (a)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := Isolated(tc.targets)
			if got != tc.want || !strings.HasPrefix(reason, tc.reason) {
				t.Errorf("Isolated = %v %q, want %v %q", got, reason, tc.want, tc.reason)
			}
		})
	}
}
