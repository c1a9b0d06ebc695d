package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Backend is what the API needs from the agent.
type Backend interface {
	Status() model.Status
	Events(after uint64, limit int) []model.Event
	// Subscribe delivers newly committed events until ctx is done.
	Subscribe(ctx context.Context) <-chan model.Event
	// AppendEvents stores events reported by a peer node (only the coordinator can).
	AppendEvents(ctx context.Context, from string, evs []model.Event) error
	// IsNode says whether name is a node of this cluster.
	IsNode(name string) bool
	// Groups lists every group with its placement; it may ask the node running
	// a group for live figures (the sync lag) within ctx.
	Groups(ctx context.Context) []model.GroupStatus
	// LocalSync is the replication of the sync resources running on this node.
	LocalSync() []model.SyncStatus
	// Act records an operator action (move, failback, flags clear, maintenance)
	// in the replicated log; errors are *Error values naming the bad field.
	Act(ctx context.Context, kind model.EventKind, by string, a model.OperatorAction) (model.Event, error)
	// WorkflowBackend: workflows, their runs and the remote batch (workflows.go).
	WorkflowBackend
	// MaintenanceBackend: declared maintenance windows (maintenance.go).
	MaintenanceBackend
	// TokenBackend: replicated API tokens and their roles (tokens.go).
	TokenBackend
	// NotificationBackend: notification targets and undelivered items (notifications.go).
	NotificationBackend
	// DrillBackend: failover drills (drills.go).
	DrillBackend
}

// Error is returned as {"error": ..., "field": ...} with Code as the HTTP status.
type Error struct {
	Code    int    `json:"-"`
	Message string `json:"error"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// ErrNotCoordinator tells a peer to retry with the current coordinator.
var ErrNotCoordinator = &Error{Code: http.StatusConflict, Message: "not the coordinator"}

// role is what a route needs (auth.go): a token role, or a node certificate.
type role int

const (
	roleNone role = iota
	roleViewer
	roleOperator
	roleAdmin
	roleNode
)

type server struct {
	b      Backend
	token  string
	logger *slog.Logger
}

// New returns the API handler. token is the operator token; peers authenticate with
// their cluster certificate (verified by the TLS layer against the cluster CA).
func New(b Backend, token string, logger *slog.Logger) http.Handler {
	_, mux := newServer(b, token, logger)
	return mux
}

// newServer registers every route on a mux that remembers them (routes.go).
func newServer(b Backend, token string, logger *slog.Logger) (*server, *routeMux) {
	s := &server{b: b, token: token, logger: logger}
	mux := newRouteMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /v1/status", s.auth(roleViewer, s.status))
	mux.Handle("GET /v1/events", s.auth(roleViewer, s.events))
	mux.Handle("POST /v1/internal/events", s.auth(roleNode, s.appendEvents))
	mux.Handle("GET /v1/groups", s.auth(roleViewer, func(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
		return s.b.Groups(r.Context()), nil
	}))
	mux.Handle("GET /v1/internal/sync", s.auth(roleNode, func(http.ResponseWriter, *http.Request, string) (any, error) {
		return s.b.LocalSync(), nil
	}))
	mux.Handle("POST /v1/groups/{group}/move", s.auth(roleOperator, s.action(model.EventMoveRequested)))
	mux.Handle("POST /v1/groups/{group}/failback", s.auth(roleOperator, s.action(model.EventFailbackAuthorised)))
	mux.Handle("POST /v1/flags/clear", s.auth(roleOperator, s.action(model.EventFlagCleared)))
	mux.Handle("POST /v1/maintenance", s.auth(roleOperator, s.action(model.EventMaintenanceOn)))
	s.workflowRoutes(mux)
	s.maintenanceRoutes(mux)
	s.drillRoutes(mux)
	s.tokenRoutes(mux)
	s.notificationRoutes(mux)
	s.openAPIRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Code: http.StatusNotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return s, mux
}

func (s *server) status(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	return s.b.Status(), nil
}

const maxEventsPage = 10000

func (s *server) events(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), "after")
	if err != nil {
		return nil, err
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventsPage {
			return nil, &Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("limit must be 1..%d", maxEventsPage), Field: "limit"}
		}
		limit = n
	}
	f, err := parseEventFilter(q)
	if err != nil {
		return nil, err
	}
	if q.Get("follow") == "" || q.Get("follow") == "0" || q.Get("follow") == "false" {
		if f.any() {
			return s.filtered(f, after, limit), nil
		}
		return s.b.Events(after, limit), nil
	}
	return nil, s.follow(w, r, after, f)
}

// follow streams events as newline-delimited JSON: first the backlog after the
// given index, then new ones as they commit, with a keep-alive comment line.
// Only events that match f are sent (f.last does not apply to a stream).
func (s *server) follow(w http.ResponseWriter, r *http.Request, after uint64, f eventFilter) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return &Error{Code: http.StatusInternalServerError, Message: "streaming unsupported"}
	}
	ctx := r.Context()
	sub := s.b.Subscribe(ctx) // subscribe before reading the backlog so nothing falls between
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	last := after
	for _, ev := range s.b.Events(after, maxEventsPage) {
		if f.match(ev) {
			_ = enc.Encode(ev)
		}
		last = ev.Index
	}
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keepalive.C:
			if _, err := w.Write([]byte("\n")); err != nil {
				return nil
			}
			flusher.Flush()
		case ev, ok := <-sub:
			if !ok {
				return nil
			}
			if ev.Index <= last {
				continue
			}
			// A gap means the subscription dropped events: fill it from the log.
			for _, missed := range s.b.Events(last, maxEventsPage) {
				if missed.Index >= ev.Index {
					break
				}
				if f.match(missed) {
					_ = enc.Encode(missed)
				}
			}
			if !f.match(ev) {
				last = ev.Index
				continue
			}
			if err := enc.Encode(ev); err != nil {
				return nil
			}
			last = ev.Index
			flusher.Flush()
		}
	}
}

// action decodes an OperatorAction and records it; the group may come from the path.
func (s *server) action(kind model.EventKind) handler {
	return func(w http.ResponseWriter, r *http.Request, who string) (any, error) {
		var a model.OperatorAction
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil && !errors.Is(err, io.EOF) {
			return nil, &Error{Code: http.StatusBadRequest, Message: "body: " + err.Error()}
		}
		if g := r.PathValue("group"); g != "" {
			a.Group = g
		}
		ev, err := s.b.Act(r.Context(), kind, who, a)
		if err != nil {
			return nil, err
		}
		return ev, nil
	}
}

const maxAppendBody = 1 << 20

func (s *server) appendEvents(w http.ResponseWriter, r *http.Request, who string) (any, error) {
	var evs []model.Event
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAppendBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&evs); err != nil {
		return nil, &Error{Code: http.StatusBadRequest, Message: "body: " + err.Error()}
	}
	for i := range evs {
		if evs[i].Reporter != who {
			return nil, &Error{Code: http.StatusForbidden, Message: fmt.Sprintf("node %s may only report its own events", who), Field: fmt.Sprintf("[%d].reporter", i)}
		}
	}
	if err := s.b.AppendEvents(r.Context(), who, evs); err != nil {
		return nil, err
	}
	return map[string]int{"appended": len(evs)}, nil
}

func uintParam(v, field string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, &Error{Code: http.StatusBadRequest, Message: field + " must be a non-negative integer", Field: field}
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		apiErr = &Error{Code: http.StatusInternalServerError, Message: err.Error()}
	}
	writeJSON(w, apiErr.Code, apiErr)
}
