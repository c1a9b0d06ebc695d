package httpapi

import (
	"net/http"
	"strconv"

	"github.com/vigil-ha/vigil/internal/notify"
)

// NotificationBackend reports this node's notification targets and what they
// have not delivered yet (queued and retried with backoff).
type NotificationBackend interface {
	// NotificationStatus: every target with its queued, delivered and failed
	// counts and last error (nil when none is configured).
	NotificationStatus() []notify.TargetStatus
	// UndeliveredNotifications: queued notifications, oldest first (limit <= 0: all).
	UndeliveredNotifications(limit int) []notify.Pending
}

// Notifications is the answer of GET /v1/notifications.
type Notifications struct {
	// Node is the node answering: each node delivers what it queued while it was coordinator.
	Node        string                `json:"node"`
	Targets     []notify.TargetStatus `json:"targets"`
	Undelivered []notify.Pending      `json:"undelivered"`
}

const maxUndelivered = 1000

func (s *server) notificationRoutes(mux *routeMux) {
	mux.Handle("GET /v1/notifications", s.auth(roleViewer, s.notifications))
}

func (s *server) notifications(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxUndelivered {
			return nil, &Error{Code: http.StatusBadRequest, Message: "limit must be 1..1000", Field: "limit"}
		}
		limit = n
	}
	return NotificationsOf(s.b, limit), nil
}

// NotificationsOf builds the GET /v1/notifications answer (the console shows it too).
func NotificationsOf(b Backend, limit int) Notifications {
	n := Notifications{Node: b.Status().Node, Targets: b.NotificationStatus(), Undelivered: b.UndeliveredNotifications(limit)}
	if n.Targets == nil {
		n.Targets = []notify.TargetStatus{}
	}
	if n.Undelivered == nil {
		n.Undelivered = []notify.Pending{}
	}
	return n
}
