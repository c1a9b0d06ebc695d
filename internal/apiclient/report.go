package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/vigil-ha/vigil/internal/model"
)

// eventsPage is the largest page GET /v1/events serves.
const eventsPage = 10000

// AllEvents reads the whole committed log, page by page with after=, until a
// page comes back short.
func (c *Client) AllEvents(ctx context.Context) ([]model.Event, error) {
	var all []model.Event
	var after uint64
	for {
		page, err := c.Events(ctx, after, eventsPage)
		if err != nil {
			return nil, fmt.Errorf("events after %d: %w", after, err)
		}
		all = append(all, page...)
		if len(page) < eventsPage {
			return all, nil
		}
		next := page[len(page)-1].Index
		if next <= after {
			return nil, fmt.Errorf("events after %d: the node answered with index %d, not beyond", after, next)
		}
		after = next
	}
}

// DeclareWindow records a planned maintenance window and returns the event.
func (c *Client) DeclareWindow(ctx context.Context, w model.MaintenanceWindow) (model.Event, error) {
	const path = "/v1/maintenance/window"
	body, err := json.Marshal(w)
	if err != nil {
		return model.Event{}, fmt.Errorf("encode window: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return model.Event{}, err
	}
	defer resp.Body.Close()
	var ev model.Event
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		return model.Event{}, fmt.Errorf("POST %s: decode: %w", path, err)
	}
	return ev, nil
}

// Metrics fetches the node's Prometheus metrics in the text exposition format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	return body, nil
}
