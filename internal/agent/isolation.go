package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// isolationScriptTimeout bounds an on_isolated/on_recovered command.
const isolationScriptTimeout = 30 * time.Second

// isolatedNow: the node hears no peer on any link. At start-up peers are suspect,
// not dead, until initdead, so a booting node is not "isolated".
func isolatedNow(v *membership.View) bool {
	if len(v.Peers) == 0 {
		return false
	}
	for _, p := range v.Peers {
		if p.State != model.NodeDead {
			return false
		}
	}
	return true
}

// checkIsolation runs the isolated-node protocol (seed 002's Split Brain Assassin)
// on each transition. The VIPs are already gone by then: a node that hears nobody
// lost its lease before its peers could be declared dead. What is left is to tell
// an external load balancer, through notification files and scripts. Loop only.
func (a *Agent) checkIsolation(v *membership.View) {
	now := isolatedNow(v)
	if now == a.isolated {
		return
	}
	a.isolated = now
	if now {
		a.emit(model.Event{Kind: model.EventNodeIsolated, Severity: model.SeverityCritical, Reporter: a.self.Name, Node: a.self.Name,
			Reason: "no heartbeat from any peer on any link: VIPs removed, groups stopped, load balancer notified"})
		a.writeNotifications()
		a.runIsolationScript(a.cfg.Cluster.Isolation.OnIsolated, "isolated")
		return
	}
	a.emit(model.Event{Kind: model.EventNodeRecovered, Severity: model.SeverityInfo, Reporter: a.self.Name, Node: a.self.Name,
		Reason: "peers heard again: notifications withdrawn"})
	a.removeNotifications()
	a.runIsolationScript(a.cfg.Cluster.Isolation.OnRecovered, "recovered")
}

// notificationNames: outOfOrder.all (every VIP, the seed's systemsMonitorGroup)
// and outOfOrder.<group> for every group this node may run.
func (a *Agent) notificationNames() []string {
	names := []string{"outOfOrder.all"}
	for _, g := range a.cfg.Groups {
		if contains(g.Nodes, a.self.Name) {
			names = append(names, "outOfOrder."+g.Name)
		}
	}
	return names
}

func (a *Agent) writeNotifications() {
	dir := a.cfg.NotificationDir()
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		a.log.Error("notification dir", "err", err)
		return
	}
	body := fmt.Sprintf("node=%s\ntime=%s\nreason=isolated: no peer heard on any link\n", a.self.Name, time.Now().UTC().Format(time.RFC3339))
	for _, n := range a.notificationNames() {
		if err := pki.WriteFile(filepath.Join(dir, n), []byte(body), 0o644, true); err != nil {
			a.log.Error("write notification", "file", n, "err", err)
		}
	}
}

func (a *Agent) removeNotifications() {
	dir := a.cfg.NotificationDir()
	if dir == "" {
		return
	}
	for _, n := range a.notificationNames() {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !os.IsNotExist(err) {
			a.log.Error("remove notification", "file", n, "err", err)
		}
	}
}

// runIsolationScript runs in the background so that a slow script never holds the loop.
func (a *Agent) runIsolationScript(argv []string, what string) {
	if len(argv) == 0 || a.bg == nil {
		return
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		ctx, cancel := context.WithTimeout(a.bgCtx, isolationScriptTimeout)
		defer cancel()
		res, err := runexec.Run(ctx, runexec.Cmd{Argv: argv, Env: []string{"VIGIL_NODE=" + a.self.Name, "VIGIL_STATE=" + what}})
		if err == nil {
			err = res.Err()
		}
		ev := model.Event{Kind: model.EventResourceAction, Severity: model.SeverityInfo, Reporter: a.self.Name, Node: a.self.Name,
			Reason: "on_" + what + " script: ok", Output: strings.TrimSpace(string(res.Output))}
		if err != nil {
			ev.Severity, ev.Reason = model.SeverityWarning, fmt.Sprintf("on_%s script: %v", what, err)
		}
		a.emit(ev)
	}()
}
