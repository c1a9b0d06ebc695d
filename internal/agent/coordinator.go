package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/decide"
	"github.com/vigil-ha/vigil/internal/fence"
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
	fence chan fenceRequest

	lastKey   decideKey     // loop only
	lastRound time.Duration // loop only

	fencingMu sync.Mutex
	fencing   map[string]time.Time // guarded by fencingMu: node -> when its fence started
}

// decideEvery bounds how long a coordinator goes without a placement round.
const decideEvery = 250 * time.Millisecond

type decideKey struct {
	index uint64
	nodes string
}

// nodesKey summarises what placement looks at in the membership view.
func nodesKey(v *membership.View) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %v;", v.LeaseHeld, v.Epoch)
	for _, p := range v.Peers {
		fmt.Fprintf(&b, "%s %s %v %v;", p.Name, p.State, p.LeaseHeld, p.Lease)
	}
	return b.String()
}

type fenceRequest struct {
	node  string
	epoch membership.Epoch
}

// fenceRetry spaces out attempts on a device that failed.
const fenceRetry = 30 * time.Second

func newCoordinator() *coordinator {
	return &coordinator{out: make(chan []model.Event, 1), fence: make(chan fenceRequest, 8), fencing: map[string]time.Time{}}
}

// decide runs one placement round if this node is a ready coordinator. Called
// from the loop only.
func (a *Agent) decide(eng *membership.Engine, v *membership.View, now time.Duration) {
	c := a.coord
	if len(a.cfg.Groups) == 0 || !c.ready.Load() || c.busy.Load() || !a.store.IsLeader() {
		return
	}
	// A round is cheap but not free: run it when the log or the nodes changed,
	// and at least every decideEvery (time-based conditions: failback delay, initdead).
	key := decideKey{index: a.store.LastIndex(), nodes: nodesKey(v)}
	if key == c.lastKey && now-c.lastRound < decideEvery {
		return
	}
	c.lastKey, c.lastRound = key, now
	in := decide.Input{Coordinator: a.self.Name, Groups: a.cfg.Groups, State: a.store.ClusterState(),
		Nodes: a.nodeViews(v), Uptime: v.Uptime, Initdead: a.cfg.Cluster.Timing.Initdead.D(),
		SurelyExpired: eng.SurelyExpired, Fencing: a.fenceable(), Now: time.Now(),
		MaxGroupsPerNode: a.cfg.Cluster.MaxGroupsPerNode}
	a.requestFences(in)
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
	out[self.Name] = decide.Node{Name: self.Name, Witness: self.Witness, Eligible: v.LeaseHeld, Epoch: v.Epoch, AliveFor: v.Uptime, Alive: true, Seen: true}
	for _, p := range v.Peers {
		out[p.Name] = decide.Node{Name: p.Name, Witness: p.Witness, Eligible: p.State == model.NodeAlive && p.LeaseHeld,
			Epoch: p.Lease, AliveFor: p.AliveFor, Alive: p.State != model.NodeDead && p.SilentFor >= 0, Seen: p.SilentFor >= 0}
	}
	return out
}

func (a *Agent) fenceable() map[string]bool {
	out := map[string]bool{}
	for _, d := range a.cfg.Fencing {
		for _, n := range d.Nodes {
			out[n] = true
		}
	}
	return out
}

// requestFences asks for every node that must be fenced before its groups move.
func (a *Agent) requestFences(in decide.Input) {
	c := a.coord
	for node := range in.Fencing {
		ep, need := decide.NeedsFence(in, node)
		if !need {
			continue
		}
		c.fencingMu.Lock()
		started, busy := c.fencing[node]
		if busy && time.Since(started) < fenceRetry {
			c.fencingMu.Unlock()
			continue
		}
		c.fencing[node] = time.Now()
		c.fencingMu.Unlock()
		select {
		case c.fence <- fenceRequest{node: node, epoch: ep}:
		default:
		}
	}
}

// runFence turns a node off and records the confirmed result in the log.
func (a *Agent) runFence(ctx context.Context, r fenceRequest) {
	dev, ok := a.cfg.FenceDeviceFor(r.node)
	if !ok {
		return
	}
	a.log.Warn("fencing node before takeover", "about", r.node, "device", dev.Name)
	results, err := fence.Off(ctx, dev, r.node)
	var out []string
	for _, res := range results {
		out = append(out, fmt.Sprintf("%s: exit %d %s", res.Action, res.ExitCode, res.Output))
	}
	ev := model.Event{Time: time.Now(), Kind: model.EventNodeFenced, Severity: model.SeverityCritical, Reporter: a.self.Name,
		Node: r.node, Epoch: r.epoch.String(), Reason: "confirmed off by fence device " + dev.Name, Output: strings.Join(out, "\n")}
	if err != nil {
		ev.Kind, ev.Reason, ev.Epoch = model.EventFenceFailed, err.Error(), ""
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, aerr := a.store.Append(actx, ev); aerr != nil {
		a.log.Error("could not record fencing", "about", r.node, "err", aerr)
	}
}

// runCoordinator follows leadership and appends the loop's decisions.
func (a *Agent) runCoordinator(ctx context.Context) error {
	c := a.coord
	var fences sync.WaitGroup
	defer fences.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-c.fence:
			fences.Add(1)
			go func() {
				defer fences.Done()
				a.runFence(ctx, r)
			}()
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
