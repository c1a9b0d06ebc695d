package agent

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/decide"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

// coordinator carries the loop's decisions to the replicated log. The loop decides
// (it owns the membership engine that knows which leases are surely over); this
// goroutine appends, so a slow commit never stalls heartbeats.
type coordinator struct {
	ready atomic.Bool // leader, and the log is applied up to the election (barrier)
	busy  atomic.Bool // an append is in flight: the loop must not decide on stale state
	out   chan []model.Event
}

func newCoordinator() *coordinator { return &coordinator{out: make(chan []model.Event, 1)} }

// decide runs one placement round if this node is a ready coordinator. Called
// from the loop only.
func (a *Agent) decide(eng *membership.Engine, v *membership.View, now time.Duration) {
	c := a.coord
	if !c.ready.Load() || c.busy.Load() || !a.store.IsLeader() {
		return
	}
	in := decide.Input{Coordinator: a.self.Name, Groups: a.cfg.Groups, State: a.store.ClusterState(),
		Nodes: a.nodeViews(v), Uptime: v.Uptime, Initdead: a.cfg.Cluster.Timing.Initdead.D(),
		SurelyExpired: eng.SurelyExpired}
	evs := decide.Decide(in)
	if len(evs) == 0 {
		return
	}
	for i := range evs {
		evs[i].Time = time.Now()
	}
	c.busy.Store(true)
	c.out <- evs
}

func (a *Agent) nodeViews(v *membership.View) map[string]decide.Node {
	out := map[string]decide.Node{}
	self, _ := a.cfg.Node(a.self.Name)
	out[self.Name] = decide.Node{Name: self.Name, Witness: self.Witness, Eligible: v.LeaseHeld, Epoch: v.Epoch, AliveFor: v.Uptime}
	for _, p := range v.Peers {
		out[p.Name] = decide.Node{Name: p.Name, Witness: p.Witness, Eligible: p.State == model.NodeAlive && p.LeaseHeld,
			Epoch: p.Lease, AliveFor: p.AliveFor}
	}
	return out
}

// runCoordinator follows leadership and appends the loop's decisions.
func (a *Agent) runCoordinator(ctx context.Context) error {
	c := a.coord
	for {
		select {
		case <-ctx.Done():
			return nil
		case id, ok := <-a.store.LeaderChanges():
			if !ok {
				return nil
			}
			c.ready.Store(false)
			if id != a.self.Name {
				continue
			}
			a.emit(model.Event{Kind: model.EventCoordinatorChange, Severity: model.SeverityInfo,
				Reporter: a.self.Name, Node: id, Reason: "elected by a quorum of voters"})
			bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := a.store.Barrier(bctx)
			cancel()
			if err != nil {
				a.log.Warn("coordinator barrier failed; not deciding until the next election", "err", err)
				continue
			}
			c.ready.Store(true)
		case evs := <-c.out:
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := a.store.Append(actx, evs...); err != nil {
				a.log.Warn("coordinator could not append decisions", "err", err)
			}
			cancel()
			c.busy.Store(false)
		}
	}
}
