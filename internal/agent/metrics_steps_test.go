package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
	"github.com/vigil-ha/vigil/internal/workflow/runner"
)

func TestWorkflowStepDurations(t *testing.T) {
	a := &Agent{}
	t0 := time.Now()
	updates := make(chan runner.Update, 3)
	run := history.Run{ID: "r1", Workflow: "restart", Result: workflow.ResultRunning, Phase: "executing"}
	updates <- runner.Update{Run: run, Attempts: []history.Attempt{
		{Seq: 1, Step: "stop", Started: t0, Ended: t0.Add(2 * time.Second), Duration: 2 * time.Second, ExitCode: 0},
		{Seq: 2, Step: "start", Started: t0.Add(2 * time.Second)}, // still running: not counted
	}}
	updates <- runner.Update{Run: run, Attempts: []history.Attempt{
		{Seq: 3, Step: "start", Started: t0, Ended: t0.Add(40 * time.Millisecond), ExitCode: -1, TimedOut: true},
	}}
	updates <- runner.Update{Run: run}
	close(updates)
	a.forwardRuns(context.Background(), updates)

	reg := prometheus.NewRegistry()
	reg.MustRegister(a.steps.vec())
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].Metric) != 2 {
		t.Fatalf("%v %d", err, len(mfs))
	}
	got := map[string]float64{}
	for _, m := range mfs[0].Metric {
		var labels []string
		for _, l := range m.Label {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		got[strings.Join(labels, ",")] = m.Histogram.GetSampleSum()
		if m.Histogram.GetSampleCount() != 1 {
			t.Errorf("%v: %d samples", labels, m.Histogram.GetSampleCount())
		}
	}
	if got["exit=0,step=stop,workflow=restart"] != 2 || got["exit=-1,step=start,workflow=restart"] != 0.04 {
		t.Errorf("got %v", got)
	}
}
