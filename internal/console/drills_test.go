package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// drillBackend adds drills to the fake cluster: a started drill is listed as
// running, and one finished drill with its steps is there from the start.
type drillBackend struct {
	*fakeBackend
	mu   sync.Mutex
	reqs []model.DrillRequest
	by   []string
	list []model.Drill
}

func (d *drillBackend) StartDrill(_ context.Context, by string, req model.DrillRequest) (model.Drill, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reqs, d.by = append(d.reqs, req), append(d.by, by)
	dr := model.Drill{ID: "drill-2", Group: req.Group, From: "a", To: "b", Back: req.Back, By: by, Runner: "a", Outcome: model.DrillRunning, Started: time.Now()}
	d.list = append([]model.Drill{dr}, d.list...)
	return dr, nil
}

func (d *drillBackend) Drills(string) []model.Drill {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]model.Drill(nil), d.list...)
}

func TestDrillPageAndAction(t *testing.T) {
	h := newHarness(t)
	out := int64(1234)
	t0 := time.Now().Add(-time.Minute)
	db := &drillBackend{fakeBackend: h.f, list: []model.Drill{{ID: "drill-1", Group: "web", From: "a", To: "b", Back: true, By: "bob",
		Runner: "q", Outcome: model.DrillFailed, Error: "move back to a: clients get no answer", Probe: "http http://10.0.0.100/",
		ProbesSent: 50, ProbesFailed: 12, Started: t0, Ended: t0.Add(20 * time.Second),
		Steps: []model.DrillStep{{Name: "move to b", Started: t0, Ended: t0.Add(2 * time.Second), OK: true, OutageMS: &out}}}}}
	h.c.api = newAPIFor(t, db)

	viewer := h.f.addToken("vera", model.TokenViewer)
	vsid, vcsrf := h.login(viewer)
	r := h.do("GET", "/drills", vsid, nil)
	if r.code != 200 || !strings.Contains(r.body, `data-drill="drill-1"`) || !strings.Contains(r.body, "1.234s") ||
		!strings.Contains(r.body, "clients get no answer") || !strings.Contains(r.body, "12 / 50") {
		t.Fatalf("drills page: %d %s", r.code, r.body)
	}
	if strings.Contains(r.body, "/confirm/drill") {
		t.Error("a viewer is offered the drill button")
	}
	form := url.Values{"group": {"web"}, "reason": {"quarterly"}}
	if r := h.do("POST", "/actions/drill", vsid, form, "HX-Request", "true", "X-CSRF-Token", vcsrf); r.code != http.StatusForbidden {
		t.Fatalf("viewer starts a drill: %d", r.code)
	}

	op := h.f.addToken("alice", model.TokenOperator)
	sid, csrf := h.login(op)
	if r := h.do("GET", "/groups", sid, nil); !strings.Contains(r.body, "/confirm/drill?") {
		t.Errorf("group card lacks the drill button")
	}
	r = h.do("GET", "/confirm/drill?group=web&back=/drills", sid, nil, "HX-Request", "true")
	if r.code != 200 || !strings.Contains(r.body, `name="return"`) || !strings.Contains(r.body, "<option>b</option>") && !strings.Contains(r.body, "<option >b</option>") {
		t.Fatalf("drill dialog: %d %s", r.code, r.body)
	}
	if r := h.do("POST", "/actions/drill", sid, form, "HX-Request", "true"); r.code != http.StatusForbidden {
		t.Fatalf("no CSRF: %d", r.code)
	}
	if r := h.do("POST", "/actions/drill", sid, url.Values{"group": {"web"}}, "HX-Request", "true", "X-CSRF-Token", csrf); r.code != http.StatusBadRequest {
		t.Fatalf("no reason: %d", r.code)
	}
	form.Set("return", "1")
	r = h.do("POST", "/actions/drill", sid, form, "HX-Request", "true", "X-CSRF-Token", csrf)
	if r.code != 200 || !strings.Contains(r.body, "Started drill drill-2") {
		t.Fatalf("start: %d %s", r.code, r.body)
	}
	if len(db.reqs) != 1 || !db.reqs[0].Back || db.reqs[0].Reason != "quarterly" || db.by[0] != "alice" {
		t.Fatalf("requests %+v by %v", db.reqs, db.by)
	}
}
