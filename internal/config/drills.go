package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/drill"
)

// Drill defaults (docs/config.md).
const (
	DefaultDrillInterval = 200 * time.Millisecond
	DefaultDrillSettle   = 3 * time.Second
	DefaultDrillTimeout  = 2 * time.Minute
	// MinDrillInterval keeps the probe from becoming load on the service.
	MinDrillInterval = 20 * time.Millisecond
)

// Drill configures a group's failover drills (vigil drill, the console's
// button, and the optional schedule).
type Drill struct {
	// Probe is what a client would do; default: the group's first tcp, http,
	// https or icmp check that does not name {node}. Without one a drill still
	// runs but measures no client view.
	Probe *check.Check `yaml:"probe"`
	// Interval between probes, default 200ms.
	Interval Duration `yaml:"interval"`
	// Settle: probing before the first move, and the pause before moving back.
	Settle Duration `yaml:"settle"`
	// Timeout per move, from the request to running there with clients answered.
	Timeout Duration `yaml:"timeout"`
	// Schedule runs drills unattended: five-field cron ("0 3 * * 0"), in the
	// coordinator's local time. To and Back apply to scheduled drills.
	Schedule string `yaml:"schedule"`
	To       string `yaml:"to"`
	Back     *bool  `yaml:"back"` // default true: a scheduled drill returns the group
}

// DrillProbe is the probe a drill of g uses, or nil.
func (g *Group) DrillProbe() *check.Check {
	if g.Drill != nil && g.Drill.Probe != nil {
		return g.Drill.Probe
	}
	for i := range g.Checks {
		c := &g.Checks[i]
		switch c.Type {
		case check.TCP, check.HTTP, check.HTTPS, check.ICMP:
			if !strings.Contains(c.Address+c.URL+c.Target, "{node}") {
				return c
			}
		}
	}
	return nil
}

// DrillSettings returns g's drill settings with defaults filled in.
func (g *Group) DrillSettings() Drill {
	d := Drill{}
	if g.Drill != nil {
		d = *g.Drill
	}
	if d.Interval == 0 {
		d.Interval = Duration(DefaultDrillInterval)
	}
	if d.Settle == 0 {
		d.Settle = Duration(DefaultDrillSettle)
	}
	if d.Timeout == 0 {
		d.Timeout = Duration(DefaultDrillTimeout)
	}
	if d.Back == nil {
		back := true
		d.Back = &back
	}
	return d
}

func (c *Config) applyDrillDefaults() {
	for i := range c.Groups {
		if d := c.Groups[i].Drill; d != nil && d.Probe != nil {
			d.Probe.ApplyDefaults()
		}
	}
}

func (c *Config) validateDrills(l locator) []Problem {
	var ps []Problem
	for i, g := range c.Groups {
		d := g.Drill
		if d == nil {
			continue
		}
		f := fmt.Sprintf("groups[%d].drill", i)
		if d.Probe != nil {
			// Only the node running the drill probes: who observes does not apply.
			pc := *d.Probe
			pc.Observers = check.Observers{Mode: check.ObserveLocal}
			for _, p := range check.ValidateChecks(f+".probe", []check.Check{pc}, c.NodeNames()) {
				if !p.Warning {
					// ValidateChecks names the list element; a probe is a single check.
					ps = append(ps, l.problem(strings.Replace(p.Field, f+".probe[0]", f+".probe", 1), "%s", p.Message))
				}
			}
			if d.Probe.Type == check.Script {
				ps = append(ps, l.problem(f+".probe.type", "use tcp, http, https or icmp: a drill probes as a client would"))
			}
		}
		if d.Interval != 0 && d.Interval.D() < MinDrillInterval {
			ps = append(ps, l.problem(f+".interval", "%s is below the minimum %s", d.Interval.D(), MinDrillInterval))
		}
		if d.Settle < 0 || d.Timeout < 0 {
			ps = append(ps, l.problem(f+".timeout", "settle and timeout must be positive"))
		}
		if d.Schedule != "" {
			if _, err := drill.ParseSchedule(d.Schedule); err != nil {
				ps = append(ps, l.problem(f+".schedule", "%v (five cron fields: minute hour day month weekday, e.g. \"0 3 * * 0\")", err))
			}
		}
		if d.To != "" && !contains(g.Nodes, d.To) {
			ps = append(ps, l.problem(f+".to", "%q is not one of the group's nodes %v", d.To, g.Nodes))
		}
		if len(g.Nodes) < 2 {
			ps = append(ps, l.problem(f, "a drill needs a group with at least two nodes"))
		}
	}
	return ps
}
