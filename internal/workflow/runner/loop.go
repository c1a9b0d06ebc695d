package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/runexec"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// active is a run in progress. Its loop goroutine owns run and hdr; other goroutines
// reach it only through the request flags and the wake channel.
type active struct {
	name      string
	exclusive bool
	id        string // written once by Start; guarded by Engine.mu
	run       *workflow.Run
	hdr       history.Run

	wake chan struct{} // capacity 1: a pending poke is enough
	done chan struct{} // closed when the run is over and recorded

	mu         sync.Mutex
	stopReq    bool               // guarded by mu; sticky
	contReq    bool               // guarded by mu
	paused     bool               // guarded by mu: waiting for Continue
	cancelStep context.CancelFunc // guarded by mu: kills the step in progress
}

func (a *active) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *active) requestStop() {
	a.mu.Lock()
	a.stopReq = true
	if a.cancelStep != nil {
		a.cancelStep()
	}
	a.mu.Unlock()
	a.poke()
}

func (a *active) requestContinue() error {
	a.mu.Lock()
	if !a.paused {
		a.mu.Unlock()
		return workflow.ErrNotPaused
	}
	a.contReq = true
	a.mu.Unlock()
	a.poke()
	return nil
}

// requests reads the operator's requests; a continue is consumed.
func (a *active) requests() (stop, cont bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	stop, cont = a.stopReq, a.contReq
	a.contReq = false
	if cont {
		a.paused = false
	}
	return stop, cont
}

// armStep registers the kill switch of the step about to run; false if a stop
// arrived first, in which case the step must not run.
func (a *active) armStep(cancel context.CancelFunc) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopReq {
		return false
	}
	a.cancelStep = cancel
	return true
}

// disarmStep forgets the kill switch and reports whether a stop came meanwhile.
func (a *active) disarmStep() (stopped bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cancelStep = nil
	return a.stopReq
}

func (a *active) setPaused() {
	a.mu.Lock()
	a.paused = true
	a.mu.Unlock()
}

// loop drives one run to its end: ask the pure machine, act, report, repeat. Every
// transition is written to the history in one transaction before the next command
// runs, so the trace is never behind what was executed.
func (e *Engine) loop(a *active) {
	defer e.wg.Done()
	defer close(a.done)
	defer e.release(a)

	var pending []history.Attempt // written with the next header write
	seq := 0
	var written struct{ phase, step string }
	write := func() bool {
		a.hdr.Attempts = seq
		err := e.store.Put(a.hdr, pending...)
		if err == nil {
			e.publish(a.hdr, pending)
			pending = pending[:0]
			written.phase, written.step = a.hdr.Phase, a.hdr.Step
			return true
		}
		// Running further steps without a trace would break the history's promise:
		// give up on the run and say why, wherever that can still be said.
		e.log.Error("workflow run history write failed; abandoning the run", "run", a.id, "err", err)
		a.hdr.Result, a.hdr.Phase, a.hdr.Ended = workflow.ResultInterrupted, "", time.Now()
		a.hdr.Note = "history write failed: " + err.Error()
		e.publish(a.hdr, nil)
		return false
	}
	interrupt := func(note string) {
		a.hdr.Result, a.hdr.Phase, a.hdr.Until, a.hdr.Ended = workflow.ResultInterrupted, "", time.Time{}, time.Now()
		a.hdr.Note = note
		write()
	}
	const shutdownNote = "the agent shut down while this run was in progress"

	for {
		now := time.Now()
		stop, cont := a.requests()
		if stop {
			_, _ = a.run.Stop() // ErrFinished: nothing left to stop
		}
		if cont {
			_ = a.run.Continue(now) // ErrNotPaused: a stale request
		}
		act := a.run.Next(now)
		st := a.run.State()
		a.hdr.Phase, a.hdr.Step, a.hdr.Until, a.hdr.Commit = st.Phase, act.Step, st.Until, st.Commit

		switch act.Kind {
		case workflow.ActDone:
			a.hdr.Result, a.hdr.Phase, a.hdr.Until, a.hdr.Ended = act.Result, "", time.Time{}, now
			a.hdr.Step = st.Step
			write()
			return

		case workflow.ActWait, workflow.ActPause:
			if act.Kind == workflow.ActPause {
				// Before the header says paused: whoever reads it may continue at once.
				a.setPaused()
			}
			if len(pending) > 0 || written.phase != a.hdr.Phase || written.step != a.hdr.Step {
				if !write() {
					return
				}
			}
			if !e.sleep(a, act) {
				interrupt(shutdownNote)
				return
			}

		case workflow.ActExec:
			step, _ := a.run.Workflow().Step(act.Step)
			seq++
			att := history.Attempt{Seq: seq, Step: act.Step, Attempt: act.Attempt, Check: act.Check, Command: commandOf(step), Started: now}
			// A watch check after the first is probably going to pass quietly: it is
			// written only if it does not (see workflow.Transition.Quiet).
			quietable := act.Check > 1
			if !quietable {
				pending = append(pending, att)
				if !write() {
					return
				}
			}
			ctx, cancel := context.WithTimeout(e.ctx, step.EffectiveTimeout())
			if !a.armStep(cancel) {
				cancel()
				_, _ = a.run.Stop()
				_, _ = a.run.StepDone(-1, now)
				if quietable {
					seq--
				} else { // close the start record just written
					att.Ended, att.ExitCode, att.Error, att.Transition = now, -1, "not run: the run was stopped", workflow.TransStopped.String()
					pending = append(pending, att)
				}
				continue
			}
			code := e.exec(ctx, a, step, &att)
			cancel()
			stopped := a.disarmStep()
			end := time.Now()
			att.Ended = end
			if att.Duration == 0 {
				att.Duration = end.Sub(att.Started)
			}
			if e.ctx.Err() != nil && !stopped {
				att.ExitCode, att.Error = -1, "interrupted: the agent shut down during this attempt"
				pending = append(pending, att)
				interrupt(shutdownNote)
				return
			}
			if stopped {
				_, _ = a.run.Stop()
				if att.TimedOut { // the ctx that ended it was the stop, not the timeout
					att.TimedOut, att.Error = false, "stopped: the step's process group was killed"
				}
			}
			tr, err := a.run.StepDone(code, end)
			if err != nil {
				// Cannot happen while the loop alone drives the run; record, do not guess.
				e.log.Error("workflow run out of step", "run", a.id, "err", err)
				pending = append(pending, att)
				interrupt("internal error: " + err.Error())
				return
			}
			att.Transition, att.Target, att.Commit = tr.Kind.String(), tr.Target, tr.Commit
			if tr.Quiet {
				// Counted in the header, which is rewritten, not appended to: a
				// watch of months costs no history space.
				seq--
				a.hdr.QuietChecks++
				a.hdr.LastCheck = end
				a.hdr.Phase, a.hdr.Until = "waiting", end.Add(step.Watch.Interval.D())
				if !write() {
					return
				}
				continue
			}
			if act.Check > 0 {
				a.hdr.LastCheck = end
			}
			pending = append(pending, att)

		default: // ActAwait: StepDone is always reported before Next is asked again
			interrupt(fmt.Sprintf("internal error: unexpected action %s", act.Kind))
			return
		}
	}
}

// sleep waits until the action's time (a pause: indefinitely) or a request; false
// when the engine is closing.
func (e *Engine) sleep(a *active, act workflow.Action) bool {
	var tc <-chan time.Time
	if act.Kind == workflow.ActWait {
		t := time.NewTimer(time.Until(act.At))
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-tc:
	case <-a.wake:
	case <-e.ctx.Done():
		return false
	}
	return true
}

// commandOf is what the history shows the step ran.
func commandOf(s *workflow.Step) []string {
	if s.Remote != nil {
		return s.Remote.Describe()
	}
	return s.Argv()
}

// execOther hands a step that runs no command to the StepExecutor.
func (e *Engine) execOther(ctx context.Context, a *active, s *workflow.Step, att *history.Attempt) int {
	if e.opts.StepExecutor == nil {
		att.ExitCode, att.Error = -1, "this engine cannot run remote steps (no step executor)"
		return -1
	}
	res := e.opts.StepExecutor(ctx, StepRequest{RunID: a.hdr.ID, Workflow: a.name, StartedBy: a.hdr.StartedBy,
		Step: *s, Attempt: att.Attempt})
	out := res.Output
	if len(out) > e.opts.MaxOutput {
		out, att.Truncated = out[len(out)-e.opts.MaxOutput:], true // the end says how it finished
	}
	att.Output, att.ExitCode, att.Error = out, res.ExitCode, res.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// As for a command: a verdict reached after the deadline is not one.
		att.ExitCode, att.TimedOut = -1, true
		att.Error = fmt.Sprintf("timed out after %s", s.EffectiveTimeout())
	}
	return att.ExitCode
}

// exec runs one attempt and returns its exit code (-1 for none), filling att.
func (e *Engine) exec(ctx context.Context, a *active, s *workflow.Step, att *history.Attempt) int {
	if s.Remote != nil {
		return e.execOther(ctx, a, s, att)
	}
	argv := s.Argv()
	if argv == nil {
		return 0 // a pure wait step: its wait_before was the work
	}
	res, err := runexec.Run(ctx, runexec.Cmd{
		Argv:      argv,
		Env:       e.env(a, s, att),
		Dir:       e.dir(s),
		MaxOutput: e.opts.MaxOutput,
		Grace:     e.opts.Grace,
		// A step that starts a service must not see it killed when the step's
		// script exits; see workflow.Step.KillChildren.
		KeepChildren: !s.KillChildren,
	})
	if err != nil {
		att.ExitCode, att.Error = -1, err.Error()
		return -1
	}
	att.Output, att.Truncated, att.Signal, att.Duration = string(res.Output), res.Truncated, res.Signal, res.Duration
	att.ExitCode = res.ExitCode
	if res.TimedOut {
		// The exit status of a process killed for running late is not its verdict.
		att.ExitCode, att.TimedOut = -1, true
		att.Error = fmt.Sprintf("timed out after %s; process group killed", s.EffectiveTimeout())
	}
	return att.ExitCode
}

// env gives the step the engine's variables, its own, and where it stands, so one
// script can serve several steps and log usefully.
func (e *Engine) env(a *active, s *workflow.Step, att *history.Attempt) []string {
	env := make([]string, 0, len(e.opts.Env)+len(s.Env)+5)
	env = append(env, e.opts.Env...)
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+s.Env[k])
	}
	return append(env,
		"VIGIL_WORKFLOW="+a.name,
		"VIGIL_RUN_ID="+a.hdr.ID,
		"VIGIL_STEP="+s.Name,
		"VIGIL_ATTEMPT="+strconv.Itoa(att.Attempt),
		"VIGIL_STARTED_BY="+a.hdr.StartedBy,
	)
}

func (e *Engine) dir(s *workflow.Step) string {
	switch {
	case s.Dir == "":
		return e.opts.BaseDir
	case filepath.IsAbs(s.Dir) || e.opts.BaseDir == "":
		return s.Dir
	}
	return filepath.Join(e.opts.BaseDir, s.Dir)
}
