package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/check/runner"
	"github.com/vigil-ha/vigil/internal/model"
)

// Runner names: public targets and group checks share one runner.
const publicPrefix = "public: "

type groupCheck struct {
	group string
	check string // the check's display name, as events and the coordinator know it
}

// checks owns this node's probes: its public targets and the group checks it observes.
type checks struct {
	r       *runner.Runner
	groups  map[string]groupCheck        // runner name -> group check
	targets map[string]check.TargetState // public target name -> state
	public  bool                         // last reported: reaches its public network
}

// newChecks builds the probes this node runs; nil when there are none.
func (a *Agent) newChecks() (*checks, error) {
	var list []runner.Check
	cs := &checks{groups: map[string]groupCheck{}, targets: map[string]check.TargetState{}, public: true}
	source := a.self.Addresses[0] // the public network is link 0
	for _, t := range a.cfg.Cluster.PublicTargets {
		c := t.Check(source)
		p, err := probe.New(c)
		if err != nil {
			return nil, fmt.Errorf("public target %s: %w", t.Name(), err)
		}
		rc := runner.Of(c, p)
		rc.Name = publicPrefix + t.Name()
		cs.targets[rc.Name] = check.TargetState{Name: t.Name()}
		list = append(list, rc)
	}
	for _, g := range a.cfg.Groups {
		for _, c := range g.Checks {
			if !a.observes(g.Nodes, c) {
				continue
			}
			p, err := probe.New(c)
			if err != nil {
				return nil, fmt.Errorf("group %s check %s: %w", g.Name, c.DisplayName(), err)
			}
			rc := runner.Of(c, p)
			rc.Name = g.Name + "/" + c.DisplayName()
			cs.groups[rc.Name] = groupCheck{group: g.Name, check: c.DisplayName()}
			list = append(list, rc)
		}
	}
	if len(list) == 0 {
		return nil, nil
	}
	r, err := runner.New(list, runner.Options{})
	if err != nil {
		return nil, fmt.Errorf("checks: %w", err)
	}
	cs.r = r
	return cs, nil
}

// observes says whether this node probes a group check: every node for "all"
// (witnesses are good observers), the group's nodes for "local" (only the holder's
// report counts), or the listed nodes.
func (a *Agent) observes(groupNodes []string, c check.Check) bool {
	switch c.Observers.Mode {
	case check.ObserveLocal:
		return contains(groupNodes, a.self.Name)
	case check.ObserveNodes:
		return contains(c.Observers.Nodes, a.self.Name)
	}
	return true
}

// runChecks probes until ctx ends and turns state changes into events.
func (a *Agent) runChecks(ctx context.Context) error {
	cs := a.checks
	if err := cs.r.Start(ctx); err != nil {
		return err
	}
	for ch := range cs.r.Changes() {
		if gc, ok := cs.groups[ch.Check]; ok {
			a.emit(model.Event{Time: ch.Since, Kind: model.EventCheckChanged, Severity: checkSeverity(ch.State), Reporter: a.self.Name,
				Node: a.self.Name, Group: gc.group, Resource: gc.check, State: ch.State.String(),
				Reason: fmt.Sprintf("check %s is %s as seen from %s: %s", gc.check, ch.State, a.self.Name, ch.Result.Detail)})
			continue
		}
		if t, ok := cs.targets[ch.Check]; ok {
			t.State, t.Since = ch.State, ch.Since
			cs.targets[ch.Check] = t
			a.publicChanged(cs)
		}
	}
	cs.r.Wait()
	return nil
}

// publicChanged reports a transition of the node's public reachability (S2, S3).
func (a *Agent) publicChanged(cs *checks) {
	var states []check.TargetState
	for _, t := range cs.targets {
		states = append(states, t)
	}
	isolated, reason := check.Isolated(states)
	if !isolated == cs.public {
		return
	}
	cs.public = !isolated
	ev := model.Event{Time: time.Now(), Reporter: a.self.Name, Node: a.self.Name}
	if isolated {
		ev.Kind, ev.Severity = model.EventPublicLost, model.SeverityWarning
		ev.Reason = "cut off from the public network: not eligible for groups (" + reason + ")"
	} else {
		ev.Kind, ev.Severity = model.EventPublicRegained, model.SeverityInfo
		ev.Reason = "public network reachable again: " + strings.TrimSpace(reason)
	}
	a.emit(ev)
}

func checkSeverity(s check.State) model.Severity {
	if s == check.Down {
		return model.SeverityWarning
	}
	return model.SeverityInfo
}
