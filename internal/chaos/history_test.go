package chaos

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func msec(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// answers builds a client history: each entry "node@start-end" (ms), or
// "-@start-end" for a failed request.
func answers(group string, specs ...string) []Answer {
	var out []Answer
	for _, s := range specs {
		node, span, _ := strings.Cut(s, "@")
		from, to, _ := strings.Cut(span, "-")
		a := Answer{Group: group, Start: msec(atoi(from)), End: msec(atoi(to)), Node: node}
		if node == "-" {
			a.Node, a.Err = "", "timeout"
		}
		out = append(out, a)
	}
	return out
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestClientSplitBrain(t *testing.T) {
	const w = time.Second
	cases := []struct {
		name string
		as   []Answer
		want int
	}{
		{"one node", answers("web", "a@0-10", "a@10-20", "a@20-30"), 0},
		{"clean failover", answers("web", "a@0-10", "a@10-20", "-@20-320", "-@320-620", "b@620-630", "b@640-650"), 0},
		{"a, b, a again", answers("web", "a@0-10", "a@10-20", "b@30-40", "a@50-60"), 1},
		{"b briefly among a's answers, failures between", answers("web", "a@0-10", "-@10-300", "b@300-310", "-@310-600", "a@600-610"), 1},
		// Overlapping requests prove nothing: either may have been
		// answered first.
		{"overlapping requests", answers("web", "a@0-100", "b@50-60", "a@55-120"), 0},
		// A move there and back slower than the window is legitimate.
		{"slow move there and back", answers("web", "a@0-10", "b@500-510", "b@1000-1010", "a@1500-1510"), 0},
		// One long interleaving is one violation, not one per request.
		{"long flapping", answers("web", "a@0-10", "b@20-30", "a@40-50", "b@60-70", "a@80-90", "b@100-110", "a@120-130"), 1},
		{"another group does not count", append(answers("web", "a@0-10", "a@40-50"), answers("mail", "b@20-30")...), 0},
		{"failed answers do not count", answers("web", "a@0-10", "-@20-30", "a@40-50"), 0},
	}
	for _, c := range cases {
		got := ClientSplitBrain(c.as, w)
		if len(got) != c.want {
			t.Errorf("%s: %d violations, want %d: %v", c.name, len(got), c.want, got)
		}
		for _, v := range got {
			if !v.IsSplitBrain() || v.Group != "web" || len(v.Nodes) != 2 {
				t.Errorf("%s: malformed violation %+v", c.name, v)
			}
		}
	}
}

func ev(i uint64, kind, reason string) Event {
	return Event{Index: i, Kind: kind, Reporter: "a", Reason: reason, Time: "2026-11-23T00:00:00Z"}
}

func TestLostAcks(t *testing.T) {
	ops := []Op{
		{Kind: OpMove, EventKind: "move_requested", Group: "web", Via: "a", Reason: "op 1", Acked: true},
		{Kind: OpFailback, EventKind: "failback_authorised", Group: "web", Via: "b", Reason: "op 2", Acked: false},
		{Kind: OpFlagsClear, EventKind: "flag_cleared", Group: "web", Via: "b", Reason: "op 3", Acked: true},
	}
	full := []Event{ev(1, "move_requested", "op 1"), ev(2, "flag_cleared", "op 3")}
	if v := LostAcks(ops, map[string][]Event{"a": full, "b": full}); len(v) != 0 {
		t.Errorf("every acknowledged op is in every log, yet: %v", v)
	}
	// b lost op 3; the unacknowledged op 2 is missing everywhere, which is
	// allowed.
	v := LostAcks(ops, map[string][]Event{"a": full, "b": full[:1]})
	if len(v) != 1 || v[0].Kind != LostAck || strings.Join(v[0].Nodes, ",") != "b" || !strings.Contains(v[0].Detail, "op 3") {
		t.Errorf("b's log lacks op 3: got %v", v)
	}
	// Same reason, other kind: not the op.
	other := []Event{ev(1, "maintenance_on", "op 1"), ev(2, "flag_cleared", "op 3")}
	if v := LostAcks(ops, map[string][]Event{"a": other}); len(v) != 1 {
		t.Errorf("op 1 recorded under another kind: got %v", v)
	}
}

func TestLostEvents(t *testing.T) {
	e1, e2, e3 := ev(1, "node_joined", "x"), ev(2, "group_assigned", "y"), ev(3, "group_started", "z")
	seen := []Seen{{Event: e1, Observer: "a"}, {Event: e2, Observer: "b"}, {Event: e3, Observer: "a"}}
	log := []Event{e1, e2, e3, ev(4, "later", "fine")}
	if v := LostEvents(seen, map[string][]Event{"a": log, "b": log, "w": log}); len(v) != 0 {
		t.Errorf("nothing lost, yet: %v", v)
	}
	// w lost index 3; b holds something else at 2.
	changed := ev(2, "group_assigned", "rewritten")
	v := LostEvents(seen, map[string][]Event{"a": log, "b": {e1, changed, e3}, "w": {e1, e2}})
	if len(v) != 2 {
		t.Fatalf("want 2 violations, got %v", v)
	}
	for _, x := range v {
		if x.Kind != LostEvent {
			t.Errorf("kind %s", x.Kind)
		}
	}
	// Two nodes served different entries at one index during the run.
	v = LostEvents(append(seen, Seen{Event: changed, Observer: "w"}), map[string][]Event{"a": log})
	if len(v) != 1 || !strings.Contains(v[0].Detail, "index 2 served as") {
		t.Errorf("index 2 served twice differently: got %v", v)
	}
}

func TestUnsettled(t *testing.T) {
	bound := 10 * time.Second
	f := Fault{Trial: 1, Kind: Kill, Nodes: []string{"a"}, Hold: time.Second}
	ok := Trial{Fault: f, Start: 0, Healed: time.Second, Settled: 4 * time.Second}
	late := Trial{Fault: f, Start: 0, Healed: time.Second, Settled: 12 * time.Second}
	never := Trial{Fault: f, Start: 0, Healed: time.Second, SettleErr: "group web: 0 nodes hold the VIP"}
	if v := Unsettled([]Trial{ok}, bound); len(v) != 0 {
		t.Errorf("settled in 3s, yet: %v", v)
	}
	v := Unsettled([]Trial{ok, late, never}, bound)
	if len(v) != 2 || v[0].Kind != NoHolder || v[1].Kind != NoHolder || !strings.Contains(v[1].Detail, "0 nodes hold") {
		t.Errorf("want two no_holder violations, got %v", v)
	}
}

// A synthetic run with one of each problem: Check finds all, in time
// order, Around shows the history near one, the SVG is well-formed XML
// and the summary counts right.
func TestCheckSummariseDraw(t *testing.T) {
	f := Fault{Trial: 1, Kind: Partition, Nodes: []string{"a"}, Others: []string{"b", "w"}, Hold: 3 * time.Second}
	h := &History{Seed: 99, Nodes: []string{"a", "b", "w"}, Groups: map[string][]string{"web": {"a", "b"}}, Deadtime: 2 * time.Second, End: 20 * time.Second,
		Answers: answers("web", "a@0-10", "-@100-400", "b@5000-5010", "a@5100-5110", "b@5200-5210"),
		Trials: []Trial{{Fault: f, Start: msec(50), Healed: msec(3050), SettleErr: "group web: 2 nodes hold the VIP",
			Exited: map[string]string{"w": "panic: sealed segment has no index block"}}},
		Ops:     []Op{{Trial: 1, Kind: OpMove, EventKind: "move_requested", Group: "web", Node: "b", Via: "b", Reason: "op 1", At: msec(1000), Done: msec(1200), Acked: true}},
		Seen:    []Seen{{Event: ev(1, "node_joined", "x"), Observer: "a", At: msec(9000)}},
		Final:   map[string][]Event{"a": {ev(1, "node_joined", "x")}, "b": {}},
		Holding: []Span{{Group: "web", Node: "a", From: 0, To: msec(5200)}, {Group: "web", Node: "b", From: msec(4900), To: msec(20000)}},
		Poll:    []Violation{{Kind: SplitBrainPoll, Group: "web", At: msec(4900), To: msec(5200), Nodes: []string{"a", "b"}, Detail: "two holders"}},
	}
	v := Check(h, CheckOptions{ClientWindow: time.Second, HealBound: 10 * time.Second})
	kinds := map[string]int{}
	for i, x := range v {
		kinds[x.Kind]++
		if i > 0 && v[i-1].At > x.At {
			t.Errorf("not in time order: %v", v)
		}
	}
	for _, k := range []string{SplitBrainPoll, SplitBrainClient, LostAck, LostEvent, NoHolder, AgentExit} {
		if kinds[k] != 1 {
			t.Errorf("%s found %d times, want once: %v", k, kinds[k], v)
		}
	}
	around := h.Around(msec(4000), msec(6000))
	for _, want := range []string{"HOLD    b holds web's VIP", "1 requests web answered by a (started +5.100s", "1 requests web answered by b (started +5.000s"} {
		if !strings.Contains(around, want) {
			t.Errorf("Around lacks %q:\n%s", want, around)
		}
	}
	if strings.Contains(around, "+0.000s") && strings.Contains(around, "answered by a (started +0.000s") {
		t.Errorf("Around shows answers outside its window:\n%s", around)
	}
	r := Summarise(h, v)
	if r.Trials != 1 || r.SplitBrainIntervals != 2 || r.OpsAcked != 1 || r.Requests != 5 || r.Answered != 4 || r.Committed != 1 {
		t.Errorf("summary %+v", r)
	}
	svg := SVG(h, v)
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG is not well-formed: %v", err)
			}
			break
		}
	}
	for _, want := range []string{"seed 99", "a faults", "client web", `stroke="red"`, string(Partition)} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
