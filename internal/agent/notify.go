package agent

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/notify"
)

// notifyPoll is how often a node checks whether it has become, or stopped being,
// the coordinator. LeaderChanges has a single consumer (the coordinator goroutine),
// and a notification a second late after a change of coordinator is still on
// time; a shorter poll is a wake-up every idle node pays for.
const notifyPoll = time.Second

// notifier holds this node's notification dispatcher, once Run has built it.
type notifier struct {
	d atomic.Pointer[notify.Dispatcher]
}

// NotificationStatus reports every notification target: queued, delivered,
// failed and the last error (nil when none is configured or before Run).
func (a *Agent) NotificationStatus() []notify.TargetStatus {
	if d := a.notif.d.Load(); d != nil {
		return d.Status()
	}
	return nil
}

// UndeliveredNotifications lists queued notifications, oldest first (limit <= 0: all).
func (a *Agent) UndeliveredNotifications(limit int) []notify.Pending {
	if d := a.notif.d.Load(); d != nil {
		return d.Undelivered(limit)
	}
	return nil
}

// runNotifications owns the dispatcher: every node runs one, so that what it
// queued while it was coordinator is still delivered after it steps down, but
// only the coordinator feeds it committed events (notify.PlanResume explains why).
func (a *Agent) runNotifications(ctx context.Context) error {
	cfg := a.cfg.Notifications
	if len(cfg.Targets) == 0 {
		return nil
	}
	opt := notify.Options{Node: a.self.Name, Cluster: a.cfg.Cluster.Name, StateDir: filepath.Join(a.opt.DataDir, "notify"),
		ConfigDir: a.cfg.Dir(), Logger: a.log.With("subsystem", "notify")}
	d, err := notify.New(cfg, opt)
	if err != nil {
		// Notifications must never stop a node from taking over services.
		a.log.Error("notification spool unusable: undelivered notifications will not survive a restart", "err", err)
		opt.StateDir = ""
		if d, err = notify.New(cfg, opt); err != nil {
			return err
		}
	}
	a.notif.d.Store(d)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = d.Run(ctx) // ErrRunning/ErrClosed cannot happen: this is its only caller
	}()
	a.feedNotifications(ctx, d)
	wg.Wait()
	if err := d.Close(); err != nil {
		a.log.Warn("notification spool", "err", err)
	}
	return nil
}

// leadingReady: raft leader, and the log applied up to the election (barrier).
func (a *Agent) leadingReady() bool { return a.coord.ready.Load() && a.store.IsLeader() }

// feedNotifications hands committed events to d while this node is the coordinator.
func (a *Agent) feedNotifications(ctx context.Context, d *notify.Dispatcher) {
	tick := time.NewTicker(notifyPoll)
	defer tick.Stop()
	for {
		if a.leadingReady() {
			plan := notify.PlanResume(d.LastIndex(), a.store.LastIndex(), time.Now())
			a.log.Debug("dispatching notifications as coordinator", "after", plan.After, "committed", plan.Committed)
			a.dispatchWhileLeading(ctx, d, plan, tick.C)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// dispatchWhileLeading follows the log from plan.After until leadership or ctx ends.
func (a *Agent) dispatchWhileLeading(ctx context.Context, d *notify.Dispatcher, plan notify.Resume, tick <-chan time.Time) {
	last := plan.After
	for ctx.Err() == nil && a.leadingReady() {
		// A subscription is cut when it lags; resume from the last event handled,
		// under the same plan (this is not a new election).
		last = a.followLog(ctx, d, plan, last, tick)
		select {
		case <-ctx.Done():
		case <-tick:
		}
	}
}

func (a *Agent) followLog(ctx context.Context, d *notify.Dispatcher, plan notify.Resume, last uint64, tick <-chan time.Time) uint64 {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub := a.store.Subscribe(sctx) // before reading the backlog, so nothing falls between
	handle := func(ev model.Event) {
		if ev.Index <= last {
			return
		}
		if plan.Dispatch(ev) {
			d.Notify(ev)
		}
		last = ev.Index
	}
	for {
		evs := a.store.Events(last, 500)
		for _, ev := range evs {
			handle(ev)
		}
		if len(evs) < 500 {
			break
		}
	}
	for {
		select {
		case <-ctx.Done():
			return last
		case ev, ok := <-sub:
			if !ok {
				return last
			}
			if !a.leadingReady() {
				return last
			}
			handle(ev)
		case <-tick:
			if !a.leadingReady() {
				return last
			}
		}
	}
}
