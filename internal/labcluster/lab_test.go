package labcluster

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Timeouts are generous: the tests share two cores with the agents, the
// CLI processes that poll them, and possibly other test packages.
const (
	// formTimeout is how long a fresh cluster may take to elect a
	// coordinator and exchange leases.
	formTimeout = 30 * time.Second
	// eventTimeout is how long an event may take to reach the replicated
	// log after the fact it records; shipping retries back off up to 2s.
	eventTimeout = 20 * time.Second
	// detectSlack is what kill → "dead" may take beyond deadtime: one
	// status poll, scheduling delays on a loaded machine.
	detectSlack = 1500 * time.Millisecond
)

// twoPlusWitness is the brief's smallest safe cluster: two voters that can
// run groups and a witness.
func twoPlusWitness() []NodeSpec {
	return []NodeSpec{{Name: "a"}, {Name: "b"}, {Name: "w", Witness: true}}
}

// --- checks on one node's status ---------------------------------------

type check func(model.Status) error

func all(cs ...check) check {
	return func(st model.Status) error {
		for _, c := range cs {
			if err := c(st); err != nil {
				return err
			}
		}
		return nil
	}
}

func node(st model.Status, name string) (model.NodeStatus, error) {
	n, ok := NodeIn(st, name)
	if !ok {
		return n, fmt.Errorf("%s is not listed", name)
	}
	return n, nil
}

// state: the observer sees about in state want.
func state(about string, want model.NodeState) check {
	return func(st model.Status) error {
		n, err := node(st, about)
		if err != nil {
			return err
		}
		if n.State != want {
			return fmt.Errorf("%s is %s, want %s", about, n.State, want)
		}
		return nil
	}
}

// lease: the observer says about does (or does not) hold a lease.
func lease(about string, want bool) check {
	return func(st model.Status) error {
		n, err := node(st, about)
		if err != nil {
			return err
		}
		if n.Lease != want {
			return fmt.Errorf("%s lease=%v, want %v", about, n.Lease, want)
		}
		return nil
	}
}

func quorum(want bool) check {
	return func(st model.Status) error {
		if st.Quorum != want {
			return fmt.Errorf("quorum=%v, want %v", st.Quorum, want)
		}
		return nil
	}
}

func hasLeader(st model.Status) error {
	if st.Leader == "" {
		return errors.New("no leader")
	}
	return nil
}

// link: the observer reports about's link with address addr in state want.
func link(about, addr string, want model.LinkState) check {
	return func(st model.Status) error {
		n, err := node(st, about)
		if err != nil {
			return err
		}
		for _, l := range n.Links {
			if l.Address == addr {
				if l.State != want {
					return fmt.Errorf("%s link %s is %s, want %s", about, addr, l.State, want)
				}
				return nil
			}
		}
		return fmt.Errorf("%s has no link %s (links %v)", about, addr, n.Links)
	}
}

// healthy: the whole cluster as the observer sees it is formed.
func healthy(names []string) check {
	return func(st model.Status) error { return Healthy(st, names) }
}

func lastIndex(evs []model.Event) uint64 {
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Index
}

func others(c *Cluster, except ...string) []string {
	var out []string
outer:
	for _, n := range c.Names() {
		for _, e := range except {
			if n == e {
				continue outer
			}
		}
		out = append(out, n)
	}
	return out
}

// --- tests ---------------------------------------------------------------

// Three nodes (two voters and a witness) form a cluster: every node
// reports quorum, the same leader, all three alive with a lease and every
// link up, and the event log records that each node heard each other.
func TestThreeNodesFormCluster(t *testing.T) {
	c := Start(t, Options{Tag: "cform", PublicSubnet: "10.78.1.0/24", HeartbeatSubnet: "10.78.2.0/24", Nodes: twoPlusWitness()})
	leader := c.WaitHealthy(formTimeout)
	for _, name := range c.Names() {
		st := c.MustStatus(name)
		if err := Healthy(st, c.Names()); err != nil {
			t.Errorf("after forming: %v", err)
		}
		if st.Cluster != "lab-cform" {
			t.Errorf("%s: cluster %q, want lab-cform", name, st.Cluster)
		}
		if st.Leader != leader {
			t.Errorf("%s: leader %q, others said %q", name, st.Leader, leader)
		}
		for _, n := range st.Nodes {
			wantRole := model.RoleVoter
			if n.Name == "w" {
				wantRole = model.RoleWitness
			}
			if n.Role != wantRole {
				t.Errorf("%s sees %s as %s, want %s", name, n.Name, n.Role, wantRole)
			}
			if n.Self != (n.Name == name) {
				t.Errorf("%s sees %s with self=%v", name, n.Name, n.Self)
			}
			if len(n.Links) != 2 {
				t.Errorf("%s sees %s with %d links, want 2: %v", name, n.Name, len(n.Links), n.Links)
			}
		}
		if st.Heartbeat.Received == 0 {
			t.Errorf("%s: no heartbeat received: %+v", name, st.Heartbeat)
		}
		if hb := st.Heartbeat; hb.BadMAC+hb.Malformed+hb.Replayed+hb.UnknownSender != 0 {
			t.Errorf("%s: rejected heartbeats in a healthy cluster: %+v", name, hb)
		}
	}
	// Every node's node_joined events, about each peer, reach the
	// replicated log, and every node serves the same log.
	c.WaitFor("node_joined for every pair in every node's log", eventTimeout, func() error {
		for _, obs := range c.Names() {
			evs, err := c.Events(obs)
			if err != nil {
				return err
			}
			for _, rep := range c.Names() {
				for _, about := range others(c, rep) {
					if len(Find(evs, model.Event{Kind: model.EventNodeJoined, Reporter: rep, Node: about})) == 0 {
						return fmt.Errorf("%s's log has no node_joined by %s about %s", obs, rep, about)
					}
				}
			}
			if len(Find(evs, model.Event{Kind: model.EventCoordinatorChange})) == 0 {
				return fmt.Errorf("%s's log has no coordinator_changed", obs)
			}
		}
		return nil
	})
}

// kill -9 of a voter's agent: the survivors mark it dead within deadtime
// plus a small slack, the replicated log records the warning and the death,
// and the survivors keep quorum, a coordinator and their leases.
func TestKillNodeMarkedDead(t *testing.T) {
	c := Start(t, Options{Tag: "ckill", PublicSubnet: "10.78.3.0/24", HeartbeatSubnet: "10.78.4.0/24", Nodes: twoPlusWitness()})
	leader := c.WaitHealthy(formTimeout)
	// Kill the coordinator when it is a voter, so that the log must also
	// survive a leader change.
	victim := "b"
	if leader == "a" {
		victim = "a"
	}
	survivors := others(c, victim)
	evs, err := c.Events(survivors[0])
	if err != nil {
		t.Fatal(err)
	}
	before := lastIndex(evs)

	killedAt := c.Kill(victim)
	t.Logf("killed %s (coordinator %s) at %s", victim, leader, killedAt.Format("15:04:05.000"))
	deadAfter := map[string]time.Duration{}
	c.WaitFor(victim+" marked dead by the survivors", c.Timing.Deadtime+15*time.Second, func() error {
		for _, s := range survivors {
			if _, ok := deadAfter[s]; ok {
				continue
			}
			st, err := c.Status(s)
			if err != nil {
				return err
			}
			if state(victim, model.NodeDead)(st) == nil {
				deadAfter[s] = time.Since(killedAt)
			}
		}
		if len(deadAfter) < len(survivors) {
			return fmt.Errorf("marked dead so far by %v", deadAfter)
		}
		return nil
	})
	limit := c.Timing.Deadtime + detectSlack
	for _, s := range survivors {
		t.Logf("kill -9 → %s dead in %s's status: %v (deadtime %v)", victim, s, deadAfter[s].Round(time.Millisecond), c.Timing.Deadtime)
		if deadAfter[s] > limit {
			t.Errorf("%s marked %s dead %v after the kill, want ≤ deadtime + %v = %v", s, victim, deadAfter[s], detectSlack, limit)
		}
	}

	// The replicated log has the warning and the death, from a survivor.
	for _, kind := range []model.EventKind{model.EventNodeWarning, model.EventNodeDead} {
		ev := c.WaitEvent(survivors[0], model.Event{Kind: kind, Node: victim}, before, eventTimeout)
		if ev.Reporter == victim {
			t.Errorf("%s event reported by the dead node itself: %+v", kind, ev)
		}
		d := ev.Time.Sub(killedAt)
		t.Logf("%s about %s by %s at kill+%v: %s", kind, victim, ev.Reporter, d.Round(time.Millisecond), ev.Reason)
		if kind == model.EventNodeDead && d > limit {
			t.Errorf("node_dead stamped %v after the kill, want ≤ %v", d, limit)
		}
		if kind == model.EventNodeWarning && d > c.Timing.Warntime+detectSlack {
			t.Errorf("node_warning stamped %v after the kill, want ≤ warntime + %v", d, detectSlack)
		}
	}

	// The survivors keep quorum, a coordinator among them and their leases.
	c.WaitFor("survivors with quorum, a coordinator and leases", formTimeout, func() error {
		return c.Check(survivors, func(st model.Status) error {
			if err := all(quorum(true), hasLeader, state(victim, model.NodeDead), lease(victim, false))(st); err != nil {
				return err
			}
			if st.Leader == victim {
				return fmt.Errorf("leader is the dead node %s", victim)
			}
			for _, s := range survivors {
				if err := all(state(s, model.NodeAlive), lease(s, true))(st); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// Cutting one of a node's two links (the heartbeat network): the node stays
// alive everywhere, that link is reported down, and after the cable is
// plugged back in it comes up again; the log records link_down and link_up.
func TestCutOneLink(t *testing.T) {
	c := Start(t, Options{Tag: "ccut", PublicSubnet: "10.78.5.0/24", HeartbeatSubnet: "10.78.6.0/24", Nodes: twoPlusWitness()})
	c.WaitHealthy(formTimeout)
	evs, err := c.Events("b")
	if err != nil {
		t.Fatal(err)
	}
	before := lastIndex(evs)
	h := c.Node("a").Host
	hbAddr, pubAddr := h.Addr(Heartbeat), h.Addr(Public)

	if err := c.Lab.CutLink("a", Heartbeat); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	aliveEverywhere := func(st model.Status) error {
		for _, n := range c.Names() {
			if err := all(state(n, model.NodeAlive), lease(n, true))(st); err != nil {
				return err
			}
		}
		return quorum(true)(st)
	}
	// Every poll also checks that nobody stopped seeing a (or anyone) alive.
	var lapse error
	c.WaitFor("a's heartbeat link reported down by its peers", c.Timing.Deadtime+15*time.Second, func() error {
		err := c.Check(c.Names(), func(st model.Status) error {
			if err := aliveEverywhere(st); err != nil {
				lapse = fmt.Errorf("%s during the cut: %w", st.Node, err)
				return nil
			}
			if st.Node == "a" {
				return nil
			}
			return all(link("a", hbAddr, model.LinkDown), link("a", pubAddr, model.LinkUp))(st)
		})
		if lapse != nil {
			return nil
		}
		return err
	})
	if lapse != nil {
		t.Fatal(lapse)
	}
	t.Logf("link reported down %v after the cut (deadtime %v)", time.Since(cutAt).Round(time.Millisecond), c.Timing.Deadtime)
	// a itself sees its own heartbeat link down, and the peers' links on
	// that network too (it detects them within a keepalive of the peers),
	// and keeps everything else.
	c.WaitFor("a to see the heartbeat network down", 5*time.Second, func() error {
		return c.Check([]string{"a"}, all(aliveEverywhere, link("a", hbAddr, model.LinkDown), link("a", pubAddr, model.LinkUp),
			link("b", c.Node("b").Host.Addr(Heartbeat), model.LinkDown), link("b", c.Node("b").Host.Addr(Public), model.LinkUp),
			link("w", c.Node("w").Host.Addr(Heartbeat), model.LinkDown)))
	})

	ev := c.WaitEvent("b", model.Event{Kind: model.EventLinkDown, Node: "a", Link: hbAddr}, before, eventTimeout)
	t.Logf("link_down by %s: %s", ev.Reporter, ev.Reason)

	if err := c.Lab.RestoreLink("a", Heartbeat); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(formTimeout)
	c.WaitEvent("b", model.Event{Kind: model.EventLinkUp, Node: "a", Link: hbAddr}, ev.Index, eventTimeout)

	// Over the whole cut, no node was ever suspected: one link is enough.
	evs, err = c.Events("b")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Index > before && (ev.Kind == model.EventNodeWarning || ev.Kind == model.EventNodeDead || ev.Kind == model.EventLeaseLost) {
			t.Errorf("during a single link cut: %+v", ev)
		}
	}
}

// A node cut off from the other two (both ways) reports no lease and no
// quorum; the majority marks it dead and keeps quorum; once healed it is
// alive everywhere again, regains a lease and sees a coordinator.
func TestPartitionOneNode(t *testing.T) {
	c := Start(t, Options{Tag: "cpart", PublicSubnet: "10.78.7.0/24", HeartbeatSubnet: "10.78.8.0/24", Nodes: twoPlusWitness()})
	c.WaitHealthy(formTimeout)
	evs, err := c.Events("b")
	if err != nil {
		t.Fatal(err)
	}
	before := lastIndex(evs)
	majority := []string{"b", "w"}

	if err := c.Lab.Partition([]string{"a"}, majority, false); err != nil {
		t.Fatal(err)
	}
	partedAt := time.Now()
	c.WaitFor("the majority to mark a dead and keep quorum", c.Timing.Deadtime+15*time.Second, func() error {
		return c.Check(majority, all(quorum(true), state("a", model.NodeDead), lease("a", false),
			state("b", model.NodeAlive), state("w", model.NodeAlive), lease("b", true), lease("w", true)))
	})
	t.Logf("majority marked a dead %v after the partition", time.Since(partedAt).Round(time.Millisecond))
	// Safety: once the majority says a is dead, a must already know its
	// lease is gone (the lease is shorter than deadtime).
	if err := c.Check([]string{"a"}, lease("a", false)); err != nil {
		t.Errorf("a still holds its lease after the majority declared it dead: %v", err)
	}
	c.WaitFor("a to report no lease and no quorum", c.Timing.Deadtime+15*time.Second, func() error {
		return c.Check([]string{"a"}, all(lease("a", false), quorum(false), state("b", model.NodeDead), state("w", model.NodeDead)))
	})
	c.WaitFor("the majority to keep a coordinator", formTimeout, func() error {
		return c.Check(majority, func(st model.Status) error {
			if st.Leader != "b" && st.Leader != "w" {
				return fmt.Errorf("leader %q, want b or w", st.Leader)
			}
			return nil
		})
	})
	c.WaitEvent("b", model.Event{Kind: model.EventNodeDead, Node: "a"}, before, eventTimeout)

	if err := c.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	healedAt := time.Now()
	c.WaitHealthy(formTimeout)
	t.Logf("healthy again %v after healing", time.Since(healedAt).Round(time.Millisecond))
	// What a logged while alone reaches the replicated log once it is back.
	c.WaitEvent("b", model.Event{Kind: model.EventLeaseLost, Reporter: "a", Node: "a"}, before, eventTimeout)
	c.WaitEvent("b", model.Event{Kind: model.EventQuorumLost, Reporter: "a"}, before, eventTimeout)
	c.WaitEvent("a", model.Event{Kind: model.EventNodeAlive, Node: "a"}, before, eventTimeout)
}

// One-way loss. First a's packets to b are dropped (b's still reach a): b
// marks a dead, but the witness still hears a and keeps granting its lease,
// so a keeps a lease backed by a majority (itself and w), and every node, b
// included, reports that lease as possibly held, since one refusal is not a
// quorum's; nobody loses quorum. Then a's packets to everyone are dropped: a
// hears the others but gets no acknowledgement, so it has lost its lease by
// the time the others declare it dead, and they then report it expired.
func TestOneWayPartition(t *testing.T) {
	c := Start(t, Options{Tag: "cone", PublicSubnet: "10.78.13.0/24", HeartbeatSubnet: "10.78.14.0/24", Nodes: twoPlusWitness()})
	c.WaitHealthy(formTimeout)

	if err := c.Lab.Partition([]string{"a"}, []string{"b"}, true); err != nil {
		t.Fatal(err)
	}
	// b refuses a's lease, but one refusal is not a quorum's: b must still
	// count a's lease as possibly held (rule 4 of the safety model).
	c.WaitFor("b to mark a dead", c.Timing.Deadtime+15*time.Second, func() error {
		return c.Check([]string{"b"}, all(state("a", model.NodeDead), lease("a", true), quorum(true), lease("b", true)))
	})
	// Hold the state a while: it must be stable, not a transition.
	deadline := time.Now().Add(2 * c.Timing.Deadtime)
	for time.Now().Before(deadline) {
		if err := c.Check([]string{"w"}, all(quorum(true), state("a", model.NodeAlive), lease("a", true),
			state("b", model.NodeAlive), lease("b", true))); err != nil {
			t.Fatalf("a→b dropped: %v", err)
		}
		if err := c.Check([]string{"a"}, all(quorum(true), lease("a", true), state("b", model.NodeAlive), state("w", model.NodeAlive))); err != nil {
			t.Fatalf("a→b dropped: %v", err)
		}
		if err := c.Check([]string{"b"}, all(quorum(true), state("a", model.NodeDead), lease("a", true), lease("b", true))); err != nil {
			t.Fatalf("a→b dropped: %v", err)
		}
		time.Sleep(PollInterval)
	}
	if err := c.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(formTimeout)

	if err := c.Lab.Partition([]string{"a"}, []string{"b", "w"}, true); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("b and w to mark a dead", c.Timing.Deadtime+15*time.Second, func() error {
		return c.Check([]string{"b", "w"}, all(state("a", model.NodeDead), lease("a", false), quorum(true), lease("b", true), lease("w", true)))
	})
	if err := c.Check([]string{"a"}, lease("a", false)); err != nil {
		t.Errorf("a still holds its lease after the others declared it dead: %v", err)
	}
	st := c.MustStatus("a")
	t.Logf("a, heard by nobody but hearing everyone: quorum=%v lease=%v, b %s, w %s", st.Quorum, mustNode(t, st, "a").Lease,
		mustNode(t, st, "b").State, mustNode(t, st, "w").State)
	if err := c.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(formTimeout)
}

func mustNode(t *testing.T, st model.Status, name string) model.NodeStatus {
	t.Helper()
	n, err := node(st, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// kill -9 and restart a node with the same data dir: it rejoins, a new
// incarnation, and serves the event log it had committed before the kill
// plus the events appended while it was down.
func TestRestartRejoinsWithData(t *testing.T) {
	c := Start(t, Options{Tag: "crst", PublicSubnet: "10.78.9.0/24", HeartbeatSubnet: "10.78.10.0/24", Nodes: twoPlusWitness()})
	c.WaitHealthy(formTimeout)
	// Wait until b has applied its own join events, so there is a history.
	c.WaitEvent("b", model.Event{Kind: model.EventNodeJoined, Reporter: "b"}, 0, eventTimeout)
	evs, err := c.Events("b")
	if err != nil {
		t.Fatal(err)
	}
	old := evs[len(evs)-1]
	st := c.MustStatus("b")
	oldInc := incarnation(t, mustNode(t, st, "b").LeaseEpoch)

	killedAt := c.Kill("b")
	c.WaitFor("b marked dead", c.Timing.Deadtime+15*time.Second, func() error {
		return c.Check([]string{"a", "w"}, state("b", model.NodeDead))
	})
	whileDown := c.WaitEvent("a", model.Event{Kind: model.EventNodeDead, Node: "b"}, old.Index, eventTimeout)
	t.Logf("b down for %v; last event before the kill #%d, node_dead #%d", time.Since(killedAt).Round(time.Millisecond), old.Index, whileDown.Index)

	c.Restart("b")
	c.WaitHealthy(formTimeout)
	st = c.MustStatus("b")
	if inc := incarnation(t, mustNode(t, st, "b").LeaseEpoch); inc <= oldInc {
		t.Errorf("incarnation after restart %d, before %d: want it to grow", inc, oldInc)
	}
	c.WaitFor("b's log to hold the old events and those appended while it was down", eventTimeout, func() error {
		evs, err := c.Events("b")
		if err != nil {
			return err
		}
		var sawOld, sawDown bool
		for _, ev := range evs {
			switch ev.Index {
			case old.Index:
				if ev.Kind != old.Kind || ev.Reporter != old.Reporter || !ev.Time.Equal(old.Time) {
					return fmt.Errorf("event #%d changed across the restart: %+v, was %+v", ev.Index, ev, old)
				}
				sawOld = true
			case whileDown.Index:
				sawDown = ev.Kind == model.EventNodeDead && ev.Node == "b"
			}
		}
		if !sawOld || !sawDown {
			return fmt.Errorf("%d events; #%d (before the kill) present: %v, #%d (while down) present: %v",
				len(evs), old.Index, sawOld, whileDown.Index, sawDown)
		}
		return nil
	})
	c.WaitEvent("a", model.Event{Kind: model.EventNodeAlive, Node: "b"}, whileDown.Index, eventTimeout)
}

func incarnation(t *testing.T, epoch string) uint64 {
	t.Helper()
	inc, _, ok := strings.Cut(epoch, ".")
	v, err := strconv.ParseUint(inc, 10, 64)
	if !ok || err != nil {
		t.Fatalf("lease_epoch %q: want INCARNATION.GEN", epoch)
	}
	return v
}

// A node with the wrong heartbeat key is rejected and counted: the others
// never see it alive (after initdead it is dead), their bad_mac counters
// grow, and an auth_rejected event reaches the log.
func TestWrongHeartbeatKey(t *testing.T) {
	nodes := twoPlusWitness()
	nodes[1].WrongKey = true
	c := Start(t, Options{Tag: "ckey", PublicSubnet: "10.78.11.0/24", HeartbeatSubnet: "10.78.12.0/24", Nodes: nodes,
		Timing: Timing{Initdead: 4 * time.Second}})
	startedAt := time.Now()
	good := []string{"a", "w"}
	neverAlive := func(st model.Status) error {
		if n, err := node(st, "b"); err != nil || n.State == model.NodeAlive || n.Lease {
			return fmt.Errorf("b with the wrong key: %+v (%v)", n, err)
		}
		return nil
	}
	// Every status poll from here on must not see b alive.
	var seenAlive error
	checkGood := func(cs ...check) func() error {
		return func() error {
			return c.Check(good, func(st model.Status) error {
				if err := neverAlive(st); err != nil && seenAlive == nil {
					seenAlive = err
				}
				return all(cs...)(st)
			})
		}
	}
	c.WaitFor("a and w to form a quorum without b", formTimeout, checkGood(quorum(true), hasLeader,
		state("a", model.NodeAlive), state("w", model.NodeAlive), lease("a", true), lease("w", true)))
	var first map[string]uint64
	c.WaitFor("bad_mac counted by a and w", formTimeout, func() error {
		first = map[string]uint64{}
		return checkGood(func(st model.Status) error {
			if st.Heartbeat.BadMAC == 0 {
				return fmt.Errorf("bad_mac is 0: %+v", st.Heartbeat)
			}
			first[st.Node] = st.Heartbeat.BadMAC
			return nil
		})()
	})
	c.WaitFor("b dead after initdead", c.Timing.Initdead+15*time.Second, checkGood(state("b", model.NodeDead), quorum(true)))
	t.Logf("b dead %v after start (initdead %v)", time.Since(startedAt).Round(time.Millisecond), c.Timing.Initdead)
	c.WaitFor("bad_mac to keep growing", formTimeout, checkGood(func(st model.Status) error {
		if st.Heartbeat.BadMAC <= first[st.Node] {
			return fmt.Errorf("bad_mac %d, was %d", st.Heartbeat.BadMAC, first[st.Node])
		}
		return nil
	}))
	if seenAlive != nil {
		t.Errorf("a node with the wrong key was seen alive: %v", seenAlive)
	}
	ev := c.WaitEvent("a", model.Event{Kind: model.EventAuthRejected}, 0, eventTimeout)
	t.Logf("auth_rejected by %s: %s", ev.Reporter, ev.Reason)
	if ev.Reporter == "b" {
		// b rejects the others' packets too; either side may report first,
		// but a good node must also report.
		c.WaitFor("auth_rejected reported by a or w", eventTimeout, func() error {
			evs, err := c.Events("a")
			if err != nil {
				return err
			}
			if len(Find(evs, model.Event{Kind: model.EventAuthRejected, Reporter: "a"}))+
				len(Find(evs, model.Event{Kind: model.EventAuthRejected, Reporter: "w"})) == 0 {
				return errors.New("only b reported auth_rejected")
			}
			return nil
		})
	}
	// The log never says a good node heard b, nor b a good node.
	evs, err := c.Events("a")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if (ev.Kind == model.EventNodeJoined || ev.Kind == model.EventNodeAlive || ev.Kind == model.EventLinkUp) &&
			(ev.Node == "b" || ev.Reporter == "b") {
			t.Errorf("heartbeats with the wrong key were accepted: %+v", ev)
		}
	}
	// b, hearing nobody, holds no lease and has no quorum.
	st := c.MustStatus("b")
	if err := all(quorum(false), lease("b", false))(st); err != nil {
		t.Errorf("b sees: %v", err)
	}
}

// The brief's example witness has a single address (the public network)
// while the two servers also share a heartbeat network. Every node must
// still report a healthy cluster: a link that the observer and a peer do not
// share is not "down".
func TestWitnessWithOneLink(t *testing.T) {
	nodes := twoPlusWitness()
	nodes[2].PublicOnly = true
	c := Start(t, Options{Tag: "cwit", PublicSubnet: "10.78.15.0/24", HeartbeatSubnet: "10.78.16.0/24", Nodes: nodes})
	c.WaitHealthy(formTimeout)
}
