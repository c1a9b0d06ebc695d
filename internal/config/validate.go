package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"time"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// MaxLinks bounds the addresses per node: the heartbeat wire format keeps link state in a byte.
const MaxLinks = 8

func (c *Config) applyDefaults() {
	t := &c.Cluster.Timing
	if t.Keepalive == 0 {
		t.Keepalive = Duration(DefaultKeepalive)
	}
	if t.Warntime == 0 {
		t.Warntime = Duration(DefaultWarntime)
	}
	if t.Deadtime == 0 {
		t.Deadtime = Duration(DefaultDeadtime)
	}
	if t.Initdead == 0 {
		t.Initdead = Duration(DefaultInitdead)
	}
	if t.ClockDrift == 0 {
		t.ClockDrift = DefaultClockDrift
	}
	p := &c.Cluster.Ports
	if p.Heartbeat == 0 {
		p.Heartbeat = DefaultHeartbeatPort
	}
	if p.Raft == 0 {
		p.Raft = DefaultRaftPort
	}
	if p.API == 0 {
		p.API = DefaultAPIPort
	}
	if c.Cluster.SecretsDir == "" {
		c.Cluster.SecretsDir = "."
	}
	c.applyGroupDefaults()
	c.applyCheckDefaults()
	c.applyDrillDefaults()
}

func (c *Config) validate(l locator) []Problem {
	var ps []Problem
	if c.Cluster.Name == "" {
		ps = append(ps, l.problem("cluster.name", "required"))
	} else if !nameRE.MatchString(c.Cluster.Name) {
		ps = append(ps, l.problem("cluster.name", "%q: use lower-case letters, digits and '-'", c.Cluster.Name))
	}
	ps = append(ps, c.validateTiming(l)...)
	ps = append(ps, c.validatePorts(l)...)
	ps = append(ps, c.validateNodes(l)...)
	ps = append(ps, c.validateIsolation(l)...)
	ps = append(ps, c.validateGroups(l)...)
	ps = append(ps, c.validateFencing(l)...)
	ps = append(ps, c.validateWorkflows(l)...) // resets the warnings: first
	ps = append(ps, c.validateChecks(l)...)
	ps = append(ps, c.validateDrills(l)...)
	ps = append(ps, c.validateBatch(l)...)
	ps = append(ps, c.validateNotifications(l)...)
	return ps
}

func (c *Config) validateTiming(l locator) []Problem {
	var ps []Problem
	t := c.Cluster.Timing
	positive := []struct {
		field string
		v     Duration
	}{{"keepalive", t.Keepalive}, {"warntime", t.Warntime}, {"deadtime", t.Deadtime}, {"initdead", t.Initdead}}
	for _, f := range positive {
		if f.v < 0 {
			ps = append(ps, l.problem("cluster.timing."+f.field, "must be positive"))
		}
	}
	if len(ps) > 0 {
		return ps
	}
	if t.Keepalive.D() < 10*time.Millisecond {
		ps = append(ps, l.problem("cluster.timing.keepalive", "%s is below the 10ms floor", t.Keepalive.D()))
	}
	if t.Warntime <= t.Keepalive {
		ps = append(ps, l.problem("cluster.timing.warntime", "%s must be longer than keepalive (%s)", t.Warntime.D(), t.Keepalive.D()))
	}
	if t.Deadtime <= t.Warntime {
		ps = append(ps, l.problem("cluster.timing.deadtime", "%s must be longer than warntime (%s)", t.Deadtime.D(), t.Warntime.D()))
	}
	// The lease must fit inside deadtime with room for at least two missed heartbeats,
	// otherwise a node would be declared dead while its lease might still run.
	if t.Deadtime < 4*t.Keepalive {
		ps = append(ps, l.problem("cluster.timing.deadtime", "%s must be at least 4 × keepalive (%s) so that a lease fits inside it", t.Deadtime.D(), 4*t.Keepalive.D()))
	}
	if t.Initdead < t.Deadtime {
		ps = append(ps, l.problem("cluster.timing.initdead", "%s must be at least deadtime (%s)", t.Initdead.D(), t.Deadtime.D()))
	}
	if t.ClockDrift < 0 || t.ClockDrift > 0.1 {
		ps = append(ps, l.problem("cluster.timing.clock_drift", "%v must be between 0 and 0.1", t.ClockDrift))
	}
	return ps
}

func (c *Config) validatePorts(l locator) []Problem {
	var ps []Problem
	p := c.Cluster.Ports
	seen := map[int]string{}
	for _, f := range []struct {
		name string
		v    int
	}{{"heartbeat", p.Heartbeat}, {"raft", p.Raft}, {"api", p.API}} {
		field := "cluster.ports." + f.name
		if f.v < 1 || f.v > 65535 {
			ps = append(ps, l.problem(field, "%d is not a port number", f.v))
			continue
		}
		if other, dup := seen[f.v]; dup && f.name != "heartbeat" && other != "heartbeat" {
			// UDP heartbeat may share a number with a TCP port; two TCP listeners may not.
			ps = append(ps, l.problem(field, "%d is already used by ports.%s", f.v, other))
		}
		seen[f.v] = f.name
	}
	return ps
}

func (c *Config) validateNodes(l locator) []Problem {
	var ps []Problem
	if len(c.Nodes) == 0 {
		return append(ps, l.problem("nodes", "at least two nodes are required"))
	}
	names := map[string]int{}
	addrs := map[netip.Addr]string{}
	voters, witnesses := 0, 0
	for i, n := range c.Nodes {
		field := fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.Name == "":
			ps = append(ps, l.problem(field+".name", "required"))
		case !nameRE.MatchString(n.Name):
			ps = append(ps, l.problem(field+".name", "%q: use lower-case letters, digits and '-', at most 63", n.Name))
		default:
			if j, dup := names[n.Name]; dup {
				ps = append(ps, l.problem(field+".name", "%q is already the name of nodes[%d]", n.Name, j))
			}
			names[n.Name] = i
		}
		if n.Witness {
			witnesses++
		} else {
			voters++
		}
		ps = append(ps, validateAddresses(l, field, n, addrs)...)
	}
	if len(c.Nodes) < 2 {
		ps = append(ps, l.problem("nodes", "at least two nodes are required, got %d", len(c.Nodes)))
	}
	if voters == 0 {
		ps = append(ps, l.problem("nodes", "every node is a witness: at least one must run groups"))
	}
	return ps
}

func validateAddresses(l locator, field string, n Node, seen map[netip.Addr]string) []Problem {
	var ps []Problem
	if len(n.Addresses) == 0 {
		return append(ps, l.problem(field+".addresses", "at least one address is required"))
	}
	if len(n.Addresses) > MaxLinks {
		ps = append(ps, l.problem(field+".addresses", "%d addresses: at most %d links are supported", len(n.Addresses), MaxLinks))
	}
	for j, a := range n.Addresses {
		af := fmt.Sprintf("%s.addresses[%d]", field, j)
		ip, err := netip.ParseAddr(a)
		if err != nil {
			ps = append(ps, l.problem(af, "%q is not an IP address (host names are not resolved, so that a DNS failure cannot stop a failover)", a))
			continue
		}
		if ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() {
			ps = append(ps, l.problem(af, "%s cannot be a node address", a))
			continue
		}
		if other, dup := seen[ip]; dup {
			ps = append(ps, l.problem(af, "%s is also an address of %s", a, other))
		}
		seen[ip] = n.Name
	}
	return ps
}

func (c *Config) validateIsolation(l locator) []Problem {
	var ps []Problem
	if c.Cluster.MaxGroupsPerNode < 0 {
		ps = append(ps, l.problem("cluster.max_groups_per_node", "must be 0 (no cap) or more"))
	}
	iso := c.Cluster.Isolation
	for _, cmd := range []struct {
		field string
		argv  []string
	}{{"on_isolated", iso.OnIsolated}, {"on_recovered", iso.OnRecovered}} {
		if len(cmd.argv) > 0 && !filepath.IsAbs(cmd.argv[0]) {
			ps = append(ps, l.problem("cluster.isolation."+cmd.field, "%q: use an absolute path", cmd.argv[0]))
		}
	}
	return ps
}

// NotificationDir resolves the isolation notification directory ("" when unset).
func (c *Config) NotificationDir() string {
	d := c.Cluster.Isolation.NotificationDir
	if d == "" || filepath.IsAbs(d) {
		return d
	}
	return filepath.Join(c.Dir(), d)
}
