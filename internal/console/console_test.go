package console

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeBackend is a three-node cluster with one group, behind the real API. The
// embedded nil Backend makes unused methods panic (failing the test that got
// there) and keeps the fake compiling as the interface grows.
type fakeBackend struct {
	httpapi.Backend
	mu     sync.Mutex
	status model.Status
	groups []model.GroupStatus
	events []model.Event
	tokens map[string]model.TokenInfo
	acts   []model.Event
	subs   []chan model.Event
}

func newFakeBackend() *fakeBackend {
	links := func(addr string) []model.LinkStatus { return []model.LinkStatus{{Address: addr, State: model.LinkUp}} }
	return &fakeBackend{
		status: model.Status{Cluster: "lab", Node: "a", Leader: "a", Quorum: true, Nodes: []model.NodeStatus{
			{Name: "a", Role: model.RoleVoter, State: model.NodeAlive, Lease: true, Self: true, Links: links("10.0.0.1")},
			{Name: "b", Role: model.RoleVoter, State: model.NodeAlive, Lease: true, Links: links("10.0.0.2")},
			{Name: "q", Role: model.RoleWitness, State: model.NodeAlive, Links: links("10.0.0.3")},
		}},
		groups: []model.GroupStatus{{Name: "web", Nodes: []string{"a", "b"}, Failback: "manual", Node: "a", State: "running"}},
		events: []model.Event{{Index: 1, Time: time.Now(), Kind: model.EventGroupStarted, Group: "web", Reporter: "a", Severity: model.SeverityInfo, Reason: "started"}},
		tokens: map[string]model.TokenInfo{},
	}
}

func (f *fakeBackend) Status() model.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeBackend) Groups(context.Context) []model.GroupStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]model.GroupStatus(nil), f.groups...)
}
func (f *fakeBackend) LocalSync() []model.SyncStatus { return nil }

func (f *fakeBackend) IsNode(name string) bool { return name == "a" || name == "b" || name == "q" }
func (f *fakeBackend) NodeName() string        { return "a" }

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

func (f *fakeBackend) Subscribe(ctx context.Context) <-chan model.Event {
	ch := make(chan model.Event, 16)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch
}

// commit appends an event and tells the subscribers.
func (f *fakeBackend) commit(ev model.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev.Index = uint64(len(f.events) + 1)
	f.events = append(f.events, ev)
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (f *fakeBackend) Act(_ context.Context, kind model.EventKind, by string, a model.OperatorAction) (model.Event, error) {
	ev := model.Event{Time: time.Now(), Kind: kind, By: by, Group: a.Group, Target: a.Node, Reason: a.Reason, Reporter: "a"}
	f.mu.Lock()
	f.acts = append(f.acts, ev)
	f.mu.Unlock()
	f.commit(ev)
	return ev, nil
}

func (f *fakeBackend) actions() []model.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]model.Event(nil), f.acts...)
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

func (f *fakeBackend) RevokeToken(_ context.Context, by, name, reason string) (model.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, name)
	return model.Event{Kind: model.EventTokenRevoked, By: by, Reason: reason}, nil
}

func (f *fakeBackend) Workflows() []workflow.Workflow {
	return []workflow.Workflow{{Name: "restart", Steps: []workflow.Step{{Name: "stop"}, {Name: "start"}}}}
}

func (f *fakeBackend) WorkflowRuns(history.Filter, int) ([]history.Run, error) { return nil, nil }

func (f *fakeBackend) addToken(name string, role model.TokenRole) string {
	secret := "vgl_test_" + name
	f.mu.Lock()
	f.tokens[name] = model.TokenInfo{Name: name, Role: role, Hash: httpapi.TokenHash(secret)}
	f.mu.Unlock()
	return secret
}

type harness struct {
	t     *testing.T
	f     *fakeBackend
	c     *Console
	now   time.Time
	nowMu sync.Mutex
}

const bootstrap = "vgl_bootstrap"

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, f: newFakeBackend(), now: time.Now()}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := New(Options{API: newAPIFor(t, h.f), Logger: logger, IdleTimeout: time.Hour, MaxAge: 2 * time.Hour, Now: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h.c = c
	return h
}

func newAPIFor(t *testing.T, b httpapi.Backend) http.Handler {
	t.Helper()
	return httpapi.New(b, bootstrap, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func (h *harness) clock() time.Time {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.nowMu.Lock()
	h.now = h.now.Add(d)
	h.nowMu.Unlock()
}

type resp struct {
	code   int
	body   string
	header http.Header
}

// do sends one request; cookie is a session id, headers come in pairs.
func (h *harness) do(method, target, cookie string, form url.Values, headers ...string) resp {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, "https://node.example"+target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.c.ServeHTTP(rec, req)
	return resp{code: rec.Code, body: rec.Body.String(), header: rec.Header()}
}

// login logs in with token and returns the session id and the page's CSRF token.
func (h *harness) login(token string) (string, string) {
	h.t.Helper()
	r := h.do("POST", "/login", "", url.Values{"token": {token}, "next": {"/groups"}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/groups" {
		h.t.Fatalf("login: %d %v %s", r.code, r.header, r.body)
	}
	var sid string
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == cookieName {
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				h.t.Fatalf("session cookie attributes: %+v", c)
			}
			sid = c.Value
		}
	}
	if sid == "" {
		h.t.Fatalf("no session cookie: %v", r.header)
	}
	page := h.do("GET", "/", sid, nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		h.t.Fatalf("no CSRF token on the page: %s", page.body)
	}
	return sid, m[1]
}

func TestLoginSessionAndLogout(t *testing.T) {
	h := newHarness(t)
	if r := h.do("GET", "/groups", "", nil); r.code != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Fgroups" {
		t.Fatalf("no session: %d %v", r.code, r.header)
	}
	if r := h.do("GET", "/groups", "", nil, "HX-Request", "true"); r.code != http.StatusUnauthorized || r.header.Get("HX-Redirect") != "/login" {
		t.Fatalf("htmx without session: %d %v", r.code, r.header)
	}
	if r := h.do("POST", "/login", "", url.Values{"token": {"vgl_wrong"}}); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "not valid") {
		t.Fatalf("wrong token: %d %s", r.code, r.body)
	}
	if r := h.do("POST", "/login", "", url.Values{"token": {bootstrap}, "next": {"//evil.example/"}}); r.header.Get("Location") != "/" {
		t.Fatalf("open redirect: %v", r.header)
	}
	sid, csrf := h.login(bootstrap)
	r := h.do("GET", "/", sid, nil)
	if r.code != 200 || !strings.Contains(r.body, `id="user">operator</b>`) || !strings.Contains(r.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("overview: %d %v", r.code, r.header)
	}
	// Logging out needs the CSRF token as well.
	if r := h.do("POST", "/logout", sid, url.Values{}); r.code != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", r.code)
	}
	if r := h.do("POST", "/logout", sid, url.Values{"csrf": {csrf}}); r.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.code)
	}
	if r := h.do("GET", "/", sid, nil); r.code != http.StatusSeeOther {
		t.Fatalf("session alive after logout: %d", r.code)
	}
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t)
	sid, _ := h.login(bootstrap)
	h.advance(59 * time.Minute)
	if r := h.do("GET", "/", sid, nil); r.code != 200 {
		t.Fatalf("used within the idle timeout: %d", r.code)
	}
	h.advance(59 * time.Minute)
	if r := h.do("GET", "/", sid, nil); r.code != 200 {
		t.Fatalf("used within the idle timeout again: %d", r.code)
	}
	h.advance(3 * time.Minute) // past the 2 h maximum, though used a minute ago
	if r := h.do("GET", "/", sid, nil); r.code != http.StatusSeeOther {
		t.Fatalf("past its maximum age: %d", r.code)
	}
	sid, _ = h.login(bootstrap)
	h.advance(61 * time.Minute)
	if r := h.do("GET", "/", sid, nil); r.code != http.StatusSeeOther {
		t.Fatalf("idle for longer than the timeout: %d", r.code)
	}
	if n := h.c.sessions.count(); n != 0 {
		t.Fatalf("%d expired sessions kept", n)
	}
}

func TestOverviewColours(t *testing.T) {
	h := newHarness(t)
	sid, _ := h.login(bootstrap)
	level := func() string {
		r := h.do("GET", "/", sid, nil)
		m := regexp.MustCompile(`id="health" class="health lvl-(\w+)"`).FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("no health banner: %s", r.body)
		}
		if n := strings.Count(r.body, `<tr class="node"`); n != 3 {
			t.Fatalf("%d node rows", n)
		}
		return m[1]
	}
	if l := level(); l != "green" {
		t.Fatalf("all well: %s", l)
	}
	h.f.mu.Lock()
	h.f.status.Nodes[1].State = model.NodeDead
	h.f.mu.Unlock()
	if l := level(); l != "yellow" {
		t.Fatalf("a dead node with quorum: %s", l)
	}
	h.f.mu.Lock()
	h.f.status.Quorum = false
	h.f.mu.Unlock()
	if l := level(); l != "red" {
		t.Fatalf("no quorum: %s", l)
	}
}

func TestAssess(t *testing.T) {
	ok := newFakeBackend()
	base := func() (model.Status, []model.GroupStatus) {
		st := ok.status
		st.Nodes = append([]model.NodeStatus(nil), st.Nodes...)
		return st, []model.GroupStatus{ok.groups[0]}
	}
	cases := []struct {
		name string
		edit func(*model.Status, []model.GroupStatus)
		want level
	}{
		{"all well", func(*model.Status, []model.GroupStatus) {}, green},
		{"link down", func(s *model.Status, _ []model.GroupStatus) {
			s.Nodes[1].Links = []model.LinkStatus{{Address: "x", State: model.LinkDown}}
		}, yellow},
		{"flag", func(_ *model.Status, g []model.GroupStatus) { g[0].Flags = map[string]string{"b": "start failed"} }, yellow},
		{"maintenance", func(_ *model.Status, g []model.GroupStatus) { g[0].Maintenance = true }, yellow},
		{"moving", func(_ *model.Status, g []model.GroupStatus) { g[0].Releasing, g[0].Target = true, "b" }, yellow},
		{"check down", func(_ *model.Status, g []model.GroupStatus) {
			g[0].Checks = map[string]map[string]string{"http": {"b": "down"}}
		}, yellow},
		{"no coordinator", func(s *model.Status, _ []model.GroupStatus) { s.Leader = "" }, red},
		{"group failed", func(_ *model.Status, g []model.GroupStatus) { g[0].State = "failed" }, red},
		{"group nowhere", func(_ *model.Status, g []model.GroupStatus) { g[0].Node, g[0].State = "", "unassigned" }, red},
	}
	for _, c := range cases {
		st, gs := base()
		c.edit(&st, gs)
		if got := assess(st, gs); got.Level != c.want || (c.want != green && len(got.Reasons) == 0) {
			t.Errorf("%s: %v %+v", c.name, got.Level, got.Reasons)
		}
	}
}

func TestViewerSeesNoActionsAndIsRefused(t *testing.T) {
	h := newHarness(t)
	viewer := h.f.addToken("ro", model.TokenViewer)
	sid, csrf := h.login(viewer)
	r := h.do("GET", "/groups", sid, nil)
	if r.code != 200 || strings.Contains(r.body, `data-action=`) || !strings.Contains(r.body, `data-group="web"`) {
		t.Fatalf("viewer's groups page: %d, action buttons: %v", r.code, strings.Contains(r.body, "data-action="))
	}
	if r := h.do("GET", "/confirm/move?group=web", sid, nil); r.code != http.StatusForbidden {
		t.Fatalf("viewer's move dialog: %d", r.code)
	}
	form := url.Values{"csrf": {csrf}, "group": {"web"}, "node": {"b"}, "reason": {"try"}}
	if r := h.do("POST", "/actions/move", sid, form, "HX-Request", "true"); r.code != http.StatusForbidden {
		t.Fatalf("viewer's move: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/tokens", sid, nil); r.code != http.StatusForbidden {
		t.Fatalf("viewer's tokens page: %d", r.code)
	}
	if acts := h.f.actions(); len(acts) != 0 {
		t.Fatalf("a viewer acted: %+v", acts)
	}
	// An operator sees the buttons but not the tokens page.
	op := h.f.addToken("alice", model.TokenOperator)
	sid, _ = h.login(op)
	if r := h.do("GET", "/groups", sid, nil); !strings.Contains(r.body, `data-action="move"`) {
		t.Fatal("operator without a move button")
	}
	if r := h.do("GET", "/tokens", sid, nil); r.code != http.StatusForbidden {
		t.Fatalf("operator's tokens page: %d", r.code)
	}
}

func TestActionsNeedCSRFAndAReason(t *testing.T) {
	h := newHarness(t)
	op := h.f.addToken("alice", model.TokenOperator)
	sid, csrf := h.login(op)
	move := url.Values{"group": {"web"}, "node": {"b"}, "reason": {"patching a"}}
	if r := h.do("POST", "/actions/move", sid, move, "HX-Request", "true"); r.code != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
		t.Fatalf("no CSRF token: %d %s", r.code, r.body)
	}
	if r := h.do("POST", "/actions/move", sid, move, "HX-Request", "true", "X-CSRF-Token", "wrong"); r.code != http.StatusForbidden {
		t.Fatalf("wrong CSRF token: %d", r.code)
	}
	// Another session's token does not do either.
	_, other := h.login(op)
	if r := h.do("POST", "/actions/move", sid, move, "HX-Request", "true", "X-CSRF-Token", other); r.code != http.StatusForbidden {
		t.Fatalf("another session's CSRF token: %d", r.code)
	}
	// Browsers say when a request comes from another site: refused before the session is looked at.
	if r := h.do("POST", "/actions/move", sid, move, "X-CSRF-Token", csrf, "Sec-Fetch-Site", "cross-site"); r.code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", r.code)
	}
	noReason := url.Values{"group": {"web"}, "node": {"b"}}
	if r := h.do("POST", "/actions/move", sid, noReason, "HX-Request", "true", "X-CSRF-Token", csrf); r.code != http.StatusBadRequest || !strings.Contains(r.body, `data-field="reason"`) {
		t.Fatalf("no reason: %d %s", r.code, r.body)
	}
	if acts := h.f.actions(); len(acts) != 0 {
		t.Fatalf("acted without CSRF or reason: %+v", acts)
	}
	// The dialog, then the confirmed move: recorded with the token's name and the reason.
	r := h.do("GET", "/confirm/move?group=web&back=/groups", sid, nil, "HX-Request", "true")
	if r.code != 200 || !strings.Contains(r.body, "<dialog") || !strings.Contains(r.body, "<option >b</option>") && !strings.Contains(r.body, "<option>b</option>") {
		t.Fatalf("move dialog: %d %s", r.code, r.body)
	}
	r = h.do("POST", "/actions/move", sid, move, "HX-Request", "true", "X-CSRF-Token", csrf)
	if r.code != 200 || !strings.Contains(r.body, `id="flash"`) || r.header.Get("HX-Trigger") != "vigilchange" {
		t.Fatalf("move: %d %v %s", r.code, r.header, r.body)
	}
	acts := h.f.actions()
	if len(acts) != 1 || acts[0].Kind != model.EventMoveRequested || acts[0].By != "alice" || acts[0].Reason != "patching a" || acts[0].Target != "b" {
		t.Fatalf("recorded: %+v", acts)
	}
	// Without htmx, the form field carries the CSRF token and the answer is a redirect.
	move.Set("csrf", csrf)
	move.Set("back", "/groups")
	if r := h.do("POST", "/actions/failback", sid, move); r.code != http.StatusSeeOther || r.header.Get("Location") != "/groups" {
		t.Fatalf("plain form: %d %v", r.code, r.header)
	}
}

func TestRevokedTokenEndsTheSession(t *testing.T) {
	h := newHarness(t)
	op := h.f.addToken("alice", model.TokenOperator)
	sid, _ := h.login(op)
	if _, err := h.f.RevokeToken(context.Background(), "operator", "alice", "leaked"); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", "/groups", sid, nil); r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Fatalf("revoked token's session: %d %v", r.code, r.header)
	}
	if n := h.c.sessions.count(); n != 0 {
		t.Fatalf("%d sessions after revocation", n)
	}
}

func TestPagesRender(t *testing.T) {
	h := newHarness(t)
	sid, _ := h.login(bootstrap)
	for _, p := range []string{"/", "/groups", "/events", "/events?kind=group_started&severity=warning", "/workflows", "/tokens",
		"/confirm/maintenance?on=off", "/confirm/run?workflow=restart", "/confirm/token-create", "/confirm/flags?group=web"} {
		r := h.do("GET", p, sid, nil)
		if r.code != 200 || !strings.Contains(r.body, "</html>") {
			t.Errorf("%s: %d %s", p, r.code, r.body)
		}
		// A live reload gets only the live part and the header's colour.
		r = h.do("GET", p, sid, nil, "HX-Request", "true", "HX-Target", "live")
		if r.code != 200 || strings.Contains(r.body, "<html") || !strings.Contains(r.body, `id="pill" hx-swap-oob="true"`) {
			t.Errorf("%s live: %d %s", p, r.code, r.body)
		}
	}
	for p, want := range map[string]int{"/v1/health": 200, "/v1/status": 401, "/static/htmx.min.js": 200, "/static/app.js": 200, "/nope": 404, "/confirm/nope": 404} {
		if r := h.do("GET", p, sid, nil); r.code != want {
			t.Errorf("%s: %d, want %d", p, r.code, want)
		}
	}
}

func TestLiveStream(t *testing.T) {
	h := newHarness(t)
	sid, _ := h.login(bootstrap)
	srv := httptest.NewTLSServer(h.c)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/ui/stream", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: sid})
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	// Wait until the API subscribed, then commit an event.
	for {
		h.f.mu.Lock()
		n := len(h.f.subs)
		h.f.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.f.commit(model.Event{Kind: model.EventNodeDead, Node: "b", Severity: model.SeverityCritical, Reason: "secret detail"})
	sc := bufio.NewScanner(resp.Body)
	var frame []string
	for sc.Scan() {
		if sc.Text() == "" && len(frame) > 0 && strings.HasPrefix(frame[0], "id:") {
			break
		}
		if sc.Text() != "" && !strings.HasPrefix(sc.Text(), "retry:") {
			frame = append(frame, sc.Text())
		}
	}
	got := strings.Join(frame, "\n")
	if got != "id: 2\nevent: change\n"+`data: {"index":2,"kind":"node_dead","node":"b","severity":"critical"}` {
		t.Fatalf("frame: %q", got)
	}
	// Closing the console ends the stream (the server's shutdown would wait for it otherwise).
	h.c.Close()
	for sc.Scan() {
	}
}
