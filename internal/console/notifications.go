package console

import (
	"context"
	"net/http"

	"github.com/vigil-ha/vigil/internal/httpapi"
)

// notifications shows this node's notification targets and what they have not
// delivered yet (GET /v1/notifications).
func (c *Console) notifications(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Notifications", "notifications")
	if _, _, err := c.cluster(ctx, s, v); err != nil {
		c.fail(w, r, s, err)
		return
	}
	var n httpapi.Notifications
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/notifications?limit=200", nil, &n); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Data = n
	c.render(w, r, http.StatusOK, "notifications", v)
}
