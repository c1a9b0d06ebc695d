package membership

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestMajority(t *testing.T) {
	// 2 nodes + witness = 3 voters; a two-voter cluster needs both.
	for voters, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 7: 4} {
		if got := Majority(voters); got != want {
			t.Errorf("Majority(%d) = %d, want %d", voters, got, want)
		}
	}
}

func TestAliveSuspectDead(t *testing.T) {
	s := newSim(t, []string{"a", "b", "w"}, "w", 1, defaultTiming(), 1)
	s.run(3*time.Second, nil)
	for _, o := range []string{"a", "w"} {
		if st := s.state(o, "b"); st != model.NodeAlive {
			t.Fatalf("%s sees b %s before the failure", o, st)
		}
	}
	// b loses power.
	s.nodes["b"].eng = nil
	killed := s.now
	tm := defaultTiming()
	s.run(tm.Warntime-tm.Keepalive-10*time.Millisecond, nil) // the last beat left up to one keepalive before the kill
	if st := s.state("a", "b"); st != model.NodeAlive {
		t.Fatalf("b %s before warntime", st)
	}
	s.run(300*time.Millisecond, nil)
	if st := s.state("a", "b"); st != model.NodeSuspect {
		t.Fatalf("b %s after warntime, want suspect", st)
	}
	s.run(tm.Deadtime-tm.Warntime, nil)
	if st := s.state("a", "b"); st != model.NodeDead {
		t.Fatalf("b %s after deadtime, want dead", st)
	}
	warn, ok := firstEvent(s.nodes["a"].events, model.EventNodeWarning, "b")
	if !ok || warn.Severity != model.SeverityWarning {
		t.Fatalf("no warning event: %+v", s.nodes["a"].events)
	}
	if _, ok := firstEvent(s.nodes["a"].events, model.EventNodeDead, "b"); !ok {
		t.Fatal("no dead event")
	}
	_ = killed
}

func TestDeadDeclaredWithinDeadtimePlusTick(t *testing.T) {
	for _, tm := range []Config{defaultTiming(), tunedTiming()} {
		s := newSim(t, []string{"a", "b", "c"}, "", 2, tm, 2)
		s.run(tm.Deadtime, nil)
		s.nodes["c"].eng = nil
		killed := s.now
		var deadAt time.Duration
		s.run(tm.Deadtime+tm.Keepalive, func() {
			if deadAt == 0 && s.state("a", "c") == model.NodeDead {
				deadAt = s.now
			}
		})
		if deadAt == 0 {
			t.Fatalf("%v: c never declared dead", tm.Deadtime)
		}
		// The last heartbeat left at most one keepalive before the kill.
		if got := deadAt - killed; got > tm.Deadtime || got < tm.Deadtime-tm.Keepalive-2*time.Millisecond {
			t.Errorf("deadtime %v: declared dead %v after the kill", tm.Deadtime, got)
		}
	}
}

func TestInitdead(t *testing.T) {
	tm := defaultTiming()
	s := newSim(t, []string{"a", "b", "c"}, "", 1, tm, 3)
	s.nodes["c"].eng = nil // never starts
	s.run(tm.Initdead-100*time.Millisecond, nil)
	if st := s.state("a", "c"); st != model.NodeSuspect {
		t.Fatalf("c %s before initdead, want suspect", st)
	}
	if _, ok := firstEvent(s.nodes["a"].events, model.EventNodeDead, "c"); ok {
		t.Fatal("dead before initdead")
	}
	s.run(200*time.Millisecond, nil)
	ev, ok := firstEvent(s.nodes["a"].events, model.EventNodeDead, "c")
	if !ok {
		t.Fatal("c not dead after initdead")
	}
	if want := "never heard within 10s (initdead)"; ev.Reason != want {
		t.Errorf("reason %q, want %q", ev.Reason, want)
	}
	// a and b alone are 2 of 3: still a quorum and a lease.
	if _, ok := s.lease("a"); !ok {
		t.Error("a has no lease with 2 of 3 voters")
	}
}

func TestOneSilentLinkKeepsPeerAlive(t *testing.T) {
	tm := defaultTiming()
	s := newSim(t, []string{"a", "b", "w"}, "w", 2, tm, 4)
	s.run(time.Second, nil)
	s.setCut("b", "a", 1, true)
	s.setCut("a", "b", 1, true)
	s.run(3*tm.Deadtime, nil)
	if st := s.state("a", "b"); st != model.NodeAlive {
		t.Fatalf("b %s with one link left", st)
	}
	v := s.nodes["a"].eng.View(s.nodes["a"].local(s.now))
	for _, p := range v.Peers {
		if p.Name == "b" && (p.LinksUp[1] || !p.LinksUp[0]) {
			t.Fatalf("links of b = %v, want [up down]", p.LinksUp)
		}
	}
	var down []Emit
	for _, e := range s.nodes["a"].events {
		if e.Kind == model.EventLinkDown {
			down = append(down, Emit{Event: e})
		}
	}
	if len(down) != 1 || down[0].Event.Node != "b" {
		t.Fatalf("want one link_down about b, got %+v", down)
	}
	if _, ok := firstEvent(s.nodes["a"].events, model.EventNodeWarning, "b"); ok {
		t.Error("warning although a link still delivers")
	}
}

func TestLeaseLostAndRegainedOnPartition(t *testing.T) {
	tm := tunedTiming()
	s := newSim(t, []string{"a", "b", "w"}, "w", 1, tm, 5)
	s.run(tm.Deadtime, nil)
	old, ok := s.lease("a")
	if !ok {
		t.Fatal("a has no lease in a healthy cluster")
	}
	s.isolate("a", true)
	cut := s.now
	var lostAt, expiredAt time.Duration
	s.run(2*tm.Deadtime, func() {
		if _, ok := s.lease("a"); !ok && lostAt == 0 {
			lostAt = s.now
		}
		if expiredAt == 0 && s.nodes["b"].eng.SurelyExpired("a", old) {
			expiredAt = s.now
		}
	})
	if lostAt == 0 || expiredAt == 0 {
		t.Fatalf("lease lost at %v, known expired by b at %v", lostAt, expiredAt)
	}
	if lostAt-cut > tm.Lease {
		t.Errorf("a kept its lease %v after the cut; the lease is %v", lostAt-cut, tm.Lease)
	}
	if expiredAt <= lostAt {
		t.Errorf("b thought a's lease expired at %v but a held it until %v", expiredAt, lostAt)
	}
	if s.nodes["a"].eng.View(s.nodes["a"].local(s.now)).Quorum {
		t.Error("isolated node still claims quorum")
	}
	if _, ok := firstEvent(s.nodes["a"].events, model.EventLeaseLost, "a"); !ok {
		t.Error("no lease_lost event")
	}
	if _, ok := firstEvent(s.nodes["a"].events, model.EventQuorumLost, "a"); !ok {
		t.Error("no quorum_lost event")
	}
	s.isolate("a", false)
	s.run(tm.Deadtime, nil)
	now, ok := s.lease("a")
	if !ok {
		t.Fatal("lease not regained after heal")
	}
	if !old.Less(now) {
		t.Errorf("regained lease reuses epoch %v (was %v)", now, old)
	}
	if s.state("b", "a") != model.NodeAlive {
		t.Error("b does not see a alive after heal")
	}
}

func TestReleaseIsKnownAtOnce(t *testing.T) {
	tm := defaultTiming()
	s := newSim(t, []string{"a", "b", "w"}, "w", 1, tm, 6)
	s.run(tm.Deadtime, nil)
	old, _ := s.lease("a")
	n := s.nodes["a"]
	s.apply(n, n.eng.Step(Release{Reason: "public network lost"}, n.local(s.now)))
	if _, ok := s.lease("a"); ok {
		t.Fatal("still holds after release")
	}
	s.run(50*time.Millisecond, nil)
	if !s.nodes["b"].eng.SurelyExpired("a", old) {
		t.Fatal("b must learn from a's next heartbeat that the old epoch is over")
	}
}

func TestFrozenNodeComesBackWithoutItsLease(t *testing.T) {
	tm := tunedTiming()
	s := newSim(t, []string{"a", "b", "w"}, "w", 1, tm, 7)
	s.run(tm.Deadtime, nil)
	old, _ := s.lease("a")
	s.nodes["a"].frozen = true
	s.run(3*tm.Deadtime, nil)
	if !s.nodes["b"].eng.SurelyExpired("a", old) {
		t.Fatal("b does not know a's lease expired while a was frozen")
	}
	s.nodes["a"].frozen = false
	// The first thing a does after resuming must not be to serve.
	if ep, ok := s.lease("a"); ok && ep == old {
		t.Fatal("resumed node still holds its old lease")
	}
	s.run(tm.Deadtime, nil)
	if ep, ok := s.lease("a"); !ok || ep == old {
		t.Fatalf("after resume want a fresh lease, got %v %v", ep, ok)
	}
}

func TestRefusalSurvivesRestart(t *testing.T) {
	tm := tunedTiming()
	s := newSim(t, []string{"a", "b", "w"}, "w", 1, tm, 8)
	s.run(tm.Deadtime, nil)
	old, _ := s.lease("a")
	s.nodes["a"].frozen = true
	s.run(2*tm.Deadtime, nil)
	s.boot("b", 100) // b restarts and must keep refusing a's old epoch
	s.nodes["a"].frozen = false
	s.run(2*tm.Deadtime, nil)
	if !s.nodes["w"].eng.SurelyExpired("a", old) {
		t.Fatal("old epoch came back after a voter restarted")
	}
}

func TestOneWayLossMeansNoQuorum(t *testing.T) {
	tm := tunedTiming()
	s := newSim(t, []string{"a", "b", "w"}, "w", 1, tm, 9)
	s.run(tm.Deadtime, nil)
	// a hears everybody, nobody hears a.
	s.setCut("a", "b", 0, true)
	s.setCut("a", "w", 0, true)
	s.run(2*tm.Deadtime, nil)
	v := s.nodes["a"].eng.View(s.nodes["a"].local(s.now))
	if v.Quorum || v.LeaseHeld {
		t.Fatalf("a is heard by nobody, yet quorum=%v lease=%v", v.Quorum, v.LeaseHeld)
	}
	for _, p := range v.Peers {
		if p.State != model.NodeAlive {
			t.Fatalf("a still hears %s: %s", p.Name, p.State)
		}
	}
}
