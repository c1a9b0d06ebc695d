package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
	rsync "github.com/vigil-ha/vigil/internal/resource/sync"
)

// TestSyncLagMetric: a running sync resource's lag is served per target, with
// the failing pass's error in LocalSync; a stopped one's is not. The target is
// on loopback, where no rsync daemon listens: the pass fails at once.
func TestSyncLagMetric(t *testing.T) {
	cfg := &config.Config{Nodes: []config.Node{
		{Name: "a", Addresses: []string{"127.0.0.1"}},
		{Name: "b", Addresses: []string{"127.0.0.1"}},
	}}
	a := &Agent{cfg: cfg, self: cfg.Nodes[0], log: slog.New(slog.DiscardHandler)}
	g := config.Group{Name: "web", Nodes: []string{"a", "b"}}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := config.Resource{Name: "data", Type: "sync", Paths: []string{t.TempDir()}, Interval: config.Duration(time.Hour),
		Transport: "rsyncd", SecretsFile: pw}
	res, err := resourceTypes["sync"](a, g, r)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(syncLagCollector{a})
	series := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
		}
		return n
	}
	if n := series(); n != 0 {
		t.Fatalf("%d lag series before start", n)
	}
	if ss := a.LocalSync(); len(ss) != 0 {
		t.Fatalf("LocalSync before start: %+v", ss)
	}
	// The syncer itself: the wrapper's Start asks the (absent) store about a takeover.
	if _, err := res.(*syncResource).Syncer.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "vigil_sync_lag_seconds" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one vigil_sync_lag_seconds series", mfs)
	}
	labels := map[string]string{}
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if fmt.Sprint(labels) != fmt.Sprint(map[string]string{"group": "web", "resource": "data", "target": "b"}) {
		t.Fatalf("labels %v", labels)
	}
	// The first pass fails (nothing listens): the error shows, the lag counts from the start.
	deadline := time.Now().Add(30 * time.Second)
	var ss []model.SyncStatus
	for {
		ss = a.LocalSync()
		if len(ss) == 1 && ss[0].Error != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed pass reported: %+v", ss)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := ss[0]; s.Group != "web" || s.Resource != "data" || s.Source != "a" || s.Target != "b" || s.LastPass != nil || s.LagSeconds <= 0 {
		t.Fatalf("LocalSync = %+v", s)
	}
	if _, err := res.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := series(); n != 0 {
		t.Fatalf("%d lag series after stop", n)
	}
}

// TestDataLossEvent: the window runs from the copy's stamp to when its sender
// was last heard, or to the takeover when that is unknown; the widest path is
// the one reported, and a path without a copy is said so.
func TestDataLossEvent(t *testing.T) {
	now := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	copies := []rsync.Copy{
		{Path: "/srv/www", Stamp: rsync.Stamp{From: "a", Time: now.Add(-5 * time.Second)}},
		{Path: "/srv/mail", Stamp: rsync.Stamp{From: "a", Time: now.Add(-4 * time.Second)}},
	}
	heard := map[string]time.Time{"a": now.Add(-3 * time.Second)}
	ev := dataLossEvent("web", "data", "b", copies, heard, now)
	if ev.Kind != model.EventDataLossWindow || ev.Group != "web" || ev.Resource != "data" || ev.Reporter != "b" || ev.Node != "a" {
		t.Fatalf("event %+v", ev)
	}
	if !strings.Contains(ev.Reason, "data-loss window up to 2s") || !strings.Contains(ev.Reason, "/srv/www") {
		t.Fatalf("reason %q, want the 2 s window of /srv/www (stamp -5 s, last heard -3 s)", ev.Reason)
	}
	if !strings.Contains(ev.Output, "/srv/mail") || !strings.Contains(ev.Output, "up to 1s of writes on a") {
		t.Fatalf("output %q", ev.Output)
	}

	// Sender never heard: up to now.
	ev = dataLossEvent("web", "data", "b", copies[:1], nil, now)
	if !strings.Contains(ev.Reason, "up to 5s") {
		t.Fatalf("reason %q, want 5 s", ev.Reason)
	}

	// No copy at all.
	ev = dataLossEvent("web", "data", "b", []rsync.Copy{{Path: "/srv/www", Err: fmt.Errorf("read sync stamp: %w", os.ErrNotExist)}}, heard, now)
	if !strings.Contains(ev.Reason, "no replicated copy") || !strings.Contains(ev.Output, "no sync stamp") {
		t.Fatalf("no copy: %q / %q", ev.Reason, ev.Output)
	}
}

// TestSyncStopFinalPass: a clean stop ends with one more pass while the node
// holds its lease (done with no target, failed with an unreachable one, which
// does not fail the stop), and with none once the lease is lost.
func TestSyncStopFinalPass(t *testing.T) {
	cfg := &config.Config{Nodes: []config.Node{
		{Name: "a", Addresses: []string{"127.0.0.1"}},
		{Name: "b", Addresses: []string{"127.0.0.1"}},
	}}
	a := &Agent{cfg: cfg, self: cfg.Nodes[0], log: slog.New(slog.DiscardHandler)}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(nodes ...string) *syncResource {
		r := config.Resource{Name: "data", Type: "sync", Paths: []string{t.TempDir()}, Interval: config.Duration(time.Hour),
			Transport: "rsyncd", SecretsFile: pw}
		res, err := resourceTypes["sync"](a, config.Group{Name: "web", Nodes: nodes}, r)
		if err != nil {
			t.Fatal(err)
		}
		sr := res.(*syncResource)
		// The syncer itself: the wrapper's Start asks the (absent) store about a takeover.
		if _, err := sr.Syncer.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return sr
	}
	stop := func(sr *syncResource) string {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		out, err := sr.Stop(ctx)
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
		return out.Text
	}
	a.view.Store(&membership.View{LeaseHeld: true, LeaseLeft: time.Second})
	if out := stop(build("a")); !strings.Contains(out, "final pass done") {
		t.Errorf("alone, lease held: %q", out)
	}
	if out := stop(build("a", "b")); !strings.Contains(out, "final pass failed") {
		t.Errorf("unreachable target, lease held: %q", out)
	}
	a.view.Store(&membership.View{LeaseHeld: false})
	if out := stop(build("a", "b")); !strings.Contains(out, "no final pass") {
		t.Errorf("lease lost: %q", out)
	}
	// Stopping what does not run makes no pass.
	a.view.Store(&membership.View{LeaseHeld: true, LeaseLeft: time.Second})
	sr := build("a")
	stop(sr)
	if out := stop(sr); out != "not running" {
		t.Errorf("second stop: %q", out)
	}
}

// A standby whose copy arrived without the guard gets one warning per path;
// a copy the guard checked, or a path that never received one, none.
func TestUnguardedCopyWarnsOnce(t *testing.T) {
	cfg := &config.Config{Nodes: []config.Node{
		{Name: "a", Addresses: []string{"127.0.0.1"}},
		{Name: "b", Addresses: []string{"127.0.0.1"}},
	}}
	a := &Agent{cfg: cfg, self: cfg.Nodes[1], log: slog.New(slog.DiscardHandler), opt: Options{DataDir: t.TempDir()}}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	copied, empty := t.TempDir(), t.TempDir()
	r := config.Resource{Name: "data", Type: "sync", Paths: []string{copied, empty}, Interval: config.Duration(time.Hour),
		Transport: "rsyncd", SecretsFile: pw}
	if _, err := resourceTypes["sync"](a, config.Group{Name: "web", Nodes: []string{"a", "b"}}, r); err != nil {
		t.Fatal(err)
	}
	warned := map[string]bool{}
	if evs := a.unguardedEvents(warned); len(evs) != 0 {
		t.Fatalf("warnings before any copy arrived: %+v", evs)
	}
	if err := os.WriteFile(filepath.Join(copied, rsync.StampFile), []byte("a 2026-11-23T05:00:00Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	evs := a.unguardedEvents(warned)
	if len(evs) != 1 || evs[0].Kind != model.EventSyncUnguarded || evs[0].Group != "web" || evs[0].Resource != "data" ||
		evs[0].Reporter != "b" || !strings.Contains(evs[0].Reason, copied) {
		t.Fatalf("events %+v, want one sync_unguarded for %s", evs, copied)
	}
	if evs := a.unguardedEvents(warned); len(evs) != 0 {
		t.Fatalf("warned again: %+v", evs)
	}
}
