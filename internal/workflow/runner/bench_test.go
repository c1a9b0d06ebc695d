package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/runexec"
	"github.com/vigil-ha/vigil/internal/workflow"
)

// BenchmarkStepOverhead compares a workflow of 100 `true` steps with 100 direct
// runexec.Run calls of `true`. The difference is what the engine adds per step: the
// state machine, one synced history transaction, the goroutine hand-offs.
func BenchmarkStepOverhead(b *testing.B) {
	const steps = 100
	w := workflow.Workflow{Name: "hundred"}
	for i := 0; i < steps; i++ {
		w.Steps = append(w.Steps, workflow.Step{Name: fmt.Sprintf("s%03d", i), Command: []string{"true"}})
	}
	e, err := Open(Options{Path: filepath.Join(b.TempDir(), "runs.db"), Workflows: []workflow.Workflow{w}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	var inEngine, direct time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		id, err := e.Start("hundred", workflow.RunOptions{}, "bench")
		if err != nil {
			b.Fatal(err)
		}
		r, err := e.Wait(ctx, id)
		if err != nil || r.Result != workflow.ResultEnded {
			b.Fatalf("run %s: %v", r.Result, err)
		}
		inEngine += time.Since(t0)

		t0 = time.Now()
		for j := 0; j < steps; j++ {
			res, err := runexec.Run(ctx, runexec.Cmd{Argv: []string{"true"}, MaxOutput: DefaultMaxOutput})
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("direct: %v %+v", err, res)
			}
		}
		direct += time.Since(t0)
	}
	n := float64(b.N * steps)
	perEngine := float64(inEngine.Microseconds()) / n
	perDirect := float64(direct.Microseconds()) / n
	b.ReportMetric(perEngine, "µs/step-workflow")
	b.ReportMetric(perDirect, "µs/step-direct")
	b.ReportMetric(perEngine-perDirect, "µs/step-overhead")
}

// BenchmarkConcurrentRuns starts 500 runs of 500 different workflows (two `true`
// steps each) at once and waits for all of them.
func BenchmarkConcurrentRuns(b *testing.B) {
	const runs = 500
	var ws []workflow.Workflow
	for i := 0; i < runs; i++ {
		ws = append(ws, workflow.Workflow{Name: fmt.Sprintf("w%03d", i), Steps: []workflow.Step{
			{Name: "a", Command: []string{"true"}}, {Name: "b", Command: []string{"true"}},
		}})
	}
	e, err := Open(Options{Path: filepath.Join(b.TempDir(), "runs.db"), Workflows: ws, KeepRuns: 10 * runs})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()

	// Peak heap, sampled while the runs are in flight.
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Started concurrently, as requests from the API and the decision engine
		// would be: their durable first writes share transactions.
		ids := make([]string, runs)
		var starts sync.WaitGroup
		for k, w := range ws {
			starts.Add(1)
			go func() {
				defer starts.Done()
				id, err := e.Start(w.Name, workflow.RunOptions{}, "bench")
				if err != nil {
					b.Error(err)
				}
				ids[k] = id
			}()
		}
		starts.Wait()
		if b.Failed() {
			b.FailNow()
		}
		for _, id := range ids {
			r, err := e.Wait(ctx, id)
			if err != nil || r.Result != workflow.ResultEnded {
				b.Fatalf("run %s: %s %v", id, r.Result, err)
			}
		}
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	runtime.ReadMemStats(&after)
	close(stop)
	sampler.Wait()

	// Baseline: the same 1000 commands run directly by 500 goroutines.
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < runs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 2; j++ {
				if _, err := runexec.Run(ctx, runexec.Cmd{Argv: []string{"true"}, MaxOutput: DefaultMaxOutput}); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms/500-direct")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MB-alloc/500runs")
	b.ReportMetric(float64(peak.Load())/(1<<20), "MB-peak-heap")
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/500runs")
}
