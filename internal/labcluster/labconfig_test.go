package labcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Helpers of decision_test.go and workflow_lab_test.go: vigil.yaml sections
// that AddGroups does not write (cluster.public_targets, cluster.isolation,
// checks, split_brain, workflows), and a group lab on the 10.83.x.0/24
// subnets with extra lab hosts.

// newLab builds a, b and witness w, the client host and the extra hosts, on
// public subnet 10.83.third.0/24 and heartbeat 10.83.third+1.0/24, without
// starting any agent.
func newLab(t *testing.T, tag string, third int, tm Timing, extra ...string) *Cluster {
	t.Helper()
	return New(t, Options{Tag: tag, PublicSubnet: fmt.Sprintf("10.83.%d.0/24", third),
		HeartbeatSubnet: fmt.Sprintf("10.83.%d.0/24", third+1), Nodes: twoPlusWitness(), Timing: tm,
		Clients: append([]string{clientHost}, extra...)})
}

// startLab starts the split-brain checker for watches, every agent, waits
// for a healthy cluster and starts a client of each group in clientsOf.
func startLab(t *testing.T, c *Cluster, watches []Watch, clientsOf ...WebGroup) *groupLab {
	t.Helper()
	gl := &groupLab{Cluster: c, t: t, groups: map[string]WebGroup{}, clients: map[string]*Client{}}
	gl.chk = c.CheckSplitBrain(watches...)
	// Registered after the lab's Close and the log dump, so it runs before
	// them, while the agents still answer.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range c.Names() {
			if evs, err := c.Events(n); err == nil {
				var shown []model.Event
				for _, ev := range evs {
					if ev.Kind != model.EventCheckChanged {
						shown = append(shown, ev)
					}
				}
				t.Logf("---- the event log as %s serves it (check_changed left out) ----\n%s", n, FormatEvents(shown))
				return
			}
		}
	})
	c.StartAll()
	c.WaitHealthy(formTimeout)
	for _, g := range clientsOf {
		gl.groups[g.Name] = g
		gl.clients[g.Name] = c.StartClient(clientHost, g.Addr())
	}
	return gl
}

// indent prefixes every non-empty line of s with n spaces, so that YAML can
// be written flush left in the tests.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

var clusterRE = regexp.MustCompile(`(?m)^cluster:\n`)

// addClusterYAML adds yaml (written flush left) to the cluster: section of
// vigil.yaml; call it between New and StartAll.
func addClusterYAML(t *testing.T, c *Cluster, yaml string) {
	t.Helper()
	data, err := os.ReadFile(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if len(clusterRE.FindAllIndex(data, -1)) != 1 {
		t.Fatalf("%s: want one cluster: line (did clusterinit's template change?)", c.Config)
	}
	out := clusterRE.ReplaceAllLiteralString(string(data), "cluster:\n"+indent(yaml, 2))
	if err := os.WriteFile(c.Config, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendYAML appends top-level sections (groups:, workflows:) to vigil.yaml.
func appendYAML(t *testing.T, c *Cluster, yaml string) {
	t.Helper()
	f, err := os.OpenFile(c.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + yaml); err != nil {
		t.Fatal(err)
	}
}

// webOpts add to the group webYAML writes.
type webOpts struct {
	// shellWrapped runs demo-web under a shell that stays behind, asleep,
	// when demo-web dies: the process resource keeps seeing its process run
	// (a hung service, as far as a supervisor can tell), so that only a
	// health check can find the service gone.
	shellWrapped bool
	// group is YAML (flush left) at the group's level: checks, split_brain,
	// graces; resources is YAML of further resources, after www.
	group, resources string
}

// webYAML is one entry of groups: for g (a VIP on eth0 and demo-web, as
// AddGroups writes it) with o's additions.
func webYAML(bin string, g WebGroup, o webOpts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- name: %s\n  nodes: [%s]\n", g.Name, strings.Join(g.Nodes, ", "))
	if g.Failback != "" {
		fmt.Fprintf(&b, "  failback: %s\n", g.Failback)
	}
	if g.MaxRestarts > 0 {
		fmt.Fprintf(&b, "  max_restarts: %d\n", g.MaxRestarts)
	}
	if o.group != "" {
		b.WriteString(indent(o.group, 2))
	}
	cmd := fmt.Sprintf("[%q, \"demo-web\", \"--listen\", %q]", bin, g.Listen())
	if o.shellWrapped {
		cmd = fmt.Sprintf("[\"/bin/sh\", \"-c\", %q]", fmt.Sprintf("%s demo-web --listen %s; exec sleep 86400", bin, g.Listen()))
	}
	b.WriteString("  resources:\n")
	fmt.Fprintf(&b, "    - {name: vip, type: ip, address: %s, interface: eth0}\n", g.VIP)
	fmt.Fprintf(&b, "    - {name: www, type: process, command: %s, grace: 2s}\n", cmd)
	if o.resources != "" {
		b.WriteString(indent(o.resources, 4))
	}
	return b.String()
}

// groupsYAML is a groups: section of the given entries.
func groupsYAML(entries ...string) string {
	var b strings.Builder
	b.WriteString("groups:\n")
	for _, e := range entries {
		b.WriteString(indent(e, 2))
	}
	return b.String()
}

// startTarget starts `vigil demo-web` on a lab host that runs no agent, as a
// public target or any service to probe; it runs until the lab closes.
func startTarget(t *testing.T, c *Cluster, host string, port int) {
	t.Helper()
	h := c.Lab.Host(host)
	argv := []string{c.Bin, "demo-web", "--listen", fmt.Sprintf("0.0.0.0:%d", port), "--node", host}
	if _, err := h.Start("demo-web", argv, nil, ""); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("%s:%d", h.Addr(Public), port)
	c.WaitFor("demo-web on "+host, convergeTimeout, func() error {
		return tcpProbe(c.Lab.Host(clientHost), addr, time.Second)
	})
}

// eventsOf lists evs of the given kinds (all if none) about node ("" any).
func eventsOf(evs []model.Event, node string, kinds ...model.EventKind) []model.Event {
	var out []model.Event
	for _, ev := range evs {
		if node != "" && ev.Node != node {
			continue
		}
		ok := len(kinds) == 0
		for _, k := range kinds {
			ok = ok || ev.Kind == k
		}
		if ok {
			out = append(out, ev)
		}
	}
	return out
}

// checkStates is what observer's `vigil groups` shows of group's check:
// observing node -> up, down or unknown.
func (gl *groupLab) checkStates(observer, group, check string) (map[string]string, error) {
	g, err := gl.Group(observer, group)
	if err != nil {
		return nil, err
	}
	return g.Checks[check], nil
}

// waitCheck waits until observer's `vigil groups` shows every node of want
// seeing group's check in the wanted state.
func (gl *groupLab) waitCheck(observer, group, check string, want map[string]string, timeout time.Duration) {
	gl.t.Helper()
	gl.WaitFor(fmt.Sprintf("check %s of %s seen as %v", check, group, want), timeout, func() error {
		got, err := gl.checkStates(observer, group, check)
		if err != nil {
			return err
		}
		for n, s := range want {
			if got[n] != s {
				return fmt.Errorf("%s shows %v", observer, got)
			}
		}
		return nil
	})
}

// vigilJSON runs a vigil command with --json in node's namespace and
// decodes its output into v.
func (c *Cluster) vigilJSON(node string, v any, args ...string) error {
	out, err := c.Vigil(context.Background(), node, append(args, "--json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("vigil %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// mustVigil is Cluster.Vigil that fails the test on error.
func (c *Cluster) mustVigil(node string, args ...string) string {
	c.t.Helper()
	out, err := c.Vigil(context.Background(), node, args...)
	if err != nil {
		c.t.Fatalf("vigil %s (on %s): %v", strings.Join(args, " "), node, err)
	}
	return string(out)
}
