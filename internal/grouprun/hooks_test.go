package grouprun

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
)

// hookRig is newRig with hooks installed before Run.
func hookRig(t *testing.T, g config.Group, startErr error) *rig {
	rg := &rig{j: &journal{}, fakes: map[string]resource.Agent{}, done: make(chan struct{})}
	factory := func(_ config.Group, r config.Resource) (resource.Agent, error) {
		var a resource.Agent = &fake{name: r.Name, j: rg.j}
		if r.Type == "ip" {
			a = &fakeVIP{fake: fake{name: r.Name, j: rg.j}}
		}
		rg.fakes[r.Name] = a
		return a, nil
	}
	r, err := New("a", []config.Group{g}, factory, rg.j.emit, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.SetHooks(Hooks{
		Starting: func(_ context.Context, group string) error { rg.j.add("hold " + group); return startErr },
		Stopped:  func(group string) { rg.j.add("unhold " + group) },
	})
	rg.runner = r
	ctx, cancel := context.WithCancel(context.Background())
	rg.cancel = cancel
	go func() { _ = r.Run(ctx); close(rg.done) }()
	t.Cleanup(func() { cancel(); <-rg.done })
	return rg
}

// TestHooksAroundTheGroup: the sync guard's hold is taken before the first
// resource starts and given back only after the last one has stopped.
func TestHooksAroundTheGroup(t *testing.T) {
	rg := hookRig(t, webGroup(), nil)
	rg.runner.SetLease(true, time.Now().Add(time.Second))
	rg.runner.Update("web", Desired{Run: true})
	waitFor(t, "group_started", hasEvent(rg.j, model.EventGroupStarted))
	rg.runner.Update("web", Desired{Run: false, ReleaseAt: 7})
	waitFor(t, "group_stopped", hasEvent(rg.j, model.EventGroupStopped))
	lines, _ := rg.j.snapshot()
	got := strings.Join(lines, ", ")
	want := "hold web, start vip, start data, start www, stop www, stop data, revoke vip, stop vip, unhold web"
	if !strings.HasPrefix(got, want) {
		t.Fatalf("actions:\n got %s\nwant %s", got, want)
	}
}

// TestFailedStartingHookStartsNothing: a hold that cannot be taken fails the
// start before any resource runs, and flags the node.
func TestFailedStartingHookStartsNothing(t *testing.T) {
	rg := hookRig(t, webGroup(), errors.New("disk full"))
	rg.runner.SetLease(true, time.Now().Add(time.Second))
	rg.runner.Update("web", Desired{Run: true})
	waitFor(t, "group_start_failed", hasEvent(rg.j, model.EventGroupStartFailed))
	waitFor(t, "flag", hasEvent(rg.j, model.EventFlagSet))
	lines, _ := rg.j.snapshot()
	for _, l := range lines {
		if strings.HasPrefix(l, "start ") {
			t.Fatalf("%s after a failed hold: %v", l, lines)
		}
	}
}
