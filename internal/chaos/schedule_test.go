package chaos

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func testPlan(seed uint64) Plan {
	return Plan{Seed: seed, Nodes: []string{"a", "b", "c", "d", "w"}, Runners: []string{"a", "b", "c", "d"},
		Groups: map[string][]string{"web": {"a", "b", "c", "d"}, "mail": {"c", "d", "a", "b"}}, Networks: []string{"public", "heartbeat"},
		Deadtime: 2 * time.Second, OpChance: 50}
}

func draw(t *testing.T, p Plan, n int) []Fault {
	t.Helper()
	s, err := NewSchedule(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []Fault
	for i := 0; i < n; i++ {
		out = append(out, s.Next())
	}
	return out
}

// The same seed gives the same faults (that is what makes a failing run
// replayable); another seed gives others.
func TestScheduleReplays(t *testing.T) {
	a, b := draw(t, testPlan(42), 300), draw(t, testPlan(42), 300)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two schedules from seed 42 differ")
	}
	if reflect.DeepEqual(a, draw(t, testPlan(43), 300)) {
		t.Fatal("seeds 42 and 43 gave the same schedule")
	}
}

// Every fault is well formed, every kind and op shows up, holds stay in
// 0.5 to 3 deadtimes and ops happen while the fault holds.
func TestScheduleShape(t *testing.T) {
	p := testPlan(7)
	faults := draw(t, p, 1000)
	kinds, ops := map[Kind]int{}, map[string]int{}
	for i, f := range faults {
		kinds[f.Kind]++
		if f.Trial != i+1 {
			t.Fatalf("fault %d numbered %d", i, f.Trial)
		}
		if f.Hold < p.Deadtime/2 || f.Hold > 3*p.Deadtime {
			t.Errorf("%s: hold outside [%v, %v]", f, p.Deadtime/2, 3*p.Deadtime)
		}
		if len(f.Nodes) == 0 {
			t.Fatalf("%s: no node", f)
		}
		switch f.Kind {
		case Partition, OneWay:
			all := append(slices.Clone(f.Nodes), f.Others...)
			slices.Sort(all)
			if len(f.Others) == 0 || !slices.Equal(all, []string{"a", "b", "c", "d", "w"}) {
				t.Errorf("%s: sides %v | %v do not split the cluster", f, f.Nodes, f.Others)
			}
		case Loss:
			if f.Percent <= 0 || f.Percent >= 100 || f.Network == "" {
				t.Errorf("%s: loss %d%% on %q", f, f.Percent, f.Network)
			}
		case Delay:
			if f.Latency <= 0 || f.Latency > p.Deadtime || f.Network == "" {
				t.Errorf("%s: delay %v on %q", f, f.Latency, f.Network)
			}
		default:
			if len(f.Nodes) != 1 || len(f.Others) != 0 {
				t.Errorf("%s: want one node", f)
			}
		}
		if f.Op != nil {
			ops[f.Op.Kind]++
			if f.Op.After > f.Hold {
				t.Errorf("%s: op after the fault healed", f)
			}
			if f.Op.Kind == OpMove && !slices.Contains(p.Groups[f.Op.Group], f.Op.Node) {
				t.Errorf("%s: move to a node that cannot run the group", f)
			}
		}
	}
	for _, k := range AllKinds {
		if kinds[k] < 50 {
			t.Errorf("kind %s drawn %d times of 1000", k, kinds[k])
		}
	}
	for _, k := range []string{OpMove, OpFailback, OpFlagsClear, OpMaintenance} {
		if ops[k] < 50 {
			t.Errorf("op %s drawn %d times of 1000", k, ops[k])
		}
	}
	if _, err := NewSchedule(Plan{Seed: 1, Nodes: []string{"a"}}); err == nil {
		t.Error("a one-node plan was accepted")
	}
	only := testPlan(3)
	only.Kinds = []Kind{DiskFull}
	for _, f := range draw(t, only, 20) {
		if f.Kind != DiskFull {
			t.Errorf("Kinds [disk_full] drew %s", f.Kind)
		}
	}
}

// AimAt puts the holder on the first side and keeps the split's sizes.
func TestAimAt(t *testing.T) {
	f := Fault{Kind: Partition, Nodes: []string{"a", "b"}, Others: []string{"c", "d", "w"}}
	g := f.AimAt("d")
	if !slices.Contains(g.Nodes, "d") || len(g.Nodes) != 2 || len(g.Others) != 3 || slices.Contains(g.Others, "d") {
		t.Errorf("aimed at d: %v | %v", g.Nodes, g.Others)
	}
	if h := f.AimAt("a"); !reflect.DeepEqual(h, f) {
		t.Errorf("aimed at a, already on the first side: %v | %v", h.Nodes, h.Others)
	}
	if k := (Fault{Kind: Kill, Nodes: []string{"b"}}).AimAt("c"); !slices.Equal(k.Nodes, []string{"c"}) {
		t.Errorf("kill aimed at c hits %v", k.Nodes)
	}
	if k := (Fault{Kind: Kill, Nodes: []string{"b"}}).AimAt(""); !slices.Equal(k.Nodes, []string{"b"}) {
		t.Errorf("kill aimed at no holder hits %v", k.Nodes)
	}
}
