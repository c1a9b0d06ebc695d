package grouprun

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
)

// A promotable resource (OCF promote/demote, DRBD's primary/secondary) runs an
// instance on every node of its group; only the group's node promotes its own.
// For the group's life cycle, starting it means "running and promoted" and
// stopping it means "demoted": the instance keeps running unpromoted, and a
// group_stopped report from the old holder, which the coordinator waits for
// before it assigns the group elsewhere, is a promise that it is no longer
// promoted there. Nodes that do not run the group keep their instance running
// unpromoted (standby) and demote one they find promoted.

// promoteTimeouter is implemented by agents that know their promote and demote
// timeouts (OCF meta-data).
type promoteTimeouter interface {
	PromoteTimeouts() (promote, demote time.Duration)
}

func (w *worker) promoteTimeouts(m *managed) (promote, demote time.Duration) {
	start, stop, _ := w.timeouts(m)
	if t, ok := m.agent.(promoteTimeouter); ok {
		p, d := t.PromoteTimeouts()
		return orDefault(p, start), orDefault(d, stop)
	}
	return start, stop
}

func (w *worker) monitorRole(ctx context.Context, m *managed) (resource.State, resource.Role, resource.Output, error) {
	_, _, monitor := w.timeouts(m)
	mctx, cancel := context.WithTimeout(ctx, monitor)
	defer cancel()
	st, role, out, err := m.promoter.MonitorRole(mctx)
	if ctx.Err() == nil { // not cut short by the agent's shutdown
		w.noteRole(m, roleOf(st, role, err))
	}
	return st, role, out, err
}

func roleOf(st resource.State, role resource.Role, err error) string {
	switch {
	case err != nil || st == resource.Failed:
		return model.RoleFailed
	case st == resource.Stopped:
		return model.RoleStopped
	case role == resource.Promoted:
		return model.RolePromoted
	}
	return model.RoleUnpromoted
}

// noteRole records the role of m's instance here as a resource_role event when
// it differs from the last one recorded, so that the replicated state (and
// `vigil groups`) shows where each instance is promoted. It bypasses the
// standby's held events: it is emitted once per change anyway.
func (w *worker) noteRole(m *managed, role string) {
	if role == m.role {
		return
	}
	m.role = role
	w.r.emit(model.Event{Kind: model.EventResourceRole, Severity: model.SeverityInfo, Reporter: w.r.self, Node: w.r.self,
		Group: w.group.Name, Resource: m.spec.Name, State: role, Reason: fmt.Sprintf("%s is %s on %s", m.spec.Name, role, w.r.self)})
}

// promoteOne brings a promotable resource to "running, promoted" on the group's
// node: the instance is started first if it does not run (a standby normally
// already runs it), then promoted. Each action is an event of its own.
func (w *worker) promoteOne(ctx context.Context, m *managed) error {
	st, role, out, err := w.monitorRole(ctx, m)
	if err == nil && st == resource.Running && role == resource.Promoted {
		return nil
	}
	if err != nil || st == resource.Failed {
		// An instance in an unknown state is reset first: promoting it could
		// promote something broken.
		if err := w.resetOne(ctx, m, fmt.Sprintf("found %s before promotion", st)); err != nil {
			return err
		}
		st = resource.Stopped
	}
	if st != resource.Running {
		out, err = w.startOne(ctx, m)
		w.resourceEvent(m, "start", out, err)
		if err != nil {
			return err
		}
		w.noteRole(m, model.RoleUnpromoted)
	}
	promote, _ := w.promoteTimeouts(m)
	pctx, cancel := context.WithTimeout(ctx, promote)
	out, err = m.promoter.Promote(pctx)
	cancel()
	w.resourceEvent(m, "promote", out, err)
	if err == nil {
		w.noteRole(m, model.RolePromoted)
	}
	return err
}

// demoteOne is the group stop of a promotable resource: demote, then make sure
// with a monitor that the instance is no longer promoted. If the agent cannot
// demote it, or the monitor still finds it promoted or cannot tell, the instance
// is stopped altogether; only a failed stop is an error. A nil result therefore
// means the instance is not promoted here.
func (w *worker) demoteOne(ctx context.Context, m *managed) error {
	_, demote := w.promoteTimeouts(m)
	dctx, cancel := context.WithTimeout(ctx, demote)
	out, err := m.promoter.Demote(dctx)
	cancel()
	w.resourceEvent(m, "demote", out, err)
	if err == nil {
		st, role, out, merr := w.monitorRole(ctx, m)
		if merr == nil && (st == resource.Stopped || st == resource.Running && role == resource.Unpromoted) {
			return nil
		}
		if merr == nil {
			merr = fmt.Errorf("still %s (%s) after a successful demote", st, role)
		}
		w.resourceEvent(m, "monitor after demote", out, merr)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("demote of %s cut short: %w", m.spec.Name, ctx.Err())
	}
	return w.resetOne(ctx, m, "not demoted")
}

// resetOne stops an instance whose role is not known or not wanted: demote
// first (Pacemaker never stops a promoted instance, and some agents refuse to),
// then stop, which must succeed.
func (w *worker) resetOne(ctx context.Context, m *managed, why string) error {
	_, demote := w.promoteTimeouts(m)
	dctx, cancel := context.WithTimeout(ctx, demote)
	_, _ = m.promoter.Demote(dctx) // best effort: the stop decides
	cancel()
	out, err := w.stopOne(ctx, m, false)
	w.resourceEvent(m, "stop ("+why+")", out, err)
	if err == nil {
		w.noteRole(m, model.RoleStopped)
	}
	return err
}

// standby keeps the group's promotable resources running unpromoted on a node
// that does not run the group: a stopped instance is started, a promoted one
// (an intruder: nothing here may be promoted) is demoted, a failed one is reset
// and started. A standby that keeps failing the same way is retried at every
// monitor, but its events are recorded only when the outcome changes, so that a
// broken standby does not fill the replicated log.
func (w *worker) standby(ctx context.Context) {
	for i := range w.resources {
		m := &w.resources[i]
		if m.promoter == nil || ctx.Err() != nil {
			continue
		}
		w.held = []model.Event{}
		err := w.standbyOne(ctx, m)
		held := w.held
		w.held = nil
		if ctx.Err() != nil {
			return // cut short by the agent's shutdown: no verdict
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if err == nil || msg != m.standbyErr {
			for _, ev := range held {
				w.r.emit(ev)
			}
		}
		if err != nil && msg != m.standbyErr {
			w.r.emit(model.Event{Kind: model.EventResourceAction, Severity: model.SeverityWarning, Reporter: w.r.self, Node: w.r.self,
				Group: w.group.Name, Resource: m.spec.Name,
				Reason: "standby instance not running unpromoted (retried at every monitor): " + msg})
		}
		m.standbyErr = msg
	}
}

func (w *worker) standbyOne(ctx context.Context, m *managed) error {
	st, role, _, err := w.monitorRole(ctx, m)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case err == nil && st == resource.Running && role == resource.Unpromoted:
		return nil
	case err == nil && st == resource.Running && role == resource.Promoted:
		w.emit(model.Event{Kind: model.EventResourceAction, Severity: model.SeverityCritical, Reporter: w.r.self, Node: w.r.self,
			Group: w.group.Name, Resource: m.spec.Name, Reason: "found promoted on " + w.r.self + ", which does not run the group: demoting"})
		return w.demoteOne(ctx, m)
	case err == nil && st == resource.Stopped:
	default:
		if err := w.resetOne(ctx, m, fmt.Sprintf("standby instance %s", st)); err != nil {
			return err
		}
	}
	out, err := w.startOne(ctx, m)
	w.resourceEvent(m, "start (unpromoted standby)", out, err)
	if err == nil {
		w.noteRole(m, model.RoleUnpromoted)
	}
	return err
}

// stopStandby stops every promotable instance, whatever its role: the agent is
// going away and nothing would watch them.
func (w *worker) stopStandby(ctx context.Context) {
	for i := len(w.resources) - 1; i >= 0; i-- {
		m := &w.resources[i]
		if m.promoter == nil {
			continue
		}
		if err := w.resetOne(ctx, m, "agent shutting down"); err != nil {
			w.r.log.Error("stop promotable instance at shutdown", "group", w.group.Name, "resource", m.spec.Name, "err", err)
		}
	}
}
