package console

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// apiTimeout bounds the in-process API calls of one page.
const apiTimeout = 10 * time.Second

type loginView struct {
	Next  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sessions.get(sessionID(r)); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.renderLogin(w, http.StatusOK, loginView{Next: localPath(r.URL.Query().Get("next"))})
}

func (c *Console) renderLogin(w http.ResponseWriter, code int, v loginView) {
	var buf bytes.Buffer
	if err := c.pages["login"].ExecuteTemplate(&buf, "login", v); err != nil {
		c.log.Error("console template", "page", "login", "err", err)
		http.Error(w, "the console could not render the login page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// login checks the pasted token against the API (GET /v1/whoami) and starts a
// session for it. The token stays on this node; the browser gets a random id.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<14)
	next := localPath(r.PostFormValue("next"))
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		c.renderLogin(w, http.StatusBadRequest, loginView{Next: next, Error: "Paste a token."})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	var id model.Identity
	if err := c.call(ctx, token, http.MethodGet, "/v1/whoami", nil, &id); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			c.renderLogin(w, http.StatusUnauthorized, loginView{Next: next, Error: "This token is not valid here (unknown or revoked)."})
			return
		}
		c.renderLogin(w, http.StatusBadGateway, loginView{Next: next, Error: "Could not check the token: " + err.Error()})
		return
	}
	if id.Node {
		c.renderLogin(w, http.StatusForbidden, loginView{Next: next, Error: "Node certificates cannot log in to the console."})
		return
	}
	if old := sessionID(r); old != "" {
		c.sessions.remove(old) // a new login never reuses a session id
	}
	sid, _, err := c.sessions.create(token, id)
	if err != nil {
		c.renderLogin(w, http.StatusServiceUnavailable, loginView{Next: next, Error: err.Error()})
		return
	}
	c.log.Info("console login", "token", id.Name, "role", id.Role, "from", r.RemoteAddr)
	setSessionCookie(w, sid)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout needs the CSRF token too: another site must not be able to log people out.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	sid := sessionID(r)
	if s, ok := c.sessions.get(sid); ok {
		if !s.checkCSRF(r) {
			http.Error(w, "403 missing or wrong CSRF token: reload the page", http.StatusForbidden)
			return
		}
		c.sessions.remove(sid)
	}
	clearSessionCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// cluster is what every page shows in its header: the answering node's view.
func (c *Console) cluster(ctx context.Context, s *session, v *view) (model.Status, []model.GroupStatus, error) {
	var st model.Status
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return st, nil, err
	}
	var gs []model.GroupStatus
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/groups", nil, &gs); err != nil {
		return st, nil, err
	}
	v.Cluster, v.Node, v.Health = st.Cluster, st.Node, assess(st, gs)
	return st, gs, nil
}

type overviewData struct {
	Status model.Status
	Groups []model.GroupStatus
	Events []model.Event
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Overview", "overview")
	st, gs, err := c.cluster(ctx, s, v)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var evs []model.Event
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/events?last=8", nil, &evs); err != nil {
		c.fail(w, r, s, err)
		return
	}
	slices.Reverse(evs)
	v.Data = overviewData{Status: st, Groups: gs, Events: evs}
	c.render(w, r, http.StatusOK, "overview", v)
}

type groupsData struct {
	Groups      []model.GroupStatus
	Maintenance bool // every group is in maintenance: the cluster-wide switch is on
}

func (c *Console) groups(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Groups", "groups")
	_, gs, err := c.cluster(ctx, s, v)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := groupsData{Groups: gs, Maintenance: len(gs) > 0}
	for _, g := range gs {
		d.Maintenance = d.Maintenance && g.Maintenance
	}
	v.Data = d
	c.render(w, r, http.StatusOK, "groups", v)
}

type eventsData struct {
	Kind, Node, Group, Severity string
	Query                       string
	Kinds, Nodes, GroupNames    []string
	Events                      []model.Event
	Shown                       int
}

const timelineLength = 200

func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Events", "events")
	st, gs, err := c.cluster(ctx, s, v)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	in := r.URL.Query()
	d := eventsData{Kind: in.Get("kind"), Node: in.Get("node"), Group: in.Get("group"), Severity: in.Get("severity")}
	q := url.Values{"last": {strconv.Itoa(timelineLength)}}
	for k, val := range map[string]string{"kind": d.Kind, "node": d.Node, "group": d.Group, "severity": d.Severity} {
		if val != "" {
			q.Set(k, val)
		}
	}
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/events?"+q.Encode(), nil, &d.Events); err != nil {
		c.fail(w, r, s, err)
		return
	}
	slices.Reverse(d.Events)
	d.Shown = len(d.Events)
	q.Del("last")
	d.Query = q.Encode()
	// The kinds to choose from: those in the recent log, and the one asked for.
	var recent []model.Event
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/events?last=2000", nil, &recent); err != nil {
		c.fail(w, r, s, err)
		return
	}
	kinds := map[string]bool{}
	if d.Kind != "" {
		kinds[d.Kind] = true
	}
	for _, ev := range recent {
		kinds[string(ev.Kind)] = true
	}
	d.Kinds = sortedKeys(kinds)
	for _, n := range st.Nodes {
		d.Nodes = append(d.Nodes, n.Name)
	}
	for _, g := range gs {
		d.GroupNames = append(d.GroupNames, g.Name)
	}
	v.Data = d
	c.render(w, r, http.StatusOK, "events", v)
}

type workflowsData struct {
	Workflows []httpapi.WorkflowStatus
	Runs      []history.Run
}

func (c *Console) workflows(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Workflows", "workflows")
	if _, _, err := c.cluster(ctx, s, v); err != nil {
		c.fail(w, r, s, err)
		return
	}
	var d workflowsData
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/workflows", nil, &d.Workflows); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/runs?limit=30", nil, &d.Runs); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Data = d
	c.render(w, r, http.StatusOK, "workflows", v)
}

func (c *Console) run(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Run", "workflows")
	if _, _, err := c.cluster(ctx, s, v); err != nil {
		c.fail(w, r, s, err)
		return
	}
	var run history.Run
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/runs/"+url.PathEscape(r.PathValue("id")), nil, &run); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Title = "Run " + run.ID
	v.Data = run
	c.render(w, r, http.StatusOK, "run", v)
}

func (c *Console) tokens(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Tokens", "tokens")
	if _, _, err := c.cluster(ctx, s, v); err != nil {
		c.fail(w, r, s, err)
		return
	}
	var ts []model.TokenInfo
	if err := c.call(ctx, s.token, http.MethodGet, "/v1/tokens", nil, &ts); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Data = ts
	c.render(w, r, http.StatusOK, "tokens", v)
}
