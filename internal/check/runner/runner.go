package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// Defaults for Options.
const (
	// DefaultMaxConcurrent bounds probes in flight: a node with many groups
	// must not open hundreds of sockets or fork hundreds of scripts at once.
	DefaultMaxConcurrent = 8
	// DefaultJitter spreads probes by ±10% of their interval so that checks
	// (and nodes) started together do not probe in lockstep for ever.
	DefaultJitter = 0.1
)

// Check is one check to run: a probe and how often to run it.
type Check struct {
	Name     string // unique within the runner; names Changes
	Probe    check.Prober
	Interval time.Duration // <= 0: check.DefaultInterval
	Timeout  time.Duration // <= 0: check.DefaultTimeout; capped at Interval
	Rise     int           // <= 0: check.DefaultRise
	Fall     int           // <= 0: check.DefaultFall
}

// Of is the runner's entry for a configured check (after ApplyDefaults) and the
// probe built for it (probe.New). Names are the caller's to make unique, e.g. by
// prefixing the group's name.
func Of(c check.Check, p check.Prober) Check {
	return Check{
		Name:     c.DisplayName(),
		Probe:    p,
		Interval: c.Interval.D(),
		Timeout:  c.Timeout.D(),
		Rise:     c.Rise,
		Fall:     c.Fall,
	}
}

// Options tune a Runner; the zero value is usable.
type Options struct {
	MaxConcurrent int     // <= 0: DefaultMaxConcurrent
	Jitter        float64 // fraction of the interval; 0: DefaultJitter, < 0: none
	// Now stamps results and state changes; nil: time.Now. Scheduling itself
	// always runs on the monotonic clock.
	Now func() time.Time
}

// Change is a check's state as last changed. When the receiver is slow, later
// changes of one check replace earlier ones not yet received (latest wins): Prev
// is the state the receiver last saw for this check, and State equals Prev only
// after a flap (Coalesced > 0), which still matters because Since moved.
type Change struct {
	Check  string
	State  check.State
	Prev   check.State
	Since  time.Time    // when State began
	Result check.Result // the result that made the change
	// Coalesced counts changes of this check that were replaced before delivery.
	Coalesced int
}

func (c Change) String() string {
	s := fmt.Sprintf("%s %s -> %s (%s)", c.Check, c.Prev, c.State, c.Result.Detail)
	if c.Coalesced > 0 {
		s += fmt.Sprintf(" [%d intermediate changes]", c.Coalesced)
	}
	return s
}

// Status is a check's current picture, for the API and for periodic reports of
// observations to peers.
type Status struct {
	Check    string
	State    check.State
	Since    time.Time
	Streak   int // consecutive successes (>0) or failures (<0)
	Last     check.Result
	LastAt   time.Time
	Probes   uint64
	Failures uint64
}

// Runner runs checks at their intervals on one goroutine of its own, with
// bounded concurrency, and reports state changes on Changes without ever blocking
// on its receiver.
type Runner struct {
	checks []Check
	opt    Options
	out    chan Change
	done   chan struct{}

	mu      sync.Mutex
	started bool
	status  []Status // guarded by mu; written by the loop only
}

// New checks the list and builds a Runner; nothing runs until Start.
func New(checks []Check, opt Options) (*Runner, error) {
	seen := map[string]bool{}
	cs := make([]Check, len(checks))
	for i, c := range checks {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("runner: check %d has no name", i)
		case seen[c.Name]:
			return nil, fmt.Errorf("runner: check %q listed twice", c.Name)
		case c.Probe == nil:
			return nil, fmt.Errorf("runner: check %q has no probe", c.Name)
		}
		seen[c.Name] = true
		if c.Interval <= 0 {
			c.Interval = check.DefaultInterval
		}
		if c.Timeout <= 0 {
			c.Timeout = check.DefaultTimeout
		}
		// Probes of one check never overlap, so a longer timeout would only
		// stretch the interval in disguise.
		c.Timeout = min(c.Timeout, c.Interval)
		cs[i] = c
	}
	if opt.MaxConcurrent <= 0 {
		opt.MaxConcurrent = DefaultMaxConcurrent
	}
	if opt.Jitter == 0 {
		opt.Jitter = DefaultJitter
	}
	if opt.Jitter < 0 {
		opt.Jitter = 0
	}
	opt.Jitter = min(opt.Jitter, 0.5)
	if opt.Now == nil {
		opt.Now = time.Now
	}
	st := make([]Status, len(cs))
	for i, c := range cs {
		st[i].Check = c.Name
	}
	return &Runner{
		checks: cs,
		opt:    opt,
		out:    make(chan Change),
		done:   make(chan struct{}),
		status: st,
	}, nil
}

// Start launches the runner's goroutine. It runs until ctx ends; then it waits
// for the probes in flight (their contexts end with ctx), closes Changes and
// closes Done.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("runner: already started")
	}
	r.started = true
	go r.loop(ctx)
	return nil
}

// Changes delivers state changes; it is closed once the runner has stopped.
// Changes not yet received when it stops are dropped.
func (r *Runner) Changes() <-chan Change { return r.out }

// Done is closed when the runner and every probe it started have returned.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Wait blocks until Done.
func (r *Runner) Wait() { <-r.done }

// Statuses is a copy of every check's current status, in the order given to New.
func (r *Runner) Statuses() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Status(nil), r.status...)
}

// finished is what a probe goroutine hands back to the loop.
type finished struct {
	idx int
	res check.Result
}

// slot is the loop's bookkeeping for one check.
type slot struct {
	tracker   check.Tracker
	due       time.Time // next start, on the monotonic clock
	running   bool
	queued    bool
	delivered check.State // last state the receiver got
	pending   *Change     // not yet received
}

func (r *Runner) loop(ctx context.Context) {
	defer close(r.done)
	n := len(r.checks)
	slots := make([]slot, n)
	now := time.Now()
	for i := range slots {
		c := r.checks[i]
		slots[i].tracker = check.NewTracker(c.Rise, c.Fall)
		// The first round is spread over the jitter window rather than fired
		// all at once: results come quickly, without a burst.
		slots[i].due = now.Add(r.spread(c.Interval))
	}
	// Buffered to the concurrency bound: a probe's goroutine can always hand
	// back its result, even while the loop is shutting down.
	results := make(chan finished, r.opt.MaxConcurrent)
	var wg sync.WaitGroup
	var queue []int // due checks waiting for a free slot, in due order
	var order []int // checks with a pending change, oldest first
	inFlight := 0

	launch := func(i int) {
		c := r.checks[i]
		s := &slots[i]
		s.running = true
		inFlight++
		start := time.Now()
		// Anchor the next run on this start, not on the end of the probe, so a
		// check keeps its rhythm whatever its probes take.
		s.due = start.Add(c.Interval + r.jitter(c.Interval))
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- finished{i, runProbe(ctx, c)}
		}()
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Start what is due, as far as the bound allows.
		now := time.Now()
		for i := range slots {
			s := &slots[i]
			if !s.running && !s.queued && !now.Before(s.due) {
				s.queued = true
				queue = append(queue, i)
			}
		}
		for len(queue) > 0 && inFlight < r.opt.MaxConcurrent {
			i := queue[0]
			queue = queue[1:]
			slots[i].queued = false
			launch(i)
		}
		// Sleep until the next idle check is due; running and queued checks
		// wake the loop with their results.
		wait := time.Hour
		for i := range slots {
			s := &slots[i]
			if !s.running && !s.queued {
				wait = min(wait, s.due.Sub(now))
			}
		}
		timer.Reset(max(wait, 0))

		var out chan Change
		var head Change
		if len(order) > 0 {
			out, head = r.out, *slots[order[0]].pending
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			close(r.out)
			return
		case <-timer.C:
		case f := <-results:
			inFlight--
			s := &slots[f.idx]
			s.running = false
			at := r.opt.Now()
			changed, state := s.tracker.Observe(f.res, at)
			r.record(f.idx, &s.tracker, f.res, at)
			if changed {
				order = r.pend(slots, order, f.idx, state, f.res)
			}
		case out <- head:
			s := &slots[order[0]]
			s.delivered, s.pending = head.State, nil
			order = order[1:]
		}
	}
}

// pend records a change for delivery, replacing one not yet received.
func (r *Runner) pend(slots []slot, order []int, i int, state check.State, res check.Result) []int {
	s := &slots[i]
	if s.pending != nil {
		// Even a change back to the state the receiver last saw is kept: its
		// Since is newer, and lost_after counts from Since.
		s.pending.State, s.pending.Since, s.pending.Result = state, s.tracker.Since(), res
		s.pending.Coalesced++
		return order
	}
	s.pending = &Change{Check: r.checks[i].Name, State: state, Prev: s.delivered, Since: s.tracker.Since(), Result: res}
	return append(order, i)
}

func (r *Runner) record(i int, t *check.Tracker, res check.Result, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.status[i]
	st.State, st.Since, st.Streak = t.State(), t.Since(), t.Streak()
	st.Last, st.LastAt = res, at
	st.Probes++
	if !res.OK {
		st.Failures++
	}
}

// runProbe runs one probe with the check's timeout. A probe that panics is a
// bug, but it must not take the agent down: it becomes a failed result.
func runProbe(ctx context.Context, c Check) (res check.Result) {
	pctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			res = check.Result{Detail: fmt.Sprintf("probe panicked: %v", p)}
		}
		if res.Duration == 0 {
			res.Duration = time.Since(start)
		}
	}()
	return c.Probe.Probe(pctx)
}

// jitter is a uniform offset in ±Jitter×interval.
func (r *Runner) jitter(interval time.Duration) time.Duration {
	span := time.Duration(float64(interval) * r.opt.Jitter)
	if span <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(2*span)+1)) - span
}

// spread is a uniform delay in [0, Jitter×interval] for the first round.
func (r *Runner) spread(interval time.Duration) time.Duration {
	span := time.Duration(float64(interval) * r.opt.Jitter)
	if span <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(span) + 1))
}
