package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/vigil-ha/vigil/internal/model"
)

// MaintenanceBackend records planned maintenance windows.
type MaintenanceBackend interface {
	// DeclareWindow records a maintenance_window event; errors are *Error values
	// naming the bad field.
	DeclareWindow(ctx context.Context, by string, w model.MaintenanceWindow) (model.Event, error)
}

func (s *server) maintenanceRoutes(mux *routeMux) {
	mux.Handle("POST /v1/maintenance/window", s.auth(roleOperator, s.declareWindow))
}

func (s *server) declareWindow(w http.ResponseWriter, r *http.Request, who string) (any, error) {
	var win model.MaintenanceWindow
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&win); err != nil {
		return nil, &Error{Code: http.StatusBadRequest, Message: "body: " + err.Error()}
	}
	return s.b.DeclareWindow(r.Context(), who, win)
}
