package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/vigil-ha/vigil/internal/heartbeat"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

// authReportEvery limits how often rejected heartbeats become events: a
// misconfigured node would otherwise flood the log.
const authReportEvery = time.Minute

// loop is the etcd-raft style driver: collect an input, Step the core at the
// current monotonic time, carry out the actions, and sleep until NextWake.
func (a *Agent) loop(ctx context.Context, eng *membership.Engine, recv <-chan heartbeat.Received) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastAuthReport time.Time
	var reportedBad uint64
	for {
		var in membership.Input = membership.Tick{}
		var got *heartbeat.Received
		select {
		case <-ctx.Done():
			return nil
		case r := <-recv:
			in, got = toHeartbeat(r), &r
		case reason := <-a.releaseCh:
			in = membership.Release{Reason: reason}
		case <-timer.C:
		}
		now := a.now()
		if got != nil {
			a.measure(got, now)
		}
		if err := a.apply(eng.Step(in, now)); err != nil {
			return err
		}
		v := eng.View(now)
		a.view.Store(&v)
		a.updateGroups(&v)
		a.checkIsolation(&v)
		a.decide(eng, &v, now)
		if bad := a.badHeartbeats(); bad > reportedBad && time.Since(lastAuthReport) >= authReportEvery {
			a.emit(model.Event{Kind: model.EventAuthRejected, Severity: model.SeverityWarning, Reporter: a.self.Name,
				Reason: fmt.Sprintf("%d heartbeat packets rejected (bad signature, malformed or replayed); check heartbeat.key on every node", bad-reportedBad)})
			reportedBad, lastAuthReport = bad, time.Now()
		}
		wait := eng.NextWake(now) - a.now()
		timer.Reset(max(wait, time.Millisecond))
	}
}

func (a *Agent) badHeartbeats() uint64 {
	c := a.transport.Counters()
	return c.BadMAC + c.Malformed + c.Replayed + c.UnknownSender
}

func (a *Agent) apply(acts []membership.Action) error {
	for _, act := range acts {
		switch act := act.(type) {
		case membership.Send:
			a.send(act)
		case membership.Emit:
			ev := act.Event
			if act.Link >= 0 {
				ev.Link = a.linkAddress(ev.Node, act.Link)
			}
			a.emit(ev)
		case membership.LeaseChanged:
			// An absolute deadline on the monotonic clock (a.start carries it).
			a.runner.SetLeaseUnder(act.Held, a.start.Add(act.Until), epochString(act.Epoch))
			if !act.Held {
				a.log.Warn("lease lost: this node may not run groups", "epoch", epochString(act.Epoch))
			}
		case membership.PersistRefusals:
			if err := saveRefusals(a.opt.DataDir, act.Refused); err != nil {
				// A refusal we cannot keep is a promise we cannot make: stop rather than lie.
				return fmt.Errorf("persist refusals: %w", err)
			}
		}
	}
	return nil
}

func (a *Agent) send(s membership.Send) {
	p := &heartbeat.Packet{From: a.self.Name, Incarnation: s.Incarnation, Seq: s.Seq,
		LeaseEpoch: s.Lease.Gen, LeaseHeld: s.LeaseHeld}
	for _, r := range s.Peers {
		p.Peers = append(p.Peers, heartbeat.PeerReport{Name: r.Name, AckIncarnation: r.AckIncarnation, AckSeq: r.AckSeq,
			GrantEpoch: r.Grant.Gen, Granting: r.Granting, State: stateCode(r.State), LinksUp: r.LinksUp})
	}
	now := a.now()
	a.rtt.Sent(s.Seq, now)
	// Link by link, because each link echoes what it carried (RTTMeter).
	for link := range a.self.Addresses {
		for i := range p.Peers {
			p.Peers[i].EchoSeq, p.Peers[i].EchoHold = a.rtt.Echo(p.Peers[i].Name, link, now)
		}
		for _, n := range a.cfg.Nodes {
			if n.Name == a.self.Name || link >= len(n.Addresses) {
				continue
			}
			to, err := netip.ParseAddrPort(a.cfg.HeartbeatAddr(n, link))
			if err != nil {
				continue // validated at load; unreachable
			}
			// Errors (e.g. a cut link's "network unreachable") are counted by the transport.
			_ = a.transport.Send(link, to, p)
		}
	}
	snap := a.rtt.RTTs()
	a.rtts.Store(&snap)
}

// measure feeds a received heartbeat to the RTT meter: it is something to echo
// back on its link, and its report on this node may echo one of our rounds.
// An echo is only taken if the peer acknowledges this incarnation, since
// sequence numbers restart with every incarnation.
func (a *Agent) measure(r *heartbeat.Received, now time.Duration) {
	p := r.Packet
	a.rtt.Heard(p.From, r.Link, p.Incarnation, p.Seq, now)
	for _, pr := range p.Peers {
		if pr.Name == a.self.Name && pr.AckIncarnation == a.incarnation {
			a.rtt.Echoed(p.From, r.Link, pr.EchoSeq, pr.EchoHold, now)
		}
	}
}

func toHeartbeat(r heartbeat.Received) membership.Heartbeat {
	p := r.Packet
	h := membership.Heartbeat{From: p.From, Link: r.Link, Incarnation: p.Incarnation, Seq: p.Seq,
		Lease: membership.Epoch{Incarnation: p.Incarnation, Gen: p.LeaseEpoch}, LeaseHeld: p.LeaseHeld}
	for _, pr := range p.Peers {
		h.Peers = append(h.Peers, membership.PeerReport{Name: pr.Name, AckIncarnation: pr.AckIncarnation, AckSeq: pr.AckSeq,
			Grant: membership.Epoch{Incarnation: pr.AckIncarnation, Gen: pr.GrantEpoch}, Granting: pr.Granting,
			State: stateName(pr.State), LinksUp: pr.LinksUp})
	}
	return h
}

func stateCode(s model.NodeState) uint8 {
	switch s {
	case model.NodeSuspect:
		return heartbeat.StateSuspect
	case model.NodeDead:
		return heartbeat.StateDead
	}
	return heartbeat.StateAlive
}

func stateName(c uint8) model.NodeState {
	switch c {
	case heartbeat.StateSuspect:
		return model.NodeSuspect
	case heartbeat.StateDead:
		return model.NodeDead
	}
	return model.NodeAlive
}

func (a *Agent) linkAddress(node string, link int) string {
	n, ok := a.cfg.Node(node)
	if !ok || link >= len(n.Addresses) {
		return "link" + strconv.Itoa(link)
	}
	return n.Addresses[link]
}

func epochString(e membership.Epoch) string { return e.String() }

// emit logs an event in Heartbeat's readable style and queues it for the cluster log.
func (a *Agent) emit(ev model.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	attrs := []any{"event", string(ev.Kind)}
	if ev.Node != "" {
		attrs = append(attrs, "about", ev.Node)
	}
	if ev.Link != "" {
		attrs = append(attrs, "link", ev.Link)
	}
	attrs = append(attrs, "reason", ev.Reason)
	switch ev.Severity {
	case model.SeverityCritical:
		a.log.Error(string(ev.Kind), attrs...)
	case model.SeverityWarning:
		a.log.Warn(string(ev.Kind), attrs...)
	default:
		a.log.Info(string(ev.Kind), attrs...)
	}
	if a.shipper != nil {
		a.shipper.add(ev)
	}
}
