package httpapi

import (
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// routeDoc describes one route for GET /v1/openapi.json. Request and response
// schemas are derived from the Go types the handlers decode and encode, so the
// description cannot drift from the wire format; the role comes from the route's
// auth wrapper.
type routeDoc struct {
	summary     string
	description string
	query       []queryParam
	body        any  // request body (a value of its type); nil: none
	bodyNeeded  bool // the body is required (otherwise optional)
	response    any  // success body; nil: none documented
	status      int  // success status; 0 means 200
	stream      bool // the success body is NDJSON, one response value per line
	errors      []int
}

type queryParam struct {
	name, typ, description string
}

var (
	eventQuery = []queryParam{
		{"after", "integer", "only events with a larger index"},
		{"limit", "integer", "at most this many events (1..10000, default 1000)"},
		{"follow", "boolean", "stream events as NDJSON as they commit, with a blank keep-alive line"},
		{"kind", "string", "only these kinds (comma-separated)"},
		{"node", "string", "only events about or reported by this node"},
		{"group", "string", "only events about this group"},
		{"severity", "string", "only events at least this severe: info, warning, critical"},
		{"last", "integer", "only the newest N matching events (not with follow)"},
	}
	runsQuery = []queryParam{
		{"workflow", "string", "only runs of this workflow"},
		{"result", "string", "only runs with this result: running, ended, abended, stopped, interrupted"},
		{"before", "string", "only runs older than this run id (paging)"},
		{"limit", "integer", "at most this many runs (1..1000, default 50)"},
	}
)

// routeDocs has an entry for every route New registers; TestOpenAPICoversEveryRoute
// fails for a route added without one.
var routeDocs = map[string]routeDoc{
	"GET /v1/health": {summary: "Liveness of the answering node's API", response: map[string]string{}},
	"GET /v1/openapi.json": {summary: "This description of the API (OpenAPI 3.0)",
		response: map[string]any{}},
	"GET /v1/whoami": {summary: "The token (name and role) or node that made the request", response: model.Identity{}},
	"GET /v1/status": {summary: "The answering node's view of the cluster: nodes, links, quorum, coordinator",
		response: model.Status{}},
	"GET /v1/events": {summary: "Committed events of the replicated log, oldest first",
		description: "Without follow, a JSON array. With follow=1, NDJSON: the backlog, then each event as it commits.",
		query:       eventQuery, response: []model.Event{}},
	"POST /v1/internal/events": {summary: "A node reports its events to the coordinator (node certificate only)",
		description: "Each event's reporter must be the calling node. Answers 409 on a node that is not the coordinator.",
		body:        []model.Event{}, bodyNeeded: true, response: map[string]int{}, errors: []int{409}},
	"GET /v1/groups": {summary: "Every group: where it runs, its state, flags, checks, pending requests, replication lag",
		description: "The sync lag comes live from the node running each group; sync_unknown says why when it cannot.",
		response:    []model.GroupStatus{}},
	"GET /v1/internal/sync": {summary: "The replication of the sync resources running on the answering node (node certificate only)",
		response: []model.SyncStatus{}},
	"POST /v1/groups/{group}/move": {summary: "Move a group to another node (recorded as move_requested with who and why)",
		body: model.OperatorAction{}, bodyNeeded: true, response: model.Event{}, errors: []int{404, 503}},
	"POST /v1/groups/{group}/failback": {summary: "Authorise a group to go back to its preferred node",
		body: model.OperatorAction{}, response: model.Event{}, errors: []int{404, 503}},
	"POST /v1/flags/clear": {summary: "Clear a group's persistent failure flags (on one node, or all)",
		body: model.OperatorAction{}, bodyNeeded: true, response: model.Event{}, errors: []int{404, 503}},
	"POST /v1/maintenance": {summary: "Maintenance on or off for a group or the whole cluster: nothing is started, stopped or moved",
		body: model.OperatorAction{}, bodyNeeded: true, response: model.Event{}, errors: []int{404, 503}},
	"POST /v1/maintenance/window": {summary: "Declare a planned maintenance window (excluded from availability reports)",
		body: model.MaintenanceWindow{}, bodyNeeded: true, response: model.Event{}, errors: []int{404, 503}},
	"POST /v1/drills": {summary: "Start a failover drill: move the group to another node (and back) while this node probes the service as a client",
		description: "The drill runs in the background on the node that receives the request; follow it with GET /v1/drills/{id}. 409: the group is not running, in maintenance, already drilling, or no node can take it.",
		body:        model.DrillRequest{}, bodyNeeded: true, response: model.Drill{}, errors: []int{400, 404, 409, 503}},
	"GET /v1/drills": {summary: "Drills, newest first, with their results (running ones too)",
		query: []queryParam{{"group", "string", "only drills of this group"}}, response: []model.Drill{}},
	"GET /v1/drills/{id}":      {summary: "One drill and its result", response: model.Drill{}, errors: []int{404}},
	"GET /v1/workflows":        {summary: "This node's workflows with their running and last runs", response: []WorkflowStatus{}},
	"GET /v1/workflows/{name}": {summary: "One workflow of this node", response: WorkflowStatus{}, errors: []int{404}},
	"POST /v1/workflows/{name}/run": {summary: "Start a run (from a step, one step only, or step by step)",
		body: model.WorkflowRunRequest{}, response: model.WorkflowRunStarted{}, errors: []int{404, 409, 503}},
	"POST /v1/workflows/{name}/stop": {summary: "Stop the workflow's run in progress", response: model.WorkflowRunStopped{}, errors: []int{404, 409}},
	"POST /v1/runs/{id}/continue": {summary: "Let a step-by-step run go on to its next step",
		response: map[string]string{}, errors: []int{404, 409}},
	"GET /v1/runs":      {summary: "Runs of this node's workflows, newest first", query: runsQuery, response: []history.Run{}},
	"GET /v1/runs/{id}": {summary: "One run with its step trace and output", response: history.Run{}, errors: []int{404}},
	"GET /v1/runs/{id}/follow": {summary: "Stream a run as NDJSON until it is over",
		response: RunUpdate{}, stream: true, errors: []int{404}},
	"POST /v1/batch/{name}": {summary: "Run a configured batch command (200 when it exited 0, 500 otherwise, same body)",
		description: "Needs an operator token: a node certificate is refused (403).",
		body:        model.BatchRequest{}, response: model.BatchResult{}, errors: []int{404, 409}},
	"GET /v1/tokens": {summary: "The API tokens (the bootstrap operator token first); never their secrets",
		response: []model.TokenInfo{}},
	"POST /v1/tokens": {summary: "Create a token; its secret is in this answer only",
		description: "The log keeps the SHA-256 of the secret with the name and role (token_created).",
		body:        model.TokenCreateRequest{}, bodyNeeded: true, response: model.TokenCreated{}, status: http.StatusCreated,
		errors: []int{409, 503}},
	"GET /v1/notifications": {summary: "This node's notification targets (queued, delivered, failed, last error) and its undelivered notifications",
		description: "Each node delivers what it queued while it was coordinator: ask each node, or the coordinator for current events.",
		query:       []queryParam{{"limit", "integer", "at most this many undelivered notifications (1..1000, default 100)"}},
		response:    Notifications{}},
	"DELETE /v1/tokens/{name}": {summary: "Revoke a token (token_revoked); it is refused from then on",
		body: TokenRevokeRequest{}, response: model.Event{}, errors: []int{404, 409, 503}},
}

func (s *server) openAPIRoutes(mux *routeMux) {
	var once sync.Once
	var doc []byte
	var docErr error
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		// Built on first use: by then every route is registered.
		once.Do(func() { doc, docErr = json.MarshalIndent(openAPI(mux.routes), "", "  ") })
		if docErr != nil {
			writeError(w, fmt.Errorf("openapi: %w", docErr))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
}

var pathParam = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// openAPI builds the OpenAPI 3.0 document of the registered routes. Routes
// without a routeDoc are listed bare rather than hidden.
func openAPI(routes []registered) map[string]any {
	g := &schemaGen{defs: map[string]any{}, names: map[reflect.Type]string{}}
	errRef := map[string]any{"$ref": "#/components/schemas/Error"}
	g.defs["Error"] = map[string]any{
		"type":     "object",
		"required": []string{"error"},
		"properties": map[string]any{
			"error": map[string]any{"type": "string", "description": "what is wrong, for a person"},
			"field": map[string]any{"type": "string", "description": "the request field (body, query or path) at fault, when there is one"},
		},
	}
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok || !strings.HasPrefix(path, "/v1/") {
			continue // the catch-all 404
		}
		d := routeDocs[rt.pattern]
		op := map[string]any{
			"operationId":   operationID(method, path),
			"summary":       d.summary,
			"x-vigil-needs": rt.need.String(),
		}
		if d.description != "" {
			op["description"] = d.description
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range d.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.description, "schema": map[string]any{"type": q.typ}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if d.body != nil {
			op["requestBody"] = map[string]any{"required": d.bodyNeeded,
				"content": map[string]any{"application/json": map[string]any{"schema": g.of(reflect.TypeOf(d.body))}}}
		}
		status := d.status
		if status == 0 {
			status = http.StatusOK
		}
		ok200 := map[string]any{"description": http.StatusText(status)}
		if d.response != nil {
			ctype := "application/json"
			if d.stream {
				ctype = "application/x-ndjson"
			}
			ok200["content"] = map[string]any{ctype: map[string]any{"schema": g.of(reflect.TypeOf(d.response))}}
		}
		responses := map[string]any{fmt.Sprint(status): ok200}
		errResp := func(code int, why string) {
			responses[fmt.Sprint(code)] = map[string]any{"description": why,
				"content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
		}
		if d.body != nil || d.query != nil {
			errResp(http.StatusBadRequest, "a malformed body or parameter; field names it")
		}
		switch rt.need {
		case roleNone:
			op["security"] = []any{}
		case roleNode:
			op["security"] = []any{}
			op["description"] = strings.TrimSpace(d.description + " Authenticated by the calling node's cluster certificate (mutual TLS).")
			errResp(http.StatusUnauthorized, "no valid credentials")
			errResp(http.StatusForbidden, "not a cluster node")
		default:
			op["security"] = []any{map[string]any{"bearer": []any{}}}
			errResp(http.StatusUnauthorized, "no token, an unknown one, or a revoked one")
			errResp(http.StatusForbidden, "the token's role is below "+rt.need.String())
		}
		for _, code := range d.errors {
			errResp(code, map[int]string{404: "no such object", 409: "conflicts with the current state",
				503: "not recorded: no coordinator reachable"}[code])
		}
		op["responses"] = responses
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "Vigil API",
			"version": "1",
			"description": "Every node serves the same API over HTTPS with the cluster's own CA. Operators send " +
				"'Authorization: Bearer <token>'; a token's role (viewer < operator < admin) bounds what it may do " +
				"(x-vigil-needs on each operation). Nodes authenticate with their certificate. Errors are " +
				`{"error": ..., "field": ...} with 400 (bad input), 401 (no or unknown token), 403 (role too low), ` +
				"404 (no such object), 409 (conflicts with the current state).",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":         g.defs,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(strings.TrimPrefix(path, "/v1/"), "/") {
		part = strings.Trim(part, "{}")
		part = strings.NewReplacer(".", "_", "-", "_").Replace(part)
		b.WriteString("_" + part)
	}
	return b.String()
}

// schemaGen turns Go types into OpenAPI schemas the way encoding/json encodes
// them; named structs become components.
type schemaGen struct {
	defs  map[string]any
	names map[reflect.Type]string
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	durationType      = reflect.TypeFor[time.Duration]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	enums             = map[reflect.Type][]string{
		reflect.TypeFor[model.TokenRole](): {string(model.TokenViewer), string(model.TokenOperator), string(model.TokenAdmin)},
		reflect.TypeFor[model.Severity]():  {string(model.SeverityInfo), string(model.SeverityWarning), string(model.SeverityCritical)},
		reflect.TypeFor[model.NodeState](): {string(model.NodeAlive), string(model.NodeSuspect), string(model.NodeDead)},
		reflect.TypeFor[model.LinkState](): {string(model.LinkUp), string(model.LinkDown)},
		reflect.TypeFor[model.Role]():      {string(model.RoleVoter), string(model.RoleWitness)},
	}
)

func (g *schemaGen) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == durationType:
		return map[string]any{"type": "integer", "format": "int64", "description": "nanoseconds"}
	case enums[t] != nil:
		return map[string]any{"type": "string", "enum": enums[t]}
	case t.Kind() != reflect.Pointer && t.Implements(textMarshalerType):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.of(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": g.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.of(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return g.structSchema(t)
		}
		name, ok := g.names[t]
		if !ok {
			name = t.Name()
			if _, taken := g.defs[name]; taken {
				name = strings.ReplaceAll(t.String(), ".", "_")
			}
			g.names[t] = name
			g.defs[name] = map[string]any{} // placeholder: recursive types end here
			g.defs[name] = g.structSchema(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{} // interfaces: any JSON value
}

func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft) // embedded fields are promoted, as encoding/json does
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = g.of(f.Type)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s := map[string]any{"type": "object", "properties": props}
	if required != nil {
		sort.Strings(required)
		s["required"] = required
	}
	return s
}
