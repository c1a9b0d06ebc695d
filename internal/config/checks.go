package config

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// Decision-engine timers (seed 002's names in brackets), documented in docs/config.md.
const (
	// DefaultStartGrace [waitTimeAfterNormalPrimer]: after a group starts, its
	// checks are not acted on for this long, so a slow service is not declared lost
	// while it warms up.
	DefaultStartGrace = 30 * time.Second
	// DefaultTakeoverGrace [waitTimeAfterTakeControl]: the same after a takeover,
	// which often includes recovery work (fsck, replaying a journal).
	DefaultTakeoverGrace = 60 * time.Second
)

// SplitBrain is a group's per-node probe: it asks every node's own address whether
// the group's service answers there. An answer from a node that does not own the
// group is a split brain (e.g. a service started by hand).
type SplitBrain struct {
	// Probe is a tcp, http or https check; "{node}" in its address or URL is
	// replaced by each node's first address.
	Probe  check.Check `yaml:"probe"`
	Policy string      `yaml:"policy"` // stop_intruder (default) | alarm_only
}

func (c *Config) applyCheckDefaults() {
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.StartGrace == 0 {
			g.StartGrace = Duration(DefaultStartGrace)
		}
		if g.TakeoverGrace == 0 {
			g.TakeoverGrace = Duration(DefaultTakeoverGrace)
		}
		for j := range g.Checks {
			g.Checks[j].ApplyDefaults()
			if g.Checks[j].CAFile != "" && !filepath.IsAbs(g.Checks[j].CAFile) {
				g.Checks[j].CAFile = filepath.Join(c.Dir(), g.Checks[j].CAFile)
			}
		}
		if sb := g.SplitBrain; sb != nil {
			sb.Probe.ApplyDefaults()
			if sb.Policy == "" {
				sb.Policy = "stop_intruder"
			}
		}
	}
}

// validateChecks maps the check package's problems to file:line; its warnings join
// Warnings().
func (c *Config) validateChecks(l locator) []Problem {
	var ps []Problem
	add := func(found []check.Problem) {
		for _, p := range found {
			if p.Warning {
				c.warnings = append(c.warnings, l.problem(p.Field, "%s", p.Message).String())
				continue
			}
			ps = append(ps, l.problem(p.Field, "%s", p.Message))
		}
	}
	add(check.ValidatePublicTargets("cluster.public_targets", c.Cluster.PublicTargets))
	names := c.NodeNames()
	for i, g := range c.Groups {
		f := fmt.Sprintf("groups[%d]", i)
		add(check.ValidateChecks(f+".checks", g.Checks, names))
		if g.StartGrace < 0 || g.TakeoverGrace < 0 {
			ps = append(ps, l.problem(f+".start_grace", "grace periods must be positive"))
		}
		if sb := g.SplitBrain; sb != nil {
			switch sb.Probe.Type {
			case check.TCP, check.HTTP, check.HTTPS:
			default:
				ps = append(ps, l.problem(f+".split_brain.probe.type", "%q: use tcp, http or https (a probe of each node's own address)", sb.Probe.Type))
			}
			switch sb.Policy {
			case "stop_intruder", "alarm_only":
			default:
				ps = append(ps, l.problem(f+".split_brain.policy", "%q: use stop_intruder or alarm_only", sb.Policy))
			}
		}
	}
	return ps
}
