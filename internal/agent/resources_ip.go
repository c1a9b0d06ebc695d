package agent

import (
	"context"
	"fmt"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/resource/ip"
)

func init() {
	resourceTypes["ip"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		return ip.New(r, ip.Options{Logger: a.log.With("group", g.Name, "resource", r.Name)})
	}
}

// cleanupVIPs removes the kernel lease tables and any VIP they list, left by an
// agent that died: a new agent holds no lease, so none of its VIPs may answer.
// Only a node that may run VIPs does it, so agents sharing a machine in tests
// without VIPs never touch each other's tables.
func (a *Agent) cleanupVIPs(ctx context.Context) error {
	for _, g := range a.cfg.Groups {
		if !contains(g.Nodes, a.self.Name) {
			continue
		}
		for _, r := range g.Resources {
			if r.Type == "ip" {
				if err := ip.Cleanup(ctx); err != nil {
					return fmt.Errorf("clean up VIPs left by a previous run: %w", err)
				}
				return nil
			}
		}
	}
	return nil
}
