package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/store"
)

var _ httpapi.Backend = (*Agent)(nil)

// ship appends on the coordinator directly, or forwards to it over mutual TLS.
func (a *Agent) ship(ctx context.Context, evs []model.Event) error {
	if a.store.IsLeader() {
		_, err := a.store.Append(ctx, evs...)
		return err
	}
	leader, _ := a.store.Leader()
	if leader == "" {
		return errors.New("no coordinator")
	}
	c, err := a.peerClient(leader)
	if err != nil {
		return err
	}
	return c.AppendEvents(ctx, evs)
}

func (a *Agent) peerClient(name string) (*apiclient.Client, error) {
	a.clientsMu.Lock()
	defer a.clientsMu.Unlock()
	if c, ok := a.clients[name]; ok {
		return c, nil
	}
	n, ok := a.cfg.Node(name)
	if !ok {
		return nil, fmt.Errorf("unknown node %q", name)
	}
	c := apiclient.New(a.cfg.APIAddrs(n), a.peerTL, "")
	a.clients[name] = c
	return c, nil
}

// Status is this node's view of the cluster (httpapi.Backend).
func (a *Agent) Status() model.Status {
	leader, _ := a.store.Leader()
	st := model.Status{Cluster: a.cfg.Cluster.Name, Node: a.self.Name, Leader: leader}
	v := a.view.Load()
	if v == nil {
		return st
	}
	st.Quorum = v.Quorum
	peers := map[string]int{}
	for i, p := range v.Peers {
		peers[p.Name] = i
	}
	for _, n := range a.cfg.Nodes {
		ns := model.NodeStatus{Name: n.Name, Role: model.RoleVoter}
		if n.Witness {
			ns.Role = model.RoleWitness
		}
		if n.Name == a.self.Name {
			ns.Self, ns.State, ns.Lease, ns.LeaseEpoch = true, model.NodeAlive, v.LeaseHeld, epochString(v.Epoch)
			ns.Links = a.ownLinks(v)
		} else {
			p := v.Peers[peers[n.Name]]
			ms := p.SilentFor.Milliseconds()
			if p.SilentFor < 0 {
				ms = -1
			}
			ns.State, ns.LastHeardMS = p.State, &ms
			ns.Lease = p.LeaseHeld
			ns.LeaseEpoch = epochString(p.Lease)
			// Only links both ends have: a witness with one address shares one link.
			for i, addr := range n.Addresses {
				if i >= len(a.self.Addresses) {
					break
				}
				ls := model.LinkStatus{Address: addr, State: model.LinkDown}
				if i < len(p.LinksUp) && p.LinksUp[i] {
					ls.State = model.LinkUp
				}
				ns.Links = append(ns.Links, ls)
			}
		}
		st.Nodes = append(st.Nodes, ns)
	}
	c := a.transport.Counters()
	st.Heartbeat = model.HeartbeatCounters{Received: c.Received, Malformed: c.Malformed, BadMAC: c.BadMAC,
		Replayed: c.Replayed, UnknownSender: c.UnknownSender, SendErrors: c.SendErrors}
	return st
}

// ownLinks reports a local link up while any peer that shares it is heard on it.
func (a *Agent) ownLinks(v *membership.View) []model.LinkStatus {
	var out []model.LinkStatus
	for i, addr := range a.self.Addresses {
		shared, heard := false, false
		for _, p := range v.Peers {
			if i < len(p.LinksUp) {
				shared = true
				heard = heard || p.LinksUp[i]
			}
		}
		ls := model.LinkStatus{Address: addr, State: model.LinkUp}
		if shared && !heard {
			ls.State = model.LinkDown
		}
		out = append(out, ls)
	}
	return out
}

// Events returns committed events (httpapi.Backend).
func (a *Agent) Events(after uint64, limit int) []model.Event { return a.store.Events(after, limit) }

// Subscribe streams newly committed events (httpapi.Backend).
func (a *Agent) Subscribe(ctx context.Context) <-chan model.Event { return a.store.Subscribe(ctx) }

// IsNode says whether name belongs to the cluster (httpapi.Backend).
func (a *Agent) IsNode(name string) bool { _, ok := a.cfg.Node(name); return ok }

// AppendEvents stores a peer's events; only the coordinator can (httpapi.Backend).
func (a *Agent) AppendEvents(ctx context.Context, from string, evs []model.Event) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := a.store.Append(ctx, evs...)
	if errors.Is(err, store.ErrNotLeader) {
		return httpapi.ErrNotCoordinator
	}
	return err
}
