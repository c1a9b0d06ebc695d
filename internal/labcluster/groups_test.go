package labcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"github.com/vigil-ha/vigil/internal/model"
)

// Group scenario tests (brief.md S1, S4, S5, S6, S8, a local monitor
// failure). Every test that moves a group runs the split-brain checker
// (checker.go) for its whole life and a client in its own namespace that
// requests the group's VIP every 10 ms (client.go). Safety is asserted
// exactly (the checker); timings generously, since the tests share two
// cores with the agents and other test packages.

const (
	// takeoverSlack is what a takeover may take beyond deadtime: the
	// coordinator's round, a raft commit, starting the VIP and demo-web
	// (200 ms settle), a gratuitous ARP; on a loaded machine.
	takeoverSlack = 5 * time.Second
	// convergeTimeout bounds a group reaching its node once everything it
	// needs is there.
	convergeTimeout = 30 * time.Second
	clientHost      = "client"
)

// groupLab is a cluster with groups, its checker and one client per group.
type groupLab struct {
	*Cluster
	t       *testing.T
	chk     *Checker
	groups  map[string]WebGroup
	clients map[string]*Client
}

// web is the group of most tests: a VIP and demo-web on port 8080,
// preferring a, then b.
func web(third int) WebGroup {
	return WebGroup{Name: "web", Nodes: []string{"a", "b"}, VIP: fmt.Sprintf("10.81.%d.100/24", third), Port: 8080}
}

// startGroupLab starts a, b and witness w with the groups on public subnet
// 10.81.third.0/24 (heartbeat 10.81.third+1.0/24), a client host, the
// checker and the clients, and waits for a healthy cluster.
func startGroupLab(t *testing.T, tag string, third int, tm Timing, groups ...WebGroup) *groupLab {
	t.Helper()
	c := New(t, Options{Tag: tag, PublicSubnet: fmt.Sprintf("10.81.%d.0/24", third),
		HeartbeatSubnet: fmt.Sprintf("10.81.%d.0/24", third+1), Nodes: twoPlusWitness(), Timing: tm, Clients: []string{clientHost}})
	c.AddGroups(groups...)
	gl := &groupLab{Cluster: c, t: t, groups: map[string]WebGroup{}, clients: map[string]*Client{}}
	var watches []Watch
	for _, g := range groups {
		gl.groups[g.Name] = g
		watches = append(watches, g.Watch())
	}
	gl.chk = c.CheckSplitBrain(watches...)
	c.StartAll()
	c.WaitHealthy(formTimeout)
	for _, g := range groups {
		gl.clients[g.Name] = c.StartClient(clientHost, g.Addr())
	}
	return gl
}

// waitOn waits until the group runs on node, as every observer's `vigil
// groups` shows it, and the client gets answers from node.
func (gl *groupLab) waitOn(observers []string, group, node string, timeout time.Duration) {
	gl.t.Helper()
	start := time.Now()
	gl.WaitGroupOn(observers, group, node, timeout)
	if _, err := gl.clients[group].WaitServedBy(node, max(timeout-time.Since(start), 10*time.Second)); err != nil {
		gl.t.Fatalf("group %s: %v", group, err)
	}
}

// events is the event log as the first observer that answers serves it.
func (gl *groupLab) events(observers ...string) []model.Event {
	gl.t.Helper()
	var errs []string
	for _, o := range observers {
		evs, err := gl.Events(o)
		if err == nil {
			return evs
		}
		errs = append(errs, err.Error())
	}
	gl.t.Fatalf("events: %s", strings.Join(errs, "; "))
	return nil
}

// waitGroupEvent waits until observer's log holds an event about group of
// kind, about node (any if ""), after index; it returns the first.
func (gl *groupLab) waitGroupEvent(observer, group string, kind model.EventKind, node string, after uint64, timeout time.Duration) model.Event {
	gl.t.Helper()
	var got model.Event
	gl.WaitFor(fmt.Sprintf("%s about group %s (node %q) in %s's log", kind, group, node, observer), timeout, func() error {
		evs, err := gl.Events(observer)
		if err != nil {
			return err
		}
		for _, ev := range GroupEvents(Since(evs, after), group, kind) {
			if node == "" || ev.Node == node {
				got = ev
				return nil
			}
		}
		return fmt.Errorf("not among its %d events", len(evs))
	})
	return got
}

// holdOn checks, for d, that every observer keeps showing group running on
// node and the client keeps getting answers from node only.
func (gl *groupLab) holdOn(observers []string, group, node string, d time.Duration) {
	gl.t.Helper()
	from := time.Now()
	for time.Since(from) < d {
		for _, o := range observers {
			if err := gl.GroupOn(o, group, node); err != nil {
				gl.t.Fatalf("%v after %v", err, time.Since(from).Round(time.Millisecond))
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	by, failed := gl.clients[group].AnswersAfter(from)
	for n, k := range by {
		if n != node {
			gl.t.Errorf("group %s: %d answers from %s while it should stay on %s", group, k, n, node)
		}
	}
	if by[node] == 0 {
		gl.t.Errorf("group %s: no answer from %s in %v (%d failed)", group, node, d, failed)
	}
}

func servicePids(gl *groupLab, host, group string) []int {
	_, _, pids := gl.chk.Now(host, group)
	return pids
}

// --- the checker itself ----------------------------------------------------

// The checker can fail (S9 flavour): with web running on a, a second holder
// is made by hand on b, as an operator might by mistake: the VIP's address
// on b's eth0 and a lease element in b's own `ip vigil` table, with a 3 s
// timeout. A second checker instance must report two VIP holders, keep
// counting b while b is frozen (its element has not expired), and stop
// counting b once the element expires although the address stays. Then a
// copy of demo-web started by hand on b must be reported as a second
// service.
func TestCheckerCatchesSecondHolder(t *testing.T) {
	g := web(1)
	c := New(t, Options{Tag: "gchk", PublicSubnet: "10.81.1.0/24", HeartbeatSubnet: "10.81.2.0/24", Nodes: twoPlusWitness()})
	c.AddGroups(g)
	c.StartAll()
	c.WaitHealthy(formTimeout)
	c.WaitGroupOn([]string{"a", "b"}, "web", "a", convergeTimeout)
	sub, err := NewChecker(c.Lab, c.Names(), []Watch{g.Watch()}, CheckerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	time.Sleep(300 * time.Millisecond)
	if held, addr, pids := sub.Now("a", "web"); !held || !addr || len(pids) != 1 {
		t.Fatalf("checker sees on a: held %v, address %v, service pids %v; want the VIP held and one demo-web", held, addr, pids)
	}
	if v := sub.Violations(); len(v) > 0 {
		t.Fatalf("violations before the fault: %s", sub.Report(v[0]))
	}

	b := c.Node("b").Host
	vip := g.vip().String()
	const lease = 3 * time.Second
	script := fmt.Sprintf(`table ip vigil {
  set vips { type ipv4_addr; elements = { %[1]s } }
  set leased { type ipv4_addr; flags timeout; }
  chain input { type filter hook input priority -300; policy accept; ip daddr @vips ip daddr != @leased drop; }
}
add element ip vigil leased { %[1]s timeout %[2]dms }
`, vip, lease.Milliseconds())
	ctx := context.Background()
	if out, err := b.Run(ctx, "sh", "-c", "printf '%s' \"$0\" | nft -f - && ip addr add "+g.VIP+" dev eth0", script); err != nil {
		t.Fatalf("make b a second holder by hand: %v: %s", err, out)
	}
	madeAt := time.Now()
	t.Cleanup(func() {
		_, _ = b.Run(context.Background(), "sh", "-c", "ip addr del "+g.VIP+" dev eth0; nft delete table ip vigil")
	})
	// Frozen with a live element, b still counts.
	if err := b.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(lease + 700*time.Millisecond)
	if err := b.Thaw(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if held, addr, _ := sub.Now("b", "web"); held || !addr {
		t.Errorf("after the element expired the checker sees on b: held %v, address %v; want the address there but not held", held, addr)
	}
	var vipV *Violation
	for _, v := range sub.Violations() {
		if v.Kind == "vip" {
			vipV = &v
			break
		}
	}
	if vipV == nil {
		t.Fatalf("no VIP violation reported; timeline:\n%s", sub.Timeline(madeAt.Add(-time.Second), time.Now()))
	}
	t.Logf("reported as expected:\n%s", sub.Report(*vipV))
	if strings.Join(vipV.Hosts, ",") != "a,b" {
		t.Errorf("violation hosts %v, want a and b", vipV.Hosts)
	}
	if d := vipV.To.Sub(vipV.From); d < lease-time.Second || d > lease+500*time.Millisecond {
		t.Errorf("violation lasted %v, want about the %v of the hand-made lease element (frozen or not)", d, lease)
	}
	if vipV.From.Sub(madeAt) > 500*time.Millisecond {
		t.Errorf("violation first seen %v after the second holder was made", vipV.From.Sub(madeAt))
	}

	// A second demo-web, started by hand on b while b's agent runs.
	p, err := b.Start("rogue-web", []string{c.Bin, "demo-web", "--listen", g.Listen(), "--node", "b"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	startedAt := time.Now()
	_, err = Poll(5*time.Second, func() error {
		for _, v := range sub.Violations() {
			if v.Kind == "service" {
				return nil
			}
		}
		return fmt.Errorf("no service violation")
	})
	if err != nil {
		t.Fatalf("a second demo-web on b: %v; timeline:\n%s", err, sub.Timeline(startedAt.Add(-time.Second), time.Now()))
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, v := range sub.Violations() {
		if v.Kind == "service" {
			t.Logf("reported as expected:\n%s", sub.Report(v))
		}
	}
	sub.Stop()
	t.Log(sub.Summary())
}

// --- S1 ----------------------------------------------------------------------

// S1: the active node loses power (links cut, every process in its
// namespace SIGKILLed). b takes over within deadtime + start time; the
// user sees it in `vigil groups`, in the client's answers and in the log.
func TestS1PowerOffActiveNode(t *testing.T) {
	g := web(3)
	gl := startGroupLab(t, "gs1", 3, Timing{}, g)
	gl.waitOn([]string{"a", "b", "w"}, "web", "a", convergeTimeout)
	before := lastIndex(gl.events("b"))

	at := gl.PowerOff("a")
	gl.WaitGroupOn([]string{"b", "w"}, "web", "b", gl.Timing.Deadtime+convergeTimeout)
	cl := gl.clients["web"]
	if _, err := cl.WaitServedBy("b", convergeTimeout); err != nil {
		t.Fatal(err)
	}
	gap, err := cl.GapAt("a", "b", at)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("S1 client-observed failover: first answer from b %v after the power-off (outage %v since the last answer from a, %d failed requests); deadtime %v",
		gap.SinceFault.Round(time.Millisecond), gap.Outage.Round(time.Millisecond), gap.Failed, gl.Timing.Deadtime)
	if limit := gl.Timing.Deadtime + takeoverSlack; gap.SinceFault > limit {
		t.Errorf("b answered %v after a lost power, want ≤ deadtime + %v = %v", gap.SinceFault, takeoverSlack, limit)
	}
	if gap.SinceFault < gl.Timing.Deadtime/2 {
		t.Errorf("b answered %v after the power-off: sooner than a's lease could have expired", gap.SinceFault)
	}
	as := gl.waitGroupEvent("b", "web", model.EventGroupAssigned, "b", before, eventTimeout)
	st := gl.waitGroupEvent("b", "web", model.EventGroupStarted, "b", before, eventTimeout)
	t.Logf("log: #%d %s by %s: %s; #%d group_started at power-off+%v", as.Index, as.Kind, as.Reporter, as.Reason,
		st.Index, st.Time.Sub(at).Round(time.Millisecond))
	if !strings.Contains(as.Reason, "takeover") {
		t.Errorf("assignment to b: reason %q, want a takeover", as.Reason)
	}
	gl.holdOn([]string{"b", "w"}, "web", "b", 2*time.Second)
}

// --- two groups, S8 ---------------------------------------------------------

// Seed 001 with S8: web prefers a (failback manual), mail prefers b
// (failback auto after 3 s). Each starts on its preferred node. a dies:
// both run on b. a returns: mail stays on b (its home), web stays on b
// until an operator runs `vigil failback web`, then moves to a. Then b
// dies: mail goes to a; b returns and, once alive for failback_delay, mail
// moves back to b by itself.
func TestTwoGroupsFailback(t *testing.T) {
	wg := web(5)
	mail := WebGroup{Name: "mail", Nodes: []string{"b", "a"}, VIP: "10.81.5.101/24", Port: 8081,
		Failback: "auto", FailbackDelay: 3 * time.Second}
	gl := startGroupLab(t, "gtwo", 5, Timing{}, wg, mail)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	gl.waitOn(nodes, "mail", "b", convergeTimeout)

	// a dies: web moves to b; mail, already there, does not move.
	before := lastIndex(gl.events("b"))
	at := gl.PowerOff("a")
	gl.waitOn([]string{"b", "w"}, "web", "b", gl.Timing.Deadtime+convergeTimeout)
	if gap, err := gl.clients["web"].GapAt("a", "b", at); err == nil {
		t.Logf("web: first answer from b %v after a lost power", gap.SinceFault.Round(time.Millisecond))
	}
	if err := gl.GroupOn("w", "mail", "b"); err != nil {
		t.Fatal(err)
	}
	for _, ev := range GroupEvents(Since(gl.events("b"), before), "mail", model.EventGroupAssigned, model.EventGroupReleased, model.EventGroupStopping) {
		t.Errorf("mail touched while a died: %+v", ev)
	}

	// a comes back: nothing moves by itself.
	gl.PowerOn("a")
	gl.WaitHealthy(formTimeout)
	gl.WaitGroupOn(nodes, "web", "b", convergeTimeout)
	backAt := time.Now()
	gl.holdOn(nodes, "web", "b", 2*mail.FailbackDelay)
	gl.holdOn(nodes, "mail", "b", time.Second)
	t.Logf("a back for %v: web stays on b (manual failback), mail on b (its preferred node)", time.Since(backAt).Round(time.Millisecond))

	// The operator authorises web's failback.
	before = lastIndex(gl.events("w"))
	gl.Operator("w", "failback", "web", "--reason", "lab: a is repaired")
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	rel := gl.waitGroupEvent("w", "web", model.EventGroupReleased, "b", before, eventTimeout)
	t.Logf("web failback: %s", rel.Reason)
	gl.waitGroupEvent("w", "web", model.EventFailbackAuthorised, "", before, eventTimeout)
	if err := gl.GroupOn("w", "mail", "b"); err != nil {
		t.Fatal(err)
	}

	// Mirror, for failback auto: b dies, mail goes to a, web stays on a.
	at = gl.PowerOff("b")
	gl.waitOn([]string{"a", "w"}, "mail", "a", gl.Timing.Deadtime+convergeTimeout)
	if gap, err := gl.clients["mail"].GapAt("b", "a", at); err == nil {
		t.Logf("mail: first answer from a %v after b lost power", gap.SinceFault.Round(time.Millisecond))
	}
	if err := gl.GroupOn("w", "web", "a"); err != nil {
		t.Fatal(err)
	}
	before = lastIndex(gl.events("w"))
	restartAt := time.Now()
	gl.PowerOn("b")
	gl.waitOn(nodes, "mail", "b", formTimeout+convergeTimeout)
	took := time.Since(restartAt)
	rel = gl.waitGroupEvent("w", "mail", model.EventGroupReleased, "a", before, eventTimeout)
	t.Logf("mail failed back to b %v after b's agent started (failback_delay %v): %s", took.Round(time.Millisecond), mail.FailbackDelay, rel.Reason)
	if took < mail.FailbackDelay {
		t.Errorf("mail failed back %v after b came back, before failback_delay %v", took, mail.FailbackDelay)
	}
	if !strings.Contains(rel.Reason, "failback") {
		t.Errorf("release of mail: reason %q, want a failback", rel.Reason)
	}
	gl.holdOn(nodes, "web", "a", time.Second)
}

// --- S4 ----------------------------------------------------------------------

// S4: cut cables, no split brain. (1) a's heartbeat link is cut: the public
// network still carries heartbeats, nothing moves. (2) a and b cannot reach
// each other on either network, while the witness reaches both: the witness
// keeps granting a's lease, so a keeps the group and b never runs it. (3) a
// is cut off from everyone: the side with quorum (b and the witness) takes
// the group once a's lease has surely expired, and a gives it up.
func TestS4CutLinksNoSplitBrain(t *testing.T) {
	g := web(7)
	gl := startGroupLab(t, "gs4", 7, Timing{}, g)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	before := lastIndex(gl.events("w"))

	// (1)
	if err := gl.Lab.CutLink("a", Heartbeat); err != nil {
		t.Fatal(err)
	}
	gl.holdOn(nodes, "web", "a", 2*gl.Timing.Deadtime)
	if err := gl.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	t.Log("(1) heartbeat link of a cut for 2 × deadtime: web stayed on a")

	// (2)
	if err := gl.Lab.Partition([]string{"a"}, []string{"b"}, false); err != nil {
		t.Fatal(err)
	}
	partedAt := time.Now()
	gl.WaitFor("b to see a dead", gl.Timing.Deadtime+convergeTimeout, func() error {
		return gl.Check([]string{"b"}, state("a", model.NodeDead))
	})
	gl.holdOn([]string{"a", "w"}, "web", "a", 2*gl.Timing.Deadtime)
	gl.holdOn([]string{"b"}, "web", "a", 500*time.Millisecond)
	if err := gl.Check([]string{"w"}, all(lease("a", true), lease("b", true), quorum(true))); err != nil {
		t.Fatalf("witness: %v", err)
	}
	if _, _, pids := gl.chk.Now("b", "web"); len(pids) > 0 {
		t.Fatalf("b runs demo-web (pids %v) while a holds the group", pids)
	}
	for _, ev := range GroupEvents(Since(gl.events("w"), before), "web", model.EventGroupAssigned, model.EventGroupReleased, model.EventGroupStarting) {
		t.Errorf("web touched during the a|b partition: %+v", ev)
	}
	t.Logf("(2) a|b partitioned for %v, the witness reaching both: web stayed on a", time.Since(partedAt).Round(time.Millisecond))
	if err := gl.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	gl.WaitHealthy(formTimeout)

	// (3)
	before = lastIndex(gl.events("w"))
	if err := gl.Lab.Partition([]string{"a"}, []string{"b", "w"}, false); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	gl.WaitGroupOn([]string{"b", "w"}, "web", "b", gl.Timing.Deadtime+convergeTimeout)
	if _, err := gl.clients["web"].WaitServedBy("b", convergeTimeout); err != nil {
		t.Fatal(err)
	}
	gap, err := gl.clients["web"].GapAt("a", "b", cutAt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("(3) a cut off: b serves %v after the cut", gap.SinceFault.Round(time.Millisecond))
	// a gave up on its own: it lost its lease, removed the VIP, stopped demo-web.
	gl.WaitFor("a to stop its copy", convergeTimeout, func() error {
		if held, addr, pids := gl.chk.Now("a", "web"); held || addr || len(pids) > 0 {
			return fmt.Errorf("a: VIP held %v, address %v, demo-web pids %v", held, addr, pids)
		}
		return nil
	})
	if err := gl.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	gl.WaitHealthy(formTimeout)
	gl.WaitGroupOn(nodes, "web", "b", convergeTimeout)
	ev := gl.waitGroupEvent("b", "web", model.EventGroupStopping, "a", before, eventTimeout)
	t.Logf("a's own report, shipped once healed: %s", ev.Reason)
	gl.holdOn(nodes, "web", "b", time.Second)
}

// --- S5 ----------------------------------------------------------------------

// S5: every node loses power, then they come back one by one: the other
// two in a random order, then a, the preferred node, a few seconds later but
// within initdead: by then b and the witness form a quorum, and a's first
// heartbeat proves its old lease over before it holds a new one. The group
// starts exactly once, on a, and never on two nodes.
func TestS5AllPowerOffThenBack(t *testing.T) {
	g := web(9)
	tm := Timing{Initdead: 8 * time.Second}
	gl := startGroupLab(t, "gs5", 9, tm, g)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	before := lastIndex(gl.events("a"))

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	order := append([]string(nil), nodes...)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, n := range order {
		gl.PowerOff(n)
	}
	t.Logf("all powered off (order %v)", order)
	time.Sleep(time.Second)
	order = []string{"b", "w"}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	order = append(order, "a")
	t.Logf("powering on in the order %v (seed %d): 1 s, then 3 s apart", order, seed)
	first := time.Now()
	for i, n := range order {
		switch i {
		case 1:
			time.Sleep(time.Second)
		case 2:
			time.Sleep(3 * time.Second)
		}
		gl.PowerOn(n)
		t.Logf("%s on at +%v", n, time.Since(first).Round(time.Millisecond))
	}
	if d := time.Since(first); d > tm.Initdead-2*time.Second {
		t.Logf("machine slow: a came back %v after the first node, close to initdead %v", d, tm.Initdead)
	}
	// Until the coordinator assigns it again, `vigil groups` still shows
	// what the log said before the power cut (web running on a): wait for
	// the new start first.
	started := gl.waitGroupEvent("a", "web", model.EventGroupStarted, "", before, tm.Initdead+convergeTimeout)
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	t.Logf("web started on %s %v after the first node came back", started.Reporter, started.Time.Sub(first).Round(time.Millisecond))
	gl.holdOn(nodes, "web", "a", 2*time.Second)

	evs := GroupEvents(Since(gl.events("a"), before), "web")
	var starts []model.Event
	for _, ev := range evs {
		switch ev.Kind {
		case model.EventGroupStarting:
			starts = append(starts, ev)
		case model.EventGroupAssigned:
			if ev.Node != "a" {
				t.Errorf("web assigned to %s after the power cut: %+v", ev.Node, ev)
			}
		}
	}
	if len(starts) != 1 || starts[0].Reporter != "a" {
		t.Errorf("after the power cut web started %d times, want exactly once, on a:\n%s", len(starts), FormatEvents(evs))
	} else {
		t.Logf("web's events since the power cut:\n%s", FormatEvents(evs))
	}
	if _, svc := gl.chk.HeldFor("b", "web"); svc > 0 {
		t.Errorf("b ran demo-web for %v", svc)
	}
}

// --- S6 ----------------------------------------------------------------------

// S6, the whole node frozen like a paused VM (every process SIGSTOPped,
// links cut) for longer than deadtime: b takes over and the client sees b.
// When a resumes it never serves the group again: its lease element has
// expired, and it stops its own copy (VIP, demo-web) at once. The checker
// must stay clean through all of it, thaw included.
func TestS6FrozenNode(t *testing.T) {
	g := web(11)
	gl := startGroupLab(t, "gs6", 11, Timing{}, g)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	a := gl.Node("a").Host
	before := lastIndex(gl.events("b"))

	at := time.Now()
	if err := a.Freeze(); err != nil {
		t.Fatal(err)
	}
	gl.waitOn([]string{"b", "w"}, "web", "b", gl.Timing.Deadtime+convergeTimeout)
	gap, err := gl.clients["web"].GapAt("a", "b", at)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a frozen: b serves %v after the freeze", gap.SinceFault.Round(time.Millisecond))
	// Frozen, a still has the address, and demo-web, both stopped.
	if held, addr, pids := gl.chk.Now("a", "web"); held || !addr || len(pids) != 1 {
		t.Errorf("frozen a: VIP held %v, address %v, demo-web pids %v; want the address, an expired lease element and a stopped demo-web", held, addr, pids)
	}
	time.Sleep(time.Second)

	thawAt := time.Now()
	if err := a.Thaw(); err != nil {
		t.Fatal(err)
	}
	gl.WaitFor("a to give up its copy after the thaw", convergeTimeout, func() error {
		if held, addr, pids := gl.chk.Now("a", "web"); held || addr || len(pids) > 0 {
			return fmt.Errorf("a: VIP held %v, address %v, demo-web pids %v", held, addr, pids)
		}
		return nil
	})
	t.Logf("a stopped its copy %v after the thaw", time.Since(thawAt).Round(time.Millisecond))
	gl.WaitHealthy(formTimeout)
	// a's replica of the log lags for a moment after the thaw: until it
	// catches up, `vigil groups` on a still shows the group on a.
	gl.WaitGroupOn(nodes, "web", "b", convergeTimeout)
	t.Logf("every node's vigil groups shows web on b %v after the thaw", time.Since(thawAt).Round(time.Millisecond))
	gl.holdOn(nodes, "web", "b", time.Until(thawAt.Add(5*time.Second)))
	if vip, _ := gl.chk.HeldFor("a", "web"); vip == 0 {
		t.Error("the checker never saw a hold the VIP: was it looking?")
	}
	ev := gl.waitGroupEvent("b", "web", model.EventGroupStopping, "a", before, eventTimeout)
	t.Logf("a after the thaw: %s: %s", ev.Kind, ev.Reason)
}

// S6, the agent alone frozen with SIGSTOP, links up: demo-web keeps running
// on a and the address stays on its eth0, but once the lease element runs
// out the kernel stops answering on the VIP by itself: a remote host whose
// ARP cache still points at a cannot connect, and a's MAC answers no ARP
// request for the VIP. b takes over; after SIGCONT, a gives the group up.
func TestS6FrozenAgent(t *testing.T) {
	g := web(13)
	gl := startGroupLab(t, "gs6a", 13, Timing{}, g)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	a, w, cli := gl.Node("a").Host, gl.Node("w").Host, gl.Lab.Host(clientHost)
	macA := strings.TrimSpace(string(mustRun(t, a, "cat", "/sys/class/net/eth0/address")))
	// w plays a host whose ARP cache still points at a.
	mustRun(t, w, "ip", "neigh", "replace", g.vip().String(), "lladdr", macA, "dev", "eth0", "nud", "permanent")
	if err := tcpProbe(w, g.Addr(), 500*time.Millisecond); err != nil {
		t.Fatalf("control probe from w to a's VIP: %v", err)
	}
	lease := leaseOf(gl.Timing)

	stopAt := gl.StopAgent("a")
	expired := stopAt.Add(lease)
	var lastOK time.Time
	var answeredLate []string
	arpChecked := false
	deadline := stopAt.Add(gl.Timing.Deadtime + convergeTimeout)
	for time.Now().Before(deadline) {
		start := time.Now()
		if err := tcpProbe(w, g.Addr(), 150*time.Millisecond); err == nil {
			lastOK = start
			if start.After(expired.Add(100 * time.Millisecond)) {
				answeredLate = append(answeredLate, fmt.Sprintf("+%v", start.Sub(stopAt).Round(time.Millisecond)))
			}
		}
		if !arpChecked && time.Now().After(expired.Add(200*time.Millisecond)) {
			macs, err := arpReplies(cli, g.vip(), 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range macs {
				if m == macA {
					t.Errorf("a's MAC answered an ARP request for the VIP %v after its agent stopped (lease %v)", time.Since(stopAt), lease)
				}
			}
			arpChecked = true
			t.Logf("ARP for the VIP %v after the stop: answered by %v (a is %s)", time.Since(stopAt).Round(time.Millisecond), macs, macA)
			held, addr, pids := gl.chk.Now("a", "web")
			if held || !addr || len(pids) != 1 {
				t.Errorf("a with its agent stopped: VIP held %v, address %v, demo-web pids %v; want the address and demo-web but no lease", held, addr, pids)
			}
		}
		if arpChecked && gl.GroupOn("w", "web", "b") == nil {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	if len(answeredLate) > 0 {
		t.Errorf("a's kernel let TCP to the VIP through after its lease (%v) ran out, probes started at %v after the stop", lease, answeredLate)
	}
	if lastOK.IsZero() {
		t.Log("no probe reached a after the stop")
	} else {
		t.Logf("last TCP probe through a's VIP started %v after the agent stopped (lease %v)", lastOK.Sub(stopAt).Round(time.Millisecond), lease)
	}
	gl.waitOn([]string{"b", "w"}, "web", "b", convergeTimeout)
	gap, err := gl.clients["web"].GapAt("a", "b", stopAt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a's agent stopped: b serves %v after", gap.SinceFault.Round(time.Millisecond))
	if ex := gl.chk.ExemptFor("a", "web"); ex == 0 {
		t.Error("the checker never saw a's demo-web run while a's agent was stopped")
	}

	gl.ContAgent("a")
	contAt := time.Now()
	gl.WaitFor("a to give up its copy after SIGCONT", convergeTimeout, func() error {
		if held, addr, pids := gl.chk.Now("a", "web"); held || addr || len(pids) > 0 {
			return fmt.Errorf("a: VIP held %v, address %v, demo-web pids %v", held, addr, pids)
		}
		return nil
	})
	t.Logf("a stopped its copy %v after SIGCONT", time.Since(contAt).Round(time.Millisecond))
	gl.WaitHealthy(formTimeout)
	gl.WaitGroupOn(nodes, "web", "b", convergeTimeout)
	t.Logf("every node's vigil groups shows web on b %v after SIGCONT", time.Since(contAt).Round(time.Millisecond))
	gl.holdOn(nodes, "web", "b", 2*time.Second)
}

// leaseOf is the lease duration the agents derive from the timing
// (docs/config.md), with the default clock drift of 1 %.
func leaseOf(tm Timing) time.Duration {
	return time.Duration(float64(tm.Deadtime-2*tm.Keepalive) / (1.01 * 1.01))
}

func mustRun(t *testing.T, h interface {
	Run(context.Context, ...string) ([]byte, error)
}, argv ...string) []byte {
	t.Helper()
	out, err := h.Run(context.Background(), argv...)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return out
}

// tcpProbe connects from host to addr and closes.
func tcpProbe(h interface {
	Dial(context.Context, string, string) (net.Conn, error)
}, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// arpReplies broadcasts one ARP request for ip from h's eth0 and collects
// the MACs that answer within wait.
func arpReplies(h interface{ Do(func() error) error }, ip netip.Addr, wait time.Duration) ([]string, error) {
	var c *arp.Client
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Request(ip); err != nil {
		return nil, err
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, err
	}
	var macs []string
	for {
		p, _, err := c.Read()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return macs, nil
			}
			return macs, err
		}
		if p.Operation == arp.OperationReply && p.SenderIP == ip {
			macs = append(macs, p.SenderHardwareAddr.String())
		}
	}
}

// --- local monitor failure, flags, maintenance -------------------------------

// A service that dies is restarted in place up to max_restarts (1), then
// the group moves and the node is flagged; the flag survives a restart of
// every agent and goes only with `vigil flags clear`. In maintenance, a
// dead service is reported but neither restarted nor moved.
func TestMonitorFailureFlagsMaintenance(t *testing.T) {
	g := web(15)
	g.MaxRestarts = 1
	g.MonitorInterval = time.Second
	gl := startGroupLab(t, "gmon", 15, Timing{}, g)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	before := lastIndex(gl.events("w"))

	// First death: restarted on a.
	pid1 := killService(t, gl, "a")
	ev := gl.waitGroupEvent("w", "web", model.EventGroupRestarting, "a", before, eventTimeout)
	t.Logf("after kill -9 of demo-web (pid %d): %s", pid1, ev.Reason)
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	var pid2 int
	gl.WaitFor("a new demo-web on a", convergeTimeout, func() error {
		pids := servicePids(gl, "a", "web")
		if len(pids) != 1 || pids[0] == pid1 {
			return fmt.Errorf("demo-web pids on a: %v (killed %d)", pids, pid1)
		}
		pid2 = pids[0]
		return nil
	})

	// Second death: restarts used up, flag, move to b.
	killService(t, gl, "a")
	gl.waitOn([]string{"b", "w"}, "web", "b", convergeTimeout)
	flag := gl.waitGroupEvent("w", "web", model.EventFlagSet, "a", before, eventTimeout)
	t.Logf("after the second kill (pid %d): flag: %s", pid2, flag.Reason)
	gl.waitGroupEvent("w", "web", model.EventGroupFailed, "a", before, eventTimeout)
	wantFlag := func(want bool) error {
		for _, o := range nodes {
			gs, err := gl.Group(o, "web")
			if err != nil {
				return err
			}
			if _, ok := gs.Flags["a"]; ok != want {
				return fmt.Errorf("%s: web's flags %v, want a flagged: %v", o, gs.Flags, want)
			}
		}
		return nil
	}
	gl.WaitFor("the flag on a in vigil groups", eventTimeout, func() error { return wantFlag(true) })
	out, err := gl.Vigil(context.Background(), "w", "groups", "--node", "w")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vigil groups:\n%s", out)
	if !strings.Contains(string(out), "failed on a") {
		t.Errorf("vigil groups does not show the flag:\n%s", out)
	}

	// Every agent killed and restarted: the flag is still there.
	before = lastIndex(gl.events("w"))
	for _, n := range nodes {
		gl.Kill(n)
	}
	for _, n := range nodes {
		gl.Restart(n)
	}
	gl.WaitHealthy(formTimeout)
	// b's new agent stops what its previous life left and starts web again
	// under its new lease; until then `vigil groups` shows the old report.
	gl.waitGroupEvent("w", "web", model.EventGroupStarted, "b", before, convergeTimeout)
	gl.waitOn(nodes, "web", "b", convergeTimeout)
	if err := wantFlag(true); err != nil {
		t.Fatalf("after restarting every agent: %v", err)
	}
	before = lastIndex(gl.events("w"))
	gl.Operator("w", "flags", "clear", "web", "a", "--reason", "lab: fixed")
	gl.WaitFor("the flag cleared", eventTimeout, func() error { return wantFlag(false) })
	gl.waitGroupEvent("w", "web", model.EventFlagCleared, "a", before, eventTimeout)
	gl.holdOn(nodes, "web", "b", time.Second) // failback manual: stays on b

	// Maintenance: a dead service is only reported.
	gl.Operator("w", "maintenance", "on", "web")
	gl.WaitFor("web in maintenance", eventTimeout, func() error {
		gs, err := gl.Group("b", "web")
		if err != nil {
			return err
		}
		if !gs.Maintenance {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	before = lastIndex(gl.events("w"))
	killed := killService(t, gl, "b")
	mon := gl.WaitFor("b's monitor to report demo-web dead", eventTimeout, func() error {
		evs, err := gl.Events("w")
		if err != nil {
			return err
		}
		for _, ev := range GroupEvents(Since(evs, before), "web", model.EventResourceAction) {
			if ev.Reporter == "b" && strings.HasPrefix(ev.Reason, "monitor") && ev.Resource == "www" {
				return nil
			}
		}
		return fmt.Errorf("no monitor report yet")
	})
	t.Logf("in maintenance, demo-web (pid %d) killed: reported after %v", killed, mon.Round(time.Millisecond))
	time.Sleep(3 * g.MonitorInterval)
	if pids := servicePids(gl, "b", "web"); len(pids) > 0 {
		t.Errorf("in maintenance, demo-web was started again on b: pids %v", pids)
	}
	if pids := servicePids(gl, "a", "web"); len(pids) > 0 {
		t.Errorf("in maintenance, demo-web was started on a: pids %v", pids)
	}
	for _, ev := range GroupEvents(Since(gl.events("w"), before), "web", model.EventGroupRestarting, model.EventGroupStarting,
		model.EventGroupStopping, model.EventGroupAssigned, model.EventGroupReleased, model.EventFlagSet) {
		t.Errorf("in maintenance: %s", FormatEvents([]model.Event{ev}))
	}
	gs, err := gl.Group("w", "web")
	if err != nil {
		t.Fatal(err)
	}
	if gs.Node != "b" {
		t.Errorf("in maintenance web moved to %q", gs.Node)
	}
	gl.Operator("w", "maintenance", "off", "web")
	gl.waitOn(nodes, "web", "b", convergeTimeout)
	t.Logf("maintenance off: web serves from b again")
}

// killService SIGKILLs the group's demo-web on host (that pid only) and
// returns its pid.
func killService(t *testing.T, gl *groupLab, host string) int {
	t.Helper()
	var pid int
	gl.WaitFor("demo-web running on "+host, convergeTimeout, func() error {
		pids := servicePids(gl, host, "web")
		if len(pids) != 1 {
			return fmt.Errorf("demo-web pids on %s: %v", host, pids)
		}
		pid = pids[0]
		return nil
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	return pid
}
