package notify

import (
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestUndeliveredSurviveARestart(t *testing.T) {
	state := t.TempDir()
	rcv := newHookReceiver(t, "k")
	var down atomic.Bool
	down.Store(true)
	rcv.fail = func(Payload, int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return 200
	}
	cfg := allTo(webhookTarget("hook", rcv.srv.URL, "k"))
	cfg.Routes = append(cfg.Routes, Route{Name: "crit", MinSeverity: "critical", Targets: []string{"hook"}})

	d := start(t, cfg, Options{StateDir: state})
	d.Notify(event(7, model.EventNodeDead, model.SeverityCritical))
	d.Notify(event(8, model.EventGroupFailed, model.SeverityWarning))
	d.Notify(event(9, model.EventLinkUp, model.SeverityInfo))
	waitFor(t, "a failed attempt", func() bool { return status(d.Dispatcher, "hook").LastError != "" })
	d.stop()

	// The receiver comes back while the agent is down; the restarted dispatcher finds the queue.
	d2, err := New(cfg, Options{StateDir: state, Node: "a", Cluster: "test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st := status(d2, "hook")
	if st.Queued != 3 || d2.LastIndex() != 9 || st.LastError == "" {
		t.Fatalf("after restart: %+v, last index %d", st, d2.LastIndex())
	}
	if p := d2.Undelivered(0); len(p) != 3 || p[0].Index != 7 || p[0].Attempts == 0 || !slices.Equal(p[0].Routes, []string{"all", "crit"}) {
		t.Fatalf("undelivered %+v", p)
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	down.Store(false)
	d3 := start(t, cfg, Options{StateDir: state})
	waitFor(t, "delivered after restart", func() bool { return status(d3.Dispatcher, "hook").Delivered == 3 })
	if got := rcv.delivered(); !slices.Equal(got, []uint64{7, 8, 9}) {
		t.Fatalf("delivered %v", got)
	}
	d3.stop()

	// Counters and progress persist; nothing is delivered twice.
	d4, err := New(cfg, Options{StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d4.Close()
	if st := status(d4, "hook"); st.Queued != 0 || st.Delivered != 3 || d4.LastIndex() != 9 {
		t.Fatalf("after second restart: %+v", st)
	}
}

func TestRemovedTargetQueueIsDiscarded(t *testing.T) {
	state := t.TempDir()
	cfg := allTo(webhookTarget("old", "http://127.0.0.1:1/", ""), Target{Name: "keep", Type: TypeScript, Command: []string{"/bin/false"}})
	d, err := New(cfg, Options{StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	d.Notify(event(1, model.EventNodeDead, model.SeverityCritical))
	if err := d.Close(); err != nil { // flushes without ever running
		t.Fatal(err)
	}
	cfg2 := allTo(Target{Name: "keep", Type: TypeScript, Command: []string{"/bin/false"}})
	cfg2.QueueSize = 1
	d2, err := New(cfg2, Options{StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if st := d2.Status(); len(st) != 1 || st[0].Queued != 1 {
		t.Fatalf("status %+v", st)
	}
	d2.Close()
	// A second dispatcher on the same spool is refused, not blocked for ever.
	spoolLockTimeout = 100 * time.Millisecond
	defer func() { spoolLockTimeout = 5 * time.Second }()
	d3, err := New(cfg2, Options{StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	if _, err := New(cfg2, Options{StateDir: state, Logger: testLogger(t)}); err == nil {
		t.Fatal("two dispatchers opened one spool")
	}
}
