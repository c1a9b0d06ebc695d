package decide

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

// world is a tiny harness: a log of events applied to a projection, nodes, and
// the set of epochs known to be over.
type world struct {
	t       *testing.T
	state   *clusterstate.State
	index   uint64
	nodes   map[string]Node
	expired map[string]bool // "node epoch"
	groups  []config.Group
	uptime  time.Duration
}

func newWorld(t *testing.T, groups ...config.Group) *world {
	w := &world{t: t, state: clusterstate.New(), nodes: map[string]Node{}, expired: map[string]bool{}, groups: groups, uptime: time.Hour}
	for i, n := range []string{"a", "b", "w"} {
		w.nodes[n] = Node{Name: n, Witness: n == "w", Eligible: true, Epoch: membership.Epoch{Incarnation: uint64(i + 1), Gen: 1}, AliveFor: time.Hour}
	}
	return w
}

func group(name string, failback string, nodes ...string) config.Group {
	return config.Group{Name: name, Nodes: nodes, Failback: failback, FailbackDelay: config.Duration(30 * time.Second)}
}

func (w *world) apply(evs ...model.Event) {
	for _, ev := range evs {
		w.index++
		ev.Index = w.index
		w.state.Apply(ev)
	}
}

func (w *world) decide() []model.Event {
	evs := Decide(Input{Coordinator: "w", Groups: w.groups, State: w.state, Nodes: w.nodes, Uptime: w.uptime, Initdead: 10 * time.Second,
		SurelyExpired: func(n string, ep membership.Epoch) bool { return w.expired[n+" "+ep.String()] }})
	w.apply(evs...)
	return evs
}

// kill makes a node ineligible; its old epoch is over only when expire is called.
func (w *world) kill(n string) {
	node := w.nodes[n]
	node.Eligible, node.AliveFor = false, 0
	w.nodes[n] = node
}

func (w *world) expire(n string) { w.expired[n+" "+w.nodes[n].Epoch.String()] = true }

func (w *world) revive(n string, aliveFor time.Duration) {
	node := w.nodes[n]
	node.Eligible, node.AliveFor = true, aliveFor
	node.Epoch.Gen++
	w.nodes[n] = node
}

func (w *world) report(node, group string, kind model.EventKind) {
	w.apply(model.Event{Kind: kind, Reporter: node, Group: group})
}

func (w *world) holder(g string) string {
	st := w.state.Get(g)
	if st.Releasing {
		return ""
	}
	return st.Node
}

func expectOne(t *testing.T, evs []model.Event, kind model.EventKind, node string) {
	t.Helper()
	if len(evs) != 1 || evs[0].Kind != kind || (kind == model.EventGroupAssigned && evs[0].Node != node) || (kind == model.EventGroupReleased && evs[0].Target != node) {
		t.Fatalf("want one %s → %s, got %+v", kind, node, evs)
	}
}

func TestInitialPlacementPrefersFirstNode(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"), group("mail", "auto", "b", "a"))
	evs := w.decide()
	if len(evs) != 2 || w.holder("web") != "a" || w.holder("mail") != "b" {
		t.Fatalf("active-active placement: %+v", evs)
	}
	if evs[0].Epoch != w.nodes["a"].Epoch.String() {
		t.Errorf("assignment not bound to a's epoch: %+v", evs[0])
	}
	if again := w.decide(); len(again) != 0 {
		t.Fatalf("a stable cluster must produce no events, got %+v", again)
	}
}

func TestInitialPlacementWaitsInitdeadForThePreferredNode(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.kill("a")
	w.uptime = 5 * time.Second
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("placed before initdead: %+v", evs)
	}
	w.uptime = 11 * time.Second
	expectOne(t, w.decide(), model.EventGroupAssigned, "b")
}

func TestTakeoverOnlyAfterTheLeaseIsSurelyOver(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decide()
	w.kill("a")
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("moved while a's lease might still run: %+v", evs)
	}
	w.expire("a")
	evs := w.decide()
	expectOne(t, evs, model.EventGroupAssigned, "b")
}

func TestManualFailbackNeedsAnOperator(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decide()
	w.kill("a")
	w.expire("a")
	w.decide()
	w.report("b", "web", model.EventGroupStarted)
	w.revive("a", time.Hour)
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("failback without authorisation: %+v", evs)
	}
	w.apply(model.Event{Kind: model.EventFailbackAuthorised, Group: "web", By: "operator"})
	expectOne(t, w.decide(), model.EventGroupReleased, "a")
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("assigned to a before b stopped: %+v", evs)
	}
	w.report("b", "web", model.EventGroupStopped)
	expectOne(t, w.decide(), model.EventGroupAssigned, "a")
}

func TestAutoFailbackWaitsForAStablePeriod(t *testing.T) {
	w := newWorld(t, group("web", "auto", "a", "b"))
	w.decide()
	w.kill("a")
	w.expire("a")
	w.decide()
	w.report("b", "web", model.EventGroupStarted)
	w.revive("a", 5*time.Second)
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("failback before failback_delay: %+v", evs)
	}
	w.revive("a", time.Minute)
	expectOne(t, w.decide(), model.EventGroupReleased, "a")
}

func TestNeverFailback(t *testing.T) {
	w := newWorld(t, group("web", "never", "a", "b"))
	w.decide()
	w.kill("a")
	w.expire("a")
	w.decide()
	w.report("b", "web", model.EventGroupStarted)
	w.revive("a", time.Hour)
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("never means never: %+v", evs)
	}
}

func TestFlaggedHolderIsReleasedAndSkipped(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decide()
	w.apply(model.Event{Kind: model.EventFlagSet, Group: "web", Node: "a", Reason: "start failed"})
	expectOne(t, w.decide(), model.EventGroupReleased, "b")
	w.report("a", "web", model.EventGroupStopped)
	expectOne(t, w.decide(), model.EventGroupAssigned, "b")
	w.apply(model.Event{Kind: model.EventFlagSet, Group: "web", Node: "b", Reason: "start failed"})
	w.decide()
	w.report("b", "web", model.EventGroupStopped)
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("both nodes flagged, yet: %+v", evs)
	}
	w.apply(model.Event{Kind: model.EventFlagCleared, Group: "web", Node: "a"})
	expectOne(t, w.decide(), model.EventGroupAssigned, "a")
}

func TestMoveAndMaintenance(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decide()
	w.report("a", "web", model.EventGroupStarted)
	w.apply(model.Event{Kind: model.EventMaintenanceOn, Group: "web"})
	w.apply(model.Event{Kind: model.EventMoveRequested, Group: "web", Target: "b"})
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("maintenance must freeze placement: %+v", evs)
	}
	w.apply(model.Event{Kind: model.EventMaintenanceOff, Group: "web"})
	expectOne(t, w.decide(), model.EventGroupReleased, "b")
	w.report("a", "web", model.EventGroupStopped)
	expectOne(t, w.decide(), model.EventGroupAssigned, "b")
	if st := w.state.Get("web"); st.MoveTarget != "" {
		t.Errorf("move request not consumed: %+v", st)
	}
}

func TestLeaseBlipKeepsTheGroupOnItsNode(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decide()
	old := w.nodes["a"].Epoch.String()
	w.revive("a", time.Hour) // a lost and regained its lease: new epoch
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("reassigned before the old epoch is known to be over: %+v", evs)
	}
	w.expired["a "+old] = true
	evs := w.decide()
	expectOne(t, evs, model.EventGroupAssigned, "a")
	if evs[0].Epoch == old {
		t.Fatal("reassignment must carry the new epoch")
	}
}

func TestFencedNodeRequiresConfirmedOff(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decide()
	w.kill("a")
	w.expire("a") // the lease is over, but a fence device is configured: wait for it
	in := Input{Coordinator: "w", Groups: w.groups, State: w.state, Nodes: w.nodes, Uptime: time.Hour, Initdead: time.Second,
		SurelyExpired: func(string, membership.Epoch) bool { return true }, Fencing: map[string]bool{"a": true}}
	if evs := Decide(in); len(evs) != 0 {
		t.Fatalf("took over before fencing: %+v", evs)
	}
	ep, need := NeedsFence(in, "a")
	if !need || ep != w.nodes["a"].Epoch {
		t.Fatalf("NeedsFence = %v %v", ep, need)
	}
	w.apply(model.Event{Kind: model.EventNodeFenced, Node: "a", Epoch: ep.String()})
	in.SurelyExpired = func(string, membership.Epoch) bool { return false } // even before expiry
	evs := Decide(in)
	expectOne(t, evs, model.EventGroupAssigned, "b")
	if _, need := NeedsFence(in, "a"); need {
		t.Fatal("fenced twice")
	}
}

func TestFailedStopIsNotAStop(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decide()
	w.report("a", "web", model.EventGroupStarted)
	w.apply(model.Event{Kind: model.EventMoveRequested, Group: "web", Target: "b"})
	expectOne(t, w.decide(), model.EventGroupReleased, "b")
	w.report("a", "web", model.EventGroupStopFailed)
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("moved while a's stop failed and its lease may run: %+v", evs)
	}
	w.expire("a") // a gave up its lease after the failed stop
	expectOne(t, w.decide(), model.EventGroupAssigned, "b")
}

func TestLiveHolderThatLostItsLeaseMustReportStoppedFirst(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decide()
	w.report("a", "web", model.EventGroupStarted)
	// a lost its lease (new epoch, told everybody) but is still heard and stopping.
	node := w.nodes["a"]
	old := node.Epoch
	node.Epoch.Gen++
	node.Eligible, node.Alive = false, true
	w.nodes["a"] = node
	w.expired["a "+old.String()] = true
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("started elsewhere while a may still be stopping: %+v", evs)
	}
	w.report("a", "web", model.EventGroupStopped)
	expectOne(t, w.decide(), model.EventGroupAssigned, "b")
}

func TestCapPerNodeKeepsGroupsSpread(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"), group("mail", "manual", "a", "b"), group("db", "manual", "a", "b"))
	in := func() Input {
		return Input{Coordinator: "w", Groups: w.groups, State: w.state, Nodes: w.nodes, Uptime: time.Hour, Initdead: time.Second,
			SurelyExpired: func(string, membership.Epoch) bool { return false }, MaxGroupsPerNode: 2}
	}
	for i := 0; i < 3; i++ {
		w.apply(Decide(in())...)
	}
	on := map[string]int{}
	for _, g := range []string{"web", "mail", "db"} {
		on[w.state.Get(g).Node]++
	}
	if on["a"] != 2 || on["b"] != 1 {
		t.Fatalf("with a cap of 2 per node, want 2 on a and 1 on b: %v", on)
	}
}

// A holder that handed the group back (reported it failed) with no flag in
// force, e.g. cleared at once by an operator, does not start it again under
// that assignment (grouprun), so the coordinator assigns it afresh rather
// than keep an assignment nobody will run.
func TestGroupHandedBackWithoutAFlagIsAssignedAfresh(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	expectOne(t, w.decide(), model.EventGroupAssigned, "a")
	first := w.state.Get("web").AssignedAt
	w.report("a", "web", model.EventGroupStarted)
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("running, yet: %+v", evs)
	}
	w.report("a", "web", model.EventGroupStopped)
	w.report("a", "web", model.EventGroupFailed)
	expectOne(t, w.decide(), model.EventGroupAssigned, "a")
	if again := w.state.Get("web").AssignedAt; again <= first {
		t.Fatalf("assignment index %d, want a new one after %d", again, first)
	}
	// A plain stop (a local restart in progress) is not a hand-back.
	w.report("a", "web", model.EventGroupStopped)
	if evs := w.decide(); len(evs) != 0 {
		t.Fatalf("a stop report alone moved the group: %+v", evs)
	}
}
