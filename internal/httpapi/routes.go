package httpapi

import "net/http"

// routeMux is a ServeMux that remembers each pattern and the role it needs, so
// that GET /v1/openapi.json (and its test) can cover every route registered.
type routeMux struct {
	*http.ServeMux
	routes []registered
}

type registered struct {
	pattern string
	need    role // roleNone: no credentials needed
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h and records the role an auth handler needs.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	need := roleNone
	if a, ok := h.(authHandler); ok {
		need = a.need
	}
	m.routes = append(m.routes, registered{pattern: pattern, need: need})
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers an unauthenticated handler.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}
