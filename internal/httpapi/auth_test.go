package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// fakeBackend implements what the auth, token and event tests call. The
// embedded nil Backend makes any other method panic, which fails the test
// that reached it, and keeps this fake compiling as the interface grows.
type fakeBackend struct {
	Backend
	mu     sync.Mutex
	tokens map[string]model.TokenInfo
	acts   []model.Event
	events []model.Event
}

func newFake() *fakeBackend { return &fakeBackend{tokens: map[string]model.TokenInfo{}} }

func (f *fakeBackend) Status() model.Status { return model.Status{Cluster: "test", Node: "a"} }
func (f *fakeBackend) Groups(context.Context) []model.GroupStatus {
	return []model.GroupStatus{{Name: "web", Node: "a"}}
}
func (f *fakeBackend) IsNode(name string) bool { return name == "a" || name == "b" }
func (f *fakeBackend) NodeName() string        { return "a" }

func (f *fakeBackend) LocalSync() []model.SyncStatus { return nil }

func (f *fakeBackend) Events(after uint64, limit int) []model.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Event
	for _, ev := range f.events {
		if ev.Index > after && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out
}

func (f *fakeBackend) Act(_ context.Context, kind model.EventKind, by string, a model.OperatorAction) (model.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.Group != "web" {
		return model.Event{}, &Error{Code: http.StatusNotFound, Message: "no group " + a.Group, Field: "group"}
	}
	ev := model.Event{Kind: kind, By: by, Group: a.Group, Target: a.Node, Reason: a.Reason}
	f.acts = append(f.acts, ev)
	return ev, nil
}

func (f *fakeBackend) TokenByHash(hash string) (model.TokenInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		if t.Hash == hash {
			return t, true
		}
	}
	return model.TokenInfo{}, false
}

func (f *fakeBackend) Tokens() []model.TokenInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.TokenInfo
	for _, t := range f.tokens {
		out = append(out, t)
	}
	return out
}

func (f *fakeBackend) CreateToken(_ context.Context, by string, t model.TokenInfo) (model.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tokens[t.Name]; ok {
		return model.Event{}, &Error{Code: http.StatusConflict, Message: "taken", Field: "name"}
	}
	t.By = by
	f.tokens[t.Name] = t
	return model.Event{Kind: model.EventTokenCreated, Time: time.Now(), By: by, Token: &t}, nil
}

func (f *fakeBackend) RevokeToken(_ context.Context, by, name, reason string) (model.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tokens[name]; !ok {
		return model.Event{}, &Error{Code: http.StatusNotFound, Message: "no token " + name, Field: "name"}
	}
	delete(f.tokens, name)
	return model.Event{Kind: model.EventTokenRevoked, By: by, Reason: reason, Token: &model.TokenInfo{Name: name}}, nil
}

// addToken stores a replicated token the way the agent would (hash only).
func (f *fakeBackend) addToken(name string, role model.TokenRole) string {
	secret := "vgl_" + name + "-secret"
	f.mu.Lock()
	f.tokens[name] = model.TokenInfo{Name: name, Role: role, Hash: TokenHash(secret)}
	f.mu.Unlock()
	return secret
}

const bootstrap = "vgl_bootstrap"

func newAPI(t *testing.T) (*fakeBackend, http.Handler) {
	t.Helper()
	f := newFake()
	return f, New(f, bootstrap, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

type answer struct {
	code int
	body string
	err  Error
}

func call(t *testing.T, h http.Handler, method, path, token, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{code: rec.Code, body: rec.Body.String()}
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.err); err != nil || a.err.Message == "" {
			t.Errorf("%s %s: error answer %d is not {\"error\":...}: %q", method, path, rec.Code, rec.Body.String())
		}
	}
	return a
}

func TestRolesPerRoute(t *testing.T) {
	f, h := newAPI(t)
	viewer := f.addToken("ro", model.TokenViewer)
	operator := f.addToken("ops", model.TokenOperator)
	admin := f.addToken("boss", model.TokenAdmin)
	revoked := f.addToken("gone", model.TokenOperator)
	if _, err := f.RevokeToken(context.Background(), "operator", "gone", ""); err != nil {
		t.Fatal(err)
	}
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/status", ""},                                    // viewer
		{"POST", "/v1/groups/web/move", `{"node":"b","reason":"x"}`}, // operator
		{"GET", "/v1/tokens", ""},                                    // admin
		{"POST", "/v1/internal/events", `[]`},                        // nodes only
	}
	want := map[string][]int{
		"":           {401, 401, 401, 401},
		"vgl_wrong":  {401, 401, 401, 401},
		revoked:      {401, 401, 401, 401},
		viewer:       {200, 403, 403, 403},
		operator:     {200, 200, 403, 403},
		admin:        {200, 200, 200, 403},
		bootstrap:    {200, 200, 200, 403},
		"Bearer  ":   {401, 401, 401, 401},
		viewer + " ": {200, 403, 403, 403}, // surrounding space is forgiven, as for the bootstrap token
	}
	for tok, codes := range want {
		for i, rt := range routes {
			a := call(t, h, rt.method, rt.path, tok, rt.body)
			if a.code != codes[i] {
				t.Errorf("token %q %s %s: HTTP %d, want %d (%s)", tok, rt.method, rt.path, a.code, codes[i], a.body)
			}
		}
	}
	// 403 says what the token is and what was needed; 401 asks for a bearer token.
	if a := call(t, h, "POST", "/v1/groups/web/move", viewer, `{"node":"b"}`); !strings.Contains(a.err.Message, "role viewer") || !strings.Contains(a.err.Message, "needs operator") {
		t.Errorf("403 message: %q", a.err.Message)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
	if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: %v", rec.Header())
	}
}

func TestActionsRecordTheTokenName(t *testing.T) {
	f, h := newAPI(t)
	operator := f.addToken("alice", model.TokenOperator)
	if a := call(t, h, "POST", "/v1/groups/web/move", operator, `{"node":"b","reason":"patching a"}`); a.code != 200 {
		t.Fatalf("move: %d %s", a.code, a.body)
	}
	if a := call(t, h, "POST", "/v1/flags/clear", bootstrap, `{"group":"web"}`); a.code != 200 {
		t.Fatalf("clear: %d %s", a.code, a.body)
	}
	if len(f.acts) != 2 || f.acts[0].By != "alice" || f.acts[0].Reason != "patching a" || f.acts[1].By != "operator" {
		t.Fatalf("acts: %+v", f.acts)
	}
	if a := call(t, h, "GET", "/v1/whoami", operator, ""); a.code != 200 || a.body != `{"name":"alice","role":"operator"}`+"\n" {
		t.Errorf("whoami: %d %s", a.code, a.body)
	}
}

func TestTokenLifecycle(t *testing.T) {
	f, h := newAPI(t)
	bad := []struct {
		body  string
		code  int
		field string
	}{
		{`{"name":"","role":"viewer"}`, 400, "name"},
		{`{"name":"a b","role":"viewer"}`, 400, "name"},
		{`{"name":"-x","role":"viewer"}`, 400, "name"},
		{`{"name":"` + strings.Repeat("x", 65) + `","role":"viewer"}`, 400, "name"},
		{`{"name":"operator","role":"viewer"}`, 409, "name"},
		{`{"name":"b","role":"viewer"}`, 400, "name"}, // a node's name
		{`{"name":"ro","role":"root"}`, 400, "role"},
		{`{"name":"ro","role":"viewer","extra":1}`, 400, ""},
		{`{`, 400, ""},
	}
	for _, b := range bad {
		if a := call(t, h, "POST", "/v1/tokens", bootstrap, b.body); a.code != b.code || a.err.Field != b.field {
			t.Errorf("%s: %d field %q, want %d %q (%s)", b.body, a.code, a.err.Field, b.code, b.field, a.body)
		}
	}
	a := call(t, h, "POST", "/v1/tokens", bootstrap, `{"name":"ro.bot@ci","role":"viewer"}`)
	if a.code != http.StatusCreated {
		t.Fatalf("create: %d %s", a.code, a.body)
	}
	var created model.TokenCreated
	if err := json.Unmarshal([]byte(a.body), &created); err != nil || !strings.HasPrefix(created.Token, "vgl_") || created.Hash != "" || created.By != "operator" || created.Role != model.TokenViewer {
		t.Fatalf("created: %+v %v", created, err)
	}
	// The backend only ever saw the hash.
	if stored := f.tokens["ro.bot@ci"]; stored.Hash != TokenHash(created.Token) || strings.Contains(fmt.Sprint(stored), created.Token) {
		t.Fatalf("stored: %+v", stored)
	}
	if a := call(t, h, "POST", "/v1/tokens", bootstrap, `{"name":"ro.bot@ci","role":"admin"}`); a.code != 409 {
		t.Errorf("duplicate name: %d", a.code)
	}
	// The new token reads, may not act nor manage tokens.
	if a := call(t, h, "GET", "/v1/groups", created.Token, ""); a.code != 200 {
		t.Errorf("viewer read: %d", a.code)
	}
	if a := call(t, h, "POST", "/v1/tokens", created.Token, `{"name":"x","role":"admin"}`); a.code != 403 {
		t.Errorf("viewer created a token: %d", a.code)
	}
	a = call(t, h, "GET", "/v1/tokens", bootstrap, "")
	var list []model.TokenInfo
	if err := json.Unmarshal([]byte(a.body), &list); err != nil || len(list) != 2 || list[0].Name != "operator" || list[1].Name != "ro.bot@ci" || list[1].Hash != "" {
		t.Fatalf("list: %s %v", a.body, err)
	}
	if a := call(t, h, "DELETE", "/v1/tokens/operator", bootstrap, ""); a.code != 409 {
		t.Errorf("revoke bootstrap: %d", a.code)
	}
	if a := call(t, h, "DELETE", "/v1/tokens/nobody", bootstrap, ""); a.code != 404 {
		t.Errorf("revoke unknown: %d", a.code)
	}
	if a := call(t, h, "DELETE", "/v1/tokens/ro.bot@ci", bootstrap, `{"reason":"leaked"}`); a.code != 200 || !strings.Contains(a.body, `"reason":"leaked"`) {
		t.Fatalf("revoke: %d %s", a.code, a.body)
	}
	if a := call(t, h, "GET", "/v1/groups", created.Token, ""); a.code != 401 {
		t.Errorf("revoked token read: %d", a.code)
	}
}

func TestEventFilters(t *testing.T) {
	f, h := newAPI(t)
	for i, ev := range []model.Event{
		{Kind: model.EventNodeDead, Node: "b", Reporter: "a", Severity: model.SeverityCritical},
		{Kind: model.EventGroupStarted, Group: "web", Reporter: "a", Severity: model.SeverityInfo},
		{Kind: model.EventMoveRequested, Group: "web", Reporter: "b", Severity: model.SeverityWarning},
		{Kind: model.EventGroupStarted, Group: "db", Reporter: "b", Severity: model.SeverityInfo},
		{Kind: model.EventLinkDown, Node: "a", Reporter: "b", Severity: model.SeverityWarning},
	} {
		ev.Index = uint64(i + 1)
		f.events = append(f.events, ev)
	}
	indexes := func(q string) string {
		t.Helper()
		a := call(t, h, "GET", "/v1/events?"+q, bootstrap, "")
		if a.code != 200 {
			return fmt.Sprintf("HTTP %d %s", a.code, a.err.Field)
		}
		var evs []model.Event
		if err := json.Unmarshal([]byte(a.body), &evs); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range evs {
			out = append(out, fmt.Sprint(ev.Index))
		}
		return strings.Join(out, ",")
	}
	for q, want := range map[string]string{
		"":                             "1,2,3,4,5",
		"kind=group_started":           "2,4",
		"kind=group_started,node_dead": "1,2,4",
		"group=web":                    "2,3",
		"node=b":                       "1,3,4,5", // about b, or reported by b
		"severity=warning":             "1,3,5",
		"severity=critical":            "1",
		"last=2":                       "4,5",
		"group=web&last=1":             "3",
		"kind=group_started&limit=1":   "2",
		"kind=group_started&after=2":   "4",
		"kind=nothing":                 "",
		"severity=loud":                "HTTP 400 severity",
		"last=0":                       "HTTP 400 last",
	} {
		if got := indexes(q); got != want {
			t.Errorf("%q: %s, want %s", q, got, want)
		}
	}
}

func TestUnknownEndpointIsJSON404(t *testing.T) {
	_, h := newAPI(t)
	if a := call(t, h, "GET", "/v1/nope", bootstrap, ""); a.code != 404 || !strings.Contains(a.err.Message, "no such endpoint") {
		t.Errorf("%d %s", a.code, a.body)
	}
	// Bad input is 400 naming the field, an unknown group 404 naming it.
	if a := call(t, h, "GET", "/v1/events?after=x", bootstrap, ""); a.code != 400 || a.err.Field != "after" {
		t.Errorf("after: %d %s", a.code, a.body)
	}
	if a := call(t, h, "POST", "/v1/groups/nope/move", bootstrap, `{"node":"a"}`); a.code != 404 || a.err.Field != "group" {
		t.Errorf("unknown group: %d %s", a.code, a.body)
	}
	if a := call(t, h, "POST", "/v1/groups/web/move", bootstrap, `{"nod":"a"}`); a.code != 400 {
		t.Errorf("unknown field: %d %s", a.code, a.body)
	}
	var big bytes.Buffer
	big.WriteString(`{"reason":"`)
	big.WriteString(strings.Repeat("x", 1<<17))
	big.WriteString(`"}`)
	if a := call(t, h, "POST", "/v1/groups/web/move", bootstrap, big.String()); a.code != 400 {
		t.Errorf("oversized body: %d", a.code)
	}
}
