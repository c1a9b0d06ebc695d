package membership

import (
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// sentRounds is how many recent heartbeat rounds keep their send time; an
// acknowledgement of an older round is too old to renew a lease anyway.
const sentRounds = 64

type sentRound struct {
	seq uint64
	at  time.Duration
}

// peer is this node's knowledge of one other voter.
type peer struct {
	member   Member
	heard    bool
	lastLink []time.Duration // last receipt per link; valid where linkSeen
	linkSeen []bool
	linkUp   []bool
	last     time.Duration // last receipt on any link
	state    model.NodeState
	joined   bool // has been alive once: later recoveries read "alive", not "joined"
	// aliveSince is when the peer last became alive; failback waits for a stable period.
	aliveSince time.Duration

	incarnation uint64
	seq         uint64 // highest seq heard in incarnation
	lease       Epoch  // the peer's own reported epoch
	leaseHeld   bool

	// reports is what this peer last said about each node (its grants and refusals).
	reports map[string]PeerReport
	// grantUntil is when this peer's acknowledgement of our heartbeats stops renewing our lease.
	grantUntil time.Duration
	grantOK    bool
	// heardUsUntil: the peer acknowledged a recent round of ours (granting or not),
	// so the path works both ways. Quorum counts only such peers.
	heardUsUntil time.Duration
}

// Engine is the deterministic membership state machine of one node.
// It is not safe for concurrent use: the shell owns it and calls Step from one goroutine.
type Engine struct {
	cfg   Config
	start time.Duration
	peers map[string]*peer
	order []string // peer names, sorted, for deterministic output

	seq      uint64
	nextSend time.Duration
	sent     [sentRounds]sentRound

	epoch      Epoch
	leaseHeld  bool
	leaseUntil time.Duration

	refused map[string]Epoch
	quorum  bool
	started bool
}

// New builds an engine that starts at monotonic time now.
func New(cfg Config, now time.Duration) (*Engine, error) {
	e := &Engine{cfg: cfg, start: now, peers: map[string]*peer{}, refused: map[string]Epoch{}}
	selfFound := false
	for _, m := range cfg.Members {
		if m.Name == cfg.Self {
			selfFound = true
			continue
		}
		if _, dup := e.peers[m.Name]; dup {
			return nil, fmt.Errorf("membership: duplicate member %q", m.Name)
		}
		e.peers[m.Name] = &peer{
			member:   m,
			lastLink: make([]time.Duration, m.Links),
			linkSeen: make([]bool, m.Links),
			linkUp:   make([]bool, m.Links),
			state:    model.NodeSuspect,
			reports:  map[string]PeerReport{},
		}
		e.order = append(e.order, m.Name)
	}
	if !selfFound {
		return nil, fmt.Errorf("membership: self %q is not a member", cfg.Self)
	}
	if cfg.Keepalive <= 0 || cfg.Warntime <= cfg.Keepalive || cfg.Deadtime <= cfg.Warntime || cfg.Lease <= 0 || cfg.Lease >= cfg.Deadtime {
		return nil, fmt.Errorf("membership: inconsistent timing %+v", cfg)
	}
	sort.Strings(e.order)
	maps.Copy(e.refused, cfg.Refused)
	e.epoch = Epoch{Incarnation: cfg.Incarnation, Gen: 1}
	e.nextSend = now
	return e, nil
}

// Majority is the number of voters that makes a quorum.
func Majority(voters int) int { return voters/2 + 1 }

func (e *Engine) voters() int { return len(e.cfg.Members) }

// Step feeds one input at monotonic time now and returns what the shell must do.
// now must never go backwards.
func (e *Engine) Step(in Input, now time.Duration) []Action {
	var out []Action
	switch in := in.(type) {
	case Heartbeat:
		out = e.receive(in, now, out)
	case Release:
		out = e.release(in.Reason, now, out)
	case Tick:
	}
	out = e.updateLiveness(now, out)
	out = e.updateLease(now, out)
	out = e.updateQuorum(now, out)
	if now >= e.nextSend {
		out = append(out, e.send(now))
	}
	return out
}

func (e *Engine) receive(h Heartbeat, now time.Duration, out []Action) []Action {
	p, ok := e.peers[h.From]
	if !ok || h.Link < 0 || h.Link >= len(p.linkSeen) {
		return out
	}
	if h.Incarnation < p.incarnation {
		return out // a packet from before the peer restarted
	}
	if h.Incarnation > p.incarnation {
		p.incarnation, p.seq = h.Incarnation, 0
		p.reports = map[string]PeerReport{}
		p.grantOK = false
	}
	p.last = now
	p.heard = true
	p.lastLink[h.Link] = now
	p.linkSeen[h.Link] = true
	if !p.linkUp[h.Link] {
		p.linkUp[h.Link] = true
		out = append(out, e.emit(model.EventLinkUp, model.SeverityInfo, h.From, h.Link, "heartbeats arrive on this link"))
	}
	if h.Seq <= p.seq {
		return out // the same round over another link: liveness counted, nothing new
	}
	p.seq = h.Seq
	p.lease, p.leaseHeld = h.Lease, h.LeaseHeld
	for _, r := range h.Peers {
		p.reports[r.Name] = r
	}
	if r, ok := p.reports[e.cfg.Self]; ok {
		p.grantUntil, p.grantOK = e.grantFrom(r)
		if at, ok := e.sentAt(r); ok {
			p.heardUsUntil = at + e.cfg.Deadtime
		}
	}
	return out
}

// grantFrom turns a peer's acknowledgement into the moment its support for our lease
// ends. The lease counts from when we sent the acknowledged round, not from when the
// answer arrived, so network delay and pauses only ever shorten it.
func (e *Engine) grantFrom(r PeerReport) (time.Duration, bool) {
	if !r.Granting || r.Grant != e.epoch {
		return 0, false
	}
	at, ok := e.sentAt(r)
	if !ok {
		return 0, false
	}
	return at + e.cfg.Lease, true
}

// sentAt is when we sent the round a peer acknowledged.
func (e *Engine) sentAt(r PeerReport) (time.Duration, bool) {
	if r.AckIncarnation != e.cfg.Incarnation || r.AckSeq == 0 {
		return 0, false
	}
	slot := e.sent[r.AckSeq%sentRounds]
	if slot.seq != r.AckSeq {
		return 0, false
	}
	return slot.at, true
}

func (e *Engine) updateLiveness(now time.Duration, out []Action) []Action {
	for _, name := range e.order {
		p := e.peers[name]
		for i := range p.linkUp {
			if p.linkUp[i] && now-p.lastLink[i] >= e.cfg.Deadtime {
				p.linkUp[i] = false
				out = append(out, e.emit(model.EventLinkDown, model.SeverityWarning, name, i,
					fmt.Sprintf("no heartbeat on this link for %s (deadtime)", e.cfg.Deadtime)))
			}
		}
		out = e.updatePeerState(p, now, out)
	}
	return out
}

func (e *Engine) updatePeerState(p *peer, now time.Duration, out []Action) []Action {
	next := e.peerState(p, now)
	if next == p.state {
		return out
	}
	prev := p.state
	p.state = next
	name := p.member.Name
	switch next {
	case model.NodeAlive:
		if prev != model.NodeSuspect {
			p.aliveSince = now
		}
		switch {
		case !p.joined:
			p.joined = true
			out = append(out, e.emit(model.EventNodeJoined, model.SeverityInfo, name, -1, "first heartbeat received"))
		case prev == model.NodeDead:
			out = append(out, e.emit(model.EventNodeAlive, model.SeverityInfo, name, -1, "heartbeats resumed"))
		}
	case model.NodeSuspect:
		out = append(out, e.emit(model.EventNodeWarning, model.SeverityWarning, name, -1,
			fmt.Sprintf("late heartbeat: nothing on any link for %s (warntime)", e.cfg.Warntime)))
	case model.NodeDead:
		reason := fmt.Sprintf("no heartbeat on any link for %s (deadtime)", e.cfg.Deadtime)
		if !p.heard {
			reason = fmt.Sprintf("never heard within %s (initdead)", e.cfg.Initdead)
		}
		out = append(out, e.emit(model.EventNodeDead, model.SeverityCritical, name, -1, reason))
		out = e.refuse(p, out)
	}
	return out
}

func (e *Engine) peerState(p *peer, now time.Duration) model.NodeState {
	if !p.heard {
		if now-e.start >= e.cfg.Initdead {
			return model.NodeDead
		}
		return model.NodeSuspect
	}
	silent := now - p.last
	switch {
	case silent >= e.cfg.Deadtime:
		return model.NodeDead
	case silent >= e.cfg.Warntime:
		return model.NodeSuspect
	}
	return model.NodeAlive
}

// refuse records that we will never again support the dead peer's current epoch.
// Our last acknowledgement to it was sent no later than we last heard it, so by
// deadtime its lease from us has surely run out (Lease leaves the drift margin).
func (e *Engine) refuse(p *peer, out []Action) []Action {
	if !p.heard {
		return out
	}
	if cur, ok := e.refused[p.member.Name]; ok && !cur.Less(p.lease) {
		return out
	}
	e.refused[p.member.Name] = p.lease
	return append(out, PersistRefusals{Refused: maps.Clone(e.refused)})
}

func (e *Engine) release(reason string, now time.Duration, out []Action) []Action {
	if !e.leaseHeld {
		return out
	}
	return e.loseLease(now, "released: "+reason, out)
}

func (e *Engine) loseLease(now time.Duration, reason string, out []Action) []Action {
	e.leaseHeld = false
	e.epoch.Gen++
	for _, p := range e.peers {
		p.grantOK = false
	}
	out = append(out, e.emit(model.EventLeaseLost, model.SeverityCritical, e.cfg.Self, -1, reason))
	out = append(out, LeaseChanged{Held: false, Epoch: e.epoch})
	// Tell the peers at once: the coordinator may act on our word instead of waiting.
	e.nextSend = now
	return out
}

func (e *Engine) updateLease(now time.Duration, out []Action) []Action {
	until := e.quorumUntil(now)
	switch {
	case e.leaseHeld && now >= until:
		return e.loseLease(now, e.lostReason(now), out)
	case !e.leaseHeld && now < until:
		e.leaseHeld, e.leaseUntil = true, until
		out = append(out, e.emit(model.EventLeaseRegained, model.SeverityInfo, e.cfg.Self, -1,
			fmt.Sprintf("acknowledged by a quorum of %d voters", Majority(e.voters()))))
		return append(out, LeaseChanged{Held: true, Epoch: e.epoch, Until: until})
	case e.leaseHeld && until != e.leaseUntil:
		e.leaseUntil = until
		return append(out, LeaseChanged{Held: true, Epoch: e.epoch, Until: until})
	}
	return out
}

func (e *Engine) lostReason(now time.Duration) string {
	supporting := 1
	for _, p := range e.peers {
		if p.grantOK && p.grantUntil > now {
			supporting++
		}
	}
	return fmt.Sprintf("only %d of %d voters acknowledged within the lease (%s); a quorum needs %d",
		supporting, e.voters(), e.cfg.Lease, Majority(e.voters()))
}

// quorumUntil is when the current lease ends: the Majority-th latest grant, with our own
// vote counted as lasting forever. A result <= now means no lease.
func (e *Engine) quorumUntil(now time.Duration) time.Duration {
	const forever = time.Duration(1<<63 - 1)
	untils := []time.Duration{forever}
	for _, name := range e.order {
		p := e.peers[name]
		if p.grantOK && p.grantUntil > now {
			untils = append(untils, p.grantUntil)
		}
	}
	need := Majority(e.voters())
	if len(untils) < need {
		return 0
	}
	sort.Slice(untils, func(i, j int) bool { return untils[i] > untils[j] })
	return untils[need-1]
}

// updateQuorum counts the voters this node and that hear each other: a node that
// hears a majority but is not heard by it (one-way loss) has no quorum.
func (e *Engine) updateQuorum(now time.Duration, out []Action) []Action {
	alive := 1
	for _, p := range e.peers {
		if p.state != model.NodeDead && p.heard && p.heardUsUntil > now {
			alive++
		}
	}
	has := alive >= Majority(e.voters())
	if has == e.quorum && e.started {
		return out
	}
	first := !e.started
	e.started = true
	e.quorum = has
	switch {
	case has:
		return append(out, e.emit(model.EventQuorumRegained, model.SeverityInfo, e.cfg.Self, -1,
			fmt.Sprintf("%d of %d voters reachable", alive, e.voters())))
	case !first:
		return append(out, e.emit(model.EventQuorumLost, model.SeverityCritical, e.cfg.Self, -1,
			fmt.Sprintf("only %d of %d voters reachable; a quorum needs %d", alive, e.voters(), Majority(e.voters()))))
	}
	return out
}

func (e *Engine) send(now time.Duration) Send {
	e.seq++
	e.sent[e.seq%sentRounds] = sentRound{seq: e.seq, at: now}
	e.nextSend = now + e.cfg.Keepalive
	s := Send{Incarnation: e.cfg.Incarnation, Seq: e.seq, Lease: e.epoch, LeaseHeld: e.leaseHeld}
	for _, name := range e.order {
		p := e.peers[name]
		s.Peers = append(s.Peers, e.reportOn(p))
	}
	return s
}

func (e *Engine) reportOn(p *peer) PeerReport {
	r := PeerReport{Name: p.member.Name, AckIncarnation: p.incarnation, AckSeq: p.seq, Grant: p.lease, State: p.state}
	for i, up := range p.linkUp {
		if up {
			r.LinksUp |= 1 << i
		}
	}
	refused, has := e.refused[p.member.Name]
	r.Granting = p.heard && p.state != model.NodeDead && (!has || refused.Less(p.lease))
	return r
}

func (e *Engine) emit(kind model.EventKind, sev model.Severity, node string, link int, reason string) Emit {
	ev := model.Event{Kind: kind, Severity: sev, Reporter: e.cfg.Self, Node: node, Reason: reason}
	return Emit{Event: ev, Link: link}
}
