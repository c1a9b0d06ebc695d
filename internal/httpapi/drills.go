package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/vigil-ha/vigil/internal/model"
)

// DrillBackend runs failover drills and lists their results.
type DrillBackend interface {
	// StartDrill validates and starts a drill run by this node; errors are
	// *Error values naming the bad field.
	StartDrill(ctx context.Context, by string, req model.DrillRequest) (model.Drill, error)
	// Drills lists drills from the log, newest first ("" for every group).
	Drills(group string) []model.Drill
}

func (s *server) drillRoutes(mux *routeMux) {
	mux.Handle("POST /v1/drills", s.auth(roleOperator, s.startDrill))
	mux.Handle("GET /v1/drills", s.auth(roleViewer, func(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
		return nonNil(s.b.Drills(r.URL.Query().Get("group"))), nil
	}))
	mux.Handle("GET /v1/drills/{id}", s.auth(roleViewer, s.getDrill))
}

func (s *server) startDrill(w http.ResponseWriter, r *http.Request, who string) (any, error) {
	var req model.DrillRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &Error{Code: http.StatusBadRequest, Message: "body: " + err.Error()}
	}
	return s.b.StartDrill(r.Context(), who, req)
}

func (s *server) getDrill(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	id := r.PathValue("id")
	for _, d := range s.b.Drills("") {
		if d.ID == id {
			return d, nil
		}
	}
	return nil, &Error{Code: http.StatusNotFound, Message: fmt.Sprintf("no drill %q among the latest", id), Field: "id"}
}

func nonNil(ds []model.Drill) []model.Drill {
	if ds == nil {
		return []model.Drill{}
	}
	return ds
}
