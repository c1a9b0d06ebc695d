package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildVigil builds the real binary: the agents must be separate processes.
func buildVigil(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build vigil with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "vigil")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/vigil-ha/vigil/cmd/vigil")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestSmokeDetectionTuned runs `vigil bench detection --trials 2 --timing tuned`
// end to end. It checks that the benchmark works and cleans up, not how fast
// detection is: figures belong to benchmarks, never to tests.
func TestSmokeDetectionTuned(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	bin := buildVigil(t)
	parent := t.TempDir()
	jsonPath := filepath.Join(t.TempDir(), "out", "detection.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "detection", "--trials", "2", "--timing", "tuned", "--json", jsonPath, "--dir", parent)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vigil bench detection: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "detected (ms)") {
		t.Errorf("no table on stdout:\n%s", stdout.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res DetectionResult
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("results JSON: %v\n%s", err, data)
	}
	if res.Trials != 2 || len(res.Results) != 2 || res.Missed != 0 || res.Detection.N != 2 {
		t.Fatalf("results: %+v", res)
	}
	if res.Timing.DeadtimeMS != 500 || res.Timing.KeepaliveMS != 50 {
		t.Errorf("timing %+v, want the tuned preset", res.Timing)
	}
	if res.Results[0].Victim == res.Results[1].Victim {
		t.Errorf("both trials killed %s; they should alternate", res.Results[0].Victim)
	}
	for _, tr := range res.Results {
		// Causality, not speed: the death cannot be seen before the kill.
		if tr.DetectedMS <= 0 || tr.DetectedBy == "" || tr.DetectedBy == tr.Victim {
			t.Errorf("trial %+v", tr)
		}
	}
	assertCleanedUp(t, parent)
}

// TestIdleStopsOnCancel checks that cancelling (what Ctrl-C does) kills the
// agents and removes the cluster directory.
func TestIdleStopsOnCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	bin := buildVigil(t)
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Only Idle's goroutine writes progress; the test reads it after done.
	var progress bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := Idle(ctx, IdleOptions{Cluster: ClusterOptions{Binary: bin, Timing: TimingTuned, Parent: parent, Progress: &progress},
			Duration: time.Minute, Warmup: time.Second})
		done <- err
	}()
	// Cancel once the agents run; the exact moment does not matter.
	deadline := time.Now().Add(time.Minute)
	for len(agentPIDs(t, parent)) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Idle after cancel: %v\n%s", err, progress.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("Idle did not return after cancel")
	}
	assertCleanedUp(t, parent)
}

func assertCleanedUp(t *testing.T, parent string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("cluster directory left behind: %v", entries)
	}
	if pids := agentPIDs(t, parent); len(pids) != 0 {
		t.Errorf("agents still running: %v", pids)
	}
}

// agentPIDs finds processes whose command line names a path under parent.
func agentPIDs(t *testing.T, parent string) []string {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var out []string
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(parent)) {
			continue
		}
		// A zombie has an empty cmdline, so a match is a live process.
		out = append(out, d.Name())
	}
	return out
}
