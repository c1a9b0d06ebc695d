package decide

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func (w *world) decideAt(now time.Time) []model.Event {
	for n, node := range w.nodes {
		node.Alive = node.Eligible
		w.nodes[n] = node
	}
	evs := Decide(Input{Coordinator: "w", Groups: w.groups, State: w.state, Nodes: w.nodes, Uptime: w.uptime, Initdead: 10 * time.Second,
		SurelyExpired: func(n string, ep membership.Epoch) bool { return w.expired[n+" "+ep.String()] }, Now: now})
	w.apply(evs...)
	return evs
}

func checkedGroup() config.Group {
	g := group("web", "manual", "a", "b")
	c := check.Check{Type: check.HTTP, URL: "http://10.0.0.100/"}
	c.ApplyDefaults()
	g.Checks = []check.Check{c}
	g.StartGrace = config.Duration(30 * time.Second)
	g.TakeoverGrace = config.Duration(60 * time.Second)
	return g
}

func (w *world) observe(observer, state string, since time.Time) {
	w.apply(model.Event{Kind: model.EventCheckChanged, Reporter: observer, Group: "web", Resource: w.groups[0].Checks[0].DisplayName(), State: state, Time: since})
}

func TestActiveNodeLosingItsPublicNetworkGivesUp(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decideAt(t0)
	w.report("a", "web", model.EventGroupStarted)
	w.apply(model.Event{Kind: model.EventPublicLost, Reporter: "a"})
	expectOne(t, w.decideAt(t0), model.EventGroupReleased, "b") // S2
	w.report("a", "web", model.EventGroupStopped)
	expectOne(t, w.decideAt(t0), model.EventGroupAssigned, "b")
}

func TestStandbyLosingItsPublicNetworkMovesNothing(t *testing.T) {
	w := newWorld(t, group("web", "manual", "a", "b"))
	w.decideAt(t0)
	w.report("a", "web", model.EventGroupStarted)
	w.apply(model.Event{Kind: model.EventPublicLost, Reporter: "b"}) // S3
	if evs := w.decideAt(t0); len(evs) != 0 {
		t.Fatalf("a standby's public loss moved something: %+v", evs)
	}
	// And b is no candidate while cut off: a move request waits.
	w.apply(model.Event{Kind: model.EventMoveRequested, Group: "web", Target: "b"})
	if evs := w.decideAt(t0); len(evs) != 0 {
		t.Fatalf("moved to a node without public network: %+v", evs)
	}
}

func TestGroupLostNeedsAMajorityOfObserversForLostAfter(t *testing.T) {
	w := newWorld(t, checkedGroup())
	w.decideAt(t0)
	w.apply(model.Event{Kind: model.EventGroupStarted, Reporter: "a", Group: "web", Time: t0})
	for _, o := range []string{"a", "b", "w"} {
		w.observe(o, "up", t0)
	}
	down := t0.Add(time.Minute)
	w.observe("b", "down", down)
	if evs := w.decideAt(down.Add(time.Hour)); len(evs) != 0 {
		t.Fatalf("one observer decided: %+v", evs)
	}
	w.observe("w", "down", down)
	if evs := w.decideAt(down.Add(5 * time.Second)); len(evs) != 0 {
		t.Fatalf("lost before lost_after: %+v", evs)
	}
	evs := w.decideAt(down.Add(11 * time.Second))
	if len(evs) != 1 || evs[0].Kind != model.EventGroupLost || evs[0].Node != "a" {
		t.Fatalf("want group_lost on a, got %+v", evs)
	}
	if again := w.decideAt(down.Add(12 * time.Second)); len(again) != 0 {
		t.Fatalf("a verdict is given once per start: %+v", again)
	}
}

func TestObserversWithoutPublicNetworkDoNotVote(t *testing.T) {
	w := newWorld(t, checkedGroup())
	w.decideAt(t0)
	w.apply(model.Event{Kind: model.EventGroupStarted, Reporter: "a", Group: "web", Time: t0})
	down := t0.Add(time.Minute)
	w.observe("a", "up", t0)
	w.observe("b", "down", down)
	w.observe("w", "down", down)
	w.apply(model.Event{Kind: model.EventPublicLost, Reporter: "b"})
	w.apply(model.Event{Kind: model.EventPublicLost, Reporter: "w"})
	if evs := w.decideAt(down.Add(time.Hour)); len(evs) != 0 {
		t.Fatalf("observers cut off from the public network outvoted the holder: %+v", evs)
	}
}

func TestStartGraceHoldsTheVerdict(t *testing.T) {
	w := newWorld(t, checkedGroup())
	w.decideAt(t0)
	w.apply(model.Event{Kind: model.EventGroupStarted, Reporter: "a", Group: "web", Time: t0})
	for _, o := range []string{"a", "b", "w"} {
		w.observe(o, "down", t0)
	}
	if evs := w.decideAt(t0.Add(20 * time.Second)); len(evs) != 0 {
		t.Fatalf("lost inside the start grace: %+v", evs)
	}
	if evs := w.decideAt(t0.Add(31 * time.Second)); len(evs) != 1 || evs[0].Kind != model.EventGroupLost {
		t.Fatalf("want group_lost after the grace: %+v", evs)
	}
}
