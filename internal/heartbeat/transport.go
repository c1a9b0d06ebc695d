package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// readErrorBackoff keeps a socket that fails every read from spinning a core,
// while staying well under any sensible keepalive.
const readErrorBackoff = 10 * time.Millisecond

// Config describes the local end of every heartbeat link.
type Config struct {
	Key []byte
	// Listen holds one specific local address per link, index = link. A
	// wildcard address is refused: the socket must say which link a packet
	// came in on, and replies must leave from this node's address on it.
	Listen []string
	Port   int
	Known  []string // node names accepted as senders; others are dropped and counted
	Self   string   // own name; packets from it (own traffic looped back) are dropped
}

// Received is one packet that passed every check.
type Received struct {
	Packet *Packet
	Link   int // local link index it arrived on; always equal to Packet.Link
	From   netip.AddrPort
}

// Counters is a snapshot of what the transport saw. Every datagram read is
// counted in exactly one of the first eight fields.
type Counters struct {
	Received      uint64 // delivered to the out channel
	Dropped       uint64 // valid, but the out channel was full
	Malformed     uint64 // wrong size, not a Vigil packet, or invalid fields under a good MAC
	BadMAC        uint64 // wrong key or altered in transit
	Replayed      uint64 // not newer than the last accepted from that sender on that link
	UnknownSender uint64 // From is not in Config.Known
	FromSelf      uint64 // From is Config.Self
	LinkMismatch  uint64 // sender's link index differs from the local link it arrived on
	ReadErrors    uint64 // socket read failures other than shutdown
	SendErrors    uint64 // Send calls that failed
}

type counters struct {
	received, dropped, malformed, badMAC, replayed, unknownSender,
	fromSelf, linkMismatch, readErrors, sendErrors atomic.Uint64
}

// Transport owns one UDP socket per link.
type Transport struct {
	key   []byte
	self  string
	conns []*net.UDPConn

	mu    sync.Mutex // serialises the per-link readers' use of guard
	guard *ReplayGuard

	running   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	c         counters
}

// Listen validates cfg and binds one UDP socket per link.
func Listen(cfg Config) (*Transport, error) {
	if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("heartbeat: listen: %w (%d bytes, need %d)", ErrBadKey, len(cfg.Key), MinKeyLen)
	}
	if len(cfg.Listen) == 0 || len(cfg.Listen) > MaxLinks {
		return nil, fmt.Errorf("heartbeat: listen: %d links, need 1 to %d", len(cfg.Listen), MaxLinks)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("heartbeat: listen: port %d outside [1, 65535]", cfg.Port)
	}
	if err := checkName(cfg.Self); err != nil {
		return nil, fmt.Errorf("heartbeat: listen: self: %w", err)
	}
	addrs := make([]netip.AddrPort, len(cfg.Listen))
	for i, s := range cfg.Listen {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("heartbeat: listen: link %d: %w", i, err)
		}
		a = a.Unmap()
		if a.IsUnspecified() || a.IsMulticast() {
			return nil, fmt.Errorf("heartbeat: listen: link %d: %s is not a unicast host address", i, a)
		}
		addrs[i] = netip.AddrPortFrom(a, uint16(cfg.Port))
	}
	t := &Transport{
		key:   append([]byte(nil), cfg.Key...),
		self:  cfg.Self,
		guard: NewReplayGuard(cfg.Known),
	}
	for i, ap := range addrs {
		network := "udp6"
		if ap.Addr().Is4() {
			network = "udp4"
		}
		c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
		if err != nil {
			err = fmt.Errorf("heartbeat: listen: link %d: %w", i, err)
			return nil, errors.Join(err, t.Close())
		}
		t.conns = append(t.conns, c)
	}
	return t, nil
}

// LocalAddrs returns the bound address of each link, index = link.
func (t *Transport) LocalAddrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(t.conns))
	for i, c := range t.conns {
		out[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return out
}

// Run reads every link's socket until ctx is done, sending packets that pass
// all checks to out. It never blocks on out: a packet that finds out full is
// dropped and counted, because a stale heartbeat is worth less than the next
// one and a stalled reader would let the socket buffer overflow anyway. Run
// waits for its goroutines before returning; it returns nil once ctx is done
// and an error if a socket fails for good (for example after Close). Only one
// Run may be active at a time.
func (t *Transport) Run(ctx context.Context, out chan<- Received) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("heartbeat: run: already running")
	}
	defer t.running.Store(false)
	for i, c := range t.conns {
		// A previous Run leaves a past deadline behind to wake its readers.
		if err := c.SetReadDeadline(time.Time{}); err != nil {
			return fmt.Errorf("heartbeat: run: link %d: %w", i, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	for i, c := range t.conns {
		wg.Go(func() {
			if err := t.readLoop(ctx, i, c, out); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
				cancel() // one dead link must not leave Run half-working
			}
		})
	}
	// Every reader returns only after cancel or ctx's end, so this one does too.
	wg.Go(func() {
		<-ctx.Done()
		past := time.Unix(1, 0)
		for _, c := range t.conns {
			_ = c.SetReadDeadline(past) // fails only if already closed, which also wakes the reader
		}
	})
	wg.Wait()
	return errors.Join(errs...)
}

func (t *Transport) readLoop(ctx context.Context, link int, c *net.UDPConn, out chan<- Received) error {
	// One byte more than the limit so an oversized datagram is seen as such
	// instead of being silently truncated to a plausible length.
	buf := make([]byte, MaxPacketSize+1)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("heartbeat: run: link %d: %w", link, err)
			}
			t.c.readErrors.Add(1)
			timer := time.NewTimer(readErrorBackoff)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-timer.C:
			}
			continue
		}
		r, ok := t.accept(link, buf[:n], from)
		if !ok {
			continue
		}
		select {
		case out <- r:
			t.c.received.Add(1)
		default:
			t.c.dropped.Add(1)
		}
	}
}

// accept runs the checks in order of cost and trust: nothing reaches the
// replay guard unless its MAC is good, so forged packets cannot advance it.
func (t *Transport) accept(link int, b []byte, from netip.AddrPort) (Received, bool) {
	p, err := Decode(t.key, b)
	switch {
	case errors.Is(err, ErrBadMAC):
		t.c.badMAC.Add(1)
		return Received{}, false
	case err != nil:
		t.c.malformed.Add(1)
		return Received{}, false
	}
	if p.From == t.self {
		t.c.fromSelf.Add(1)
		return Received{}, false
	}
	// Address i of every node is on link i, so a mismatch means a
	// misconfigured peer or a packet carried across networks; either way it
	// says nothing about this link's health.
	if int(p.Link) != link {
		t.c.linkMismatch.Add(1)
		return Received{}, false
	}
	t.mu.Lock()
	err = t.guard.Accept(p)
	t.mu.Unlock()
	switch {
	case errors.Is(err, ErrUnknownSender):
		t.c.unknownSender.Add(1)
		return Received{}, false
	case err != nil:
		t.c.replayed.Add(1)
		return Received{}, false
	}
	return Received{Packet: p, Link: link, From: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}, true
}

// Send encodes p for link and sends it from that link's socket, so the source
// address is this node's address on the link. It sets p.Link = link first,
// so one *Packet must not be passed to concurrent Sends.
func (t *Transport) Send(link int, to netip.AddrPort, p *Packet) error {
	if link < 0 || link >= len(t.conns) {
		t.c.sendErrors.Add(1)
		return fmt.Errorf("heartbeat: send: link %d outside [0, %d)", link, len(t.conns))
	}
	if p == nil {
		t.c.sendErrors.Add(1)
		return fmt.Errorf("heartbeat: send: link %d: %w: nil packet", link, ErrInvalid)
	}
	p.Link = uint8(link)
	b, err := Encode(t.key, p)
	if err != nil {
		t.c.sendErrors.Add(1)
		return fmt.Errorf("heartbeat: send: link %d: %w", link, err)
	}
	if _, err := t.conns[link].WriteToUDPAddrPort(b, to); err != nil {
		t.c.sendErrors.Add(1)
		return fmt.Errorf("heartbeat: send: link %d to %s: %w", link, to, err)
	}
	return nil
}

// LinkStats returns, per sender and link, the heartbeats accepted and lost
// (sequence gaps), in no particular order.
func (t *Transport) LinkStats() []LinkStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.guard.Stats()
}

// Counters returns a snapshot; fields are read one by one, so a snapshot
// taken while packets flow may be off by the packets in flight.
func (t *Transport) Counters() Counters {
	return Counters{
		Received:      t.c.received.Load(),
		Dropped:       t.c.dropped.Load(),
		Malformed:     t.c.malformed.Load(),
		BadMAC:        t.c.badMAC.Load(),
		Replayed:      t.c.replayed.Load(),
		UnknownSender: t.c.unknownSender.Load(),
		FromSelf:      t.c.fromSelf.Load(),
		LinkMismatch:  t.c.linkMismatch.Load(),
		ReadErrors:    t.c.readErrors.Load(),
		SendErrors:    t.c.sendErrors.Load(),
	}
}

// Close closes every socket; a running Run then returns net.ErrClosed. It is
// safe to call more than once.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		for i, c := range t.conns {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("heartbeat: close link %d: %w", i, err))
			}
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}
