package workflow

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/duration"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func sec(n int) duration.Duration { return duration.Duration(time.Duration(n) * time.Second) }

func cmdStep(name string) Step { return Step{Name: name, Command: []string{"true"}} }

// script drives a Run on a simulated clock: every exec takes one second and exits
// with the next code listed for its step (0 once the list is used up).
type script struct {
	codes     map[string][]int
	continues int // Continue calls granted to a step-by-step run; then the trace stops
}

func (sc script) drive(t *testing.T, r *Run) []string {
	t.Helper()
	now := t0
	used := map[string]int{}
	var trace []string
	at := func() string { return fmt.Sprintf("%s", now.Sub(t0)) }
	for i := 0; i < 1000; i++ {
		a := r.Next(now)
		switch a.Kind {
		case ActWait:
			if !a.At.After(now) {
				t.Fatalf("wait until %v at %v: would spin", a.At, now)
			}
			now = a.At
		case ActExec:
			codes := sc.codes[a.Step]
			code := 0
			if n := used[a.Step]; n < len(codes) {
				code = codes[n]
			}
			used[a.Step]++
			line := fmt.Sprintf("%s exec %s#%d", at(), a.Step, a.Attempt)
			if a.Check > 0 {
				line += fmt.Sprintf(" check %d", a.Check)
			}
			now = now.Add(time.Second)
			tr, err := r.StepDone(code, now)
			if err != nil {
				t.Fatal(err)
			}
			line += fmt.Sprintf(" exit %d %s %s", code, tr.Kind, tr.Target)
			if tr.Commit {
				line += " commit"
			}
			if tr.Quiet {
				line += " quiet"
			}
			trace = append(trace, strings.TrimRight(line, " "))
		case ActPause:
			trace = append(trace, fmt.Sprintf("%s pause before %s", at(), a.Step))
			if sc.continues == 0 {
				return trace
			}
			sc.continues--
			if err := r.Continue(now); err != nil {
				t.Fatal(err)
			}
		case ActDone:
			return append(trace, fmt.Sprintf("%s %s", at(), a.Result))
		default:
			t.Fatalf("unexpected action %v", a.Kind)
		}
	}
	t.Fatal("run did not finish in 1000 actions")
	return nil
}

func TestRunTransitions(t *testing.T) {
	abc := Workflow{Name: "w", Steps: []Step{cmdStep("a"), cmdStep("b"), cmdStep("c")}}
	with := func(w Workflow, f func(w *Workflow)) Workflow {
		w.Steps = append([]Step(nil), w.Steps...)
		f(&w)
		return w
	}
	repair := Workflow{Name: "w", Steps: []Step{
		{Name: "a", Command: []string{"check"}, On: map[string]string{"0": "next", "3": "repair", "default": "abend"}},
		{Name: "b", Command: []string{"x"}, On: map[string]string{"0": "end"}},
		{Name: "repair", Command: []string{"fix"}, WaitBefore: sec(5), On: map[string]string{"0": "a"}},
	}}
	watch := Workflow{Name: "w", Steps: []Step{
		{Name: "start", Command: []string{"start"}},
		{Name: "health", Command: []string{"check"}, Commit: true, Watch: &Watch{Interval: sec(30)}, On: map[string]string{"default": "restart"}},
		{Name: "restart", Command: []string{"restart"}, On: map[string]string{"0": "health", "default": "abend"}},
	}}
	cases := []struct {
		name  string
		w     Workflow
		opts  RunOptions
		sc    script
		trace string
	}{
		{"all succeed: each 0 goes to the next, end after the last", abc, RunOptions{}, script{}, `
0s exec a#1 exit 0 leave b
1s exec b#1 exit 0 leave c
2s exec c#1 exit 0 leave end
3s ended`},
		{"non-zero without on: abend", abc, RunOptions{}, script{codes: map[string][]int{"b": {2}}}, `
0s exec a#1 exit 0 leave b
1s exec b#1 exit 2 leave abend
2s abended`},
		{"exit code picks the repair step; wait_before paces the loop", repair, RunOptions{}, script{codes: map[string][]int{"a": {3, 0}}}, `
0s exec a#1 exit 3 leave repair
6s exec repair#1 exit 0 leave a
7s exec a#1 exit 0 leave b
8s exec b#1 exit 0 leave end
9s ended`},
		{"an unlisted code takes default", repair, RunOptions{}, script{codes: map[string][]int{"a": {9}}}, `
0s exec a#1 exit 9 leave abend
1s abended`},
		{"listed targets win over default; only 0 listed means others abend", repair, RunOptions{}, script{codes: map[string][]int{"b": {1}}}, `
0s exec a#1 exit 0 leave b
1s exec b#1 exit 1 leave abend
2s abended`},
		{"default does not swallow exit 0", with(abc, func(w *Workflow) {
			w.Steps[0].On = map[string]string{"default": "c"}
		}), RunOptions{}, script{}, `
0s exec a#1 exit 0 leave b
1s exec b#1 exit 0 leave c
2s exec c#1 exit 0 leave end
3s ended`},
		{"no exit code (timeout) takes default", with(abc, func(w *Workflow) {
			w.Steps[0].On = map[string]string{"0": "b", "default": "c"}
		}), RunOptions{}, script{codes: map[string][]int{"a": {-1}}}, `
0s exec a#1 exit -1 leave c
1s exec c#1 exit 0 leave end
2s ended`},
		{"explicit end and abend", with(abc, func(w *Workflow) {
			w.Steps[0].On = map[string]string{"0": "end", "1": "abend"}
		}), RunOptions{}, script{}, `
0s exec a#1 exit 0 leave end
1s ended`},
		{"retries with delay until success", with(abc, func(w *Workflow) {
			w.Steps[1].Retries, w.Steps[1].RetryDelay = 2, sec(5)
		}), RunOptions{}, script{codes: map[string][]int{"b": {1, 4, 0}}}, `
0s exec a#1 exit 0 leave b
1s exec b#1 exit 1 retry b
7s exec b#2 exit 4 retry b
13s exec b#3 exit 0 leave c
14s exec c#1 exit 0 leave end
15s ended`},
		{"retries exhausted: the last code decides", with(abc, func(w *Workflow) {
			w.Steps[0].Retries = 1
			w.Steps[0].On = map[string]string{"3": "c"}
		}), RunOptions{}, script{codes: map[string][]int{"a": {1, 3}}}, `
0s exec a#1 exit 1 retry a
1s exec a#2 exit 3 leave c
2s exec c#1 exit 0 leave end
3s ended`},
		{"wait_before delays the step each time it is entered", with(abc, func(w *Workflow) {
			w.Steps[1].WaitBefore = sec(10)
		}), RunOptions{}, script{}, `
0s exec a#1 exit 0 leave b
11s exec b#1 exit 0 leave c
12s exec c#1 exit 0 leave end
13s ended`},
		{"first names the starting step", with(abc, func(w *Workflow) { w.First = "b" }), RunOptions{}, script{}, `
0s exec b#1 exit 0 leave c
1s exec c#1 exit 0 leave end
2s ended`},
		{"from a step", abc, RunOptions{From: "c"}, script{}, `
0s exec c#1 exit 0 leave end
1s ended`},
		{"only one step: success ends", abc, RunOptions{OnlyStep: "b"}, script{}, `
0s exec b#1 exit 0 leave c
1s ended`},
		{"only one step: abend abends", abc, RunOptions{OnlyStep: "b"}, script{codes: map[string][]int{"b": {5}}}, `
0s exec b#1 exit 5 leave abend
1s abended`},
		{"only one step: a handled code ends", repair, RunOptions{OnlyStep: "a"}, script{codes: map[string][]int{"a": {3}}}, `
0s exec a#1 exit 3 leave repair
1s ended`},
		{"only one step keeps its wait and retries", with(abc, func(w *Workflow) {
			w.Steps[1].WaitBefore, w.Steps[1].Retries = sec(2), 1
		}), RunOptions{OnlyStep: "b"}, script{codes: map[string][]int{"b": {1, 0}}}, `
2s exec b#1 exit 1 retry b
3s exec b#2 exit 0 leave c
4s ended`},
		{"step by step pauses after each step", abc, RunOptions{StepByStep: true}, script{continues: 5}, `
0s exec a#1 exit 0 leave b
1s pause before b
1s exec b#1 exit 0 leave c
2s pause before c
2s exec c#1 exit 0 leave end
3s ended`},
		{"step by step waits for the operator", abc, RunOptions{StepByStep: true, From: "b"}, script{}, `
0s exec b#1 exit 0 leave c
1s pause before c`},
		{"watch: passing checks stay, quietly after the first; a failure leaves", watch, RunOptions{}, script{codes: map[string][]int{"health": {0, 0, 0, 7, 0, 0, 7}, "restart": {0, 1}}}, `
0s exec start#1 exit 0 leave health
1s exec health#1 check 1 exit 0 watch health commit
32s exec health#1 check 2 exit 0 watch health quiet
1m3s exec health#1 check 3 exit 0 watch health quiet
1m34s exec health#1 check 4 exit 7 leave restart
1m35s exec restart#1 exit 0 leave health
1m36s exec health#1 check 1 exit 0 watch health commit
2m7s exec health#1 check 2 exit 0 watch health quiet
2m38s exec health#1 check 3 exit 7 leave restart
2m39s exec restart#1 exit 1 leave abend
2m40s abended`},
		{"watch: retries absorb a single bad check", with(watch, func(w *Workflow) {
			w.Steps[1].Retries, w.Steps[1].RetryDelay = 1, sec(3)
			w.Steps[1].Commit = false
		}), RunOptions{}, script{codes: map[string][]int{"health": {0, 7, 0, 7, 7}, "restart": {1}}}, `
0s exec start#1 exit 0 leave health
1s exec health#1 check 1 exit 0 watch health
32s exec health#1 check 2 exit 7 retry health
36s exec health#2 check 3 exit 0 watch health quiet
1m7s exec health#1 check 4 exit 7 retry health
1m11s exec health#2 check 5 exit 7 leave restart
1m12s exec restart#1 exit 1 leave abend
1m13s abended`},
		{"watch: while lists the codes that keep watching", with(watch, func(w *Workflow) {
			w.Steps[1].Watch = &Watch{Interval: sec(10), While: []int{0, 1}}
			w.Steps[1].On = map[string]string{"2": "end"}
			w.Steps[1].Commit = false
		}), RunOptions{}, script{codes: map[string][]int{"health": {1, 0, 2}}}, `
0s exec start#1 exit 0 leave health
1s exec health#1 check 1 exit 1 watch health
12s exec health#1 check 2 exit 0 watch health quiet
23s exec health#1 check 3 exit 2 leave end
24s ended`},
		{"commit on a step that leaves successfully", with(abc, func(w *Workflow) {
			w.Steps[1].Commit = true
		}), RunOptions{}, script{}, `
0s exec a#1 exit 0 leave b
1s exec b#1 exit 0 leave c commit
2s exec c#1 exit 0 leave end
3s ended`},
		{"no commit when the step abends", with(abc, func(w *Workflow) {
			w.Steps[0].Commit = true
		}), RunOptions{}, script{codes: map[string][]int{"a": {1}}}, `
0s exec a#1 exit 1 leave abend
1s abended`},
		{"a pure wait step exits 0 after its wait", Workflow{Name: "w", Steps: []Step{
			cmdStep("a"), {Name: "cooldown", WaitBefore: sec(3600)},
		}}, RunOptions{}, script{}, `
0s exec a#1 exit 0 leave cooldown
1h0m1s exec cooldown#1 exit 0 leave end
1h0m2s ended`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRun(tc.w, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(tc.sc.drive(t, r), "\n")
			want := strings.TrimSpace(tc.trace)
			if got != want {
				t.Fatalf("trace:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestRunIsDeterministic(t *testing.T) {
	w := Workflow{Name: "w", Steps: []Step{
		{Name: "a", Command: []string{"x"}, Retries: 3, RetryDelay: sec(1), On: map[string]string{"3": "b"}},
		{Name: "b", Command: []string{"x"}, Watch: &Watch{Interval: sec(5)}, On: map[string]string{"default": "a"}},
	}}
	sc := script{codes: map[string][]int{"a": {1, 3, 0, 1, 1, 1, 1}, "b": {0, 0, 1}}}
	var traces []string
	for i := 0; i < 3; i++ {
		r, err := NewRun(w, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		traces = append(traces, strings.Join(sc.drive(t, r), "\n"))
	}
	if traces[0] != traces[1] || traces[1] != traces[2] {
		t.Fatalf("same inputs, different runs:\n%s\n---\n%s", traces[0], traces[1])
	}
}

func TestRunStop(t *testing.T) {
	w := Workflow{Name: "w", Steps: []Step{cmdStep("a"), {Name: "b", Command: []string{"x"}, WaitBefore: sec(60)}, cmdStep("c")}}

	t.Run("while executing: stopped when the killed step reports", func(t *testing.T) {
		r, _ := NewRun(w, RunOptions{})
		if a := r.Next(t0); a.Kind != ActExec || a.Step != "a" {
			t.Fatalf("got %+v", a)
		}
		stopping, err := r.Stop()
		if err != nil || !stopping {
			t.Fatalf("stop: %v %v", stopping, err)
		}
		if a := r.Next(t0); a.Kind != ActAwait {
			t.Fatalf("still awaiting the killed step, got %v", a.Kind)
		}
		tr, err := r.StepDone(-1, t0.Add(time.Second))
		if err != nil || tr.Kind != TransStopped || tr.Result != ResultStopped {
			t.Fatalf("got %+v %v", tr, err)
		}
		if a := r.Next(t0); a.Kind != ActDone || a.Result != ResultStopped {
			t.Fatalf("got %+v", a)
		}
		if _, err := r.Stop(); !errors.Is(err, ErrFinished) {
			t.Fatalf("second stop: %v", err)
		}
	})
	t.Run("while waiting: stopped at once", func(t *testing.T) {
		r, _ := NewRun(w, RunOptions{})
		r.Next(t0)
		if _, err := r.StepDone(0, t0); err != nil {
			t.Fatal(err)
		}
		if a := r.Next(t0); a.Kind != ActWait || a.Step != "b" || !a.At.Equal(t0.Add(time.Minute)) {
			t.Fatalf("got %+v", a)
		}
		if stopping, err := r.Stop(); stopping || err != nil {
			t.Fatalf("stop: %v %v", stopping, err)
		}
		if a := r.Next(t0.Add(time.Hour)); a.Kind != ActDone || a.Result != ResultStopped {
			t.Fatalf("got %+v", a)
		}
	})
	t.Run("while paused", func(t *testing.T) {
		r, _ := NewRun(w, RunOptions{StepByStep: true})
		r.Next(t0)
		r.StepDone(0, t0)
		if a := r.Next(t0); a.Kind != ActPause {
			t.Fatalf("got %+v", a)
		}
		r.Stop()
		if st := r.State(); st.Result != ResultStopped || st.Phase != "done" {
			t.Fatalf("state %+v", st)
		}
	})
}

func TestRunMisuse(t *testing.T) {
	w := Workflow{Name: "w", Steps: []Step{cmdStep("a"), cmdStep("b")}}
	if _, err := NewRun(w, RunOptions{From: "zz"}); err == nil {
		t.Fatal("unknown from accepted")
	}
	if _, err := NewRun(w, RunOptions{OnlyStep: "zz"}); err == nil {
		t.Fatal("unknown only-step accepted")
	}
	if _, err := NewRun(w, RunOptions{From: "a", OnlyStep: "b"}); err == nil {
		t.Fatal("disagreeing from and only-step accepted")
	}
	bad := Workflow{Name: "w", Steps: []Step{{Name: "a", Command: []string{"x"}, On: map[string]string{"0": "nowhere"}}}}
	if _, err := NewRun(bad, RunOptions{}); err == nil {
		t.Fatal("invalid workflow accepted")
	}
	r, err := NewRun(w, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.StepDone(0, t0); !errors.Is(err, ErrNotExecuting) {
		t.Fatalf("StepDone before exec: %v", err)
	}
	if err := r.Continue(t0); !errors.Is(err, ErrNotPaused) {
		t.Fatalf("Continue when not paused: %v", err)
	}
	r.Next(t0)
	if a := r.Next(t0); a.Kind != ActAwait {
		t.Fatalf("second Next while executing: %v", a.Kind)
	}
	if st := r.State(); st.Phase != "executing" || st.Step != "a" {
		t.Fatalf("state %+v", st)
	}
}

func TestRunDoesNotShareTheDefinition(t *testing.T) {
	w := Workflow{Name: "w", Steps: []Step{cmdStep("a"), cmdStep("b")}}
	r, _ := NewRun(w, RunOptions{})
	w.Steps[1].Name = "renamed"
	r.Next(t0)
	r.StepDone(0, t0)
	if a := r.Next(t0); a.Step != "b" {
		// Steps is a slice; NewRun's copy must not alias the caller's array.
		t.Fatalf("run followed an edit of the caller's workflow: %+v", a)
	}
}
