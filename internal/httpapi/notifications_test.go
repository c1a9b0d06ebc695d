package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/notify"
)

// notifyFake adds notification targets to the fake backend.
type notifyFake struct {
	*fakeBackend
	targets []notify.TargetStatus
	pending []notify.Pending
}

func (f *notifyFake) NotificationStatus() []notify.TargetStatus { return f.targets }
func (f *notifyFake) UndeliveredNotifications(limit int) []notify.Pending {
	if limit > 0 && len(f.pending) > limit {
		return f.pending[:limit]
	}
	return f.pending
}

func TestNotificationsRoute(t *testing.T) {
	f := &notifyFake{fakeBackend: newFake()}
	h := New(f, bootstrap, slog.New(slog.NewTextHandler(io.Discard, nil)))
	viewer := f.addToken("ro", model.TokenViewer)

	// No target configured: empty lists, not null.
	a := call(t, h, "GET", "/v1/notifications", viewer, "")
	if a.code != 200 || a.body != `{"node":"a","targets":[],"undelivered":[]}`+"\n" && a.body != `{"node":"a","targets":[],"undelivered":[]}` {
		t.Fatalf("HTTP %d %q", a.code, a.body)
	}
	if a := call(t, h, "GET", "/v1/notifications", "", ""); a.code != 401 {
		t.Errorf("no token: HTTP %d", a.code)
	}

	now := time.Now().UTC().Truncate(time.Second)
	f.targets = []notify.TargetStatus{{Name: "ops-hook", Type: "webhook", Queued: 2, Delivered: 5, Failed: 1, LastError: "HTTP 503", LastErrorAt: now}}
	f.pending = []notify.Pending{
		{Target: "ops-hook", Index: 7, Kind: model.EventGroupFailed, Severity: model.SeverityCritical, Summary: "web failed on a", Created: now, Attempts: 3, LastError: "HTTP 503"},
		{Target: "ops-hook", Index: 8, Kind: model.EventGroupStarted, Severity: model.SeverityInfo, Summary: "web started on b", Created: now},
	}
	a = call(t, h, "GET", "/v1/notifications?limit=1", viewer, "")
	var got Notifications
	if err := json.Unmarshal([]byte(a.body), &got); err != nil || a.code != 200 {
		t.Fatalf("HTTP %d %q %v", a.code, a.body, err)
	}
	if len(got.Targets) != 1 || got.Targets[0].Queued != 2 || got.Targets[0].LastError != "HTTP 503" {
		t.Errorf("targets %+v", got.Targets)
	}
	if len(got.Undelivered) != 1 || got.Undelivered[0].Index != 7 || got.Undelivered[0].Attempts != 3 {
		t.Errorf("undelivered %+v", got.Undelivered)
	}
	for _, bad := range []string{"0", "x", "1001"} {
		a := call(t, h, "GET", "/v1/notifications?limit="+bad, viewer, "")
		if a.code != 400 || a.err.Field != "limit" {
			t.Errorf("limit=%s: HTTP %d %+v", bad, a.code, a.err)
		}
	}
}
