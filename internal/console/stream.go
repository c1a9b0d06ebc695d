package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/vigil-ha/vigil/internal/model"
)

// stream sends server-sent events: one "change" per committed log event, with
// the event's index as the SSE id, so a reconnecting browser (which sends
// Last-Event-ID) misses nothing. The page reloads its live part on each one.
// It is the API's GET /v1/events?follow=1 called in process and re-framed.
func (c *Console) stream(w http.ResponseWriter, r *http.Request, s *session) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	// The stream ends with the request, the session (logout, expiry) or the console.
	ctx, cancel := context.WithDeadline(r.Context(), s.expires)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	defer context.AfterFunc(c.ctx, cancel)()

	after, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	if err != nil {
		// A new page: it already shows the log up to now.
		var last []model.Event
		if err := c.call(ctx, s.token, http.MethodGet, "/v1/events?last=1", nil, &last); err != nil {
			c.fail(w, r, s, err)
			return
		}
		after = 0
		if len(last) > 0 {
			after = last[0].Index
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/v1/events?follow=1&after="+strconv.FormatUint(after, 10), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	c.api.ServeHTTP(&sseWriter{w: w, flusher: flusher, header: http.Header{}}, req)
}

// sseWriter turns the API's NDJSON stream into server-sent events. Only what a
// page needs to decide to reload goes out, not the event's reason or output.
type sseWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	header  http.Header // the API's headers, not sent
	started bool
	failed  bool
	buf     bytes.Buffer
}

func (s *sseWriter) Header() http.Header { return s.header }

func (s *sseWriter) WriteHeader(code int) {
	if s.started || s.failed {
		return
	}
	if code != http.StatusOK {
		// EventSource gives up on an error status instead of reconnecting.
		s.failed = true
		http.Error(s.w, http.StatusText(code), code)
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	_, _ = s.w.Write([]byte("retry: 2000\n\n"))
}

func (s *sseWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.WriteHeader(http.StatusOK)
	}
	if s.failed {
		return len(p), nil
	}
	s.buf.Write(p)
	for {
		line, err := s.buf.ReadBytes('\n')
		if err != nil {
			// An incomplete line: keep it for the next write.
			rest := append([]byte(nil), line...)
			s.buf.Reset()
			s.buf.Write(rest)
			return len(p), nil
		}
		if err := s.frame(bytes.TrimSpace(line)); err != nil {
			return 0, err
		}
	}
}

func (s *sseWriter) frame(line []byte) error {
	if len(line) == 0 {
		_, err := s.w.Write([]byte(": keep-alive\n\n"))
		return err
	}
	var ev model.Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return fmt.Errorf("console stream: %w", err)
	}
	data, err := json.Marshal(struct {
		Index    uint64          `json:"index"`
		Kind     model.EventKind `json:"kind"`
		Group    string          `json:"group,omitempty"`
		Node     string          `json:"node,omitempty"`
		Severity model.Severity  `json:"severity"`
	}{ev.Index, ev.Kind, ev.Group, ev.Node, ev.Severity})
	if err != nil {
		return fmt.Errorf("console stream: %w", err)
	}
	_, err = fmt.Fprintf(s.w, "id: %d\nevent: change\ndata: %s\n\n", ev.Index, data)
	return err
}

func (s *sseWriter) Flush() {
	if s.started {
		s.flusher.Flush()
	}
}
