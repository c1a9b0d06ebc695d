package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire format limits. They bound every allocation Decode makes, so a hostile
// datagram can cost at most a few KiB.
const (
	// Version 2 added the per-link echo (EchoSeq, EchoHold) to peer reports.
	Version       = 2
	MaxNameLen    = 64
	MaxPeers      = 64
	MaxLinks      = 8 // PeerReport.LinksUp is an 8-bit mask
	MaxPacketSize = 8 << 10
	MACSize       = sha256.Size
	// MinKeyLen refuses keys an attacker could guess; an empty key would make
	// the MAC a checksum anyone can compute.
	MinKeyLen = 16
)

// Peer states as carried in PeerReport.State.
const (
	StateAlive   uint8 = 0
	StateSuspect uint8 = 1
	StateDead    uint8 = 2
)

var magic = [4]byte{'V', 'G', 'H', 'B'}

// Errors callers tell apart with errors.Is; every returned error wraps one of
// them and adds where the problem was found.
var (
	ErrMalformed = errors.New("malformed heartbeat packet")
	ErrBadMAC    = errors.New("heartbeat packet MAC mismatch")
	ErrBadKey    = errors.New("heartbeat key too short")
	ErrInvalid   = errors.New("invalid heartbeat packet field")
)

// Packet is one heartbeat from one node, sent on every link to every peer.
type Packet struct {
	From        string // sender node name, 1..64 bytes
	Link        uint8  // index of the link the sender sent it on
	Incarnation uint64 // sender's boot counter, persisted, increases on every start
	Seq         uint64 // heartbeat round within this incarnation; identical on every link and peer
	LeaseEpoch  uint64 // sender's current lease epoch
	LeaseHeld   bool   // whether the sender holds a valid lease right now
	Peers       []PeerReport
}

// PeerReport is the sender's view of one other node.
type PeerReport struct {
	Name           string // peer node name, 1..64 bytes
	AckIncarnation uint64 // highest incarnation heard from that peer
	AckSeq         uint64 // highest Seq heard from that peer in AckIncarnation, on any link
	GrantEpoch     uint64 // peer lease epoch the sender grants (Granting) or refuses
	Granting       bool
	State          uint8 // StateAlive, StateSuspect or StateDead
	LinksUp        uint8 // bit i set: the sender currently hears that peer on link i
	// EchoSeq is the Seq of the newest packet the sender heard from that peer
	// on the link this packet travels, and EchoHold how many microseconds it
	// held that knowledge before sending this packet; together they give the
	// peer the link's round-trip time without synchronised clocks (0: none).
	EchoSeq  uint64
	EchoHold uint32
}

// Sizes of the fixed parts, spelled out so the bounds checks read like the layout.
const (
	headerSize   = len(magic) + 1                    // magic, version
	fixedSize    = 1 + 1 + 8 + 8 + 8 + 1 + 1         // fromLen, link, incarnation, seq, leaseEpoch, flags, peerCount
	peerSize     = 1 + 8 + 8 + 8 + 1 + 1 + 1 + 8 + 4 // nameLen, ackInc, ackSeq, grantEpoch, flags, state, linksUp, echoSeq, echoHold
	minBodySize  = headerSize + fixedSize + 1
	minPacketLen = minBodySize + MACSize
	maxPacketLen = headerSize + fixedSize + MaxNameLen + MaxPeers*(peerSize+MaxNameLen) + MACSize
)

// Flag bits. Unknown bits are rejected rather than ignored so that every
// accepted packet has exactly one encoding, which keeps fuzzing meaningful and
// leaves room for a version bump to give them meaning.
const (
	flagLeaseHeld = 1 << 0
	flagGranting  = 1 << 0
)

func init() {
	if maxPacketLen > MaxPacketSize {
		panic("heartbeat: largest valid packet exceeds MaxPacketSize")
	}
}

// Encode validates p and returns its authenticated encoding under key.
func Encode(key []byte, p *Packet) ([]byte, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("heartbeat: encode: %w (%d bytes, need %d)", ErrBadKey, len(key), MinKeyLen)
	}
	if p == nil {
		return nil, fmt.Errorf("heartbeat: encode: %w: nil packet", ErrInvalid)
	}
	if err := validate(p); err != nil {
		return nil, fmt.Errorf("heartbeat: encode: %w", err)
	}
	b := marshal(make([]byte, 0, encodedSize(p)+MACSize), p)
	return appendMAC(key, b), nil
}

// Decode checks b's length, then its MAC, and only then parses it. Fields
// that fail validation make it return an error wrapping ErrMalformed even
// under a valid MAC: a peer with the key may still run buggy code.
func Decode(key []byte, b []byte) (*Packet, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("heartbeat: decode: %w (%d bytes, need %d)", ErrBadKey, len(key), MinKeyLen)
	}
	if len(b) < minPacketLen || len(b) > maxPacketLen {
		return nil, fmt.Errorf("heartbeat: decode: %w: length %d outside [%d, %d]", ErrMalformed, len(b), minPacketLen, maxPacketLen)
	}
	// Magic and version are checked before the MAC only to report foreign
	// traffic as malformed rather than forged; nothing else is read yet.
	if [4]byte(b[:4]) != magic {
		return nil, fmt.Errorf("heartbeat: decode: %w: bad magic %q", ErrMalformed, b[:4])
	}
	if b[4] != Version {
		return nil, fmt.Errorf("heartbeat: decode: %w: unsupported version %d", ErrMalformed, b[4])
	}
	body, mac := b[:len(b)-MACSize], b[len(b)-MACSize:]
	if !hmac.Equal(mac, computeMAC(key, body)) {
		return nil, fmt.Errorf("heartbeat: decode: %w", ErrBadMAC)
	}
	p, err := unmarshal(body)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: decode: %w", err)
	}
	return p, nil
}

// validate enforces the limits the layout and the parser rely on.
func validate(p *Packet) error {
	if err := checkName(p.From); err != nil {
		return fmt.Errorf("%w: from: %w", ErrInvalid, err)
	}
	if p.Link >= MaxLinks {
		return fmt.Errorf("%w: link %d, max %d", ErrInvalid, p.Link, MaxLinks-1)
	}
	if len(p.Peers) > MaxPeers {
		return fmt.Errorf("%w: %d peers, max %d", ErrInvalid, len(p.Peers), MaxPeers)
	}
	for i := range p.Peers {
		r := &p.Peers[i]
		if err := checkName(r.Name); err != nil {
			return fmt.Errorf("%w: peer %d: %w", ErrInvalid, i, err)
		}
		if r.State > StateDead {
			return fmt.Errorf("%w: peer %q: state %d", ErrInvalid, r.Name, r.State)
		}
		if dupBefore(p.Peers, i) {
			return fmt.Errorf("%w: peer %q reported twice", ErrInvalid, r.Name)
		}
	}
	return nil
}

func checkName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen {
		return fmt.Errorf("name length %d outside [1, %d]", len(s), MaxNameLen)
	}
	return nil
}

// dupBefore is quadratic, which at MaxPeers is 2016 comparisons and beats
// allocating a set per packet.
func dupBefore(peers []PeerReport, i int) bool {
	for j := range i {
		if peers[j].Name == peers[i].Name {
			return true
		}
	}
	return false
}

func encodedSize(p *Packet) int {
	n := headerSize + fixedSize + len(p.From)
	for i := range p.Peers {
		n += peerSize + len(p.Peers[i].Name)
	}
	return n
}

// marshal appends the body (everything the MAC covers) to b; p must be valid.
func marshal(b []byte, p *Packet) []byte {
	b = append(b, magic[:]...)
	b = append(b, Version)
	b = append(b, byte(len(p.From)))
	b = append(b, p.From...)
	b = append(b, p.Link)
	b = binary.BigEndian.AppendUint64(b, p.Incarnation)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = binary.BigEndian.AppendUint64(b, p.LeaseEpoch)
	var flags byte
	if p.LeaseHeld {
		flags |= flagLeaseHeld
	}
	b = append(b, flags, byte(len(p.Peers)))
	for i := range p.Peers {
		r := &p.Peers[i]
		b = append(b, byte(len(r.Name)))
		b = append(b, r.Name...)
		b = binary.BigEndian.AppendUint64(b, r.AckIncarnation)
		b = binary.BigEndian.AppendUint64(b, r.AckSeq)
		b = binary.BigEndian.AppendUint64(b, r.GrantEpoch)
		var pf byte
		if r.Granting {
			pf |= flagGranting
		}
		b = append(b, pf, r.State, r.LinksUp)
		b = binary.BigEndian.AppendUint64(b, r.EchoSeq)
		b = binary.BigEndian.AppendUint32(b, r.EchoHold)
	}
	return b
}

func computeMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

func appendMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(body)
}

// reader consumes b front to back; the first short read sticks so callers
// check once per section instead of after every field.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() uint8 {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// name reads a length-prefixed name; the one-byte prefix caps it at 255
// bytes before the range check, so the copy is always small.
func (r *reader) name() (string, error) {
	n := int(r.u8())
	if r.bad {
		return "", errors.New("truncated name length")
	}
	if n == 0 || n > MaxNameLen {
		return "", fmt.Errorf("name length %d outside [1, %d]", n, MaxNameLen)
	}
	if len(r.b) < n {
		r.bad = true
		return "", fmt.Errorf("name of %d bytes truncated to %d", n, len(r.b))
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s, nil
}

// unmarshal parses a body (magic through the last peer, no MAC) without
// authenticating it, so the fuzzer can reach the parser directly. It accepts
// exactly the bodies marshal produces from valid packets.
func unmarshal(body []byte) (*Packet, error) {
	if len(body) < minBodySize || len(body) > maxPacketLen-MACSize {
		return nil, fmt.Errorf("%w: body length %d outside [%d, %d]", ErrMalformed, len(body), minBodySize, maxPacketLen-MACSize)
	}
	if [4]byte(body[:4]) != magic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrMalformed, body[:4])
	}
	if body[4] != Version {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrMalformed, body[4])
	}
	r := reader{b: body[headerSize:]}
	var p Packet
	var err error
	if p.From, err = r.name(); err != nil {
		return nil, fmt.Errorf("%w: from: %w", ErrMalformed, err)
	}
	p.Link = r.u8()
	p.Incarnation = r.u64()
	p.Seq = r.u64()
	p.LeaseEpoch = r.u64()
	flags := r.u8()
	count := int(r.u8())
	if r.bad {
		return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
	}
	if p.Link >= MaxLinks {
		return nil, fmt.Errorf("%w: link %d, max %d", ErrMalformed, p.Link, MaxLinks-1)
	}
	if flags&^flagLeaseHeld != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#02x", ErrMalformed, flags)
	}
	p.LeaseHeld = flags&flagLeaseHeld != 0
	if count > MaxPeers {
		return nil, fmt.Errorf("%w: %d peers, max %d", ErrMalformed, count, MaxPeers)
	}
	// Each report takes at least peerSize+1 bytes, so a count the remaining
	// bytes cannot hold is refused before the slice is allocated.
	if count*(peerSize+1) > len(r.b) {
		return nil, fmt.Errorf("%w: %d peers cannot fit in %d bytes", ErrMalformed, count, len(r.b))
	}
	if count > 0 {
		p.Peers = make([]PeerReport, count)
	}
	for i := range p.Peers {
		pr := &p.Peers[i]
		if pr.Name, err = r.name(); err != nil {
			return nil, fmt.Errorf("%w: peer %d: %w", ErrMalformed, i, err)
		}
		pr.AckIncarnation = r.u64()
		pr.AckSeq = r.u64()
		pr.GrantEpoch = r.u64()
		pf := r.u8()
		pr.State = r.u8()
		pr.LinksUp = r.u8()
		pr.EchoSeq = r.u64()
		pr.EchoHold = r.u32()
		if r.bad {
			return nil, fmt.Errorf("%w: peer %d truncated", ErrMalformed, i)
		}
		if pf&^flagGranting != 0 {
			return nil, fmt.Errorf("%w: peer %q: unknown flags %#02x", ErrMalformed, pr.Name, pf)
		}
		pr.Granting = pf&flagGranting != 0
		if pr.State > StateDead {
			return nil, fmt.Errorf("%w: peer %q: state %d", ErrMalformed, pr.Name, pr.State)
		}
		if dupBefore(p.Peers, i) {
			return nil, fmt.Errorf("%w: peer %q reported twice", ErrMalformed, pr.Name)
		}
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	return &p, nil
}
