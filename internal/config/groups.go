package config

import (
	"fmt"
	"github.com/vigil-ha/vigil/internal/check"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Group defaults, documented in docs/config.md.
const (
	DefaultFailback       = "manual" // seed 000: the survivor keeps the work until an operator authorises
	DefaultFailbackDelay  = 30 * time.Second
	DefaultRestartWindow  = 10 * time.Minute
	DefaultStartTimeout   = 60 * time.Second
	DefaultStopTimeout    = 60 * time.Second
	DefaultMonitorEvery   = 10 * time.Second
	DefaultMonitorTimeout = 20 * time.Second
	// DefaultSLA is seed 004's contractual availability, in percent.
	DefaultSLA = 99.5
)

// Group is the unit of failover: ordered resources that run together on one node.
type Group struct {
	Name string `yaml:"name"`
	// Nodes in order of preference; the first eligible one runs the group.
	Nodes []string `yaml:"nodes"`
	// Failback: auto (move back once the preferred node has been healthy for
	// failback_delay), manual (wait for `vigil failback`), never.
	Failback      string   `yaml:"failback"`
	FailbackDelay Duration `yaml:"failback_delay"`
	// MaxRestarts local restarts within RestartWindow before the group moves.
	MaxRestarts   int        `yaml:"max_restarts"`
	RestartWindow Duration   `yaml:"restart_window"`
	StartTimeout  Duration   `yaml:"start_timeout"`
	StopTimeout   Duration   `yaml:"stop_timeout"`
	Resources     []Resource `yaml:"resources"`
	// SLA is the availability target in percent that `vigil report availability` measures against.
	SLA float64 `yaml:"sla"`
	// Checks are health checks of the service, observed from several nodes.
	Checks []check.Check `yaml:"checks"`
	// StartGrace and TakeoverGrace: checks are not acted on this long after a
	// start, or after a takeover.
	StartGrace    Duration `yaml:"start_grace"`
	TakeoverGrace Duration `yaml:"takeover_grace"`
	// SplitBrain optionally probes every node for the service.
	SplitBrain *SplitBrain `yaml:"split_brain"`
	// Drill configures failover drills of the group (drills.go).
	Drill *Drill `yaml:"drill"`
}

// Resource is one managed thing; which fields apply depends on Type.
type Resource struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // ip | process | systemd | lsb | ocf | mount | workflow | sync

	// ip
	Address   string `yaml:"address"`   // CIDR, e.g. 10.0.0.100/24
	Interface string `yaml:"interface"` // e.g. eth0

	// process
	Command    []string          `yaml:"command"`
	Env        map[string]string `yaml:"env"`
	User       string            `yaml:"user"`
	Dir        string            `yaml:"dir"`
	Log        string            `yaml:"log"`
	StopSignal string            `yaml:"stop_signal"`
	Grace      Duration          `yaml:"grace"`

	// systemd
	Unit string `yaml:"unit"`

	// lsb
	Script string `yaml:"script"`

	// ocf
	Agent  string            `yaml:"agent"` // provider/type, e.g. heartbeat/IPaddr2
	Params map[string]string `yaml:"params"`
	// Promotable: an unpromoted instance runs on every node of the group and the
	// group's node promotes its own (OCF promote/demote, e.g. linbit/drbd). The
	// agent must advertise promote and demote in its meta-data.
	Promotable bool `yaml:"promotable"`

	// mount
	Device  string `yaml:"device"`
	Path    string `yaml:"path"`
	FSType  string `yaml:"fstype"`
	Options string `yaml:"options"`
	Fsck    bool   `yaml:"fsck"`

	// workflow: workflows of this node's engine (see the agent's workflow resource).
	// Start and Stop are required; Takeover replaces Start when the group comes here
	// because it failed elsewhere; Restart is tried before the group is failed when
	// the monitor finds it down; Monitor (a workflow) or Check (an argv) is the health check.
	Start    string   `yaml:"start"`
	Stop     string   `yaml:"stop"`
	Takeover string   `yaml:"takeover"`
	Restart  string   `yaml:"restart"`
	Monitor  string   `yaml:"monitor"`
	Check    []string `yaml:"check"`

	// sync: directories replicated from the group's node to the others (see sync.go).
	Paths       []string `yaml:"paths"`
	To          []string `yaml:"to"`
	Transport   string   `yaml:"transport"`
	Interval    Duration `yaml:"interval"`
	KeyFile     string   `yaml:"key_file"`
	KnownHosts  string   `yaml:"known_hosts"`
	SecretsFile string   `yaml:"secrets_file"`
	Module      string   `yaml:"module"`
	BWLimit     string   `yaml:"bwlimit"`

	// every type
	Timeouts        Timeouts `yaml:"timeouts"`
	MonitorInterval Duration `yaml:"monitor_interval"`
}

// Timeouts per action; zero means the type's default (OCF: from meta-data).
type Timeouts struct {
	Start   Duration `yaml:"start"`
	Stop    Duration `yaml:"stop"`
	Monitor Duration `yaml:"monitor"`
}

// resourceFields lists, per type, the type-specific fields it accepts, so that a
// field meant for another type is reported instead of silently ignored.
var resourceFields = map[string][]string{
	"ip":       {"address", "interface"},
	"process":  {"command", "env", "user", "dir", "log", "stop_signal", "grace"},
	"systemd":  {"unit"},
	"lsb":      {"script"},
	"ocf":      {"agent", "params", "promotable"},
	"mount":    {"device", "path", "fstype", "options", "fsck"},
	"workflow": {"start", "stop", "takeover", "restart", "monitor", "check"},
	"sync":     {"paths", "to", "transport", "interval", "key_file", "known_hosts", "secrets_file", "module", "bwlimit", "user"},
}

func (r Resource) setFields() []string {
	var set []string
	add := func(name string, ok bool) {
		if ok {
			set = append(set, name)
		}
	}
	add("address", r.Address != "")
	add("interface", r.Interface != "")
	add("command", len(r.Command) > 0)
	add("env", len(r.Env) > 0)
	add("user", r.User != "")
	add("dir", r.Dir != "")
	add("log", r.Log != "")
	add("stop_signal", r.StopSignal != "")
	add("grace", r.Grace != 0)
	add("unit", r.Unit != "")
	add("script", r.Script != "")
	add("agent", r.Agent != "")
	add("params", len(r.Params) > 0)
	add("promotable", r.Promotable)
	add("device", r.Device != "")
	add("path", r.Path != "")
	add("fstype", r.FSType != "")
	add("options", r.Options != "")
	add("fsck", r.Fsck)
	add("start", r.Start != "")
	add("stop", r.Stop != "")
	add("takeover", r.Takeover != "")
	add("restart", r.Restart != "")
	add("monitor", r.Monitor != "")
	add("check", len(r.Check) > 0)
	set = append(set, r.syncSetFields()...)
	return set
}

func (c *Config) applyGroupDefaults() {
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.Failback == "" {
			g.Failback = DefaultFailback
		}
		if g.FailbackDelay == 0 {
			g.FailbackDelay = Duration(DefaultFailbackDelay)
		}
		if g.RestartWindow == 0 {
			g.RestartWindow = Duration(DefaultRestartWindow)
		}
		if g.StartTimeout == 0 {
			g.StartTimeout = Duration(DefaultStartTimeout)
		}
		if g.StopTimeout == 0 {
			g.StopTimeout = Duration(DefaultStopTimeout)
		}
		if g.SLA == 0 {
			g.SLA = DefaultSLA
		}
		for j := range g.Resources {
			r := &g.Resources[j]
			if r.MonitorInterval == 0 {
				r.MonitorInterval = Duration(DefaultMonitorEvery)
			}
		}
	}
}

func (c *Config) validateGroups(l locator) []Problem {
	var ps []Problem
	names := map[string]int{}
	vips := map[netip.Addr]string{}
	for i, g := range c.Groups {
		f := fmt.Sprintf("groups[%d]", i)
		switch {
		case g.Name == "":
			ps = append(ps, l.problem(f+".name", "required"))
		case !nameRE.MatchString(g.Name):
			ps = append(ps, l.problem(f+".name", "%q: use lower-case letters, digits and '-'", g.Name))
		default:
			if j, dup := names[g.Name]; dup {
				ps = append(ps, l.problem(f+".name", "%q is already the name of groups[%d]", g.Name, j))
			}
			names[g.Name] = i
		}
		ps = append(ps, c.validateGroupNodes(l, f, g)...)
		switch g.Failback {
		case "auto", "manual", "never":
		default:
			ps = append(ps, l.problem(f+".failback", "%q: use auto, manual or never", g.Failback))
		}
		if g.SLA <= 0 || g.SLA > 100 {
			ps = append(ps, l.problem(f+".sla", "%v: an availability target in percent, above 0 and at most 100 (e.g. 99.5)", g.SLA))
		}
		if g.MaxRestarts < 0 {
			ps = append(ps, l.problem(f+".max_restarts", "must be 0 or more"))
		}
		for _, d := range []struct {
			field string
			v     Duration
		}{{"failback_delay", g.FailbackDelay}, {"restart_window", g.RestartWindow}, {"start_timeout", g.StartTimeout}, {"stop_timeout", g.StopTimeout}} {
			if d.v < 0 {
				ps = append(ps, l.problem(f+"."+d.field, "must be positive"))
			}
		}
		if len(g.Resources) == 0 {
			ps = append(ps, l.problem(f+".resources", "a group needs at least one resource"))
		}
		rnames := map[string]bool{}
		for j, r := range g.Resources {
			rf := fmt.Sprintf("%s.resources[%d]", f, j)
			if r.Name == "" {
				ps = append(ps, l.problem(rf+".name", "required"))
			} else if rnames[r.Name] {
				ps = append(ps, l.problem(rf+".name", "%q appears twice in this group", r.Name))
			}
			rnames[r.Name] = true
			ps = append(ps, validateResource(l, rf, r, g.Name, vips)...)
			if r.Type == "sync" {
				ps = append(ps, validateSync(l, rf, r, g)...)
			}
		}
	}
	return ps
}

func (c *Config) validateGroupNodes(l locator, f string, g Group) []Problem {
	var ps []Problem
	if len(g.Nodes) == 0 {
		return append(ps, l.problem(f+".nodes", "list the nodes that may run this group, in order of preference"))
	}
	seen := map[string]bool{}
	for k, n := range g.Nodes {
		nf := fmt.Sprintf("%s.nodes[%d]", f, k)
		node, ok := c.Node(n)
		switch {
		case !ok:
			ps = append(ps, l.problem(nf, "%q is not a node (nodes: %v)", n, c.NodeNames()))
		case node.Witness:
			ps = append(ps, l.problem(nf, "%q is a witness: witnesses vote but never run groups", n))
		case seen[n]:
			ps = append(ps, l.problem(nf, "%q is listed twice", n))
		}
		seen[n] = true
	}
	return ps
}

func validateResource(l locator, f string, r Resource, group string, vips map[netip.Addr]string) []Problem {
	var ps []Problem
	allowed, known := resourceFields[r.Type]
	if !known {
		return append(ps, l.problem(f+".type", "%q: use one of ip, process, systemd, lsb, ocf, mount, workflow, sync", r.Type))
	}
	for _, set := range r.setFields() {
		if !contains(allowed, set) {
			ps = append(ps, l.problem(f+"."+set, "does not apply to type %s (it takes: %s)", r.Type, strings.Join(allowed, ", ")))
		}
	}
	req := func(field string, ok bool, what string) {
		if !ok {
			ps = append(ps, l.problem(f+"."+field, "required for type %s: %s", r.Type, what))
		}
	}
	switch r.Type {
	case "ip":
		req("address", r.Address != "", "the virtual IP with its prefix, e.g. 10.0.0.100/24")
		req("interface", r.Interface != "", "the interface to add it to, e.g. eth0")
		if r.Address != "" {
			p, err := netip.ParsePrefix(r.Address)
			if err != nil {
				ps = append(ps, l.problem(f+".address", "%q is not an address with a prefix length (e.g. 10.0.0.100/24)", r.Address))
			} else if other, dup := vips[p.Addr()]; dup {
				ps = append(ps, l.problem(f+".address", "%s is also a virtual IP of group %s", p.Addr(), other))
			} else {
				vips[p.Addr()] = group
			}
		}
	case "process":
		req("command", len(r.Command) > 0 && r.Command[0] != "", "argv of a long-running command, e.g. [/usr/sbin/postfix, start-fg]")
		if len(r.Command) > 0 && !filepath.IsAbs(r.Command[0]) {
			ps = append(ps, l.problem(f+".command", "%q: use an absolute path (the agent's PATH is not yours)", r.Command[0]))
		}
		if r.StopSignal != "" && signalNumber(r.StopSignal) == 0 {
			ps = append(ps, l.problem(f+".stop_signal", "%q: use a signal name such as TERM, INT, QUIT, HUP", r.StopSignal))
		}
	case "systemd":
		req("unit", r.Unit != "", "a unit name, e.g. mariadb.service")
	case "lsb":
		req("script", r.Script != "", "an init script, e.g. /etc/init.d/postfix or postfix")
	case "ocf":
		req("agent", strings.Count(r.Agent, "/") == 1, "provider/type, e.g. heartbeat/IPaddr2")
	case "mount":
		req("device", r.Device != "", "the block device, e.g. /dev/drbd0")
		req("path", filepath.IsAbs(r.Path), "an absolute mount point")
		req("fstype", r.FSType != "", "the file system type, e.g. ext4")
	case "workflow":
		req("start", r.Start != "", "the workflow that starts the service, e.g. normalPrimer")
		req("stop", r.Stop != "", "the workflow that stops it, e.g. gracefulShutdown")
		if r.Monitor != "" && len(r.Check) > 0 {
			ps = append(ps, l.problem(f+".check", "set monitor (a workflow) or check (a command), not both"))
		}
		if len(r.Check) > 0 && r.Check[0] == "" {
			ps = append(ps, l.problem(f+".check[0]", "the program is empty"))
		}
	}
	return ps
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// signalNumber maps the signal names a process resource accepts.
func signalNumber(name string) int {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "HUP":
		return 1
	case "INT":
		return 2
	case "QUIT":
		return 3
	case "KILL":
		return 9
	case "USR1":
		return 10
	case "USR2":
		return 12
	case "TERM":
		return 15
	}
	return 0
}

// SignalNumber is exported for the process resource.
func SignalNumber(name string) int { return signalNumber(name) }

// Group returns the group called name.
func (c *Config) Group(name string) (Group, bool) {
	for _, g := range c.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return Group{}, false
}

// DefaultFenceTimeout bounds one fence action.
const DefaultFenceTimeout = 30 * time.Second

func (c *Config) validateFencing(l locator) []Problem {
	var ps []Problem
	names := map[string]bool{}
	for i := range c.Fencing {
		d := &c.Fencing[i]
		f := fmt.Sprintf("fencing[%d]", i)
		if d.Timeout == 0 {
			d.Timeout = Duration(DefaultFenceTimeout)
		}
		if d.Name == "" || names[d.Name] {
			ps = append(ps, l.problem(f+".name", "required and unique"))
		}
		names[d.Name] = true
		if !filepath.IsAbs(d.Agent) {
			ps = append(ps, l.problem(f+".agent", "%q: the absolute path of a fence agent, e.g. /usr/sbin/fence_ipmilan", d.Agent))
		}
		if len(d.Nodes) == 0 {
			ps = append(ps, l.problem(f+".nodes", "list the nodes this device can fence"))
		}
		for k, n := range d.Nodes {
			if _, ok := c.Node(n); !ok {
				ps = append(ps, l.problem(fmt.Sprintf("%s.nodes[%d]", f, k), "%q is not a node", n))
			}
		}
		for n := range d.Plugs {
			if !contains(d.Nodes, n) {
				ps = append(ps, l.problem(f+".plugs", "%q has a plug but is not in nodes", n))
			}
		}
	}
	return ps
}

// FenceDeviceFor returns the device that can fence node.
func (c *Config) FenceDeviceFor(node string) (FenceDevice, bool) {
	for _, d := range c.Fencing {
		if contains(d.Nodes, node) {
			return d, true
		}
	}
	return FenceDevice{}, false
}
