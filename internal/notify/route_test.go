package notify

import (
	"reflect"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestMatchKindsGlobsAndSeverity(t *testing.T) {
	c := Config{
		Routes: []Route{
			{Name: "pager", Kinds: []string{"node_dead", "group_*"}, MinSeverity: "warning", Targets: []string{"hook", "mail"}},
			{Name: "crit", MinSeverity: "critical", Targets: []string{"mail", "sms"}},
			{Name: "all", Targets: []string{"file"}},
		},
	}
	cases := []struct {
		kind model.EventKind
		sev  model.Severity
		want []Delivery
	}{
		{model.EventNodeDead, model.SeverityCritical, []Delivery{
			{"hook", []string{"pager"}}, {"mail", []string{"pager", "crit"}}, {"sms", []string{"crit"}}, {"file", []string{"all"}}}},
		{model.EventGroupFailed, model.SeverityWarning, []Delivery{{"hook", []string{"pager"}}, {"mail", []string{"pager"}}, {"file", []string{"all"}}}},
		{model.EventGroupStarted, model.SeverityInfo, []Delivery{{"file", []string{"all"}}}},
		{model.EventLinkDown, model.SeverityWarning, []Delivery{{"file", []string{"all"}}}},
		{model.EventQuorumLost, model.SeverityCritical, []Delivery{{"mail", []string{"crit"}}, {"sms", []string{"crit"}}, {"file", []string{"all"}}}},
		// An unknown severity from a newer agent counts as critical rather than vanishing.
		{model.EventNodeDead, "emergency", []Delivery{
			{"hook", []string{"pager"}}, {"mail", []string{"pager", "crit"}}, {"sms", []string{"crit"}}, {"file", []string{"all"}}}},
		// No severity: info.
		{model.EventNodeDead, "", []Delivery{{"file", []string{"all"}}}},
	}
	for _, tc := range cases {
		got := c.Match(model.Event{Kind: tc.kind, Severity: tc.sev})
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s/%s: got %v, want %v", tc.kind, tc.sev, got, tc.want)
		}
	}
	if got := (Config{}).Match(model.Event{Kind: model.EventNodeDead}); len(got) != 0 {
		t.Errorf("no routes, got %v", got)
	}
}

func TestPlanResume(t *testing.T) {
	elected := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	recent, old := elected.Add(-10*time.Second), elected.Add(-time.Hour)
	ev := func(i uint64, at time.Time) model.Event { return model.Event{Index: i, Time: at} }

	// A fresh coordinator on a long log replays only the last ReplayWindow, and only recent events.
	r := PlanResume(0, 1000, elected)
	if r.After != 1000-ReplayWindow {
		t.Fatalf("After = %d", r.After)
	}
	for _, c := range []struct {
		ev   model.Event
		want bool
	}{
		{ev(500, recent), false},  // before the window
		{ev(901, recent), true},   // in the window, recent: the predecessor may have missed it
		{ev(950, old), false},     // in the window but old: the predecessor surely had it
		{ev(1000, recent), true},  // the last one before the election
		{ev(1001, old), true},     // committed after the election: always (an old event shipped late)
		{ev(5000, elected), true}, // later ones
	} {
		if got := r.Dispatch(c.ev); got != c.want {
			t.Errorf("index %d at %v: got %v, want %v", c.ev.Index, c.ev.Time, got, c.want)
		}
	}
	// A node that led until recently never repeats what it dispatched itself.
	r = PlanResume(990, 1000, elected)
	if r.After != 990 || r.Dispatch(ev(990, recent)) || !r.Dispatch(ev(991, recent)) {
		t.Fatalf("own progress ignored: %+v", r)
	}
	// A short log: everything recent from the start.
	r = PlanResume(0, 5, elected)
	if r.After != 0 || !r.Dispatch(ev(1, recent)) || r.Dispatch(ev(1, old)) {
		t.Fatalf("short log: %+v", r)
	}
	// Own progress beyond the log (a recreated cluster) must not silence the next thousand events.
	r = PlanResume(2000, 1000, elected)
	if r.After != 1000-ReplayWindow {
		t.Fatalf("After = %d", r.After)
	}
}
