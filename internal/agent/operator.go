package agent

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
)

// Groups lists every configured group with its placement and, from the node
// running each, the replication lag of its sync resources (httpapi.Backend).
func (a *Agent) Groups(ctx context.Context) []model.GroupStatus {
	gs := a.groupStatuses()
	a.addSync(ctx, gs)
	return gs
}

// groupStatuses is Groups from the replicated state alone.
func (a *Agent) groupStatuses() []model.GroupStatus {
	st := a.store.ClusterState()
	out := make([]model.GroupStatus, 0, len(a.cfg.Groups))
	for _, g := range a.cfg.Groups {
		gs := st.Get(g.Name)
		s := model.GroupStatus{Name: g.Name, Nodes: g.Nodes, Failback: g.Failback, Node: gs.Node, Epoch: gs.Epoch,
			State: "unassigned", Releasing: gs.Releasing, Target: gs.Target, Maintenance: gs.Maintenance || st.Maintenance,
			MoveTarget: gs.MoveTarget, FailbackAuthorised: gs.FailbackAuthorised}
		if rs := gs.RunState(); rs != "" {
			s.State = rs
		}
		if len(gs.Flags) > 0 {
			s.Flags = map[string]string{}
			for n, f := range gs.Flags {
				s.Flags[n] = f.Reason
			}
		}
		for check, byNode := range gs.Checks {
			if s.Checks == nil {
				s.Checks = map[string]map[string]string{}
			}
			s.Checks[check] = map[string]string{}
			for n, r := range byNode {
				s.Checks[check][n] = r.State
			}
		}
		for res, byNode := range gs.Roles {
			if s.Roles == nil {
				s.Roles = map[string]map[string]string{}
			}
			s.Roles[res] = maps.Clone(byNode)
		}
		out = append(out, s)
	}
	return out
}

// Act records an operator action in the replicated log (httpapi.Backend).
func (a *Agent) Act(ctx context.Context, kind model.EventKind, by string, req model.OperatorAction) (model.Event, error) {
	ev, err := a.operatorEvent(kind, by, req)
	if err != nil {
		return model.Event{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.ship(ctx, []model.Event{ev}); err != nil {
		return model.Event{}, &httpapi.Error{Code: http.StatusServiceUnavailable, Message: "not recorded (no coordinator reachable?): " + err.Error()}
	}
	return ev, nil
}

func (a *Agent) operatorEvent(kind model.EventKind, by string, req model.OperatorAction) (model.Event, error) {
	ev := model.Event{Time: time.Now(), Kind: kind, Severity: model.SeverityWarning, Reporter: a.self.Name, By: by, Group: req.Group, Reason: req.Reason}
	bad := func(field, format string, args ...any) error {
		return &httpapi.Error{Code: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Field: field}
	}
	if kind == model.EventMaintenanceOn {
		if req.On == nil {
			return ev, bad("on", "say on: true or on: false")
		}
		if !*req.On {
			ev.Kind = model.EventMaintenanceOff
		}
		if req.Group == "" {
			return a.withReason(ev, "maintenance for the whole cluster"), nil
		}
	}
	g, ok := a.cfg.Group(req.Group)
	if !ok {
		if req.Group == "" {
			return ev, bad("group", "group is required")
		}
		return ev, &httpapi.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("no group %q", req.Group), Field: "group"}
	}
	switch kind {
	case model.EventMoveRequested:
		if !contains(g.Nodes, req.Node) {
			return ev, bad("node", "%q cannot run group %s (nodes: %v)", req.Node, g.Name, g.Nodes)
		}
		ev.Target = req.Node
	case model.EventFlagCleared:
		if req.Node != "" && !contains(g.Nodes, req.Node) {
			return ev, bad("node", "%q is not a node of group %s (nodes: %v)", req.Node, g.Name, g.Nodes)
		}
		ev.Node = req.Node
	}
	return a.withReason(ev, "operator action"), nil
}

func (a *Agent) withReason(ev model.Event, def string) model.Event {
	if ev.Reason == "" {
		ev.Reason = def
	}
	return ev
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
