package membership

import (
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// PeerView is a read-only summary of one peer for status output.
type PeerView struct {
	Name    string
	Witness bool
	State   model.NodeState
	LinksUp []bool
	Lease   Epoch
	// LeaseHeld: the peer last said it held a lease and it is not surely over (rule 3 of
	// docs/safety.md); a dead peer may still hold one until a quorum has refused it.
	LeaseHeld bool
	// SilentFor is how long since any heartbeat arrived; -1 when never heard.
	SilentFor time.Duration
	// AliveFor is how long the peer has been alive without being declared dead.
	AliveFor time.Duration
}

// View is a read-only summary of this node's knowledge.
type View struct {
	Self        string
	Epoch       Epoch
	LeaseHeld   bool
	LeaseLeft   time.Duration // remaining lease when held
	Quorum      bool
	Majority    int
	Voters      int
	Peers       []PeerView
	Refused     map[string]Epoch
	Seq         uint64
	Incarnation uint64
	// Uptime is how long this engine has run (initial placement waits initdead).
	Uptime time.Duration
}

// View summarises the engine's state at now.
func (e *Engine) View(now time.Duration) View {
	v := View{Self: e.cfg.Self, Epoch: e.epoch, LeaseHeld: e.leaseHeld, Quorum: e.quorum,
		Majority: Majority(e.voters()), Voters: e.voters(), Seq: e.seq, Incarnation: e.cfg.Incarnation,
		Refused: map[string]Epoch{}, Uptime: now - e.start}
	if e.leaseHeld && e.leaseUntil > now {
		v.LeaseLeft = e.leaseUntil - now
	}
	for k, ep := range e.refused {
		v.Refused[k] = ep
	}
	for _, name := range e.order {
		p := e.peers[name]
		pv := PeerView{Name: name, Witness: p.member.Witness, State: p.state, Lease: p.lease,
			LeaseHeld: p.heard && p.leaseHeld && !e.SurelyExpired(name, p.lease), LinksUp: append([]bool(nil), p.linkUp...), SilentFor: -1}
		if p.heard {
			pv.SilentFor = now - p.last
		}
		if p.state != model.NodeDead && p.joined {
			pv.AliveFor = now - p.aliveSince
		}
		v.Peers = append(v.Peers, pv)
	}
	return v
}

// LeaseValid says whether this node may act as a group holder at now.
func (e *Engine) LeaseValid(now time.Duration) (Epoch, bool) {
	return e.epoch, e.leaseHeld && now < e.leaseUntil
}

// SurelyExpired says whether node's lease under epoch ep is over for good: the node
// itself has moved past ep, or a quorum of voters has refused ep (each refusal is made
// only after that voter's support has run out, and is never withdrawn). Two quorums
// intersect, so no quorum can support ep any more.
func (e *Engine) SurelyExpired(node string, ep Epoch) bool {
	if node == e.cfg.Self {
		return e.epoch != ep || !e.leaseHeld
	}
	p, ok := e.peers[node]
	if !ok {
		return false
	}
	if ep.Less(p.lease) {
		return true
	}
	refusers := 0
	if r, ok := e.refused[node]; ok && !r.Less(ep) {
		refusers++
	}
	for _, name := range e.order {
		if name == node {
			continue
		}
		r, ok := e.peers[name].reports[node]
		if ok && r.AckIncarnation == p.incarnation && ep.Less(r.Grant) {
			return true // the node told that voter it had moved on
		}
		if ok && !r.Granting && !r.Grant.Less(ep) {
			refusers++
		}
	}
	return refusers >= Majority(e.voters())
}

// NextWake is the next moment at which Step(Tick) could change something.
func (e *Engine) NextWake(now time.Duration) time.Duration {
	next := e.nextSend
	consider := func(t time.Duration) {
		if t > now && t < next {
			next = t
		}
	}
	for _, p := range e.peers {
		if !p.heard {
			consider(e.start + e.cfg.Initdead)
			continue
		}
		consider(p.last + e.cfg.Warntime)
		consider(p.last + e.cfg.Deadtime)
		for i, up := range p.linkUp {
			if up {
				consider(p.lastLink[i] + e.cfg.Deadtime)
			}
		}
		if p.grantOK {
			consider(p.grantUntil)
		}
		consider(p.heardUsUntil)
	}
	if e.leaseHeld {
		consider(e.leaseUntil)
	}
	return next
}
