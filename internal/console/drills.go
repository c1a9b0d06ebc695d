package console

import (
	"context"
	"net/http"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// drillsView is the drills page: the groups one can drill and past drills.
type drillsView struct {
	Groups []model.GroupStatus
	Drills []model.Drill
}

// drills lists failover drills with their step timings and client-visible
// outage (GET /v1/drills), and offers a drill of each group.
func (c *Console) drills(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Drills", "drills")
	if _, _, err := c.cluster(ctx, s, v); err != nil {
		c.fail(w, r, s, err)
		return
	}
	var d drillsView
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/groups", nil, &d.Groups); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/drills", nil, &d.Drills); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Data = d
	c.render(w, r, http.StatusOK, "drills", v)
}

// outage formats a drill's or step's outage in milliseconds ("-": not measured).
func outage(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return (time.Duration(*ms) * time.Millisecond).String()
}

func drillLevel(outcome string) string {
	switch outcome {
	case model.DrillPassed:
		return green.String()
	case model.DrillFailed:
		return red.String()
	}
	return yellow.String()
}
