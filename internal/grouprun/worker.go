package grouprun

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
)

// stopOnExitTimeout bounds how long an agent shutting down waits for its groups.
const stopOnExitTimeout = 30 * time.Second

type managed struct {
	spec    config.Resource
	agent   resource.Agent
	started bool
	// promoter is set for promotable resources (promote.go): their group start
	// is a promotion and their group stop a demotion.
	promoter   resource.Promoter
	standbyErr string // the last standby failure reported, "" when none
	role       string // the last role recorded in a resource_role event
}

// worker converges one group; only its goroutine touches its fields.
type worker struct {
	r         *Runner
	group     config.Group
	resources []managed
	desired   chan Desired

	want        Desired
	running     bool   // every resource started and not stopped since
	epoch       string // the epoch of the assignment the resources were started for
	releaseAck  uint64
	lostAck     uint64      // the last group_lost verdict acted on
	intruderAck uint64      // the last intruder stop request acted on
	restarts    []time.Time // local restarts within the window
	// held collects events instead of emitting them while not nil (standby).
	held []model.Event
	// standbyDue: the promotable instances' standby state is to be checked at the
	// next reconcile (at start and after every stop), not only at the next monitor.
	standbyDue bool
	// cleaned: cleanupAtStart already ran (Runner.CleanupAtStart).
	cleaned bool
	// assignment is the one the group was last started under; gaveUp the one
	// it was reported failed or not started under. The coordinator reads
	// those reports as "stopped here" and may start the group elsewhere at
	// once, so the worker must not start it again under that assignment,
	// even if this node's copy of the log still says it is assigned here
	// (a follower applies entries late when its raft connection is slow).
	assignment, gaveUp uint64
}

func (w *worker) run(ctx context.Context) {
	if !w.cleaned {
		w.cleanupAtStart(ctx)
	}
	monitor := time.NewTicker(w.monitorEvery())
	defer monitor.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), stopOnExitTimeout)
			if w.running {
				w.stop(sctx, "agent shutting down", false)
			}
			w.stopStandby(sctx)
			cancel()
			return
		case d := <-w.desired:
			w.want = d
			w.reconcile(ctx)
		case <-monitor.C:
			w.monitor(ctx)
		}
	}
}

// cleanupAtStart stops whatever a previous run of the agent left behind: a new
// agent holds no lease, and every assignment is bound to an older epoch.
func (w *worker) cleanupAtStart(ctx context.Context) {
	w.standbyDue, w.cleaned = true, true
	for i := len(w.resources) - 1; i >= 0; i-- {
		m := &w.resources[i]
		if m.promoter != nil {
			// A promoted instance is demoted; an unpromoted one may keep running
			// as this node's standby.
			st, role, _, err := w.monitorRole(ctx, m)
			if err == nil && (st == resource.Stopped || st == resource.Running && role == resource.Unpromoted) {
				continue
			}
			if err := w.demoteOne(ctx, m); err != nil {
				w.resourceEvent(m, "demote (left over from a previous run)", resource.Output{}, err)
			}
			continue
		}
		st, _, err := w.monitorOne(ctx, m)
		if err == nil && st == resource.Stopped {
			continue
		}
		// Killed where possible: that run's epoch is over, and its peers may
		// start the group as soon as they hear this incarnation (rule 2).
		out, err := w.stopOne(ctx, m, true)
		w.resourceEvent(m, "stop (left over from a previous run)", out, err)
	}
}

func (w *worker) reconcile(ctx context.Context) {
	d := w.want
	switch {
	case d.Hold:
		return
	case d.LeaseLost && w.running:
		w.stop(ctx, "lease lost: self-fencing", true)
	case d.Run && !w.running && d.Assignment != 0 && d.Assignment == w.gaveUp:
		// Handed back (failed or not started here): wait for a new assignment.
	case d.Run && !w.running:
		w.start(ctx)
	case d.Run && d.Epoch != w.epoch:
		// Assigned here again under a later epoch while the copy runs (this node
		// changed epoch and the coordinator kept the group here): the VIPs belong
		// to the new assignment now, and its lease renews them.
		w.epoch = d.Epoch
		w.r.retrack(w.leasedStarted(), d.Epoch)
	case !d.Run && w.running:
		reason := "no longer assigned here"
		if d.ReleaseAt > w.releaseAck {
			// One report answers the release: the coordinator waits for it.
			w.releaseAck, reason = d.ReleaseAt, "released: stopped on "+w.r.self
		}
		w.stop(ctx, reason, false)
	}
	if d.LostAt > w.lostAck {
		w.lostAck = d.LostAt
		if w.running && d.Run {
			w.failed(ctx, "the coordinator found the group lost (its checks failed for a majority of observers)")
		}
	}
	if d.IntruderAt > w.intruderAck {
		w.intruderAck = d.IntruderAt
		if !d.Run {
			w.stopIntruder(ctx)
		}
	}
	if d.ReleaseAt > w.releaseAck && !d.Run {
		w.releaseAck = d.ReleaseAt
		if w.anyStarted() {
			// A stop that failed earlier (e.g. after a failed start) left something
			// started or promoted: "stopped" is only reported once it is not.
			w.stop(ctx, "released: stopped on "+w.r.self, false)
		} else {
			w.report(model.EventGroupStopped, model.SeverityInfo, "released: stopped on "+w.r.self)
		}
	}
	if w.standbyDue && !d.Run && !d.Hold && !w.running {
		w.standbyDue = false
		w.standby(ctx)
	}
}

// leasedStarted lists the started resources that the kernel lease gates.
func (w *worker) leasedStarted() []resource.Leased {
	var out []resource.Leased
	for _, m := range w.resources {
		if l, ok := m.agent.(resource.Leased); ok && m.started {
			out = append(out, l)
		}
	}
	return out
}

func (w *worker) anyStarted() bool {
	for _, m := range w.resources {
		if m.started {
			return true
		}
	}
	return false
}

func (w *worker) start(ctx context.Context) {
	w.report(model.EventGroupStarting, model.SeverityInfo, fmt.Sprintf("starting %d resources", len(w.resources)))
	w.epoch, w.assignment = w.want.Epoch, w.want.Assignment
	if h := w.r.hooks.Starting; h != nil {
		if err := h(ctx, w.group.Name); err != nil {
			reason := "not started: " + err.Error()
			w.gaveUp = w.assignment
			w.report(model.EventGroupStartFailed, model.SeverityCritical, reason)
			w.flag(reason)
			return
		}
	}
	for i := range w.resources {
		m := &w.resources[i]
		if l, ok := m.agent.(resource.Leased); ok {
			if err := w.r.trackLeased(l, w.epoch); err != nil {
				// Not this node's fault: no flag, the coordinator will see the lease.
				// "Not started" reads as "stopped" to the coordinator, so it is
				// said only if what started before this resource did stop.
				if !w.stopResources(ctx, true) {
					w.report(model.EventGroupStopFailed, model.SeverityCritical,
						"not started ("+err.Error()+"), and some resources did not stop: giving up this node's lease so the group can move safely")
					w.r.release("group " + w.group.Name + " did not stop")
					return
				}
				w.stopped()
				w.gaveUp = w.assignment
				w.report(model.EventGroupStartFailed, model.SeverityWarning, "not started: "+err.Error())
				return
			}
		}
		var err error
		if m.promoter != nil {
			err = w.promoteOne(ctx, m) // records its own events
		} else {
			var out resource.Output
			out, err = w.startOne(ctx, m)
			w.resourceEvent(m, "start", out, err)
		}
		m.started = true // a failed start may have half-started: stop it too
		if err != nil {
			w.failStart(ctx, m, err)
			return
		}
	}
	w.running = true
	w.report(model.EventGroupStarted, model.SeverityInfo, "all resources started on "+w.r.self)
}

func (w *worker) failStart(ctx context.Context, m *managed, err error) {
	reason := fmt.Sprintf("resource %s failed to start: %v", m.spec.Name, err)
	stopped := w.stopResources(ctx, false)
	w.running = false
	w.standbyDue = true
	w.gaveUp = w.assignment
	w.report(model.EventGroupStartFailed, model.SeverityCritical, reason)
	if !stopped {
		// The failed report must not read as "stopped": what could not be stopped
		// (or demoted) may still run, so this is a stop failure, as in stop.
		w.report(model.EventGroupStopFailed, model.SeverityCritical,
			"some resources did not stop after the failed start: giving up this node's lease so the group can move safely")
		w.flag(reason)
		w.r.release("group " + w.group.Name + " did not stop")
		return
	}
	w.stopped()
	w.flag(reason)
}

// stopped runs the Stopped hook: nothing of the group runs here any more.
func (w *worker) stopped() {
	if h := w.r.hooks.Stopped; h != nil {
		h(w.group.Name)
	}
}

// stop stops the group; on lease loss the VIPs go first so that clients stop
// reaching this node before anything else happens.
func (w *worker) stop(ctx context.Context, why string, vipsFirst bool) {
	w.report(model.EventGroupStopping, model.SeverityWarning, why)
	ok := w.stopResources(ctx, vipsFirst)
	w.running = false
	w.standbyDue = true
	if !ok {
		w.report(model.EventGroupStopFailed, model.SeverityCritical,
			"some resources did not stop (see the resource_action events): giving up this node's lease so the group can move safely")
		// Self-fencing: without a lease the kernel gates the VIPs and the coordinator
		// moves the group only once the lease is surely over.
		w.r.release("group " + w.group.Name + " did not stop")
		return
	}
	w.stopped()
	w.report(model.EventGroupStopped, model.SeverityInfo, why)
}

func (w *worker) stopResources(ctx context.Context, vipsFirst bool) bool {
	ok := true
	stopOne := func(m *managed) {
		if !m.started {
			return
		}
		if l, isLeased := m.agent.(resource.Leased); isLeased {
			w.r.untrackLeased(l)
		}
		var err error
		if m.promoter != nil {
			err = w.demoteOne(ctx, m) // the group stops; the instance stays, unpromoted
		} else {
			// Lease lost (vipsFirst): end what can be ended at once (resource.Killer).
			action := "stop"
			if _, ok := m.agent.(resource.Killer); ok && vipsFirst {
				action = "kill"
			}
			var out resource.Output
			out, err = w.stopOne(ctx, m, action == "kill")
			w.resourceEvent(m, action, out, err)
		}
		if err != nil {
			ok = false
			return
		}
		m.started = false
	}
	if vipsFirst {
		for i := range w.resources {
			if _, isLeased := w.resources[i].agent.(resource.Leased); isLeased {
				stopOne(&w.resources[i])
			}
		}
	}
	for i := len(w.resources) - 1; i >= 0; i-- {
		stopOne(&w.resources[i])
	}
	return ok
}

// stopIntruder stops every resource of the group here, started by this agent or
// not: the coordinator found the group answering on this node, which does not own it.
func (w *worker) stopIntruder(ctx context.Context) {
	for i := range w.resources {
		w.resources[i].started = true // stop them all, whoever started them
	}
	w.stop(ctx, "split brain: stopping a copy this node does not own", true)
}

// monitor checks every resource of a running group; a failure triggers the
// restart phase, and once the budget is spent, a flag and a move.
func (w *worker) monitor(ctx context.Context) {
	if !w.running {
		if !w.want.Run && !w.want.Hold {
			w.standby(ctx)
		}
		return
	}
	for i := range w.resources {
		m := &w.resources[i]
		var st resource.State
		var out resource.Output
		var err error
		reason := ""
		if m.promoter != nil {
			var role resource.Role
			st, role, out, err = w.monitorRole(ctx, m)
			if err == nil && st == resource.Running && role != resource.Promoted {
				st, reason = resource.Failed, fmt.Sprintf("resource %s is running but not promoted", m.spec.Name)
			}
		} else {
			st, out, err = w.monitorOne(ctx, m)
		}
		if err == nil && st == resource.Running {
			continue
		}
		if ctx.Err() != nil {
			return // cut short by the agent's shutdown: no verdict on the resource
		}
		if reason == "" {
			reason = fmt.Sprintf("resource %s is %s", m.spec.Name, st)
		}
		if err != nil {
			reason += ": " + err.Error()
		}
		w.resourceEvent(m, "monitor", out, fmt.Errorf("%s", reason))
		if w.want.Hold {
			return // maintenance: report only
		}
		w.failed(ctx, reason)
		return
	}
}

func (w *worker) failed(ctx context.Context, reason string) {
	now := time.Now()
	window := w.group.RestartWindow.D()
	kept := w.restarts[:0]
	for _, t := range w.restarts {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	w.restarts = kept
	if len(w.restarts) < w.group.MaxRestarts {
		w.restarts = append(w.restarts, now)
		w.report(model.EventGroupRestarting, model.SeverityWarning,
			fmt.Sprintf("%s; local restart %d of %d within %s", reason, len(w.restarts), w.group.MaxRestarts, window))
		w.stop(ctx, "restart after a failure", false)
		if w.want.Run {
			w.start(ctx)
		}
		return
	}
	msg := fmt.Sprintf("%s; %d restarts within %s used up: moving the group", reason, w.group.MaxRestarts, window)
	// The coordinator reads "failed" as "stopped" (decide.stoppedSince) and may then
	// start the group elsewhere, so it is reported only once every resource is
	// stopped (a promotable one demoted), stamped with the moment of the failure;
	// a stop that fails is reported as a stop failure instead.
	failedAt := time.Now()
	w.report(model.EventGroupStopping, model.SeverityWarning, "failed here: "+msg)
	ok := w.stopResources(ctx, false)
	w.running = false
	w.standbyDue = true
	w.gaveUp = w.assignment
	if !ok {
		w.report(model.EventGroupStopFailed, model.SeverityCritical, msg+
			"; some resources did not stop (see the resource_action events): giving up this node's lease so the group can move safely")
		w.flag(msg)
		w.r.release("group " + w.group.Name + " did not stop")
		return
	}
	w.stopped()
	// group_failed last, so that it is this node's latest report: the
	// coordinator assigns a group its holder handed back afresh (decide), as
	// this worker will not start it again under the same assignment.
	w.report(model.EventGroupStopped, model.SeverityInfo, "failed here")
	w.r.emit(model.Event{Time: failedAt, Kind: model.EventGroupFailed, Severity: model.SeverityCritical, Reporter: w.r.self,
		Node: w.r.self, Group: w.group.Name, Reason: msg})
	w.flag(msg)
}

func (w *worker) flag(reason string) {
	w.r.emit(model.Event{Kind: model.EventFlagSet, Severity: model.SeverityCritical, Reporter: w.r.self,
		Node: w.r.self, Group: w.group.Name, Reason: reason})
}

func (w *worker) report(kind model.EventKind, sev model.Severity, reason string) {
	w.r.emit(model.Event{Kind: kind, Severity: sev, Reporter: w.r.self, Node: w.r.self, Group: w.group.Name, Reason: reason})
}

func (w *worker) emit(ev model.Event) {
	if w.held != nil {
		w.held = append(w.held, ev)
		return
	}
	w.r.emit(ev)
}

func (w *worker) resourceEvent(m *managed, action string, out resource.Output, err error) {
	sev, result := model.SeverityInfo, "ok"
	if err != nil {
		sev, result = model.SeverityWarning, err.Error()
	}
	w.emit(model.Event{Kind: model.EventResourceAction, Severity: sev, Reporter: w.r.self, Node: w.r.self,
		Group: w.group.Name, Resource: m.spec.Name, Reason: action + " " + m.spec.Type + ": " + result,
		Output: strings.TrimSpace(out.Text)})
}

// timeouter is implemented by agents that know their own action timeouts
// (OCF meta-data, LSB and mount defaults), already merged with the config's.
type timeouter interface {
	Timeouts() (start, stop, monitor time.Duration)
}

// timeouts: the resource's configured value, else the agent's own, else the group's.
func (w *worker) timeouts(m *managed) (start, stop, monitor time.Duration) {
	start, stop, monitor = w.group.StartTimeout.D(), w.group.StopTimeout.D(), config.DefaultMonitorTimeout
	if t, ok := m.agent.(timeouter); ok {
		s, p, mo := t.Timeouts()
		start, stop, monitor = orDefault(s, start), orDefault(p, stop), orDefault(mo, monitor)
	}
	return orDefault(m.spec.Timeouts.Start.D(), start), orDefault(m.spec.Timeouts.Stop.D(), stop),
		orDefault(m.spec.Timeouts.Monitor.D(), monitor)
}

// startOne validates first when the agent can (OCF validate-all, meta-data
// parameters): a bad parameter is reported before anything is started.
func (w *worker) startOne(ctx context.Context, m *managed) (resource.Output, error) {
	start, _, _ := w.timeouts(m)
	ctx, cancel := context.WithTimeout(ctx, start)
	defer cancel()
	if v, ok := m.agent.(resource.Validator); ok {
		if err := v.Validate(ctx); err != nil {
			return resource.Output{}, fmt.Errorf("validate: %w", err)
		}
	}
	return m.agent.Start(ctx)
}

func (w *worker) stopOne(ctx context.Context, m *managed, kill bool) (resource.Output, error) {
	_, stop, _ := w.timeouts(m)
	ctx, cancel := context.WithTimeout(ctx, stop)
	defer cancel()
	if k, ok := m.agent.(resource.Killer); ok && kill {
		return k.Kill(ctx)
	}
	return m.agent.Stop(ctx)
}

func (w *worker) monitorOne(ctx context.Context, m *managed) (resource.State, resource.Output, error) {
	_, _, monitor := w.timeouts(m)
	ctx, cancel := context.WithTimeout(ctx, monitor)
	defer cancel()
	return m.agent.Monitor(ctx)
}

func orDefault(d, fallback time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return fallback
}

func (w *worker) monitorEvery() time.Duration {
	every := config.DefaultMonitorEvery
	for _, m := range w.resources {
		if d := m.spec.MonitorInterval.D(); d > 0 && d < every {
			every = d
		}
	}
	return every
}
