package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Client talks to one node, trying each of its addresses in turn.
type Client struct {
	bases []string // https://host:port
	hc    *http.Client
	token string
}

// New builds a client for the API at the given host:port addresses (one node's links,
// or several nodes: the first that answers is used).
func New(addrs []string, tlsCfg *tls.Config, token string) *Client {
	tr := &http.Transport{
		TLSClientConfig:     tlsCfg,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		TLSHandshakeTimeout: 3 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	c := &Client{hc: &http.Client{Transport: tr}, token: token}
	for _, a := range addrs {
		c.bases = append(c.bases, "https://"+a)
	}
	return c
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Message string `json:"error"`
	Field   string `json:"field"`
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (field %s, HTTP %d)", e.Message, e.Field, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// do sends the request to each address until one answers at the HTTP level.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var errs []error
	for _, base := range c.bases {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if resp.StatusCode >= 400 {
			defer resp.Body.Close()
			apiErr := &APIError{Status: resp.StatusCode}
			if json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(apiErr) != nil || apiErr.Message == "" {
				apiErr.Message = http.StatusText(resp.StatusCode)
			}
			return nil, apiErr
		}
		return resp, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s %s: no address to try", method, path)
	}
	return nil, fmt.Errorf("%s %s: %w", method, path, errors.Join(errs...))
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// Status returns the answering node's view of the cluster.
func (c *Client) Status(ctx context.Context) (model.Status, error) {
	var st model.Status
	return st, c.getJSON(ctx, "/v1/status", &st)
}

// Events returns committed events with Index > after.
func (c *Client) Events(ctx context.Context, after uint64, limit int) ([]model.Event, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	var evs []model.Event
	return evs, c.getJSON(ctx, "/v1/events?"+q.Encode(), &evs)
}

// Follow calls fn for every event after the given index, then for new ones as they
// commit, until ctx is done, the server goes away, or fn returns an error.
func (c *Client) Follow(ctx context.Context, after uint64, fn func(model.Event) error) error {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "follow": {"1"}}
	resp, err := c.do(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // keep-alive
		}
		var ev model.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("follow events: decode: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	return errors.New("follow events: the node closed the stream")
}

// AppendEvents reports this node's events to the coordinator (node certificate required).
func (c *Client) AppendEvents(ctx context.Context, evs []model.Event) error {
	body, err := json.Marshal(evs)
	if err != nil {
		return fmt.Errorf("encode events: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/internal/events", body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Groups lists every group with its placement.
func (c *Client) Groups(ctx context.Context) ([]model.GroupStatus, error) {
	var gs []model.GroupStatus
	return gs, c.getJSON(ctx, "/v1/groups", &gs)
}

// LocalSync is the replication of the sync resources running on the node asked
// (node certificate required).
func (c *Client) LocalSync(ctx context.Context) ([]model.SyncStatus, error) {
	var ss []model.SyncStatus
	return ss, c.getJSON(ctx, "/v1/internal/sync", &ss)
}

// Act posts an operator action to path (e.g. /v1/groups/web/move) and returns the recorded event.
func (c *Client) Act(ctx context.Context, path string, a model.OperatorAction) (model.Event, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return model.Event{}, fmt.Errorf("encode action: %w", err)
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
