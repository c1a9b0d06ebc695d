package console

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/availability"
	"github.com/vigil-ha/vigil/internal/model"
)

func TestAvailabilityPage(t *testing.T) {
	h := newHarness(t)
	now := h.clock()
	day := 24 * time.Hour
	failed := now.Add(-10 * day)
	ev := func(i uint64, at time.Time, kind model.EventKind, node, reporter string) model.Event {
		return model.Event{Index: i, Time: at, Kind: kind, Group: "web", Node: node, Reporter: reporter, Reason: "test"}
	}
	h.f.mu.Lock()
	h.f.events = []model.Event{
		ev(1, now.Add(-20*day), model.EventGroupAssigned, "a", "a"),
		ev(2, now.Add(-20*day), model.EventGroupStarted, "", "a"),
		ev(3, failed, model.EventGroupFailed, "", "a"),
		ev(4, failed.Add(time.Minute), model.EventGroupAssigned, "b", "a"),
		ev(5, failed.Add(2*time.Hour), model.EventGroupStarted, "", "b"),
	}
	h.f.mu.Unlock()
	h.c.sla = map[string]float64{"web": 99.9} // the group exists for 20 days: 28m48s allowed, 2 h down misses it

	viewer := h.f.addToken("ro", model.TokenViewer)
	sid, _ := h.login(viewer)
	r := h.do("GET", "/availability", sid, nil)
	if r.code != http.StatusOK {
		t.Fatalf("HTTP %d %s", r.code, r.body)
	}
	for _, want := range []string{`href="/availability" aria-current="page"`, `data-group="web" data-level="red" data-met="false"`,
		"99.583 %", "99.90 %", "2h00m", "<svg", "group_failed on a"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(r.body, `<rect class="bar"`); n != 30 {
		t.Errorf("%d bars, want 30", n)
	}
	// One bar is the tallest (the failure's day), the others are empty.
	if n := strings.Count(r.body, `height="80" fill=`); n != 1 {
		t.Errorf("%d full bars, want 1", n)
	}
	if strings.Contains(r.body, "<script") && strings.Count(r.body, "<script") != 2 {
		t.Errorf("the chart must not need a script")
	}

	// With the default SLA (99.5 % of 20 days: 2h24m allowed) it is met, 24 min left: yellow.
	h.c.sla = nil
	r = h.do("GET", "/availability", sid, nil, "HX-Request", "true", "HX-Target", "live")
	if r.code != 200 || strings.Contains(r.body, "<html") || !strings.Contains(r.body, `data-met="true"`) || !strings.Contains(r.body, "24m00s of 2h24m") || !strings.Contains(r.body, `data-level="yellow"`) {
		t.Errorf("live, default SLA: %d %s", r.code, r.body)
	}
}

func TestDowntimePerDay(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := since.Add(3 * 24 * time.Hour)
	end := since.Add(24*time.Hour + time.Hour)
	per := downtimePerDay([]availability.Incident{
		{Start: since.Add(23 * time.Hour), End: &end},                         // across midnight: 1 h + 1 h
		{Start: since.Add(-time.Hour), End: ptr(since.Add(30 * time.Minute))}, // before the period: only 30 min count
		{Start: until.Add(-time.Hour)},                                        // still open: until the end
	}, since, until)
	want := []time.Duration{90 * time.Minute, time.Hour, time.Hour}
	for i := range want {
		if per[i] != want[i] {
			t.Errorf("day %d: %s, want %s", i, per[i], want[i])
		}
	}
}

func ptr[T any](v T) *T { return &v }
