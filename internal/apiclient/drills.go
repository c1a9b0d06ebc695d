package apiclient

import (
	"context"
	"net/url"

	"github.com/vigil-ha/vigil/internal/model"
)

// StartDrill asks the node to run a failover drill; it returns once the
// drill is recorded as started.
func (c *Client) StartDrill(ctx context.Context, req model.DrillRequest) (model.Drill, error) {
	var d model.Drill
	return d, c.postJSON(ctx, "/v1/drills", req, &d)
}

// Drills lists drills, newest first; group "" lists every group's.
func (c *Client) Drills(ctx context.Context, group string) ([]model.Drill, error) {
	path := "/v1/drills"
	if group != "" {
		path += "?" + url.Values{"group": {group}}.Encode()
	}
	var ds []model.Drill
	return ds, c.getJSON(ctx, path, &ds)
}

// Drill returns one drill by id.
func (c *Client) Drill(ctx context.Context, id string) (model.Drill, error) {
	var d model.Drill
	return d, c.getJSON(ctx, "/v1/drills/"+url.PathEscape(id), &d)
}
