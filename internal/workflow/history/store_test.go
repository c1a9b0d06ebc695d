package history

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/workflow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func openStore(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "runs.db")
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *Store, r Run, as ...Attempt) {
	t.Helper()
	if err := s.Put(r, as...); err != nil {
		t.Fatal(err)
	}
}

func TestIDsAreUniqueAndOrderedEvenWhenTheClockStepsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	s := openStore(t, path, Options{})
	a, b, c := s.NewID(t0), s.NewID(t0), s.NewID(t0.Add(-time.Hour))
	if !(a < b && b < c) {
		t.Fatalf("ids %s %s %s", a, b, c)
	}
	if a != "20250304T050607.000000Z" {
		t.Fatalf("id format %s", a)
	}
	put(t, s, Run{ID: c, Workflow: "w", Result: workflow.ResultEnded})
	s.Close()
	// After a restart with a clock behind the stored ids.
	s2 := openStore(t, path, Options{})
	if d := s2.NewID(t0.Add(-24 * time.Hour)); d <= c {
		t.Fatalf("id %s after reopen is not after %s", d, c)
	}
}

func TestPutAndRead(t *testing.T) {
	s := openStore(t, "", Options{})
	id := s.NewID(t0)
	r := Run{ID: id, Workflow: "w", StartedBy: "operator", Options: workflow.RunOptions{From: "b"}, Started: t0, Result: workflow.ResultRunning, Phase: "executing", Step: "b"}
	put(t, s, r, Attempt{Seq: 1, Step: "b", Attempt: 1, Command: []string{"true"}, Started: t0})
	// The attempt's end and the next step's start, in one transaction.
	r.Step = "c"
	put(t, s, r,
		Attempt{Seq: 1, Step: "b", Attempt: 1, Command: []string{"true"}, Started: t0, Ended: t0.Add(time.Second), Duration: time.Second, ExitCode: 3, Output: "out", Transition: "leave", Target: "c"},
		Attempt{Seq: 2, Step: "c", Attempt: 1, Started: t0.Add(time.Second)})
	got, err := s.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != "c" || got.Options.From != "b" || got.StartedBy != "operator" || len(got.Steps) != 2 {
		t.Fatalf("run %+v", got)
	}
	if a := got.Steps[0]; a.ExitCode != 3 || a.Output != "out" || a.Duration != time.Second || a.Target != "c" || !a.Ended.Equal(t0.Add(time.Second)) {
		t.Fatalf("attempt %+v", a)
	}
	if _, err := s.Run("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing run: %v", err)
	}
	if err := s.Put(r, Attempt{Step: "x"}); err == nil {
		t.Fatal("attempt without seq accepted")
	}
}

func TestRunsFilterAndPaging(t *testing.T) {
	s := openStore(t, "", Options{})
	var ids []string
	for i := 0; i < 10; i++ {
		id := s.NewID(t0.Add(time.Duration(i) * time.Second))
		ids = append(ids, id)
		res := workflow.ResultEnded
		if i%3 == 0 {
			res = workflow.ResultAbended
		}
		put(t, s, Run{ID: id, Workflow: fmt.Sprintf("w%d", i%2), Result: res})
	}
	all, err := s.Runs(Filter{}, 0)
	if err != nil || len(all) != 10 || all[0].ID != ids[9] || all[9].ID != ids[0] {
		t.Fatalf("all: %v %d", err, len(all))
	}
	page, _ := s.Runs(Filter{}, 3)
	next, _ := s.Runs(Filter{Before: page[2].ID}, 3)
	if len(page) != 3 || len(next) != 3 || next[0].ID != ids[6] {
		t.Fatalf("paging: %v then %v", page, next)
	}
	w1, _ := s.Runs(Filter{Workflow: "w1"}, 0)
	abended, _ := s.Runs(Filter{Result: workflow.ResultAbended}, 0)
	if len(w1) != 5 || len(abended) != 4 {
		t.Fatalf("w1 %d abended %d", len(w1), len(abended))
	}
	if tail, _ := s.Runs(Filter{Before: "0"}, 0); len(tail) != 0 {
		t.Fatalf("before the first: %v", tail)
	}
	if tail, _ := s.Runs(Filter{Before: "9"}, 0); len(tail) != 10 {
		t.Fatalf("before after the last: %d", len(tail))
	}
}

func TestOldRunsArePrunedButNeverARunningOne(t *testing.T) {
	s := openStore(t, "", Options{KeepRuns: 3})
	running := s.NewID(t0)
	put(t, s, Run{ID: running, Workflow: "w", Result: workflow.ResultRunning}, Attempt{Seq: 1, Step: "a"})
	var ids []string
	for i := 1; i <= 5; i++ {
		id := s.NewID(t0.Add(time.Duration(i) * time.Second))
		ids = append(ids, id)
		put(t, s, Run{ID: id, Workflow: "w", Result: workflow.ResultEnded}, Attempt{Seq: 1, Step: "a"})
	}
	all, _ := s.Runs(Filter{}, 0)
	if len(all) != 3 || all[2].ID != running || all[0].ID != ids[4] || all[1].ID != ids[3] {
		t.Fatalf("kept %v", all)
	}
	if _, err := s.Run(ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned run still readable: %v", err)
	}
}

func TestARunKeepsItsLatestAttempts(t *testing.T) {
	s := openStore(t, "", Options{KeepAttempts: 5})
	id := s.NewID(t0)
	for i := 1; i <= 12; i++ {
		put(t, s, Run{ID: id, Workflow: "w", Result: workflow.ResultRunning}, Attempt{Seq: i, Step: "a"})
	}
	r, _ := s.Run(id)
	if len(r.Steps) != 5 || r.Steps[0].Seq != 8 || r.Steps[4].Seq != 12 {
		t.Fatalf("kept %+v", r.Steps)
	}
}

func TestRecover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	s := openStore(t, path, Options{})
	done, open, idle := s.NewID(t0), s.NewID(t0), s.NewID(t0)
	put(t, s, Run{ID: done, Workflow: "a", Started: t0, Result: workflow.ResultEnded})
	put(t, s, Run{ID: open, Workflow: "b", Started: t0, Result: workflow.ResultRunning}, Attempt{Seq: 1, Step: "x", Started: t0.Add(time.Second)})
	put(t, s, Run{ID: idle, Workflow: "c", Started: t0, Result: workflow.ResultRunning, Phase: "paused"},
		Attempt{Seq: 1, Step: "x", Started: t0, Ended: t0.Add(2 * time.Second), Transition: "leave", Target: "y"})
	s.Close()

	s = openStore(t, path, Options{})
	ids, err := s.Recover(t0.Add(time.Hour), "crashed")
	if err != nil || len(ids) != 2 {
		t.Fatalf("recovered %v %v", ids, err)
	}
	r, _ := s.Run(open)
	if r.Result != workflow.ResultInterrupted || r.Note == "" || !r.Ended.Equal(t0.Add(time.Second)) || r.Steps[0].ExitCode != -1 || r.Steps[0].Error != "interrupted: crashed" {
		t.Fatalf("open attempt run %+v", r)
	}
	r, _ = s.Run(idle)
	if r.Result != workflow.ResultInterrupted || r.Phase != "" || !r.Ended.Equal(t0.Add(2*time.Second)) || r.Steps[0].Error != "" {
		t.Fatalf("paused run %+v", r)
	}
	if r, _ := s.Run(done); r.Result != workflow.ResultEnded {
		t.Fatalf("finished run touched: %+v", r)
	}
	if ids, _ := s.Recover(t0, "again"); len(ids) != 0 {
		t.Fatalf("second recovery found %v", ids)
	}
}

func TestConcurrentWritersShareTransactions(t *testing.T) {
	s := openStore(t, "", Options{})
	const runs, steps = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := 0; i < runs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := Run{ID: s.NewID(t0), Workflow: fmt.Sprintf("w%d", i), Result: workflow.ResultRunning}
			for j := 1; j <= steps; j++ {
				if j == steps {
					r.Result = workflow.ResultEnded
				}
				if err := s.Put(r, Attempt{Seq: j, Step: "s"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, _ := s.Runs(Filter{Result: workflow.ResultEnded}, 0)
	if len(all) != runs {
		t.Fatalf("%d runs ended", len(all))
	}
	for _, r := range all {
		full, _ := s.Run(r.ID)
		if len(full.Steps) != steps {
			t.Fatalf("run %s has %d attempts", r.ID, len(full.Steps))
		}
	}
}

func TestPutAfterClose(t *testing.T) {
	s := openStore(t, "", Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(Run{ID: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestASecondOpenerTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	openStore(t, path, Options{})
	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); err == nil {
		t.Fatal("two stores on one file")
	}
}
