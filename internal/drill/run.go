package drill

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Env is the cluster as a drill sees it.
type Env interface {
	// Move asks the cluster to move group to node, as an operator would; the
	// request is recorded (with the drill's author) like any other.
	Move(ctx context.Context, group, to, reason string) error
	// Where says which node group is assigned to and the state reported there.
	Where(group string) (node, state string)
}

// Plan is one drill to run.
type Plan struct {
	Drill model.Drill // ID, Group, From, To, Back, By, Reason, Scheduled, Runner, Probe
	// Probe asks the service once, as a client would; nil measures no client view.
	Probe    func(ctx context.Context) error
	Interval time.Duration // between probes
	Settle   time.Duration // probing before the first move, and pause before moving back
	Timeout  time.Duration // per move: from the request to running there and answering
	Poll     time.Duration // how often the group's placement is read
}

// Run carries out p and returns the finished drill. It never leaves the
// probe running: the sampler goroutine ends before Run returns. A cancelled
// ctx fails the step in progress and ends the drill (the group stays where
// the cluster put it; nothing is undone behind the operator's back).
func Run(ctx context.Context, env Env, p Plan) model.Drill {
	d := p.Drill
	d.Started, d.Outcome = time.Now(), model.DrillRunning
	if p.Probe == nil {
		d.Probe = ""
	} else if d.Probe == "" {
		d.Probe = "probe"
	}
	s := &sampler{probe: p.Probe, interval: p.Interval}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if p.Probe != nil {
		wg.Go(func() { s.run(sctx) })
	}
	r := runner{ctx: ctx, env: env, p: p, s: s, d: &d}
	err := r.steps()
	stop()
	wg.Wait()

	d.Ended = time.Now()
	d.Outcome = model.DrillPassed
	if err != nil {
		d.Outcome, d.Error = model.DrillFailed, err.Error()
	}
	samples := s.all()
	d.ProbesSent = len(samples)
	for _, sm := range samples {
		if !sm.OK {
			d.ProbesFailed++
		}
	}
	for i := range d.Steps {
		st := &d.Steps[i]
		if out, ok := LongestOutage(samples, st.Started, st.Ended); ok && p.Probe != nil {
			ms := out.Milliseconds()
			st.OutageMS = &ms
		}
	}
	return d
}

type runner struct {
	ctx context.Context
	env Env
	p   Plan
	s   *sampler
	d   *model.Drill
}

func (r *runner) steps() error {
	if err := r.baseline(); err != nil {
		return err
	}
	if err := r.move("move to "+r.d.To, r.d.To); err != nil {
		return err
	}
	if !r.d.Back {
		return nil
	}
	if err := r.sleep(r.p.Settle); err != nil {
		return err
	}
	return r.move("move back to "+r.d.From, r.d.From)
}

// baseline makes sure the service answers before anything moves: a drill
// that starts against a dead service would measure nothing and blame the move.
func (r *runner) baseline() error {
	st := model.DrillStep{Name: "service answers before the drill", Started: time.Now()}
	err := r.sleep(r.p.Settle)
	if err == nil && r.p.Probe != nil {
		if ok, last := r.s.answeredSince(st.Started); !ok {
			err = fmt.Errorf("the service did not answer before the drill (%s); nothing was moved", last)
		}
	}
	return r.record(st, err, "")
}

func (r *runner) move(name, to string) error {
	st := model.DrillStep{Name: name, Started: time.Now()}
	ctx, cancel := context.WithTimeout(r.ctx, r.p.Timeout)
	defer cancel()
	if err := r.env.Move(ctx, r.d.Group, to, r.d.Reason); err != nil {
		return r.record(st, fmt.Errorf("%s: move request: %w", name, err), "")
	}
	var node, state string
	running, err := r.until(ctx, func() bool {
		node, state = r.env.Where(r.d.Group)
		return node == to && state == "running"
	})
	if err != nil {
		return r.record(st, fmt.Errorf("%s: after %s the group is on %q (%s), not running on %s",
			name, r.p.Timeout, node, orNone(state), to), "")
	}
	detail := fmt.Sprintf("running on %s after %s", to, ms(running.Sub(st.Started)))
	if r.p.Probe == nil {
		return r.record(st, nil, detail)
	}
	var last string
	answered, err := r.until(ctx, func() bool {
		var ok bool
		ok, last = r.s.answeredSince(running)
		return ok
	})
	if err != nil {
		return r.record(st, fmt.Errorf("%s: the group runs on %s but clients get no answer after %s (%s)", name, to, r.p.Timeout, last), detail)
	}
	return r.record(st, nil, fmt.Sprintf("%s; clients answered again after %s", detail, ms(answered.Sub(st.Started))))
}

func (r *runner) record(st model.DrillStep, err error, detail string) error {
	st.Ended, st.OK, st.Detail = time.Now(), err == nil, detail
	if err != nil {
		st.Detail = err.Error()
	}
	r.d.Steps = append(r.d.Steps, st)
	return err
}

// until polls cond every Poll and returns when it first held.
func (r *runner) until(ctx context.Context, cond func() bool) (time.Time, error) {
	t := time.NewTicker(r.p.Poll)
	defer t.Stop()
	for {
		if cond() {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}

func (r *runner) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return fmt.Errorf("drill stopped: %w", r.ctx.Err())
	case <-t.C:
		return nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "no state"
	}
	return s
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// sampler probes the service every interval and keeps every sample.
type sampler struct {
	probe    func(ctx context.Context) error
	interval time.Duration

	mu      sync.Mutex
	samples []Sample
	lastErr string
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, s.interval)
		err := s.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return // a probe cut short by the end of the drill says nothing
		}
		s.mu.Lock()
		s.samples = append(s.samples, Sample{At: start, OK: err == nil})
		if err != nil {
			s.lastErr = err.Error()
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// answeredSince says whether a probe that started at or after t got an
// answer, and otherwise the latest error.
func (s *sampler) answeredSince(t time.Time) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.samples) - 1; i >= 0 && !s.samples[i].At.Before(t); i-- {
		if s.samples[i].OK {
			return true, ""
		}
	}
	if s.lastErr == "" {
		return false, "no probe finished yet"
	}
	return false, s.lastErr
}

func (s *sampler) all() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}
