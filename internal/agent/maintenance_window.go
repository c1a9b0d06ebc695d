package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
)

// Limits on declared windows. A window must be planned: one that starts in the past
// would let an operator erase an outage from the availability report after the fact,
// so only a little slack (clocks, typing) is allowed.
const (
	windowBackdateSlack = time.Minute
	windowMaxLength     = 31 * 24 * time.Hour
)

// DeclareWindow records planned maintenance in the replicated log (httpapi.Backend).
func (a *Agent) DeclareWindow(ctx context.Context, by string, w model.MaintenanceWindow) (model.Event, error) {
	ev, err := a.windowEvent(time.Now(), by, w)
	if err != nil {
		return model.Event{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.ship(ctx, []model.Event{ev}); err != nil {
		return model.Event{}, &httpapi.Error{Code: http.StatusServiceUnavailable, Message: "not recorded (no coordinator reachable?): " + err.Error()}
	}
	return ev, nil
}

func (a *Agent) windowEvent(now time.Time, by string, w model.MaintenanceWindow) (model.Event, error) {
	bad := func(field, format string, args ...any) error {
		return &httpapi.Error{Code: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Field: field}
	}
	switch {
	case w.Start.IsZero():
		return model.Event{}, bad("start", "start is required (RFC 3339)")
	case w.End.IsZero():
		return model.Event{}, bad("end", "end is required (RFC 3339)")
	case !w.End.After(w.Start):
		return model.Event{}, bad("end", "end (%s) must be after start (%s)", w.End.Format(time.RFC3339), w.Start.Format(time.RFC3339))
	case w.End.Sub(w.Start) > windowMaxLength:
		return model.Event{}, bad("end", "a window may last at most %s; declare several", windowMaxLength)
	case w.Start.Before(now.Add(-windowBackdateSlack)):
		return model.Event{}, bad("start", "start %s is in the past: maintenance windows are declared ahead, not after an outage", w.Start.Format(time.RFC3339))
	case w.Reason == "":
		return model.Event{}, bad("reason", "say why (the reason is shown in availability reports)")
	}
	if w.Group != "" {
		if _, ok := a.cfg.Group(w.Group); !ok {
			return model.Event{}, &httpapi.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("no group %q", w.Group), Field: "group"}
		}
	}
	start, end := w.Start.UTC(), w.End.UTC()
	return model.Event{Time: now, Kind: model.EventMaintenanceWindow, Severity: model.SeverityInfo, Reporter: a.self.Name,
		By: by, Group: w.Group, Reason: w.Reason, WindowStart: &start, WindowEnd: &end}, nil
}
