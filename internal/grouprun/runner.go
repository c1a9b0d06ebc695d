package grouprun

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
)

// Factory builds the agent for one resource of a group.
type Factory func(g config.Group, r config.Resource) (resource.Agent, error)

// Desired is what the replicated state and the lease say about one group on this node.
type Desired struct {
	// Run: assigned here under the lease this node holds now.
	Run bool
	// Epoch is the lease epoch the assignment is bound to (with Run). The
	// group's VIPs are gated by the kernel lease of that epoch only: a lease
	// this node holds under a later epoch never renews them.
	Epoch string
	// Assignment identifies the assignment (with Run): the index of its event
	// in the log. A node that reported the group failed or not started under
	// an assignment has handed it back, and starts it again only under a new
	// one (0: unknown, as in tests that do not say).
	Assignment uint64
	// Hold: maintenance; start and stop nothing, only monitor.
	Hold bool
	// ReleaseAt is the index of a release addressed to this node that must be
	// answered with a group_stopped report (0: none).
	ReleaseAt uint64
	// LeaseLost: the node lost its lease; stop at once, VIPs first.
	LeaseLost bool
	// LostAt is the index of the coordinator's latest "group lost" verdict for this
	// node's copy (its checks failed for a majority of observers): a failure, handled
	// like a monitor failure (restart phase, then a flag and a move).
	LostAt uint64
	// IntruderAt is the index of a request to stop a copy of the group found running
	// here although this node does not own it (split brain, e.g. started by hand).
	IntruderAt uint64
}

// Runner owns one worker goroutine per group.
type Runner struct {
	self string
	emit func(model.Event)
	// release gives up this node's lease; called when a stop fails, so that the
	// group can move once the lease is surely over instead of never.
	release func(reason string)
	log     *slog.Logger
	workers map[string]*worker
	order   []string

	leaseMu    sync.Mutex
	leaseUntil time.Time // guarded by leaseMu; zero: no lease
	leaseEpoch string    // guarded by leaseMu: the epoch of the lease held
	// leased maps the started resources the kernel gates to the epoch of the
	// assignment they were started for. Guarded by leaseMu.
	leased map[resource.Leased]string
	// hooks are set before Run and only read after.
	hooks Hooks
}

// Hooks run around a group's life on this node, from its worker's goroutine.
type Hooks struct {
	// Starting runs before the group's first resource starts; an error fails
	// the start (nothing started) and flags this node for the group.
	Starting func(ctx context.Context, group string) error
	// Stopped runs once every resource of the group has stopped here (not after
	// a stop that failed: something may still run).
	Stopped func(group string)
}

// SetHooks installs hooks; call before Run.
func (r *Runner) SetHooks(h Hooks) { r.hooks = h }

// New builds a runner for the groups that list this node.
func New(self string, groups []config.Group, factory Factory, emit func(model.Event), release func(string), log *slog.Logger) (*Runner, error) {
	if release == nil {
		release = func(string) {}
	}
	r := &Runner{self: self, emit: emit, release: release, log: log, workers: map[string]*worker{}, leased: map[resource.Leased]string{}}
	for _, g := range groups {
		if !listed(g.Nodes, self) {
			continue
		}
		w := &worker{r: r, group: g, desired: make(chan Desired, 1)}
		for _, rc := range g.Resources {
			a, err := factory(g, rc)
			if err != nil {
				return nil, fmt.Errorf("group %s resource %s: %w", g.Name, rc.Name, err)
			}
			m := managed{spec: rc, agent: a}
			if rc.Promotable {
				p, ok := a.(resource.Promoter)
				if !ok {
					return nil, fmt.Errorf("group %s resource %s: type %s cannot be promoted (promotable applies to ocf resources)", g.Name, rc.Name, rc.Type)
				}
				m.promoter = p
			}
			w.resources = append(w.resources, m)
		}
		r.workers[g.Name] = w
		r.order = append(r.order, g.Name)
	}
	return r, nil
}

// Run starts the workers and waits for them; on ctx end each worker stops its group.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range r.order {
		w := r.workers[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// CleanupAtStart stops, in every group at once, what a previous run of the
// agent left behind, and returns when that is done. Call it before the first
// heartbeat: the new incarnation ends the old run's epoch at once in its
// peers' eyes, so they may start the groups as soon as they hear it. Run does
// the same for workers this did not reach.
func (r *Runner) CleanupAtStart(ctx context.Context) {
	var wg sync.WaitGroup
	for _, name := range r.order {
		w := r.workers[name]
		wg.Go(func() { w.cleanupAtStart(ctx) })
	}
	wg.Wait()
}

// Groups lists the groups this runner manages.
func (r *Runner) Groups() []string { return append([]string(nil), r.order...) }

// Update hands a group its desired state; the latest value wins, never blocks.
func (r *Runner) Update(group string, d Desired) {
	w, ok := r.workers[group]
	if !ok {
		return
	}
	select {
	case <-w.desired:
	default:
	}
	w.desired <- d
}

// SetLease is SetLeaseUnder with no epoch, for runners whose assignments
// carry none (tests).
func (r *Runner) SetLease(held bool, until time.Time) { r.SetLeaseUnder(held, until, "") }

// SetLeaseUnder renews or revokes, at once and for every started VIP, the
// kernel-side lease. It is called from the agent's loop on every lease change,
// so a node that loses its lease stops answering on its VIPs before any worker
// runs. until is an absolute deadline on the monotonic clock: the time left is
// worked out right before each renewal, and checked again after it, so a pause
// (SIGSTOP) between the loop's decision and the kernel update cannot extend the
// lease.
//
// Only VIPs started for an assignment under epoch are renewed. A node that lost
// its lease (a pause, a partition) leaves that epoch and may hold a new lease
// under a later one within a round trip, while its worker is still stopping the
// group the coordinator has meanwhile given to another node: renewing that
// group's VIPs then would make two holders. They are revoked instead, and stay
// so until the worker removes them, since epochs never come back.
func (r *Runner) SetLeaseUnder(held bool, until time.Time, epoch string) {
	r.leaseMu.Lock()
	defer r.leaseMu.Unlock()
	if !held || time.Until(until) <= 0 {
		r.revokeAllLocked()
		return
	}
	r.leaseUntil, r.leaseEpoch = until, epoch
	for l, ep := range r.leased {
		if ep != epoch {
			if err := l.RevokeLease(); err != nil {
				r.log.Error("revoke VIP lease", "err", err)
			}
			continue
		}
		if err := renewUntil(l, until); err != nil {
			r.log.Error("renew VIP lease", "err", err)
		}
	}
	if time.Until(until) <= 0 {
		r.revokeAllLocked() // the lease ran out while we renewed: take it back
	}
}

func (r *Runner) revokeAllLocked() {
	r.leaseUntil = time.Time{}
	for l := range r.leased {
		if err := l.RevokeLease(); err != nil {
			r.log.Error("revoke VIP lease", "err", err)
		}
	}
}

// renewUntil gives a VIP the time left until the deadline, measured just now.
func renewUntil(l resource.Leased, until time.Time) error {
	left := time.Until(until)
	if left <= 0 {
		return l.RevokeLease()
	}
	return l.RenewLease(left)
}

// trackLeased registers a resource for renewals and gives it the current lease,
// if it is the lease of epoch, the epoch of the assignment it starts for.
func (r *Runner) trackLeased(l resource.Leased, epoch string) error {
	r.leaseMu.Lock()
	defer r.leaseMu.Unlock()
	r.leased[l] = epoch
	if r.leaseUntil.IsZero() || time.Until(r.leaseUntil) <= 0 {
		return fmt.Errorf("no lease: a VIP is never started without one")
	}
	if epoch != r.leaseEpoch {
		return fmt.Errorf("assigned under lease epoch %q, but this node's lease is under %q: a VIP is never started under another epoch's lease", epoch, r.leaseEpoch)
	}
	return renewUntil(l, r.leaseUntil)
}

// retrack binds started resources to the assignment under epoch, and gives them
// the current lease if it is that epoch's.
func (r *Runner) retrack(ls []resource.Leased, epoch string) {
	r.leaseMu.Lock()
	defer r.leaseMu.Unlock()
	for _, l := range ls {
		if _, ok := r.leased[l]; !ok {
			continue
		}
		r.leased[l] = epoch
		if epoch == r.leaseEpoch && !r.leaseUntil.IsZero() {
			if err := renewUntil(l, r.leaseUntil); err != nil {
				r.log.Error("renew VIP lease", "err", err)
			}
		}
	}
}

func (r *Runner) untrackLeased(l resource.Leased) {
	r.leaseMu.Lock()
	defer r.leaseMu.Unlock()
	delete(r.leased, l)
	if err := l.RevokeLease(); err != nil {
		r.log.Error("revoke VIP lease", "err", err)
	}
}

func listed(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
