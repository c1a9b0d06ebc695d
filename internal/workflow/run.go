package workflow

import (
	"errors"
	"fmt"
	"time"
)

// Result is where a run stands or how it finished.
type Result string

// Results. A Run only produces the first four; Interrupted is written by the history
// when it finds a run that was still running when the agent died.
const (
	ResultRunning     Result = "running"
	ResultEnded       Result = "ended"   // reached end
	ResultAbended     Result = "abended" // reached abend
	ResultStopped     Result = "stopped" // an operator (or the decision engine) stopped it
	ResultInterrupted Result = "interrupted"
)

// Final reports whether the run is over.
func (r Result) Final() bool { return r != ResultRunning && r != "" }

// RunOptions choose where a run starts and how it proceeds.
type RunOptions struct {
	// From starts at this step instead of the workflow's first.
	From string `json:"from,omitempty"`
	// OnlyStep runs this one step and finishes (the seed's frhd): ended, or abended
	// when the step's transition is abend.
	OnlyStep string `json:"only_step,omitempty"`
	// StepByStep pauses after each step until Continue: an operator walks a
	// procedure one step at a time.
	StepByStep bool `json:"step_by_step,omitempty"`
}

// Errors returned by Run methods; callers test them with errors.Is.
var (
	ErrNotPaused    = errors.New("run is not paused")
	ErrNotExecuting = errors.New("no step is executing")
	ErrFinished     = errors.New("run has finished")
)

// ActionKind says what the caller of Next must do.
type ActionKind int

const (
	// ActWait: nothing to do before Action.At (wait_before, retry delay, watch interval).
	ActWait ActionKind = iota
	// ActExec: run Action.Step now (attempt Action.Attempt) and report with StepDone.
	ActExec
	// ActAwait: a step is executing; report its result with StepDone.
	ActAwait
	// ActPause: step by step; nothing happens until Continue (or Stop).
	ActPause
	// ActDone: the run is over with Action.Result.
	ActDone
)

func (k ActionKind) String() string {
	switch k {
	case ActWait:
		return "wait"
	case ActExec:
		return "exec"
	case ActAwait:
		return "await"
	case ActPause:
		return "pause"
	case ActDone:
		return "done"
	}
	return fmt.Sprintf("action(%d)", int(k))
}

// Action is the machine's answer to Next.
type Action struct {
	Kind ActionKind
	// Step is the step concerned: to wait for, execute, or (ActPause) run on Continue.
	Step string
	// Attempt counts runs of the step within one failure streak, from 1.
	Attempt int
	// Check counts a watch step's checks in this visit, from 1; 0 for other steps.
	Check  int
	At     time.Time // ActWait
	Result Result    // ActDone
}

// TransitionKind says what a step's completion led to.
type TransitionKind int

const (
	// TransLeave: the step is done; the run moves to Transition.Target (or finishes).
	TransLeave TransitionKind = iota
	// TransRetry: the attempt failed and the step runs again after its retry delay.
	TransRetry
	// TransWatch: the check passed and the watch goes on after its interval.
	TransWatch
	// TransStopped: the step was cut by Stop; the run is stopped.
	TransStopped
)

func (k TransitionKind) String() string {
	switch k {
	case TransLeave:
		return "leave"
	case TransRetry:
		return "retry"
	case TransWatch:
		return "watch"
	case TransStopped:
		return "stopped"
	}
	return fmt.Sprintf("transition(%d)", int(k))
}

// Transition is what StepDone decided; the executor records it in the run history.
type Transition struct {
	Kind     TransitionKind
	Step     string
	Attempt  int
	Check    int
	ExitCode int
	// Target is the next step, or end or abend, for TransLeave; the step itself for
	// TransRetry and TransWatch; empty for TransStopped.
	Target string
	// Commit: the step is a consistency point and was passed successfully.
	Commit bool
	// Quiet: a passing watch check after the first. The seed's commit step "does not
	// log after the first time"; counting such checks keeps a days-long watch from
	// filling the history.
	Quiet bool
	// Result is the run's result after this transition (ResultRunning if it goes on).
	Result Result
}

type phase int

const (
	phaseNew       phase = iota // Next has not been called yet
	phaseWaiting                // until readyAt, then execute cur
	phaseExecuting              // cur is running
	phasePaused                 // step by step: cur runs after Continue
	phaseDone
)

// Run is one run of a workflow as a pure state machine: no goroutines, no I/O, no
// clock. The caller asks Next(now) what to do, carries out ActExec, reports the exit
// code with StepDone(code, now) and calls Next again; Stop and Continue come from the
// operator. Given the same inputs it makes the same decisions, so it is tested with
// a simulated clock and the executor is only plumbing.
type Run struct {
	w     Workflow
	opts  RunOptions
	index map[string]int

	phase    phase
	cur      int       // current step
	attempt  int       // of cur, from 1, reset when a watch check passes
	check    int       // watch checks in this visit
	readyAt  time.Time // phaseWaiting
	stopping bool      // Stop came while a step was executing
	result   Result
	commit   string // last consistency point passed
}

// NewRun prepares a run of w. It refuses a workflow that does not validate (so every
// transition resolves) and options naming unknown steps.
func NewRun(w Workflow, opts RunOptions) (*Run, error) {
	if errs := Errors(Validate(w)); len(errs) > 0 {
		return nil, fmt.Errorf("workflow %q: %w", w.Name, errs[0])
	}
	r := &Run{w: w.Clone(), opts: opts, index: make(map[string]int, len(w.Steps)), result: ResultRunning}
	for i, s := range w.Steps {
		r.index[s.Name] = i
	}
	start := w.FirstStep()
	switch {
	case opts.OnlyStep != "" && opts.From != "" && opts.From != opts.OnlyStep:
		return nil, fmt.Errorf("workflow %q: from %q and only-step %q disagree", w.Name, opts.From, opts.OnlyStep)
	case opts.OnlyStep != "":
		start = opts.OnlyStep
	case opts.From != "":
		start = opts.From
	}
	i, ok := r.index[start]
	if !ok {
		return nil, fmt.Errorf("workflow %q has no step %q", w.Name, start)
	}
	r.cur = i
	return r, nil
}

// Workflow is the definition this run follows (a copy: a config reload does not
// change a run in progress).
func (r *Run) Workflow() *Workflow { return &r.w }

// Options are the options the run was started with.
func (r *Run) Options() RunOptions { return r.opts }

// enter starts a visit of step i at now.
func (r *Run) enter(i int, now time.Time) {
	r.cur, r.attempt, r.check = i, 1, 0
	r.readyAt = now.Add(r.w.Steps[i].WaitBefore.D())
	r.phase = phaseWaiting
}

// Next says what to do at now. Calling it again without new input is harmless.
func (r *Run) Next(now time.Time) Action {
	if r.phase == phaseNew {
		r.enter(r.cur, now)
	}
	s := &r.w.Steps[r.cur]
	switch r.phase {
	case phaseDone:
		return Action{Kind: ActDone, Result: r.result}
	case phasePaused:
		return Action{Kind: ActPause, Step: s.Name}
	case phaseExecuting:
		return Action{Kind: ActAwait, Step: s.Name, Attempt: r.attempt, Check: r.check}
	}
	if now.Before(r.readyAt) {
		return Action{Kind: ActWait, Step: s.Name, Attempt: r.attempt, Check: r.nextCheck(), At: r.readyAt}
	}
	r.phase = phaseExecuting
	if s.Watch != nil {
		r.check++
	}
	return Action{Kind: ActExec, Step: s.Name, Attempt: r.attempt, Check: r.check}
}

func (r *Run) nextCheck() int {
	if r.w.Steps[r.cur].Watch != nil {
		return r.check + 1
	}
	return 0
}

// StepDone reports the exit code of the executing step; a negative code means it has
// none (timed out, killed, could not start) and is a failure.
func (r *Run) StepDone(code int, now time.Time) (Transition, error) {
	if r.phase != phaseExecuting {
		if r.phase == phaseDone {
			return Transition{}, ErrFinished
		}
		return Transition{}, ErrNotExecuting
	}
	s := &r.w.Steps[r.cur]
	t := Transition{Step: s.Name, Attempt: r.attempt, Check: r.check, ExitCode: code}
	switch {
	case r.stopping:
		t.Kind = TransStopped
		r.finish(ResultStopped)
	case s.Watch != nil && s.Watch.passes(code):
		t.Kind, t.Target = TransWatch, s.Name
		t.Quiet = r.check > 1
		if s.Commit && r.check == 1 {
			t.Commit = true
			r.commit = s.Name
		}
		r.attempt = 1
		r.readyAt = now.Add(s.Watch.Interval.D())
		r.phase = phaseWaiting
	case s.failed(code) && r.attempt <= s.Retries:
		t.Kind, t.Target = TransRetry, s.Name
		r.attempt++
		r.readyAt = now.Add(s.RetryDelay.D())
		r.phase = phaseWaiting
	default:
		t.Kind = TransLeave
		t.Target = r.w.target(r.cur, code)
		// A watch step commits on its first passing check; leaving it is a failure.
		if s.Commit && s.Watch == nil && t.Target != TargetAbend {
			t.Commit = true
			r.commit = s.Name
		}
		r.leave(t.Target, now)
	}
	t.Result = r.result
	return t, nil
}

func (r *Run) leave(target string, now time.Time) {
	switch {
	case r.opts.OnlyStep != "" && target == TargetAbend:
		r.finish(ResultAbended)
	case r.opts.OnlyStep != "":
		r.finish(ResultEnded)
	case target == TargetEnd:
		r.finish(ResultEnded)
	case target == TargetAbend:
		r.finish(ResultAbended)
	default:
		next := r.index[target] // NewRun validated every target
		if r.opts.StepByStep {
			r.cur, r.phase = next, phasePaused
			return
		}
		r.enter(next, now)
	}
}

func (r *Run) finish(res Result) {
	r.phase, r.result = phaseDone, res
}

// Continue runs the step a step-by-step run is paused before.
func (r *Run) Continue(now time.Time) error {
	switch r.phase {
	case phasePaused:
		r.enter(r.cur, now)
		return nil
	case phaseDone:
		return ErrFinished
	}
	return ErrNotPaused
}

// Stop ends the run. If a step is executing the caller must kill it; the run is
// stopped when its StepDone arrives (stopping reports that). Otherwise it is stopped now.
func (r *Run) Stop() (stopping bool, err error) {
	switch r.phase {
	case phaseDone:
		return false, ErrFinished
	case phaseExecuting:
		r.stopping = true
		return true, nil
	}
	r.finish(ResultStopped)
	return false, nil
}

// State is a snapshot of a run for status displays and history.
type State struct {
	Result Result
	// Phase is what the run is doing while running: waiting, executing or paused.
	Phase    string
	Step     string
	Attempt  int
	Check    int
	Until    time.Time // waiting: when the step runs
	Stopping bool
	// Commit is the last consistency point passed, if any.
	Commit string
}

// State reports where the run stands.
func (r *Run) State() State {
	st := State{Result: r.result, Step: r.w.Steps[r.cur].Name, Attempt: r.attempt, Check: r.check, Stopping: r.stopping, Commit: r.commit}
	switch r.phase {
	case phaseNew:
		st.Phase, st.Attempt = "new", 1
	case phaseWaiting:
		st.Phase, st.Until = "waiting", r.readyAt
	case phaseExecuting:
		st.Phase = "executing"
	case phasePaused:
		st.Phase = "paused"
	case phaseDone:
		st.Phase = "done"
	}
	return st
}
