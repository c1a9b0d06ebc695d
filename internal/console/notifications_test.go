package console

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/notify"
)

// The fake has one webhook target failing with one notification waiting.
func (f *fakeBackend) NotificationStatus() []notify.TargetStatus {
	return []notify.TargetStatus{{Name: "ops-hook", Type: "webhook", Queued: 1, Delivered: 4, Failed: 2,
		LastError: "HTTP 503 from receiver", LastErrorAt: time.Now()}}
}

func (f *fakeBackend) UndeliveredNotifications(limit int) []notify.Pending {
	return []notify.Pending{{Target: "ops-hook", Index: 42, Kind: model.EventGroupFailed, Severity: model.SeverityCritical,
		Summary: "web failed on a", Created: time.Now(), Attempts: 3, LastError: "HTTP 503 from receiver"}}
}

func TestNotificationsPage(t *testing.T) {
	h := newHarness(t)
	viewer := h.f.addToken("ro", model.TokenViewer)
	sid, _ := h.login(viewer)
	r := h.do("GET", "/notifications", sid, nil)
	if r.code != http.StatusOK {
		t.Fatalf("HTTP %d %s", r.code, r.body)
	}
	for _, want := range []string{`href="/notifications" aria-current="page"`, `data-target="ops-hook" data-queued="1"`,
		"HTTP 503 from receiver", `data-index="42"`, "web failed on a", "group_failed"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	r = h.do("GET", "/notifications", sid, nil, "HX-Request", "true", "HX-Target", "live")
	if r.code != 200 || strings.Contains(r.body, "<html") || !strings.Contains(r.body, "ops-hook") {
		t.Errorf("live: %d %s", r.code, r.body)
	}
}
