package labcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

const statefulPath = "/usr/lib/ocf/resource.d/pacemaker/Stateful"

// promoNodes are the group's nodes, in preference order; three voters, so that
// any one of them can be cut off or powered off and the other two keep quorum.
var promoNodes = []string{"a", "b", "c"}

// promoLab is a lab cluster whose group "app" holds a promotable
// ocf:pacemaker:Stateful ("db") and, after it, a Debian Dummy ("flag"). Every
// node's agent gets its own HA_VARRUN and HA_RSCTMP, where Stateful and Dummy
// keep their state files, as separate machines would.
type promoLab struct {
	*Cluster
	t    *testing.T
	dirs map[string]string // node -> its state directory (HA_VARRUN = HA_RSCTMP)

	mu    sync.Mutex
	alive map[string]bool // guarded by mu: nodes whose instance exists (powered on)
}

func (pl *promoLab) stateFile(node string) string {
	return filepath.Join(pl.dirs[node], "Stateful-app-db.state")
}

// monitor runs the real agent's monitor for node's instance, as node's agent
// would (same instance name and state directory), and returns its exit code:
// 8 promoted, 0 running unpromoted, 7 not running.
func (pl *promoLab) monitor(node string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, statefulPath, "monitor")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=app-db",
		"OCF_RESOURCE_TYPE=Stateful", "OCF_RESOURCE_PROVIDER=pacemaker", "HA_VARRUN=" + pl.dirs[node],
		"OCF_RESKEY_CRM_meta_interval=1000"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("%v: %s", err, out)
	}
	return 0, nil
}

// roles says why the instances are not as wanted: holder's monitor answers 8,
// every other live node's 0, and the Dummy that follows db in the group runs on
// the holder only.
func (pl *promoLab) roles(holder string) error {
	for _, n := range promoNodes {
		pl.mu.Lock()
		alive := pl.alive[n]
		pl.mu.Unlock()
		if !alive {
			continue
		}
		want := 0
		if n == holder {
			want = 8
		}
		code, err := pl.monitor(n)
		if err != nil {
			return fmt.Errorf("Stateful monitor for %s: %w", n, err)
		}
		if code != want {
			return fmt.Errorf("Stateful monitor for %s exits %d, want %d", n, code, want)
		}
		_, err = os.Stat(filepath.Join(pl.dirs[n], "Dummy-app-flag.state"))
		if dummy := err == nil; dummy != (n == holder) {
			return fmt.Errorf("Dummy running on %s: %v", n, dummy)
		}
	}
	return nil
}

func (pl *promoLab) waitRoles(holder string, timeout time.Duration) {
	pl.t.Helper()
	pl.WaitFor(fmt.Sprintf("Stateful promoted on %s only", holder), timeout, func() error { return pl.roles(holder) })
}

// powerOff cuts node's power; its instance goes with it: /run is a tmpfs,
// so a rebooted node starts without the state files.
func (pl *promoLab) powerOff(node string) time.Time {
	pl.t.Helper()
	pl.mu.Lock()
	pl.alive[node] = false
	pl.mu.Unlock()
	at := pl.PowerOff(node)
	pl.resetDir(node)
	return at
}

func (pl *promoLab) powerOn(node string) {
	pl.t.Helper()
	pl.PowerOn(node)
	pl.mu.Lock()
	pl.alive[node] = true
	pl.mu.Unlock()
}

func (pl *promoLab) resetDir(node string) {
	pl.t.Helper()
	if err := os.RemoveAll(pl.dirs[node]); err != nil {
		pl.t.Fatal(err)
	}
	if err := os.MkdirAll(pl.dirs[node], 0o755); err != nil {
		pl.t.Fatal(err)
	}
}

// sampler reads every live node's Stateful state file every 10 ms and counts
// the samples in which more than one node is promoted. The agent's monitor
// answers from that file alone (8 when it says Promoted), so a read is the
// monitor's answer without the cost of a process, which would make the
// sampling too sparse to mean much.
type sampler struct {
	samples int
	maxGap  time.Duration
	doubles []string
}

func (pl *promoLab) sample(ctx context.Context) *sampler {
	s := &sampler{}
	last := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return s
		case now := <-tick.C:
			var promoted []string
			pl.mu.Lock()
			for _, n := range promoNodes {
				if !pl.alive[n] {
					continue
				}
				if data, err := os.ReadFile(pl.stateFile(n)); err == nil && strings.TrimSpace(string(data)) == "Promoted" {
					promoted = append(promoted, n)
				}
			}
			pl.mu.Unlock()
			s.samples++
			s.maxGap = max(s.maxGap, now.Sub(last))
			last = now
			if len(promoted) > 1 {
				s.doubles = append(s.doubles, fmt.Sprintf("%s: promoted on %v", now.Format("15:04:05.000"), promoted))
			}
		}
	}
}

// TestPromotableStatefulAcrossFailover runs Debian's ocf:pacemaker:Stateful as a
// promotable resource on three real agents. Promoted on the group's node only
// (its monitor exits 8 there and 0 on the other two) at every stage: at start;
// after the holder is cut off from the others (it demotes at lease loss, the
// majority promotes elsewhere); after the new holder loses power (kill -9 of
// everything in its namespace); after it comes back (unpromoted standby); and
// after an operator moves the group (demote there, then promote here). A
// sampler reading the instances every 10 ms never sees two promoted at once.
func TestPromotableStatefulAcrossFailover(t *testing.T) {
	for _, agent := range []string{statefulPath, "/usr/lib/ocf/resource.d/heartbeat/Dummy"} {
		if _, err := os.Stat(agent); err != nil {
			t.Fatalf("Debian's pacemaker-resource-agents and resource-agents packages are required (scripts/install-deps.sh installs them): %v", err)
		}
	}
	var specs []NodeSpec
	for _, n := range promoNodes {
		specs = append(specs, NodeSpec{Name: n})
	}
	c := New(t, Options{Tag: "p1", PublicSubnet: "10.85.1.0/24", HeartbeatSubnet: "10.85.2.0/24", Nodes: specs})
	pl := &promoLab{Cluster: c, t: t, dirs: map[string]string{}, alive: map[string]bool{}}
	tmp := t.TempDir()
	for _, n := range promoNodes {
		pl.dirs[n] = filepath.Join(tmp, "run-"+n)
		pl.resetDir(n)
		pl.alive[n] = true
		c.Node(n).Env = []string{"HA_VARRUN=" + pl.dirs[n], "HA_RSCTMP=" + pl.dirs[n]}
	}
	groups := fmt.Sprintf(`
groups:
  - name: app
    nodes: [%s]
    resources:
      - {name: db, type: ocf, agent: pacemaker/Stateful, promotable: true, monitor_interval: 1s}
      - {name: flag, type: ocf, agent: heartbeat/Dummy, monitor_interval: 1s}
`, strings.Join(promoNodes, ", "))
	f, err := os.OpenFile(c.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(groups); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx, stop := context.WithCancel(context.Background())
	res := make(chan *sampler, 1)
	go func() { res <- pl.sample(ctx) }()
	stopped := false
	finish := func() *sampler {
		if stopped {
			return nil
		}
		stopped = true
		stop()
		return <-res
	}
	defer finish()

	c.StartAll()
	c.WaitHealthy(formTimeout)
	c.WaitGroupOn(promoNodes, "app", "a", convergeTimeout)
	pl.waitRoles("a", convergeTimeout)
	t.Log("start: promoted on a, unpromoted on b and c")

	// The holder is cut off: it loses its lease and demotes; b and c keep the
	// quorum and promote b once a's lease is surely over.
	before := lastIndex(pl.events("c"))
	if err := c.Lab.Partition([]string{"a"}, []string{"b", "c"}, false); err != nil {
		t.Fatal(err)
	}
	c.WaitGroupOn([]string{"b", "c"}, "app", "b", c.Timing.Deadtime+convergeTimeout)
	pl.waitRoles("b", convergeTimeout)
	t.Log("a cut off: a demoted, b promoted")
	if err := c.Lab.Heal(); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(formTimeout)
	c.WaitGroupOn(promoNodes, "app", "b", convergeTimeout) // failback: manual
	pl.waitRoles("b", convergeTimeout)
	// A figure, not a target: how long before b's promotion a had demoted on
	// its own (both stamped by this machine's clock when the agents emitted them).
	demotedAt, promotedAt := actionTime(Since(pl.events("c"), before), "a", "demote ocf: ok"), actionTime(Since(pl.events("c"), before), "b", "promote ocf: ok")
	if !demotedAt.IsZero() && !promotedAt.IsZero() {
		t.Logf("a demoted %v before b promoted", promotedAt.Sub(demotedAt).Round(time.Millisecond))
	}

	// The holder loses power: a (preferred) takes over.
	before = lastIndex(pl.events("c"))
	pl.powerOff("b")
	c.WaitGroupOn([]string{"a", "c"}, "app", "a", c.Timing.Deadtime+convergeTimeout)
	pl.waitRoles("a", convergeTimeout)
	t.Log("b powered off: a promoted, c unpromoted")
	evs := Since(pl.events("c"), before)
	if as := GroupEvents(evs, "app", model.EventGroupAssigned); len(as) == 0 || !strings.Contains(as[0].Reason, "takeover") {
		t.Errorf("want a takeover after b's power loss:\n%s", FormatEvents(evs))
	}

	// b returns as an unpromoted standby.
	pl.powerOn("b")
	c.WaitHealthy(formTimeout)
	pl.waitRoles("a", convergeTimeout)
	t.Log("b back: unpromoted standby")

	// An operator moves the group to c: a demotes, then c promotes.
	before = lastIndex(pl.events("c"))
	c.Operator("c", "move", "app", "c")
	c.WaitGroupOn(promoNodes, "app", "c", convergeTimeout)
	pl.waitRoles("c", convergeTimeout)
	evs = GroupEvents(Since(pl.events("c"), before), "app", model.EventResourceAction)
	demoted, promoted := uint64(0), uint64(0)
	for _, ev := range evs {
		switch {
		case ev.Resource == "db" && ev.Node == "a" && strings.HasPrefix(ev.Reason, "demote ocf: ok") && demoted == 0:
			demoted = ev.Index
		case ev.Resource == "db" && ev.Node == "c" && strings.HasPrefix(ev.Reason, "promote ocf: ok") && promoted == 0:
			promoted = ev.Index
		}
	}
	if demoted == 0 || promoted == 0 || promoted < demoted {
		t.Errorf("the move must demote on a (event %d) before it promotes on c (event %d):\n%s", demoted, promoted, FormatEvents(evs))
	}

	// vigil groups --json shows each node's role, from the replicated log.
	c.WaitFor("roles in vigil groups", convergeTimeout, func() error {
		g, err := c.Group("a", "app")
		if err != nil {
			return err
		}
		want := map[string]string{"a": model.RoleUnpromoted, "b": model.RoleUnpromoted, "c": model.RolePromoted}
		if got := g.Roles["db"]; fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("roles of db: %v, want %v", got, want)
		}
		return nil
	})

	s := finish()
	t.Logf("sampler: %d samples, longest gap %v, %d with two nodes promoted", s.samples, s.maxGap.Round(time.Millisecond), len(s.doubles))
	if len(s.doubles) > 0 {
		t.Errorf("two nodes promoted at once:\n%s", strings.Join(s.doubles, "\n"))
	}
}

// events is the event log as node serves it.
func (pl *promoLab) events(node string) []model.Event {
	pl.t.Helper()
	evs, err := pl.Events(node)
	if err != nil {
		pl.t.Fatal(err)
	}
	return evs
}

// actionTime is when node reported the first db action whose reason starts with prefix.
func actionTime(evs []model.Event, node, prefix string) time.Time {
	for _, ev := range GroupEvents(evs, "app", model.EventResourceAction) {
		if ev.Resource == "db" && ev.Node == node && strings.HasPrefix(ev.Reason, prefix) {
			return ev.Time
		}
	}
	return time.Time{}
}
