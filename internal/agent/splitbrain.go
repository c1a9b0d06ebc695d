package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
)

// intruderConfirmations: a copy must answer on two probes in a row, so a stop in
// progress on the previous holder is not mistaken for a split brain.
const intruderConfirmations = 2

// intruderStillThere: probes after the alarm before a copy still answering is
// reported again (the stop did not work).
const intruderStillThere = 10

// runSplitBrain probes, on the coordinator, every node of each group that has a
// split_brain probe. An answer from a node that does not own the group, and where
// Vigil believes it stopped, is a split brain: an alarm, and with stop_intruder a
// request that the node stop its copy.
func (a *Agent) runSplitBrain(ctx context.Context) error {
	every := time.Duration(0)
	for _, g := range a.cfg.Groups {
		if g.SplitBrain != nil && (every == 0 || g.SplitBrain.Probe.Interval.D() < every) {
			every = g.SplitBrain.Probe.Interval.D()
		}
	}
	if every == 0 {
		return nil
	}
	seen := map[string]int{} // group/node -> consecutive answers
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !a.coord.ready.Load() {
			clear(seen)
			continue
		}
		st := a.store.ClusterState()
		for _, g := range a.cfg.Groups {
			if g.SplitBrain != nil {
				a.probeGroup(ctx, g, st, seen)
			}
		}
	}
}

func (a *Agent) probeGroup(ctx context.Context, g config.Group, st *clusterstate.State, seen map[string]int) {
	gs := st.Get(g.Name)
	for _, name := range g.Nodes {
		key := g.Name + "/" + name
		r := gs.Reports[name]
		believedStopped := r.State == "" || r.State == clusterstate.RunStopped || r.State == clusterstate.RunFailed
		if name == gs.Node || !believedStopped || gs.Maintenance || st.Maintenance {
			delete(seen, key)
			continue
		}
		if !a.answersOn(ctx, g.SplitBrain.Probe, name) {
			delete(seen, key)
			continue
		}
		seen[key]++
		if seen[key] == intruderConfirmations+intruderStillThere {
			// The stop request did not end it (e.g. a process Vigil never started, so
			// its resource has no pid to stop): say so instead of staying silent.
			still := fmt.Sprintf("SPLIT BRAIN: group %s still answers on %s after the stop request; stop it by hand", g.Name, name)
			a.log.Error(still)
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := a.store.Append(actx, model.Event{Time: time.Now(), Kind: model.EventSplitBrain, Severity: model.SeverityCritical,
				Reporter: a.self.Name, Node: name, Group: g.Name, Reason: still}); err != nil {
				a.log.Warn("could not record a split brain", "err", err)
			}
			cancel()
			continue
		}
		if seen[key] != intruderConfirmations {
			continue
		}
		reason := fmt.Sprintf("SPLIT BRAIN: group %s answers on %s, which does not own it (owner: %s)", g.Name, name, orNone(gs.Node))
		evs := []model.Event{{Time: time.Now(), Kind: model.EventSplitBrain, Severity: model.SeverityCritical, Reporter: a.self.Name,
			Node: name, Group: g.Name, Reason: reason}}
		if g.SplitBrain.Policy == "stop_intruder" {
			evs = append(evs, model.Event{Time: time.Now(), Kind: model.EventIntruderStop, Severity: model.SeverityCritical,
				Reporter: a.self.Name, Node: name, Group: g.Name, Reason: "policy stop_intruder: " + name + " must stop its copy"})
		}
		a.log.Error(reason)
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := a.store.Append(actx, evs...); err != nil {
			a.log.Warn("could not record a split brain", "err", err)
		}
		cancel()
	}
}

// answersOn runs the group's probe against one node's own address.
func (a *Agent) answersOn(ctx context.Context, c check.Check, node string) bool {
	n, ok := a.cfg.Node(node)
	if !ok {
		return false
	}
	host := n.Addresses[0]
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	c.Address = strings.ReplaceAll(c.Address, "{node}", host)
	c.URL = strings.ReplaceAll(c.URL, "{node}", host)
	p, err := probe.New(c)
	if err != nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, c.Timeout.D())
	defer cancel()
	return p.Probe(pctx).OK
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
