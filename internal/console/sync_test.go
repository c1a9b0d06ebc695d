package console

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// TestGroupsShowReplication: a group's sync lag per target, with a failing
// target's error, and why the lag is unknown when it is.
func TestGroupsShowReplication(t *testing.T) {
	h := newHarness(t)
	last := time.Now().Add(-2 * time.Second)
	h.f.mu.Lock()
	h.f.groups[0].Sync = []model.SyncStatus{
		{Group: "web", Resource: "data", Source: "a", Target: "b", LastPass: &last, LagSeconds: 2.04},
		{Group: "web", Resource: "data", Source: "a", Target: "c", LagSeconds: 61, Error: "rsync socket error"},
	}
	h.f.groups = append(h.f.groups, model.GroupStatus{Name: "mail", Nodes: []string{"b", "a"}, Node: "b", State: "running",
		SyncUnknown: "could not ask b for its sync lag"})
	h.f.mu.Unlock()
	viewer := h.f.addToken("ro", model.TokenViewer)
	sid, _ := h.login(viewer)
	r := h.do("GET", "/groups", sid, nil)
	if r.code != 200 {
		t.Fatalf("groups page: %d", r.code)
	}
	for _, want := range []string{"<dt>Replication</dt>", "<b>data</b> a → b", `lvl-green">lag 2.0 s`, "<b>data</b> a → c", `lvl-yellow">lag 61.0 s`, "rsync socket error", "could not ask b for its sync lag"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("groups page lacks %q", want)
		}
	}
}
