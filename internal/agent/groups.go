package agent

import (
	"fmt"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/grouprun"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/resource"
)

func (a *Agent) newRunner() (*grouprun.Runner, error) {
	factory := a.opt.Factory
	if factory == nil {
		factory = a.builtinFactory
	}
	r, err := grouprun.New(a.self.Name, a.cfg.Groups, factory, a.emit, a.Release, a.log.With("component", "groups"))
	if err != nil {
		return nil, err
	}
	if err := a.installSyncGuard(r); err != nil {
		return nil, err
	}
	return r, nil
}

// builtinFactory maps resource types to their agents.
func (a *Agent) builtinFactory(g config.Group, r config.Resource) (resource.Agent, error) {
	build, ok := resourceTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("resource type %q is not available in this build", r.Type)
	}
	return build(a, g, r)
}

// resourceTypes is filled by one file per type (resources_*.go).
var resourceTypes = map[string]func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error){}

// groupsSeen is what the last desired-state computation was based on.
type groupsSeen struct {
	index uint64
	epoch membership.Epoch
	held  bool
}

// updateGroups recomputes each group's desired state when the log, the epoch or the
// lease changed. Called from the loop only.
func (a *Agent) updateGroups(v *membership.View) {
	if a.runner == nil || len(a.runner.Groups()) == 0 {
		return
	}
	seen := groupsSeen{index: a.store.LastIndex(), epoch: v.Epoch, held: v.LeaseHeld}
	if seen == a.lastGroups {
		return
	}
	a.lastGroups = seen
	st := a.store.ClusterState()
	for _, name := range a.runner.Groups() {
		a.runner.Update(name, desiredFor(a.self.Name, st, name, v))
	}
}

func desiredFor(self string, st *clusterstate.State, group string, v *membership.View) grouprun.Desired {
	g := st.Get(group)
	d := grouprun.Desired{Hold: st.Maintenance || g.Maintenance, LeaseLost: !v.LeaseHeld}
	_, flagged := g.Flags[self]
	d.Run = g.Node == self && !g.Releasing && g.Epoch == v.Epoch.String() && v.LeaseHeld && !flagged
	if d.Run {
		d.Epoch, d.Assignment = g.Epoch, g.AssignedAt
	}
	if g.Releasing && g.Node == self {
		d.ReleaseAt = g.AssignedAt
	}
	// A lost verdict concerns the copy of the assignment it was given under: one
	// from before this node's assignment was about the previous holder's copy, and
	// acting on it would restart (or fail and flag) the new holder's fresh start.
	if g.Node == self && g.LostAt > g.AssignedAt {
		d.LostAt = g.LostAt
	}
	d.IntruderAt = g.Intruders[self]
	return d
}
