package labcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// WebGroup describes a group made of a VIP on the public network (eth0)
// and `vigil demo-web` listening on Port: the service a lab client reaches
// at VIP:Port, answering with the name of the node serving it (demo-web
// reads it from VIGIL_NODE, which the agent sets for process resources, so
// one vigil.yaml serves every node).
type WebGroup struct {
	Name  string
	Nodes []string // preference order
	// VIP with its prefix length, e.g. "10.81.1.100/24".
	VIP  string
	Port int
	// Zero values keep vigil's defaults.
	Failback        string
	FailbackDelay   time.Duration
	MaxRestarts     int
	MonitorInterval time.Duration
	// Extra is appended to the group's YAML as is (indent fields by 4 spaces).
	Extra string
}

// Addr is VIP:Port, what a client dials.
func (g WebGroup) Addr() string {
	return netip.AddrPortFrom(g.vip(), uint16(g.Port)).String()
}

func (g WebGroup) vip() netip.Addr { return netip.MustParsePrefix(g.VIP).Addr() }

// Listen is demo-web's listen address.
func (g WebGroup) Listen() string { return fmt.Sprintf("0.0.0.0:%d", g.Port) }

// Watch is what the split-brain checker watches for this group.
func (g WebGroup) Watch() Watch {
	return Watch{Group: g.Name, VIP: g.vip(), Service: DemoWeb(g.Listen())}
}

func (g WebGroup) yaml(bin string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    nodes: [%s]\n", g.Name, strings.Join(g.Nodes, ", "))
	if g.Failback != "" {
		fmt.Fprintf(&b, "    failback: %s\n", g.Failback)
	}
	if g.FailbackDelay > 0 {
		fmt.Fprintf(&b, "    failback_delay: %s\n", g.FailbackDelay)
	}
	if g.MaxRestarts > 0 {
		fmt.Fprintf(&b, "    max_restarts: %d\n", g.MaxRestarts)
	}
	mon := ""
	if g.MonitorInterval > 0 {
		mon = fmt.Sprintf(", monitor_interval: %s", g.MonitorInterval)
	}
	fmt.Fprintf(&b, "    resources:\n")
	fmt.Fprintf(&b, "      - {name: vip, type: ip, address: %s, interface: eth0%s}\n", g.VIP, mon)
	fmt.Fprintf(&b, "      - {name: www, type: process, command: [%q, \"demo-web\", \"--listen\", %q], grace: 2s%s}\n", bin, g.Listen(), mon)
	b.WriteString(g.Extra)
	return b.String()
}

// AddGroups appends a groups section to vigil.yaml; call it between New and
// StartAll.
func (c *Cluster) AddGroups(groups ...WebGroup) {
	c.t.Helper()
	var b strings.Builder
	b.WriteString("\ngroups:\n")
	for _, g := range groups {
		b.WriteString(g.yaml(c.Bin))
	}
	f, err := os.OpenFile(c.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		c.t.Fatal(err)
	}
}

// Groups is `vigil groups --json --node NODE`, run on the node itself.
func (c *Cluster) Groups(node string) ([]model.GroupStatus, error) {
	out, err := c.Vigil(context.Background(), node, "groups", "--json", "--node", node)
	if err != nil {
		return nil, err
	}
	var gs []model.GroupStatus
	if err := json.Unmarshal(out, &gs); err != nil {
		return nil, fmt.Errorf("groups from %s: %w: %s", node, err, out)
	}
	return gs, nil
}

// Group is one group from `vigil groups --json`, as node sees it.
func (c *Cluster) Group(node, group string) (model.GroupStatus, error) {
	gs, err := c.Groups(node)
	if err != nil {
		return model.GroupStatus{}, err
	}
	for _, g := range gs {
		if g.Name == group {
			return g, nil
		}
	}
	return model.GroupStatus{}, fmt.Errorf("%s lists no group %s", node, group)
}

// GroupOn says why, as observer sees it, group is not running on node
// (state "running", not being released); nil if it is.
func (c *Cluster) GroupOn(observer, group, node string) error {
	g, err := c.Group(observer, group)
	if err != nil {
		return err
	}
	if g.Node != node || g.State != "running" || g.Releasing {
		return fmt.Errorf("%s sees group %s on %q in state %s (releasing %v, target %q, flags %v), want running on %s",
			observer, group, g.Node, g.State, g.Releasing, g.Target, g.Flags, node)
	}
	return nil
}

// WaitGroupOn waits until every observer's `vigil groups` shows group
// running on node, and returns how long that took.
func (c *Cluster) WaitGroupOn(observers []string, group, node string, timeout time.Duration) time.Duration {
	c.t.Helper()
	return c.WaitFor(fmt.Sprintf("group %s running on %s", group, node), timeout, func() error {
		for _, o := range observers {
			if err := c.GroupOn(o, group, node); err != nil {
				return err
			}
		}
		return nil
	})
}

// Operator runs an operator command (`vigil move|failback|flags|maintenance
// ...`) through node's API and returns its output.
func (c *Cluster) Operator(via string, args ...string) string {
	c.t.Helper()
	args = append(args, "--via", via)
	out, err := c.Vigil(context.Background(), via, args...)
	if err != nil {
		c.t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
	}
	c.t.Logf("vigil %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	return string(out)
}

// StopAgent freezes the node's agent alone with SIGSTOP (its process
// group; the services it started run in groups of their own), and returns
// the moment just before the signal.
func (c *Cluster) StopAgent(name string) time.Time {
	c.t.Helper()
	n := c.Node(name)
	if n.proc == nil {
		c.t.Fatalf("labcluster: stop %s: not started", name)
	}
	at := time.Now()
	if err := n.proc.Stop(); err != nil {
		c.t.Fatal(err)
	}
	return at
}

// ContAgent resumes an agent stopped with StopAgent.
func (c *Cluster) ContAgent(name string) {
	c.t.Helper()
	if err := c.Node(name).proc.Cont(); err != nil {
		c.t.Fatal(err)
	}
}

// PowerOff cuts the node's power: links down, every process in its
// namespace SIGKILLed (the agent and the services it started). It returns
// the moment just before.
func (c *Cluster) PowerOff(name string) time.Time {
	c.t.Helper()
	at := time.Now()
	if err := c.Node(name).Host.PowerOff(); err != nil {
		c.t.Fatal(err)
	}
	// Reap the agent, so that Restart may start it again.
	if err := c.Node(name).proc.Kill(); err != nil {
		c.t.Fatal(err)
	}
	return at
}

// PowerOn boots a powered-off node and starts its agent on its data dir.
func (c *Cluster) PowerOn(name string) {
	c.t.Helper()
	if err := c.Node(name).Host.PowerOn(); err != nil {
		c.t.Fatal(err)
	}
	c.Restart(name)
}

// Since lists the events of evs after index.
func Since(evs []model.Event, index uint64) []model.Event {
	var out []model.Event
	for _, ev := range evs {
		if ev.Index > index {
			out = append(out, ev)
		}
	}
	return out
}

// GroupEvents lists evs about group, of the given kinds (all if none).
func GroupEvents(evs []model.Event, group string, kinds ...model.EventKind) []model.Event {
	var out []model.Event
	for _, ev := range evs {
		if ev.Group != group {
			continue
		}
		if len(kinds) > 0 {
			ok := false
			for _, k := range kinds {
				ok = ok || ev.Kind == k
			}
			if !ok {
				continue
			}
		}
		out = append(out, ev)
	}
	return out
}

// FormatEvents renders events one a line, for logs.
func FormatEvents(evs []model.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  #%d %s %-20s reporter=%s node=%s", ev.Index, ev.Time.Format("15:04:05.000"), ev.Kind, ev.Reporter, ev.Node)
		if ev.Group != "" {
			fmt.Fprintf(&b, " group=%s", ev.Group)
		}
		if ev.Resource != "" {
			fmt.Fprintf(&b, " resource=%s", ev.Resource)
		}
		if ev.Target != "" {
			fmt.Fprintf(&b, " target=%s", ev.Target)
		}
		fmt.Fprintf(&b, ": %s\n", ev.Reason)
	}
	return b.String()
}
