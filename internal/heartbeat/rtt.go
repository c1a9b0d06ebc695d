package heartbeat

import "time"

// sentRing is how many rounds' send times RTTMeter remembers. An echo names a
// round at most a keepalive or two old; 256 rounds is minutes at any sane
// keepalive, and an echo older than that is not a round trip worth reporting.
const sentRing = 256

// maxHold caps the hold time an echo can carry (EchoHold is in microseconds
// in 32 bits): an echo held that long says nothing about the link.
const maxHold = time.Hour

// RTTMeter measures each link's heartbeat round-trip time from echoes: this
// node stamps each round it sends, every peer reflects the newest round it
// heard on each link together with how long it held it, and the difference
// is the time on the wire both ways. Times are offsets on the caller's
// monotonic clock, so it is pure and tests drive it with a fake one. Not safe
// for concurrent use: the membership loop owns it.
type RTTMeter struct {
	sent  [sentRing]sentRound
	heard map[linkKey]heardRound
	rtt   map[linkKey]time.Duration
}

type sentRound struct {
	seq uint64
	at  time.Duration
}

type heardRound struct {
	incarnation, seq uint64
	at               time.Duration
}

type linkKey struct {
	peer string
	link int
}

// NewRTTMeter returns an empty meter.
func NewRTTMeter() *RTTMeter {
	return &RTTMeter{heard: map[linkKey]heardRound{}, rtt: map[linkKey]time.Duration{}}
}

// Sent records that round seq left at now (on every link at once).
func (m *RTTMeter) Sent(seq uint64, now time.Duration) {
	m.sent[seq%sentRing] = sentRound{seq: seq, at: now}
}

// Heard records a packet from peer on link, so the next packet this node sends
// on that link can echo it.
func (m *RTTMeter) Heard(peer string, link int, incarnation, seq uint64, now time.Duration) {
	k := linkKey{peer, link}
	if h, ok := m.heard[k]; ok && h.incarnation == incarnation && h.seq >= seq {
		return
	}
	m.heard[k] = heardRound{incarnation: incarnation, seq: seq, at: now}
}

// Echo returns what to put in the report about peer in a packet leaving on
// link at now: the newest round heard from it there and how long ago, in
// microseconds. Zero means nothing to echo.
func (m *RTTMeter) Echo(peer string, link int, now time.Duration) (seq uint64, holdMicros uint32) {
	h, ok := m.heard[linkKey{peer, link}]
	if !ok {
		return 0, 0
	}
	hold := now - h.at
	if hold < 0 || hold > maxHold {
		return 0, 0
	}
	return h.seq, uint32(hold / time.Microsecond)
}

// Echoed takes the echo a peer sent back on link and, if it names a round this
// meter still remembers, records the link's round-trip time. A peer that
// claims a hold longer than the time since the round left is lying or buggy;
// its echo is ignored rather than recorded as a negative time.
func (m *RTTMeter) Echoed(peer string, link int, echoSeq uint64, holdMicros uint32, now time.Duration) {
	if echoSeq == 0 {
		return
	}
	s := m.sent[echoSeq%sentRing]
	if s.seq != echoSeq {
		return
	}
	rtt := now - s.at - time.Duration(holdMicros)*time.Microsecond
	if rtt < 0 {
		return
	}
	m.rtt[linkKey{peer, link}] = rtt
}

// LinkRTT is the last measured round trip to one peer over one link.
type LinkRTT struct {
	Peer string
	Link int
	RTT  time.Duration
}

// RTTs lists the last measurement of every peer and link, in no order.
func (m *RTTMeter) RTTs() []LinkRTT {
	out := make([]LinkRTT, 0, len(m.rtt))
	for k, v := range m.rtt {
		out = append(out, LinkRTT{Peer: k.peer, Link: k.link, RTT: v})
	}
	return out
}
