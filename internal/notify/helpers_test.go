package notify

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/duration"
	"github.com/vigil-ha/vigil/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger sends the dispatcher's log to the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// running is a Dispatcher whose Run goroutine the test owns.
type running struct {
	*Dispatcher
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t *testing.T, cfg Config, opt Options) *running {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger(t)
	}
	if opt.Node == "" {
		opt.Node = "a"
	}
	if opt.Cluster == "" {
		opt.Cluster = "test"
	}
	if opt.RetryMin == 0 {
		opt.RetryMin, opt.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	}
	d, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Dispatcher: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop ends Run and closes the dispatcher; safe to call twice.
func (r *running) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		r.Close()
	})
}

func status(d *Dispatcher, name string) TargetStatus {
	for _, s := range d.Status() {
		if s.Name == name {
			return s
		}
	}
	return TargetStatus{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func event(index uint64, kind model.EventKind, sev model.Severity) model.Event {
	return model.Event{Index: index, Time: time.Now(), Kind: kind, Severity: sev, Reporter: "a", Node: "b",
		Reason: "no heartbeat for 2s"}
}

// allTo routes every event to the named targets.
func allTo(targets ...Target) Config {
	var names []string
	for _, t := range targets {
		names = append(names, t.Name)
	}
	return Config{Routes: []Route{{Name: "all", Targets: names}}, Targets: targets}
}

func dur(d time.Duration) duration.Duration { return duration.Duration(d) }
