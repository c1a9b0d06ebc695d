package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
)

// actionSpec says who may take an action and whether it needs confirming with a
// reason: everything that can stop, move or start a service, or lock someone
// out, does; a step-by-step "continue" is itself the confirmation.
type actionSpec struct {
	title, submit, intro string
	admin                bool
	reason               bool // destructive: confirm and give a reason
}

var actions = map[string]actionSpec{
	"move": {title: "Move group", submit: "Move", reason: true,
		intro: "The group is stopped where it runs, then started on the node you choose. Clients see an outage meanwhile."},
	"failback": {title: "Authorise failback", submit: "Authorise failback", reason: true,
		intro: "The group goes back to its preferred node: it is stopped here and started there."},
	"flags": {title: "Clear failure flags", submit: "Clear flags", reason: true,
		intro: "Clear the flags only once the node is repaired: a flagged node is not chosen to run the group, a cleared one may be at once."},
	"maintenance": {title: "Maintenance", reason: true,
		intro: "In maintenance nothing is started, stopped or moved; monitors only report (seed 002: the decision engine stopped for the group)."},
	"run": {title: "Run workflow", submit: "Run", reason: true,
		intro: "The workflow runs on this node. Step by step, it pauses before each step until you continue it."},
	"stop": {title: "Stop workflow", submit: "Stop the run", reason: true,
		intro: "The step running now is interrupted (its process group gets its grace period) and the run ends stopped."},
	"drill": {title: "Failover drill", submit: "Start drill", reason: true,
		intro: "The group is moved to another node (and, if you tick it, back) through ordinary move requests, while this node probes the service as a client. Clients see an outage at each move; the drill stops at the first step that fails."},
	"continue":     {title: "Continue", submit: "Continue"},
	"token-create": {title: "Create a token", submit: "Create", admin: true},
	"token-revoke": {title: "Revoke token", submit: "Revoke", admin: true, reason: true,
		intro: "Every node refuses the token as soon as the revocation reaches it, including consoles logged in with it."},
}

// dialogData is the confirmation dialog (or, without JavaScript, page) of an action.
type dialogData struct {
	Action, Title, Intro, Submit string
	Danger                       bool
	NeedReason                   bool
	Group, Workflow, Name, Run   string
	On                           string // maintenance: on or off
	Node                         string // the node chosen (move, flags)
	Nodes                        []string
	Steps                        []string
	From                         string
	StepByStep                   bool
	Return                       bool // drill: move the group back afterwards
	Role                         string
	Reason                       string
	Back                         string
	Error, Field                 string
	Secret                       string // token-create: the new token, shown once
	CSRF                         string
}

func (c *Console) allowed(s *session, spec actionSpec) bool {
	if spec.admin {
		return s.isAdmin()
	}
	return s.canAct()
}

func (c *Console) forbid(w http.ResponseWriter, r *http.Request, s *session) {
	msg := fmt.Sprintf("Your token %s has role %s, which may not do this.", s.name, s.role)
	if isHX(r) {
		c.flash(w, http.StatusForbidden, red, msg, false)
		return
	}
	v := c.baseView(r, s, "Forbidden", "")
	v.Data = msg
	c.render(w, r, http.StatusForbidden, "error", v)
}

// confirm shows an action's dialog, filled in from the query.
func (c *Console) confirm(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("action")
	spec, ok := actions[name]
	if !ok {
		http.Error(w, "no such action", http.StatusNotFound)
		return
	}
	if !c.allowed(s, spec) {
		c.forbid(w, r, s)
		return
	}
	q := r.URL.Query()
	d := dialogData{Action: name, Group: q.Get("group"), Workflow: q.Get("workflow"), Name: q.Get("name"), Run: q.Get("run"),
		On: q.Get("on"), Node: q.Get("node"), Back: localPath(q.Get("back")), Role: string(model.TokenViewer)}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	if err := c.fillDialog(ctx, s, &d); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.renderDialog(w, r, s, http.StatusOK, d)
}

// fillDialog adds what the dialog offers: nodes to move to, steps to start from.
func (c *Console) fillDialog(ctx context.Context, s *session, d *dialogData) error {
	spec := actions[d.Action]
	d.Title, d.Intro, d.Submit, d.NeedReason, d.Danger = spec.title, spec.intro, spec.submit, spec.reason, spec.reason
	switch d.Action {
	case "move", "flags", "failback", "drill":
		var gs []model.GroupStatus
		if err := c.call(ctx, s.token, http.MethodGet, "/v1/groups", nil, &gs); err != nil {
			return err
		}
		for _, g := range gs {
			if g.Name != d.Group {
				continue
			}
			switch d.Action {
			case "move", "drill":
				for _, n := range g.Nodes {
					if n != g.Node {
						d.Nodes = append(d.Nodes, n)
					}
				}
			case "flags":
				d.Nodes = sortedKeys(g.Flags)
			}
		}
	case "maintenance":
		if d.On != "off" {
			d.On = "on"
		}
		d.Title = "Maintenance " + d.On
		d.Submit = "Maintenance " + d.On
		if d.On == "off" {
			d.Intro = "Decisions resume: groups that should move or start do so at once."
		}
	case "run":
		var wf httpapi.WorkflowStatus
		if err := c.call(ctx, s.token, http.MethodGet, "/v1/workflows/"+url.PathEscape(d.Workflow), nil, &wf); err != nil {
			return err
		}
		for _, st := range wf.Steps {
			d.Steps = append(d.Steps, st.Name)
		}
	}
	return nil
}

func (c *Console) renderDialog(w http.ResponseWriter, r *http.Request, s *session, code int, d dialogData) {
	d.CSRF = s.csrf
	v := c.baseView(r, s, d.Title, "")
	v.Data = d
	if !isHX(r) {
		// A whole page: the header needs the cluster's name and colour.
		ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
		defer cancel()
		_, _, _ = c.cluster(ctx, s, v)
	}
	c.render(w, r, code, "confirm", v)
}

const maxReason = 500

// act takes an action posted from a dialog: CSRF and role first, then the API,
// which checks the role again and records who (the token's name) and why.
func (c *Console) act(w http.ResponseWriter, r *http.Request, s *session) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !s.checkCSRF(r) {
		http.Error(w, "403 missing or wrong CSRF token: reload the page", http.StatusForbidden)
		return
	}
	name := r.PathValue("action")
	spec, ok := actions[name]
	if !ok {
		http.Error(w, "no such action", http.StatusNotFound)
		return
	}
	if !c.allowed(s, spec) {
		c.forbid(w, r, s)
		return
	}
	f := r.PostForm
	d := dialogData{Action: name, Group: f.Get("group"), Workflow: f.Get("workflow"), Name: f.Get("name"), Run: f.Get("run"),
		On: f.Get("on"), Node: f.Get("node"), From: f.Get("from"), StepByStep: f.Get("step_by_step") != "", Return: f.Get("return") != "",
		Role: f.Get("role"), Reason: strings.TrimSpace(f.Get("reason")), Back: localPath(f.Get("back"))}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	retry := func(code int, msg, field string) {
		if err := c.fillDialog(ctx, s, &d); err != nil {
			c.fail(w, r, s, err)
			return
		}
		d.Error, d.Field = msg, field
		c.renderDialog(w, r, s, code, d)
	}
	switch {
	case spec.reason && d.Reason == "":
		retry(http.StatusBadRequest, "Say why: the reason is kept in the event log with your name.", "reason")
		return
	case utf8.RuneCountInString(d.Reason) > maxReason:
		retry(http.StatusBadRequest, fmt.Sprintf("The reason is limited to %d characters.", maxReason), "reason")
		return
	}
	msg, err := c.perform(ctx, s, &d)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{Status: http.StatusBadGateway, Message: err.Error()}
		}
		if ae.Status == http.StatusUnauthorized {
			c.fail(w, r, s, err)
			return
		}
		if name == "continue" {
			c.flash(w, ae.Status, red, ae.Message, false)
			return
		}
		retry(ae.Status, ae.Message, ae.Field)
		return
	}
	c.log.Info("console action", "action", name, "token", s.name, "group", d.Group, "workflow", d.Workflow, "reason", d.Reason)
	switch {
	case d.Secret != "":
		// The secret is shown in the dialog, once; closing it is the user's move.
		w.Header().Set("HX-Trigger", "vigilchange")
		c.renderDialog(w, r, s, http.StatusOK, d)
	case isHX(r):
		w.Header().Set("HX-Trigger", "vigilchange")
		c.flash(w, http.StatusOK, green, msg, true)
	default:
		http.Redirect(w, r, d.Back, http.StatusSeeOther)
	}
}

// perform makes the API call of an action and says what was recorded.
func (c *Console) perform(ctx context.Context, s *session, d *dialogData) (string, error) {
	call := func(method, path string, in, out any) error { return c.call(ctx, s.token, method, path, in, out) }
	var ev model.Event
	recorded := func() string {
		return fmt.Sprintf("Recorded %s (%s) by %s: %s", ev.Kind, strings.TrimSpace(d.Group+" "+arrow(ev.Target)), dash(ev.By), ev.Reason)
	}
	switch d.Action {
	case "move":
		if d.Node == "" {
			return "", &apiError{Status: http.StatusBadRequest, Message: "Choose the node to move the group to.", Field: "node"}
		}
		err := call(http.MethodPost, "/v1/groups/"+url.PathEscape(d.Group)+"/move", model.OperatorAction{Node: d.Node, Reason: d.Reason}, &ev)
		return recorded(), err
	case "failback":
		err := call(http.MethodPost, "/v1/groups/"+url.PathEscape(d.Group)+"/failback", model.OperatorAction{Reason: d.Reason}, &ev)
		return recorded(), err
	case "flags":
		err := call(http.MethodPost, "/v1/flags/clear", model.OperatorAction{Group: d.Group, Node: d.Node, Reason: d.Reason}, &ev)
		return recorded(), err
	case "maintenance":
		on := d.On != "off"
		err := call(http.MethodPost, "/v1/maintenance", model.OperatorAction{Group: d.Group, On: &on, Reason: d.Reason}, &ev)
		return recorded(), err
	case "run":
		req := model.WorkflowRunRequest{From: d.From, StepByStep: d.StepByStep, Origin: origin(d.Reason)}
		var started model.WorkflowRunStarted
		err := call(http.MethodPost, "/v1/workflows/"+url.PathEscape(d.Workflow)+"/run", req, &started)
		return fmt.Sprintf("Started run %s of %s on %s", started.ID, started.Workflow, started.Node), err
	case "stop":
		var stopped model.WorkflowRunStopped
		err := call(http.MethodPost, "/v1/workflows/"+url.PathEscape(d.Workflow)+"/stop", nil, &stopped)
		return fmt.Sprintf("Stopped run %s of %s", stopped.ID, stopped.Workflow), err
	case "drill":
		var dr model.Drill
		err := call(http.MethodPost, "/v1/drills", model.DrillRequest{Group: d.Group, To: d.Node, Back: d.Return, Reason: d.Reason}, &dr)
		return fmt.Sprintf("Started drill %s: %s %s → %s%s, probing from %s; its result appears under Drills", dr.ID, dr.Group, dr.From, dr.To, backArrow(dr), dr.Runner), err
	case "continue":
		err := call(http.MethodPost, "/v1/runs/"+url.PathEscape(d.Run)+"/continue", nil, nil)
		return "Run " + d.Run + " continues with its next step", err
	case "token-create":
		var t model.TokenCreated
		err := call(http.MethodPost, "/v1/tokens", model.TokenCreateRequest{Name: d.Name, Role: model.TokenRole(d.Role)}, &t)
		d.Secret = t.Token
		return "Created token " + t.Name, err
	case "token-revoke":
		err := call(http.MethodDelete, "/v1/tokens/"+url.PathEscape(d.Name), httpapi.TokenRevokeRequest{Reason: d.Reason}, &ev)
		return "Revoked token " + d.Name, err
	}
	return "", &apiError{Status: http.StatusNotFound, Message: "no such action"}
}

func backArrow(d model.Drill) string {
	if d.Back {
		return " → " + d.From
	}
	return ""
}

func arrow(target string) string {
	if target == "" {
		return ""
	}
	return "→ " + target
}

// origin carries a console run's reason into the run's started_by (and so into
// its workflow_started event), within the API's 200-character limit.
func origin(reason string) string {
	const limit = 180
	o := "console: " + reason
	if utf8.RuneCountInString(o) > limit {
		o = string([]rune(o)[:limit-1]) + "…"
	}
	return o
}

var flashTemplate = template.Must(template.New("flash").Parse(
	`{{if .Close}}<div id="dialog" hx-swap-oob="true"></div>{{end}}` +
		`<div id="flash" hx-swap-oob="true" class="flash lvl-{{.Level}}" role="status">{{.Text}}</div>`))

// flash answers an htmx action with a message in the page's flash area (and,
// with close, an empty dialog area: the dialog goes away).
func (c *Console) flash(w http.ResponseWriter, code int, l level, text string, close bool) {
	var buf bytes.Buffer
	if err := flashTemplate.Execute(&buf, struct {
		Level string
		Text  string
		Close bool
	}{l.String(), text, close}); err != nil {
		http.Error(w, text, code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}
