package grouprun

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
)

// fakePromo is a promotable resource: an instance that runs unpromoted or promoted.
type fakePromo struct {
	fake
	promoted                          bool
	failPromote, failDemote, failStop bool
	demoteLies                        bool // demote answers success but leaves it promoted
}

var _ resource.Promoter = (*fakePromo)(nil)

func (f *fakePromo) Start(ctx context.Context) (resource.Output, error) {
	f.mu.Lock()
	promoted := f.promoted
	f.mu.Unlock()
	if promoted {
		return resource.Output{}, errors.New("start of a promoted instance (Stateful: exit 8)")
	}
	return f.fake.Start(ctx)
}

func (f *fakePromo) Stop(ctx context.Context) (resource.Output, error) {
	f.j.add("stop " + f.name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStop {
		return resource.Output{}, errors.New("stop failed")
	}
	f.running, f.promoted = false, false
	return resource.Output{}, nil
}

func (f *fakePromo) Promote(context.Context) (resource.Output, error) {
	f.j.add("promote " + f.name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPromote || !f.running {
		return resource.Output{}, errors.New("promote failed")
	}
	f.promoted = true
	return resource.Output{}, nil
}

func (f *fakePromo) Demote(context.Context) (resource.Output, error) {
	f.j.add("demote " + f.name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failDemote {
		return resource.Output{}, errors.New("demote failed")
	}
	if !f.demoteLies {
		f.promoted = false
	}
	return resource.Output{}, nil
}

func (f *fakePromo) MonitorRole(context.Context) (resource.State, resource.Role, resource.Output, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	role := resource.Unpromoted
	if f.promoted {
		role = resource.Promoted
	}
	switch {
	case f.broken:
		return resource.Failed, role, resource.Output{}, errors.New("broken")
	case f.running:
		return resource.Running, role, resource.Output{}, nil
	}
	return resource.Stopped, resource.Unpromoted, resource.Output{}, nil
}

func (f *fakePromo) set(fn func(f *fakePromo)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakePromo) state() (running, promoted bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running, f.promoted
}

// promoRig runs one worker for drbdGroup on node "a" with fakes; releases
// records the lease give-ups.
type promoRig struct {
	*rig
	drbd     *fakePromo
	mu       sync.Mutex
	releases []string
}

func drbdGroup() config.Group {
	g := webGroup()
	every := config.Duration(20 * time.Millisecond)
	g.Resources = []config.Resource{
		{Name: "vip", Type: "ip", MonitorInterval: every},
		{Name: "drbd", Type: "ocf", Promotable: true, MonitorInterval: every},
		{Name: "data", Type: "mount", MonitorInterval: every},
	}
	return g
}

func newPromoRig(t *testing.T, setup func(*fakePromo)) *promoRig {
	pr := &promoRig{rig: &rig{j: &journal{}, fakes: map[string]resource.Agent{}, done: make(chan struct{})}}
	factory := func(_ config.Group, r config.Resource) (resource.Agent, error) {
		var a resource.Agent
		switch {
		case r.Type == "ip":
			a = &fakeVIP{fake: fake{name: r.Name, j: pr.j}}
		case r.Promotable:
			pr.drbd = &fakePromo{fake: fake{name: r.Name, j: pr.j}}
			if setup != nil {
				setup(pr.drbd)
			}
			a = pr.drbd
		default:
			a = &fake{name: r.Name, j: pr.j}
		}
		pr.fakes[r.Name] = a
		return a, nil
	}
	release := func(reason string) {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		pr.releases = append(pr.releases, reason)
	}
	r, err := New("a", []config.Group{drbdGroup()}, factory, pr.j.emit, release, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	pr.runner = r
	ctx, cancel := context.WithCancel(context.Background())
	pr.cancel = cancel
	go func() { _ = r.Run(ctx); close(pr.done) }()
	t.Cleanup(func() { cancel(); <-pr.done })
	return pr
}

// actions is the journal without the standby start that precedes a test's story.
func (pr *promoRig) actions() string {
	lines, _ := pr.j.snapshot()
	return strings.Join(lines, ", ")
}

// indexOf finds the first event matching kind (and, if set, a reason prefix).
func indexOf(evs []model.Event, kind model.EventKind, reasonPrefix string) int {
	for i, ev := range evs {
		if ev.Kind == kind && strings.HasPrefix(ev.Reason, reasonPrefix) {
			return i
		}
	}
	return -1
}

// TestPromotableStandbyThenPromoteThenDemote: on a node that does not run the
// group the instance runs unpromoted; the group's start promotes it (after the
// VIP, before the file system), its stop demotes it after the file system is
// unmounted and leaves it running, and "stopped" is reported only after the
// demotion was confirmed.
func TestPromotableStandbyThenPromoteThenDemote(t *testing.T) {
	pr := newPromoRig(t, nil)
	pr.runner.Update("web", Desired{})
	waitFor(t, "standby instance started", func() bool { r, p := pr.drbd.state(); return r && !p })
	if got := pr.actions(); got != "start drbd" {
		t.Fatalf("standby: %s", got)
	}
	pr.runner.SetLease(true, time.Now().Add(time.Second))
	pr.runner.Update("web", Desired{Run: true})
	waitFor(t, "group_started", hasEvent(pr.j, model.EventGroupStarted))
	if r, p := pr.drbd.state(); !r || !p {
		t.Fatalf("after the group's start: running %v promoted %v", r, p)
	}
	pr.runner.Update("web", Desired{Run: false, ReleaseAt: 9})
	waitFor(t, "group_stopped", hasEvent(pr.j, model.EventGroupStopped))
	want := "start drbd, start vip, promote drbd, start data, stop data, demote drbd, revoke vip, stop vip"
	if got := pr.actions(); got != want {
		t.Fatalf("actions:\n got %s\nwant %s", got, want)
	}
	if r, p := pr.drbd.state(); !r || p {
		t.Fatalf("after the group's stop: running %v promoted %v, want running unpromoted", r, p)
	}
	_, evs := pr.j.snapshot()
	demoted, stopped := indexOf(evs, model.EventResourceAction, "demote ocf: ok"), indexOf(evs, model.EventGroupStopped, "")
	if demoted < 0 || stopped < demoted {
		t.Fatalf("group_stopped (event %d) must follow the demotion (event %d)", stopped, demoted)
	}
	// Each role change is a resource_role event, for the replicated state.
	var roles []string
	for _, ev := range evs {
		if ev.Kind == model.EventResourceRole && ev.Resource == "drbd" && ev.Reporter == "a" {
			roles = append(roles, ev.State)
		}
	}
	if got := strings.Join(roles, ", "); got != "stopped, unpromoted, promoted, unpromoted" {
		t.Fatalf("resource_role states: %s", got)
	}
	// The holder's monitor expects a promoted instance; a standby's an unpromoted one.
	time.Sleep(100 * time.Millisecond)
	if got := pr.actions(); got != want {
		t.Fatalf("the standby's monitor acted on a healthy unpromoted instance: %s", got)
	}
}

// TestLeaseLossDemotesBeforeStoppedReport: a node that loses its lease takes
// its VIP away at once, then unmounts and demotes, all before it reports the
// group stopped, which is what lets the coordinator promote elsewhere.
func TestLeaseLossDemotesBeforeStoppedReport(t *testing.T) {
	pr := newPromoRig(t, nil)
	pr.runner.SetLease(true, time.Now().Add(time.Second))
	pr.runner.Update("web", Desired{Run: true})
	waitFor(t, "group_started", hasEvent(pr.j, model.EventGroupStarted))
	pr.runner.SetLease(false, time.Time{})
	pr.runner.Update("web", Desired{LeaseLost: true})
	waitFor(t, "group_stopped", hasEvent(pr.j, model.EventGroupStopped))
	if got := pr.actions(); !strings.HasSuffix(got, "revoke vip, stop vip, stop data, demote drbd") {
		t.Fatalf("self-fencing order: %s", got)
	}
	if _, p := pr.drbd.state(); p {
		t.Fatal("still promoted after the lease loss")
	}
}

// TestIntruderPromotedOnAStandbyIsDemoted: an instance found promoted on a node
// that does not run the group (started by hand, or left by a crash) is demoted
// at the next monitor, with a critical event.
func TestIntruderPromotedOnAStandbyIsDemoted(t *testing.T) {
	pr := newPromoRig(t, nil)
	pr.runner.Update("web", Desired{})
	waitFor(t, "standby instance started", func() bool { r, _ := pr.drbd.state(); return r })
	pr.drbd.set(func(f *fakePromo) { f.promoted = true })
	waitFor(t, "demoted", func() bool { _, p := pr.drbd.state(); return !p })
	_, evs := pr.j.snapshot()
	i := indexOf(evs, model.EventResourceAction, "found promoted on a")
	if i < 0 || evs[i].Severity != model.SeverityCritical {
		t.Fatalf("no critical event for the promoted standby: %+v", evs)
	}
}

// TestDemoteThatFailsOrLiesStopsTheInstance: when demote fails, or reports
// success while the monitor still finds the instance promoted, the instance is
// stopped before the group is reported stopped: "stopped" is never reported
// over a promoted instance.
func TestDemoteThatFailsOrLiesStopsTheInstance(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*fakePromo)
	}{{"fails", func(f *fakePromo) { f.failDemote = true }}, {"lies", func(f *fakePromo) { f.demoteLies = true }}} {
		t.Run(tc.name, func(t *testing.T) {
			pr := newPromoRig(t, nil)
			pr.runner.SetLease(true, time.Now().Add(time.Second))
			pr.runner.Update("web", Desired{Run: true})
			waitFor(t, "group_started", hasEvent(pr.j, model.EventGroupStarted))
			pr.drbd.set(tc.set)
			pr.runner.Update("web", Desired{Run: false, ReleaseAt: 9})
			waitFor(t, "group_stopped", hasEvent(pr.j, model.EventGroupStopped))
			if got := pr.actions(); !strings.Contains(got, "stop data, demote drbd, demote drbd, stop drbd, revoke vip, stop vip") {
				t.Fatalf("actions: %s", got)
			}
			// Then, as on any node that does not run the group, the instance is
			// started again as an unpromoted standby.
			waitFor(t, "standby again", func() bool { r, p := pr.drbd.state(); return r && !p })
		})
	}
}

// TestFailedPromoteThatCannotBeUndoneIsAStopFailure: a promotion fails and the
// instance can be neither demoted nor stopped; the group must not read as
// stopped (which would let another node promote): a stop failure is reported,
// the lease given up, and a later release is not answered with "stopped".
func TestFailedPromoteThatCannotBeUndoneIsAStopFailure(t *testing.T) {
	pr := newPromoRig(t, func(f *fakePromo) { f.failPromote, f.failDemote, f.failStop = true, true, true })
	pr.runner.SetLease(true, time.Now().Add(time.Second))
	pr.runner.Update("web", Desired{Run: true})
	waitFor(t, "group_stop_failed", hasEvent(pr.j, model.EventGroupStopFailed))
	pr.mu.Lock()
	n := len(pr.releases)
	pr.mu.Unlock()
	if n == 0 {
		t.Fatal("the lease was not given up")
	}
	pr.runner.Update("web", Desired{Run: false, ReleaseAt: 9})
	time.Sleep(150 * time.Millisecond)
	_, evs := pr.j.snapshot()
	if i := indexOf(evs, model.EventGroupStopped, ""); i >= 0 {
		t.Fatalf("reported stopped over an instance that could not be demoted: %+v", evs[i])
	}
}

// TestHolderMonitorExpectsPromoted: on the group's node an instance found
// running unpromoted is a failure: the restart phase demotes and promotes again.
func TestHolderMonitorExpectsPromoted(t *testing.T) {
	pr := newPromoRig(t, nil)
	pr.runner.SetLease(true, time.Now().Add(time.Second))
	pr.runner.Update("web", Desired{Run: true})
	waitFor(t, "group_started", hasEvent(pr.j, model.EventGroupStarted))
	pr.drbd.set(func(f *fakePromo) { f.promoted = false })
	waitFor(t, "group_restarting", hasEvent(pr.j, model.EventGroupRestarting))
	waitFor(t, "promoted again", func() bool { _, p := pr.drbd.state(); return p })
	_, evs := pr.j.snapshot()
	i := indexOf(evs, model.EventGroupRestarting, "resource drbd is running but not promoted")
	if i < 0 {
		t.Fatalf("no restart naming the unpromoted instance: %+v", evs)
	}
}

// TestShutdownStopsTheStandbyInstance: the agent going away demotes and stops
// the instances it would otherwise watch.
func TestShutdownStopsTheStandbyInstance(t *testing.T) {
	pr := newPromoRig(t, nil)
	pr.runner.SetLease(true, time.Now().Add(time.Second))
	pr.runner.Update("web", Desired{Run: true})
	waitFor(t, "group_started", hasEvent(pr.j, model.EventGroupStarted))
	pr.cancel()
	<-pr.done
	if r, p := pr.drbd.state(); r || p {
		t.Fatalf("after shutdown: running %v promoted %v", r, p)
	}
	if got := pr.actions(); !strings.HasSuffix(got, "stop data, demote drbd, revoke vip, stop vip, demote drbd, stop drbd") {
		t.Fatalf("shutdown: %s", got)
	}
}

// TestPromotableNeedsAPromoter: only agents with promote/demote can be promotable.
func TestPromotableNeedsAPromoter(t *testing.T) {
	j := &journal{}
	factory := func(_ config.Group, r config.Resource) (resource.Agent, error) { return &fake{name: r.Name, j: j}, nil }
	_, err := New("a", []config.Group{drbdGroup()}, factory, j.emit, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "cannot be promoted") {
		t.Fatalf("a promotable resource without promote/demote: %v", err)
	}
}

// TestGroupFailedOnlyAfterTheDemotion: the coordinator takes "failed" for
// "stopped", so a group that used up its restarts reports group_failed only once
// its resources are stopped and its promotable instance demoted, still stamped
// with the moment of the failure.
func TestGroupFailedOnlyAfterTheDemotion(t *testing.T) {
	pr := newPromoRig(t, nil) // max_restarts 1
	pr.runner.SetLease(true, time.Now().Add(time.Minute))
	pr.runner.Update("web", Desired{Run: true})
	waitFor(t, "group_started", hasEvent(pr.j, model.EventGroupStarted))
	data := pr.fakes["data"].(*fake)
	breakIt := func() {
		data.mu.Lock()
		data.broken = true
		data.mu.Unlock()
	}
	breakIt()
	waitFor(t, "group_restarting", hasEvent(pr.j, model.EventGroupRestarting))
	waitFor(t, "restarted", func() bool { data.mu.Lock(); defer data.mu.Unlock(); return data.running && !data.broken })
	brokenAt := time.Now()
	breakIt()
	waitFor(t, "group_failed", hasEvent(pr.j, model.EventGroupFailed))
	_, evs := pr.j.snapshot()
	failed := indexOf(evs, model.EventGroupFailed, "")
	demoted := -1
	for i, ev := range evs {
		if ev.Kind == model.EventResourceAction && ev.Resource == "drbd" && strings.HasPrefix(ev.Reason, "demote ocf: ok") {
			demoted = i // the last demotion: the one of the final stop
		}
	}
	if demoted < 0 || failed < demoted {
		t.Fatalf("group_failed (event %d) before the final demotion (event %d)", failed, demoted)
	}
	if at := evs[failed].Time; at.IsZero() || at.Before(brokenAt) || at.After(time.Now()) {
		t.Fatalf("group_failed stamped %v: want the failure's moment, after %v", at, brokenAt)
	}
	if _, p := pr.drbd.state(); p {
		t.Fatal("still promoted after the failure")
	}
}
