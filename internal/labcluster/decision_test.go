package labcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/model"
)

// Decision-engine scenarios (issue 4, brief.md S2, S3, S7, S9) with real
// agents: public-network isolation of the active node and of the standby,
// a dead service found by health checks from every node (restart in place,
// then a move and a flag), a check failing on one observer only, the
// split-brain probe, and the isolated-node protocol. As in groups_test.go,
// every test runs the 10 ms split-brain checker and a client of the VIP in
// its own namespace; safety is asserted exactly, timings generously.

const (
	// targetPort is where the public targets' demo-web listens.
	targetPort = 9000
	// publicTiming tunes the public targets so that a node is cut off
	// (fall 2 at 500 ms) in about 1 to 1.5 s, and back (rise 2) as fast.
	publicTiming = "interval: 500ms, timeout: 300ms, rise: 2, fall: 2"
	// isolationSlack is what writing the notification files may take
	// beyond deadtime: the loop's tick, scheduling on a loaded machine.
	isolationSlack = 2500 * time.Millisecond
)

// publicLab is a lab whose public network has three target hosts, one of
// each kind of public target: t1 answers ICMP (its kernel), t2 and t3 run
// demo-web, probed by tcp and by http.
func publicLab(t *testing.T, tag string, third int) (*groupLab, WebGroup) {
	t.Helper()
	targets := []string{"t1", "t2", "t3"}
	c := newLab(t, tag, third, Timing{}, targets...)
	addr := func(h string) string { return c.Lab.Host(h).Addr(Public) }
	addClusterYAML(t, c, fmt.Sprintf(`public_targets:
  - {icmp: "%[1]s", %[4]s}
  - {tcp: "%[2]s:%[5]d", %[4]s}
  - {http: "http://%[3]s:%[5]d/", %[4]s}
`, addr("t1"), addr("t2"), addr("t3"), publicTiming, targetPort))
	g := WebGroup{Name: "web", Nodes: []string{"a", "b"}, VIP: fmt.Sprintf("10.83.%d.100/24", third), Port: 8080}
	appendYAML(t, c, groupsYAML(webYAML(c.Bin, g, webOpts{})))
	startTarget(t, c, "t2", targetPort)
	startTarget(t, c, "t3", targetPort)
	gl := startLab(t, c, []Watch{g.Watch()}, g)
	return gl, g
}

// cutFromTargets partitions node from every public target, on every
// network; its links to the other nodes stay up.
func cutFromTargets(t *testing.T, gl *groupLab, node string) time.Time {
	t.Helper()
	at := time.Now()
	if err := gl.Lab.Partition([]string{node}, []string{"t1", "t2", "t3"}, false); err != nil {
		t.Fatal(err)
	}
	return at
}

// --- S2 ----------------------------------------------------------------------

// S2: the active node loses its public network (it cannot reach any of the
// three public targets) while its heartbeat links, and every link to its
// peers, stay up: a is not dead, it keeps its lease, but it cannot serve
// its clients. It reports public_lost, the coordinator releases web, and b
// serves it; what Heartbeat+DRBD cannot do. When a's public network comes
// back, it is eligible again (public_regained) and web stays on b
// (failback manual).
func TestS2ActiveLosesPublicNetwork(t *testing.T) {
	gl, _ := publicLab(t, "ds2", 1)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	before := lastIndex(gl.events("w"))

	at := cutFromTargets(t, gl, "a")
	lost := gl.WaitEvent("w", model.Event{Kind: model.EventPublicLost, Node: "a"}, before, eventTimeout)
	t.Logf("a cut off from the public targets: %s %v after the cut: %s", lost.Kind, lost.Time.Sub(at).Round(time.Millisecond), lost.Reason)
	if lost.Reporter != "a" || lost.Severity != model.SeverityWarning {
		t.Errorf("public_lost: reporter %s severity %s, want a's own warning", lost.Reporter, lost.Severity)
	}
	gl.waitOn(nodes, "web", "b", convergeTimeout)
	gap, err := gl.clients["web"].GapAt("a", "b", at)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("S2: b serves %v after the cut (outage %v, %d failed requests)", gap.SinceFault.Round(time.Millisecond),
		gap.Outage.Round(time.Millisecond), gap.Failed)
	rel := gl.waitGroupEvent("w", "web", model.EventGroupReleased, "a", before, eventTimeout)
	if !strings.Contains(rel.Reason, "public network") || rel.Target != "b" {
		t.Errorf("release of web: target %q reason %q, want a move to b for a's public network", rel.Target, rel.Reason)
	}
	t.Logf("S2 decision: %s", rel.Reason)
	// a was never declared dead: the move is the public network's doing.
	evs := Since(gl.events("w"), before)
	if dead := eventsOf(evs, "a", model.EventNodeDead, model.EventLeaseLost); len(dead) > 0 {
		t.Errorf("a lost its lease or was declared dead although only its public network was cut:\n%s", FormatEvents(dead))
	}
	if err := gl.Check(nodes, all(state("a", model.NodeAlive), lease("a", true))); err != nil {
		t.Error(err)
	}
	t.Logf("web's events:\n%s", FormatEvents(GroupEvents(evs, "web")))

	before = lastIndex(gl.events("w"))
	if err := gl.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	gl.WaitEvent("w", model.Event{Kind: model.EventPublicRegained, Node: "a"}, before, eventTimeout)
	gl.holdOn(nodes, "web", "b", 2*time.Second)
}

// S2 with a pulled cable: the active node's public cable is unplugged while
// its heartbeat cable stays in. Consensus (raft) and the API reach a over the
// heartbeat link, so its public_lost verdict reaches the coordinator and the
// release reaches a: b serves, a keeps its lease. Before raft dialled every
// link, a never learnt of the release and web was served nowhere for as long
// as the cable stayed out.
func TestS2ActivePublicCableUnplugged(t *testing.T) {
	gl, _ := publicLab(t, "ds2c", 41)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	before := lastIndex(gl.events("w"))

	at := time.Now()
	if err := gl.Lab.CutLink("a", Public); err != nil {
		t.Fatal(err)
	}
	gl.waitOn([]string{"b", "w"}, "web", "b", convergeTimeout)
	gap, err := gl.clients["web"].GapAt("a", "b", at)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("public cable of a out: b serves %v after the cut (%d failed requests)", gap.SinceFault.Round(time.Millisecond), gap.Failed)
	// a hears of it too (over the heartbeat link): web is not running there.
	gl.WaitGroupOn([]string{"a"}, "web", "b", convergeTimeout)
	evs := Since(gl.events("w"), before)
	if dead := eventsOf(evs, "a", model.EventNodeDead, model.EventLeaseLost); len(dead) > 0 {
		t.Errorf("a lost its lease or was declared dead although its heartbeat cable was in:\n%s", FormatEvents(dead))
	}
	t.Logf("web's events:\n%s", FormatEvents(GroupEvents(evs, "web")))
	if err := gl.Lab.RestoreLink("a", Public); err != nil {
		t.Fatal(err)
	}
	gl.holdOn(nodes, "web", "b", 2*time.Second)
}

// --- S3 ----------------------------------------------------------------------

// S3: the standby loses its public network. Nothing moves: the client
// keeps being served by a, and b's public_lost is a warning. b is only
// ineligible: an operator's move to b waits (the request is kept) until b
// reaches the public targets again, and then goes through.
func TestS3StandbyLosesPublicNetwork(t *testing.T) {
	gl, _ := publicLab(t, "ds3", 3)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	before := lastIndex(gl.events("w"))

	at := cutFromTargets(t, gl, "b")
	lost := gl.WaitEvent("w", model.Event{Kind: model.EventPublicLost, Node: "b"}, before, eventTimeout)
	t.Logf("b cut off from the public targets: %s %v after the cut: %s", lost.Kind, lost.Time.Sub(at).Round(time.Millisecond), lost.Reason)
	if lost.Reporter != "b" || lost.Severity != model.SeverityWarning {
		t.Errorf("public_lost: reporter %s severity %s, want b's own warning", lost.Reporter, lost.Severity)
	}
	gl.holdOn(nodes, "web", "a", 3*time.Second)

	// b is not eligible: an operator's move to it is kept, not carried out.
	gl.Operator("w", "move", "web", "b", "--reason", "lab: S3, move to a standby without its public network")
	gl.WaitFor("the move request recorded", eventTimeout, func() error {
		g, err := gl.Group("w", "web")
		if err != nil {
			return err
		}
		if g.MoveTarget != "b" {
			return fmt.Errorf("move target %q", g.MoveTarget)
		}
		return nil
	})
	gl.holdOn(nodes, "web", "a", 3*time.Second)
	for _, ev := range GroupEvents(Since(gl.events("w"), before), "web", model.EventGroupReleased, model.EventGroupAssigned,
		model.EventGroupStopping, model.EventGroupLost, model.EventGroupRestarting) {
		t.Errorf("web touched while only the standby lost its public network: %s", FormatEvents([]model.Event{ev}))
	}
	t.Logf("S3: web stayed on a for %v after b lost its public network, a move to b pending", time.Since(at).Round(time.Millisecond))

	healAt := time.Now()
	if err := gl.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	gl.WaitEvent("w", model.Event{Kind: model.EventPublicRegained, Node: "b"}, before, eventTimeout)
	gl.waitOn(nodes, "web", "b", convergeTimeout)
	rel := gl.waitGroupEvent("w", "web", model.EventGroupReleased, "a", before, eventTimeout)
	t.Logf("b back on the public network: the pending move went through %v after the heal: %s",
		time.Since(healAt).Round(time.Millisecond), rel.Reason)
}

// --- S7 ----------------------------------------------------------------------

const (
	// checkName is the name of the http check of the S7 groups.
	checkName = "vip-http"
	// startGrace is their start_grace and takeover_grace.
	startGrace = 5 * time.Second
)

// checkedGroup is web with an http check of its VIP from every node, one
// local restart allowed, short graces; demo-web runs under a shell that
// outlives it, so that the process resource sees nothing when demo-web
// dies: only the health check can.
func checkedGroup(t *testing.T, tag string, third int) (*groupLab, WebGroup) {
	t.Helper()
	c := newLab(t, tag, third, Timing{})
	g := WebGroup{Name: "web", Nodes: []string{"a", "b"}, VIP: fmt.Sprintf("10.83.%d.100/24", third), Port: 8080, MaxRestarts: 1}
	appendYAML(t, c, groupsYAML(webYAML(c.Bin, g, webOpts{shellWrapped: true, group: fmt.Sprintf(`start_grace: %[3]s
takeover_grace: %[3]s
checks:
  - {name: %[1]s, type: http, url: "http://%[2]s/", interval: 300ms, timeout: 250ms, rise: 2, fall: 2, lost_after: 1s, observers: all}
`, checkName, g.Addr(), startGrace)})))
	return startLab(t, c, []Watch{g.Watch()}, g), g
}

var allUp = map[string]string{"a": "up", "b": "up", "w": "up"}

// S7: web's http check is observed from a, b and w. Only demo-web is
// killed (kill -9) on a; its shell stays, so a's process monitor sees a
// running process. Every observer's check fails: the coordinator finds the
// group lost and a restarts it in place (max_restarts 1). Killed again:
// lost again, the restart is used up, a is flagged and web moves to b.
func TestS7ServiceDeadRestartThenMove(t *testing.T) {
	gl, _ := checkedGroup(t, "ds7", 5)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	gl.waitCheck("w", "web", checkName, allUp, convergeTimeout)
	evs := gl.events("w")
	before := lastIndex(evs)
	first := GroupEvents(evs, "web", model.EventGroupStarted)
	if len(first) != 1 {
		t.Fatalf("web started %d times before the fault, want once:\n%s", len(first), FormatEvents(GroupEvents(evs, "web")))
	}
	// Checks are not acted on within start_grace of a start (the seed's
	// waitTimeAfterNormalPrimer), however soon the service dies.
	afterGrace := func(lost, started model.Event) {
		t.Helper()
		if d := lost.Time.Sub(started.Time); d < startGrace-50*time.Millisecond {
			t.Errorf("lost verdict #%d %v after the start #%d, within start_grace %v", lost.Index, d, started.Index, startGrace)
		}
	}

	// First death: lost, restarted on a.
	pid1 := killService(t, gl, "a")
	killedAt := time.Now()
	lost1 := gl.waitGroupEvent("w", "web", model.EventGroupLost, "a", before, eventTimeout)
	rs := gl.waitGroupEvent("w", "web", model.EventGroupRestarting, "a", before, eventTimeout)
	t.Logf("demo-web (pid %d) killed: %s %v later: %s", pid1, lost1.Kind, lost1.Time.Sub(killedAt).Round(time.Millisecond), lost1.Reason)
	t.Logf("then %s: %s", rs.Kind, rs.Reason)
	afterGrace(lost1, first[0])
	if rs.Index < lost1.Index {
		t.Errorf("restart #%d before the lost verdict #%d: not the check's doing", rs.Index, lost1.Index)
	}
	if !strings.Contains(lost1.Reason, "of 3 eligible observers") {
		t.Errorf("lost verdict %q: want a majority of the 3 observers", lost1.Reason)
	}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	restarted := gl.waitGroupEvent("w", "web", model.EventGroupStarted, "a", rs.Index, eventTimeout)
	gl.waitCheck("w", "web", checkName, allUp, convergeTimeout)
	evs = Since(gl.events("w"), before)
	if f := GroupEvents(evs, "web", model.EventGroupFailed, model.EventFlagSet, model.EventGroupReleased); len(f) > 0 {
		t.Fatalf("after the first failure, web must be restarted in place only:\n%s", FormatEvents(f))
	}
	if n := len(GroupEvents(evs, "web", model.EventGroupLost)); n != 1 {
		t.Fatalf("%d lost verdicts after one failure, want 1:\n%s", n, FormatEvents(GroupEvents(evs, "web")))
	}
	t.Logf("restarted on a and every observer sees it up again (started #%d)", restarted.Index)

	// Second death: the restart is used up: flag, move to b.
	before2 := lastIndex(gl.events("w"))
	pid2 := killService(t, gl, "a")
	if pid2 == pid1 {
		t.Fatalf("the same demo-web pid %d after the restart", pid2)
	}
	killedAt = time.Now()
	gl.waitOn([]string{"b", "w"}, "web", "b", convergeTimeout)
	gap, err := gl.clients["web"].GapAt("a", "b", killedAt)
	if err != nil {
		t.Fatal(err)
	}
	lost2 := gl.waitGroupEvent("w", "web", model.EventGroupLost, "a", before2, eventTimeout)
	failed := gl.waitGroupEvent("w", "web", model.EventGroupFailed, "a", before2, eventTimeout)
	flag := gl.waitGroupEvent("w", "web", model.EventFlagSet, "a", before2, eventTimeout)
	t.Logf("second kill (pid %d): lost: %s", pid2, lost2.Reason)
	t.Logf("failed: %s; b serves %v after the kill", failed.Reason, gap.SinceFault.Round(time.Millisecond))
	afterGrace(lost2, restarted)
	if failed.Index < lost2.Index || flag.Index < lost2.Index {
		t.Errorf("group_failed #%d / flag_set #%d before the lost verdict #%d", failed.Index, flag.Index, lost2.Index)
	}
	evs = Since(gl.events("w"), before2)
	if r := GroupEvents(evs, "web", model.EventGroupRestarting); len(r) > 0 {
		t.Errorf("restarted again although max_restarts is 1:\n%s", FormatEvents(r))
	}
	gl.WaitFor("a flagged in vigil groups", eventTimeout, func() error {
		g, err := gl.Group("b", "web")
		if err != nil {
			return err
		}
		if _, ok := g.Flags["a"]; !ok {
			return fmt.Errorf("flags %v", g.Flags)
		}
		return nil
	})
	gl.waitCheck("w", "web", checkName, allUp, convergeTimeout)
	gl.holdOn([]string{"b", "w"}, "web", "b", 2*time.Second)
	t.Logf("web's events since the first kill:\n%s", FormatEvents(GroupEvents(Since(gl.events("w"), before), "web")))
}

// A check that fails on one observer only moves nothing: w's own firewall
// drops its packets to the VIP's port, for six times lost_after; a and b
// still see the service. No lost verdict, no restart, no move, and the
// client is served by a throughout.
func TestCheckFailingOnOneObserverNoFailover(t *testing.T) {
	gl, g := checkedGroup(t, "dobs", 7)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	gl.waitCheck("w", "web", checkName, allUp, convergeTimeout)
	before := lastIndex(gl.events("w"))

	w := gl.Node("w").Host
	const table = "lab_observer_cut"
	ctx := context.Background()
	mustRun(t, w, "nft", "add", "table", "inet", table)
	mustRun(t, w, "nft", "add", "chain", "inet", table, "out", "{ type filter hook output priority 0; policy accept; }")
	mustRun(t, w, "nft", "add", "rule", "inet", table, "out", "ip", "daddr", g.vip().String(), "tcp", "dport", fmt.Sprint(g.Port), "drop")
	cutAt := time.Now()
	t.Cleanup(func() { _, _ = w.Run(context.Background(), "nft", "delete", "table", "inet", table) })
	if err := tcpProbe(w, g.Addr(), 300*time.Millisecond); err == nil {
		t.Fatal("w still connects to the VIP through its own firewall")
	}
	gl.waitCheck("a", "web", checkName, map[string]string{"a": "up", "b": "up", "w": "down"}, eventTimeout)
	down := gl.WaitEvent("a", model.Event{Kind: model.EventCheckChanged, Node: "w"}, before, eventTimeout)
	t.Logf("w sees the check down %v after its firewall rule: %s", down.Time.Sub(cutAt).Round(time.Millisecond), down.Reason)

	const lostAfter = time.Second
	gl.holdOn(nodes, "web", "a", 6*lostAfter)
	if got, err := gl.checkStates("w", "web", checkName); err != nil || got["w"] != "down" || got["a"] != "up" || got["b"] != "up" {
		t.Fatalf("after the hold the check is seen as %v (%v), want only w down", got, err)
	}
	evs := Since(gl.events("w"), before)
	for _, ev := range GroupEvents(evs, "web", model.EventGroupLost, model.EventGroupRestarting, model.EventGroupFailed,
		model.EventFlagSet, model.EventGroupReleased, model.EventGroupStopping) {
		t.Errorf("one observer's failing check acted on: %s", FormatEvents([]model.Event{ev}))
	}
	t.Logf("check down on w alone for %v (lost_after %v): nothing acted on", time.Since(cutAt).Round(time.Millisecond), lostAfter)

	if _, err := w.Run(ctx, "nft", "delete", "table", "inet", table); err != nil {
		t.Fatal(err)
	}
	gl.waitCheck("w", "web", checkName, allUp, convergeTimeout)
}

// --- S9 ----------------------------------------------------------------------

// byHand marks the copies of demo-web the S9 test starts by hand: the
// checker's service rule leaves them out (they are the injected fault), and
// still holds every copy the agents start to one node at a time.
const byHand = "b-by-hand"

func agentsDemoWeb(listen string) func([]string) bool {
	match := DemoWeb(listen)
	return func(argv []string) bool { return match(argv) && !contains(argv, byHand) }
}

// appScript is an LSB init script for demo-web on port, as one would write
// it: start daemonises, status and stop find the service by its listening
// port in this node's network namespace (ss), whoever started it.
func appScript(bin string, port int) string {
	return fmt.Sprintf(`#!/bin/sh
pids() { ss -Hltnp 'sport = :%[2]d' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; }
case "$1" in
start)
	[ -n "$(pids)" ] && exit 0
	setsid %[1]s demo-web --listen 0.0.0.0:%[2]d </dev/null >/dev/null 2>&1 &
	for i in $(seq 50); do [ -n "$(pids)" ] && exit 0; sleep 0.1; done
	exit 1 ;;
stop)
	for p in $(pids); do kill -9 "$p"; done
	for i in $(seq 50); do [ -z "$(pids)" ] && exit 0; sleep 0.1; done
	exit 1 ;;
status)
	[ -n "$(pids)" ] && exit 0
	exit 3 ;;
*)
	exit 2 ;;
esac
`, bin, port)
}

// S9: each group has a split-brain probe of its port on every node's own
// address. A copy of the service started by hand on b, which does not own
// the group, raises a SPLIT BRAIN alarm. web (VIP and demo-web as a process
// resource) has policy alarm_only: the alarm alone, the copy is left to the
// operator. app (VIP and demo-web through an LSB script that finds the
// service by its port) has policy stop_intruder: b is told to stop its
// copy, and does. a serves both groups throughout.
func TestS9SplitBrainProbe(t *testing.T) {
	const third = 9
	c := newLab(t, "ds9", third, Timing{})
	web := WebGroup{Name: "web", Nodes: []string{"a", "b"}, VIP: fmt.Sprintf("10.83.%d.100/24", third), Port: 8080}
	app := WebGroup{Name: "app", Nodes: []string{"a", "b"}, VIP: fmt.Sprintf("10.83.%d.101/24", third), Port: 8081}
	script := filepath.Join(t.TempDir(), "app-init")
	if err := os.WriteFile(script, []byte(appScript(c.Bin, app.Port)), 0o755); err != nil {
		t.Fatal(err)
	}
	probe := func(port int, policy string) string {
		return fmt.Sprintf("split_brain:\n  probe: {type: tcp, address: \"{node}:%d\", interval: 300ms, timeout: 250ms}\n  policy: %s\n", port, policy)
	}
	appendYAML(t, c, groupsYAML(
		webYAML(c.Bin, web, webOpts{group: probe(web.Port, "alarm_only")}),
		"- name: app\n  nodes: [a, b]\n"+indent(probe(app.Port, "stop_intruder"), 2)+fmt.Sprintf(`  resources:
    - {name: vip, type: ip, address: %s, interface: eth0}
    - {name: init, type: lsb, script: %s, monitor_interval: 2s}
`, app.VIP, script)))
	gl := startLab(t, c, []Watch{
		{Group: "web", VIP: web.vip(), Service: agentsDemoWeb(web.Listen())},
		{Group: "app", VIP: app.vip(), Service: agentsDemoWeb(app.Listen())},
	}, web)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	gl.WaitGroupOn(nodes, "app", "a", convergeTimeout)
	gl.WaitFor("app's demo-web on a", convergeTimeout, func() error {
		if _, _, pids := gl.chk.Now("a", "app"); len(pids) != 1 {
			return fmt.Errorf("app's demo-web pids on a: %v", pids)
		}
		return tcpProbe(gl.Lab.Host(clientHost), app.Addr(), time.Second)
	})
	time.Sleep(2 * time.Second) // several probe rounds: no alarm on a healthy cluster
	evs := gl.events("w")
	if sb := eventsOf(evs, "", model.EventSplitBrain, model.EventIntruderStop); len(sb) > 0 {
		t.Fatalf("false split-brain alarm:\n%s", FormatEvents(sb))
	}
	before := lastIndex(evs)
	b := gl.Node("b").Host
	intruder := func(g WebGroup) (*lab.Proc, time.Time) {
		t.Helper()
		p, err := b.Start("by-hand-"+g.Name, []string{gl.Bin, "demo-web", "--listen", g.Listen(), "--node", byHand}, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Kill() })
		return p, time.Now()
	}

	// web, alarm_only: the alarm, nothing else.
	p, at := intruder(web)
	alarm := gl.waitGroupEvent("w", "web", model.EventSplitBrain, "b", before, eventTimeout)
	t.Logf("web started by hand on b: %s %v later by %s: %s", alarm.Kind, alarm.Time.Sub(at).Round(time.Millisecond), alarm.Reporter, alarm.Reason)
	if alarm.Severity != model.SeverityCritical || !strings.Contains(alarm.Reason, "SPLIT BRAIN") {
		t.Errorf("alarm: severity %s reason %q, want a critical SPLIT BRAIN", alarm.Severity, alarm.Reason)
	}
	gl.holdOn(nodes, "web", "a", 2*time.Second)
	if p.Exited() {
		t.Error("alarm_only: the copy started by hand on b was stopped")
	}
	for _, ev := range GroupEvents(Since(gl.events("w"), before), "web", model.EventIntruderStop, model.EventGroupStopping) {
		t.Errorf("alarm_only acted: %s", FormatEvents([]model.Event{ev}))
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}

	// app, stop_intruder: b stops the copy it does not own.
	before = lastIndex(gl.events("w"))
	p, at = intruder(app)
	alarm = gl.waitGroupEvent("w", "app", model.EventSplitBrain, "b", before, eventTimeout)
	t.Logf("app started by hand on b: %s %v later: %s", alarm.Kind, alarm.Time.Sub(at).Round(time.Millisecond), alarm.Reason)
	gl.waitGroupEvent("w", "app", model.EventIntruderStop, "b", before, eventTimeout)
	select {
	case <-p.Done():
		t.Logf("the copy on b (pid %d) ended %v after it was started", p.Pid(), time.Since(at).Round(time.Millisecond))
	case <-time.After(eventTimeout):
		t.Fatalf("stop_intruder: the copy started by hand on b (pid %d) still runs after %v", p.Pid(), eventTimeout)
	}
	stop := gl.waitGroupEvent("w", "app", model.EventGroupStopped, "b", before, eventTimeout)
	t.Logf("b: %s: %s", stop.Kind, stop.Reason)
	if !strings.Contains(stop.Reason, "split brain") {
		t.Errorf("b's stop: reason %q, want the split brain", stop.Reason)
	}
	if err := gl.GroupOn("w", "app", "a"); err != nil {
		t.Error(err)
	}
	if _, _, pids := gl.chk.Now("a", "app"); len(pids) != 1 {
		t.Errorf("app's demo-web on a: pids %v, want a's own copy untouched", pids)
	}
	if err := tcpProbe(gl.Lab.Host(clientHost), app.Addr(), time.Second); err != nil {
		t.Errorf("app's VIP after the intruder's stop: %v", err)
	}
	gl.holdOn(nodes, "web", "a", time.Second)
}

// --- isolated node -----------------------------------------------------------

// The isolated-node protocol (seed 002's Split Brain Assassin): every link
// of a, which runs web, is cut. Within deadtime a hears no peer: it has
// already given up the VIP (its lease ran out first), and it writes
// outOfOrder.all and outOfOrder.web in cluster.isolation.notification_dir
// and runs on_isolated, so that a load balancer stops sending it traffic;
// b takes web over. When the links come back, the files are removed and
// on_recovered runs; web stays on b.
func TestIsolatedNodeNotificationFiles(t *testing.T) {
	const third = 11
	c := newLab(t, "diso", third, Timing{})
	tmp := t.TempDir()
	notify := filepath.Join(tmp, "lb")
	marker := filepath.Join(tmp, "lb-script.log")
	script := filepath.Join(tmp, "lb.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$VIGIL_NODE $VIGIL_STATE\" >> "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	addClusterYAML(t, c, fmt.Sprintf("isolation: {notification_dir: %q, on_isolated: [%q], on_recovered: [%q]}\n", notify, script, script))
	g := WebGroup{Name: "web", Nodes: []string{"a", "b"}, VIP: fmt.Sprintf("10.83.%d.100/24", third), Port: 8080}
	appendYAML(t, c, groupsYAML(webYAML(c.Bin, g, webOpts{})))
	gl := startLab(t, c, []Watch{g.Watch()}, g)
	nodes := []string{"a", "b", "w"}
	gl.waitOn(nodes, "web", "a", convergeTimeout)
	files := []string{"outOfOrder.all", "outOfOrder.web"}
	present := func() []string {
		var out []string
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(notify, f)); err == nil {
				out = append(out, f)
			}
		}
		return out
	}
	if p := present(); len(p) > 0 {
		t.Fatalf("notification files %v on a healthy cluster", p)
	}
	before := lastIndex(gl.events("w"))

	cutAt := time.Now()
	for _, n := range []string{Public, Heartbeat} {
		if err := gl.Lab.CutLink("a", n); err != nil {
			t.Fatal(err)
		}
	}
	var writtenAt time.Time
	for deadline := cutAt.Add(gl.Timing.Deadtime + convergeTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(present()) == len(files) {
			writtenAt = time.Now()
			break
		}
	}
	if writtenAt.IsZero() {
		t.Fatalf("notification files present %v after %v, want %v", present(), time.Since(cutAt), files)
	}
	took := writtenAt.Sub(cutAt)
	t.Logf("every link of a cut: %v written %v later (deadtime %v)", files, took.Round(time.Millisecond), gl.Timing.Deadtime)
	if limit := gl.Timing.Deadtime + isolationSlack; took > limit {
		t.Errorf("notification files written %v after the cut, want within deadtime + %v = %v", took, isolationSlack, limit)
	}
	if took < gl.Timing.Deadtime/2 {
		t.Errorf("notification files written %v after the cut: before any peer could be declared dead", took)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(notify, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "node=a\n") || !strings.Contains(string(data), "isolated") {
			t.Errorf("%s: %q, want a's isolation notice", f, data)
		}
	}
	if held, addr, pids := gl.chk.Now("a", "web"); held {
		t.Errorf("a still holds the VIP when it writes its notifications (address %v, demo-web %v)", addr, pids)
	}
	gl.waitOn([]string{"b", "w"}, "web", "b", convergeTimeout)
	gl.WaitFor("a to stop its copy", convergeTimeout, func() error {
		if held, addr, pids := gl.chk.Now("a", "web"); held || addr || len(pids) > 0 {
			return fmt.Errorf("a: VIP held %v, address %v, demo-web pids %v", held, addr, pids)
		}
		return nil
	})
	gl.WaitFor("on_isolated to run", eventTimeout, func() error {
		data, _ := os.ReadFile(marker)
		if !strings.Contains(string(data), "a isolated") {
			return fmt.Errorf("script log %q", data)
		}
		return nil
	})
	if strings.Contains(readFile(marker), "b ") || strings.Contains(readFile(marker), "w ") {
		t.Errorf("a node that still hears a peer ran an isolation script: %q", readFile(marker))
	}

	healAt := time.Now()
	if err := gl.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	gl.WaitFor("the notification files removed", convergeTimeout, func() error {
		if p := present(); len(p) > 0 {
			return fmt.Errorf("still there: %v", p)
		}
		return nil
	})
	t.Logf("links back: notification files removed %v after the heal", time.Since(healAt).Round(time.Millisecond))
	gl.WaitFor("on_recovered to run", eventTimeout, func() error {
		if !strings.Contains(readFile(marker), "a recovered") {
			return fmt.Errorf("script log %q", readFile(marker))
		}
		return nil
	})
	gl.WaitHealthy(formTimeout)
	iso := gl.WaitEvent("w", model.Event{Kind: model.EventNodeIsolated, Node: "a"}, before, eventTimeout)
	gl.WaitEvent("w", model.Event{Kind: model.EventNodeRecovered, Node: "a"}, iso.Index, eventTimeout)
	t.Logf("a's own report, shipped once healed: %s", iso.Reason)
	gl.WaitGroupOn(nodes, "web", "b", convergeTimeout)
	gl.holdOn(nodes, "web", "b", time.Second)
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}
