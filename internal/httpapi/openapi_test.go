package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestOpenAPICoversEveryRoute(t *testing.T) {
	f := newFake()
	_, mux := newServer(f, bootstrap, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/openapi.json", nil)) // no token needed
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d %v", rec.Code, rec.Header())
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	registered := map[string]bool{}
	for _, rt := range mux.routes {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			continue // the catch-all
		}
		registered[rt.pattern] = true
		if _, ok := routeDocs[rt.pattern]; !ok {
			t.Errorf("route %s has no entry in routeDocs (openapi.go): describe it", rt.pattern)
		}
		raw, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("route %s is missing from /v1/openapi.json", rt.pattern)
			continue
		}
		var op struct {
			Summary   string                     `json:"summary"`
			Needs     string                     `json:"x-vigil-needs"`
			Responses map[string]json.RawMessage `json:"responses"`
		}
		if err := json.Unmarshal(raw, &op); err != nil || op.Summary == "" || len(op.Responses) == 0 {
			t.Errorf("%s: %s %v", rt.pattern, raw, err)
		}
		if op.Needs != rt.need.String() {
			t.Errorf("%s: x-vigil-needs %q, route needs %s", rt.pattern, op.Needs, rt.need)
		}
		if rt.need != roleNone && op.Responses["401"] == nil {
			t.Errorf("%s: 401 not described", rt.pattern)
		}
	}
	for pattern := range routeDocs {
		if !registered[pattern] {
			t.Errorf("routeDocs describes %s, which is not registered", pattern)
		}
	}
	// Every reference resolves.
	for _, m := range regexp.MustCompile(`"#/components/schemas/([^"]+)"`).FindAllStringSubmatch(rec.Body.String(), -1) {
		if doc.Components.Schemas[m[1]] == nil {
			t.Errorf("dangling $ref %s", m[1])
		}
	}
	// The roles are what the route table says.
	for pattern, want := range map[string]string{"GET /v1/status": "viewer", "POST /v1/groups/{group}/move": "operator",
		"POST /v1/tokens": "admin", "POST /v1/internal/events": "node", "GET /v1/health": "none"} {
		method, path, _ := strings.Cut(pattern, " ")
		if !strings.Contains(string(doc.Paths[path][strings.ToLower(method)]), `"x-vigil-needs": "`+want+`"`) {
			t.Errorf("%s should need %s", pattern, want)
		}
	}
	if !strings.Contains(string(doc.Components.Schemas["Event"]), `"kind"`) {
		t.Errorf("Event schema: %s", doc.Components.Schemas["Event"])
	}
}
