package heartbeat

import (
	"errors"
	"fmt"
)

// Errors returned by ReplayGuard.Accept.
var (
	ErrReplay        = errors.New("heartbeat replayed or out of order")
	ErrUnknownSender = errors.New("heartbeat from unknown sender")
)

// position is the newest (Incarnation, Seq) accepted on one link; seen
// distinguishes "nothing yet" from a genuine (0, 0).
type position struct {
	inc, seq uint64
	seen     bool
	// received counts the heartbeats accepted; lost the sequence numbers skipped
	// within one incarnation (every round is sent on every link, so a gap is a
	// packet lost or delayed past a newer one).
	received, lost uint64
}

// ReplayGuard remembers, per sender and link, the newest heartbeat accepted,
// and accepts only strictly newer ones. Links are tracked separately because
// every link carries the same Seq in a round. Its memory is fixed when it is
// made: one slot per known sender and link. It is not safe for concurrent use.
type ReplayGuard struct {
	last map[string]*[MaxLinks]position
}

// NewReplayGuard returns a guard that accepts heartbeats only from the named nodes.
func NewReplayGuard(known []string) *ReplayGuard {
	g := &ReplayGuard{last: make(map[string]*[MaxLinks]position, len(known))}
	for _, n := range known {
		if _, ok := g.last[n]; !ok {
			g.last[n] = new([MaxLinks]position)
		}
	}
	return g
}

// Accept records p's (Incarnation, Seq) for (p.From, p.Link) if it is newer
// than the last one accepted there, and otherwise returns an error wrapping
// ErrReplay or ErrUnknownSender. A higher incarnation wins whatever its Seq,
// because a restarted sender begins counting again.
func (g *ReplayGuard) Accept(p *Packet) error {
	slots, ok := g.last[p.From]
	if !ok {
		return fmt.Errorf("heartbeat: replay guard: %w %q", ErrUnknownSender, p.From)
	}
	if int(p.Link) >= len(slots) {
		return fmt.Errorf("heartbeat: replay guard: %w: link %d, max %d", ErrInvalid, p.Link, MaxLinks-1)
	}
	last := &slots[p.Link]
	if last.seen && !newer(p.Incarnation, p.Seq, last.inc, last.seq) {
		return fmt.Errorf("heartbeat: replay guard: %w: %s link %d (%d, %d) not after (%d, %d)",
			ErrReplay, p.From, p.Link, p.Incarnation, p.Seq, last.inc, last.seq)
	}
	received, lost := last.received+1, last.lost
	if last.seen && p.Incarnation == last.inc {
		lost += p.Seq - last.seq - 1
	}
	*last = position{inc: p.Incarnation, seq: p.Seq, seen: true, received: received, lost: lost}
	return nil
}

// LinkStats counts the heartbeats from one sender on one link.
type LinkStats struct {
	From     string
	Link     int
	Received uint64 // accepted
	Lost     uint64 // sequence numbers skipped: sent by the peer, never accepted here
}

// Stats lists the counts of every sender and link heard at least once.
func (g *ReplayGuard) Stats() []LinkStats {
	var out []LinkStats
	for from, slots := range g.last {
		for i, p := range slots {
			if p.seen {
				out = append(out, LinkStats{From: from, Link: i, Received: p.received, Lost: p.lost})
			}
		}
	}
	return out
}

func newer(inc, seq, lastInc, lastSeq uint64) bool {
	if inc != lastInc {
		return inc > lastInc
	}
	return seq > lastSeq
}
