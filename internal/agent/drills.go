package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/drill"
	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
)

// maxDrillsListed bounds GET /v1/drills; older results stay in the event log.
const maxDrillsListed = 100

// drillRuns are the drills this node is running, by group: a second drill of
// a group would fight the first over where the group goes.
type drillRuns struct {
	mu      sync.Mutex
	byGroup map[string]model.Drill
}

func (r *drillRuns) claim(d model.Drill) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, busy := r.byGroup[d.Group]; busy {
		return false
	}
	if r.byGroup == nil {
		r.byGroup = map[string]model.Drill{}
	}
	r.byGroup[d.Group] = d
	return true
}

func (r *drillRuns) release(group string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byGroup, group)
}

// StartDrill validates a drill request, records drill_started and runs the
// drill in the background on this node, whose position as a client the
// probe measures (httpapi.DrillBackend).
func (a *Agent) StartDrill(ctx context.Context, by string, req model.DrillRequest) (model.Drill, error) {
	return a.startDrill(ctx, by, req, false)
}

func (a *Agent) startDrill(ctx context.Context, by string, req model.DrillRequest, scheduled bool) (model.Drill, error) {
	g, gs, err := a.drillGroup(req.Group)
	if err != nil {
		return model.Drill{}, err
	}
	to, err := a.drillTarget(g, gs, req.To)
	if err != nil {
		return model.Drill{}, err
	}
	set := g.DrillSettings()
	d := model.Drill{ID: newDrillID(time.Now()), Group: g.Name,
		From: gs.Node, To: to, Back: req.Back, By: by, Reason: req.Reason, Scheduled: scheduled,
		Runner: a.self.Name, Started: time.Now(), Outcome: model.DrillRunning}
	if d.Reason == "" {
		d.Reason = "failover drill"
	}
	var prober check.Prober
	if c := g.DrillProbe(); c != nil {
		if prober, err = probe.New(*c); err != nil {
			return model.Drill{}, &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("drill probe: %v", err), Field: "group"}
		}
		d.Probe = c.DisplayName()
	}
	if a.runningDrill(g.Name) || !a.drills.claim(d) {
		return model.Drill{}, &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("a drill of group %s is already running", g.Name), Field: "group"}
	}
	if err := a.recordDrill(ctx, model.EventDrillStarted, d); err != nil {
		a.drills.release(g.Name)
		return model.Drill{}, &httpapi.Error{Code: http.StatusServiceUnavailable, Message: "drill not started, not recorded (no coordinator reachable?): " + err.Error()}
	}
	plan := drill.Plan{Drill: d, Interval: set.Interval.D(), Settle: set.Settle.D(), Timeout: set.Timeout.D(), Poll: 50 * time.Millisecond}
	if prober != nil {
		plan.Probe = func(ctx context.Context) error {
			if r := prober.Probe(ctx); !r.OK {
				return fmt.Errorf("%s", r.Detail)
			}
			return nil
		}
	}
	a.bg.Go(func() {
		defer a.drills.release(g.Name)
		res := drill.Run(a.bgCtx, drillEnv{a: a, by: by, id: d.ID}, plan)
		// Recorded even when the agent is stopping: a drill cut short is a result too.
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.recordDrill(rctx, model.EventDrillFinished, res); err != nil {
			a.log.Error("drill result not recorded", "drill", res.ID, "outcome", res.Outcome, "err", err)
		}
	})
	return d, nil
}

func (a *Agent) drillGroup(name string) (config.Group, model.GroupStatus, error) {
	g, ok := a.cfg.Group(name)
	if !ok {
		if name == "" {
			return g, model.GroupStatus{}, &httpapi.Error{Code: http.StatusBadRequest, Message: "group is required", Field: "group"}
		}
		return g, model.GroupStatus{}, &httpapi.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("no group %q", name), Field: "group"}
	}
	gs := a.placement(name)
	switch {
	case gs.Maintenance:
		return g, gs, &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("group %s is in maintenance: nothing moves, so nothing can be drilled", name), Field: "group"}
	case gs.Node == "":
		return g, gs, &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("group %s runs nowhere: a drill starts from a healthy group", name), Field: "group"}
	case gs.State != clusterstate.RunRunning:
		return g, gs, &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("group %s is %s on %s: a drill starts from a healthy group", name, gs.State, gs.Node), Field: "group"}
	}
	return g, gs, nil
}

// drillTarget is the requested node, or the most preferred other node that is
// alive and not flagged for the group.
func (a *Agent) drillTarget(g config.Group, gs model.GroupStatus, want string) (string, error) {
	alive := map[string]bool{}
	for _, n := range a.Status().Nodes {
		alive[n.Name] = n.State == model.NodeAlive
	}
	if want != "" {
		switch {
		case !contains(g.Nodes, want):
			return "", &httpapi.Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("%q cannot run group %s (nodes: %v)", want, g.Name, g.Nodes), Field: "to"}
		case want == gs.Node:
			return "", &httpapi.Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("group %s already runs on %s", g.Name, want), Field: "to"}
		case !alive[want]:
			return "", &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("%s is not alive", want), Field: "to"}
		case gs.Flags[want] != "":
			return "", &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("group %s is flagged failed on %s: %s", g.Name, want, gs.Flags[want]), Field: "to"}
		}
		return want, nil
	}
	for _, n := range g.Nodes {
		if n != gs.Node && alive[n] && gs.Flags[n] == "" {
			return n, nil
		}
	}
	return "", &httpapi.Error{Code: http.StatusConflict, Message: fmt.Sprintf("no other node can take group %s now (nodes: %v)", g.Name, g.Nodes), Field: "to"}
}

// placement is the part of a group's status a drill needs, from the log.
func (a *Agent) placement(name string) model.GroupStatus {
	st := a.store.ClusterState()
	g := st.Get(name)
	gs := model.GroupStatus{Name: name, Node: g.Node, State: g.RunState(), Maintenance: g.Maintenance || st.Maintenance}
	for n, f := range g.Flags {
		if gs.Flags == nil {
			gs.Flags = map[string]string{}
		}
		gs.Flags[n] = f.Reason
	}
	return gs
}

// runningDrill says whether the log shows a drill of group started and not
// finished within its timeout (another node may be running it).
func (a *Agent) runningDrill(group string) bool {
	g, _ := a.cfg.Group(group)
	set := g.DrillSettings()
	horizon := 2*set.Timeout.D() + 2*set.Settle.D() + time.Minute
	for _, d := range a.Drills(group) {
		if d.Outcome == model.DrillRunning && time.Since(d.Started) < horizon {
			return true
		}
	}
	return false
}

func (a *Agent) recordDrill(ctx context.Context, kind model.EventKind, d model.Drill) error {
	ev := model.Event{Time: time.Now(), Kind: kind, Severity: model.SeverityInfo, Reporter: a.self.Name, By: d.By,
		Group: d.Group, Target: d.To, Drill: &d}
	switch {
	case kind == model.EventDrillStarted:
		ev.Reason = fmt.Sprintf("drill %s: %s -> %s%s (%s)", d.ID, d.From, d.To, backText(d), d.Reason)
	case d.Outcome == model.DrillPassed:
		ev.Reason = fmt.Sprintf("drill %s passed%s", d.ID, outageText(d))
	default:
		ev.Severity = model.SeverityWarning
		ev.Reason = fmt.Sprintf("drill %s failed: %s", d.ID, d.Error)
	}
	return a.ship(ctx, []model.Event{ev})
}

func backText(d model.Drill) string {
	if d.Back {
		return " -> " + d.From
	}
	return ""
}

func outageText(d model.Drill) string {
	if o := d.OutageMS(); o != nil {
		return fmt.Sprintf(": clients saw at most %dms without an answer", *o)
	}
	return " (no client view measured)"
}

// Drills lists drills from the log, newest first: finished ones with their
// results, started ones not (yet) finished as running (httpapi.DrillBackend).
// group "" means every group.
func (a *Agent) Drills(group string) []model.Drill {
	evs := a.store.NewestMatching(func(ev *model.Event) bool {
		return ev.Drill != nil && (group == "" || ev.Group == group) &&
			(ev.Kind == model.EventDrillStarted || ev.Kind == model.EventDrillFinished)
	}, 2*maxDrillsListed)
	finished := map[string]bool{}
	var out []model.Drill
	for _, ev := range evs {
		switch {
		case ev.Kind == model.EventDrillFinished:
			finished[ev.Drill.ID] = true
			out = append(out, *ev.Drill)
		case !finished[ev.Drill.ID]:
			out = append(out, *ev.Drill)
		}
	}
	if len(out) > maxDrillsListed {
		out = out[:maxDrillsListed]
	}
	return out
}

// drillEnv moves groups with the drill author's name on the request.
type drillEnv struct {
	a      *Agent
	by, id string
}

func (e drillEnv) Move(ctx context.Context, group, to, reason string) error {
	_, err := e.a.Act(ctx, model.EventMoveRequested, e.by, model.OperatorAction{Group: group, Node: to,
		Reason: fmt.Sprintf("drill %s: %s", e.id, reason)})
	return err
}

func (e drillEnv) Where(group string) (string, string) {
	gs := e.a.placement(group)
	return gs.Node, gs.State
}

// drillScheduleTick is how often the coordinator looks for due drills; cron
// slots are minutes apart, and a look costs one scan of the log's tail.
const drillScheduleTick = 5 * time.Second

type scheduledDrill struct {
	group string
	s     drill.Schedule
}

// runDrillSchedule starts scheduled drills while this node coordinates, so
// each slot is run by one node (docs/operations.md).
func (a *Agent) runDrillSchedule(ctx context.Context) error {
	var scheds []scheduledDrill
	for _, g := range a.cfg.Groups {
		if g.Drill == nil || g.Drill.Schedule == "" {
			continue
		}
		s, err := drill.ParseSchedule(g.Drill.Schedule)
		if err != nil {
			return fmt.Errorf("group %s: %w", g.Name, err) // validated at load
		}
		scheds = append(scheds, scheduledDrill{group: g.Name, s: s})
	}
	if len(scheds) == 0 {
		return nil
	}
	t := time.NewTicker(drillScheduleTick)
	defer t.Stop()
	var since time.Time // when this node became coordinator; zero while it is not
	for {
		switch now := time.Now(); {
		case !a.store.IsLeader():
			since = time.Time{}
		case since.IsZero():
			since = now
		default:
			for _, sd := range scheds {
				a.maybeDrill(ctx, sd, since, now)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) maybeDrill(ctx context.Context, sd scheduledDrill, since, now time.Time) {
	var last time.Time
	for _, d := range a.Drills(sd.group) {
		if d.Scheduled {
			last = d.Started
			break
		}
	}
	if now.Before(sd.s.NextDue(last, since)) || a.runningDrill(sd.group) {
		return
	}
	g, _ := a.cfg.Group(sd.group)
	set := g.DrillSettings()
	req := model.DrillRequest{Group: sd.group, To: set.To, Back: *set.Back, Reason: fmt.Sprintf("scheduled drill (%s)", sd.s)}
	if _, err := a.startDrill(ctx, "schedule", req, true); err != nil {
		// The slot is spent either way: record why, so the operator sees a
		// skipped drill instead of a silent gap, and it is not retried every tick.
		d := model.Drill{ID: newDrillID(now), Group: sd.group, To: set.To,
			Back: req.Back, By: "schedule", Reason: req.Reason, Scheduled: true, Runner: a.self.Name,
			Started: now, Ended: now, Outcome: model.DrillFailed, Error: "not started: " + err.Error()}
		if rerr := a.recordDrill(ctx, model.EventDrillFinished, d); rerr != nil {
			a.log.Warn("scheduled drill not started and not recorded", "group", sd.group, "err", err, "record", rerr)
		}
	}
}

// newDrillID sorts by time and stays unique when two nodes start drills in
// the same second.
func newDrillID(now time.Time) string {
	return "drill-" + now.UTC().Format("20060102-150405") + "-" + strings.ToLower(rand.Text()[:4])
}
