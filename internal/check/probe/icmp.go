package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/vigil-ha/vigil/internal/check"
)

// ICMP passes when Target answers one echo request. It uses a raw socket when
// the agent may (root, or CAP_NET_RAW) and otherwise the kernel's unprivileged
// datagram ICMP, which needs net.ipv4.ping_group_range to cover the agent's group
// (it is off on many distributions, and on the machines these tests run on).
type ICMP struct {
	Target string     // an IPv4 or IPv6 address, or a host name resolved at each probe
	Source netip.Addr // zero: the routing table chooses

	// mode forces one socket kind; tests use it to reach the datagram path as root.
	mode icmpMode
	// rawDenied remembers that raw sockets were refused, so later probes go
	// straight to the datagram socket instead of failing a syscall every time.
	rawDenied atomic.Bool
}

type icmpMode uint8

const (
	icmpAuto icmpMode = iota
	icmpRaw
	icmpDatagram
)

var _ check.Prober = (*ICMP)(nil)

// Probe sends one echo request and waits for its reply within ctx's deadline.
func (p *ICMP) Probe(ctx context.Context) check.Result {
	start := time.Now()
	ok, detail := p.probe(ctx, start)
	return check.Result{OK: ok, Detail: detail, Duration: time.Since(start)}
}

func (p *ICMP) probe(ctx context.Context, start time.Time) (bool, string) {
	// A loopback reply can beat the deadline being applied: a probe that was
	// already out of time must not pass.
	if err := ctx.Err(); err != nil {
		return false, describe(ctx, err, start)
	}
	dst, err := p.resolve(ctx)
	if err != nil {
		return false, describe(ctx, err, start)
	}
	conn, dgram, err := p.listen(dst)
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close()
	// A read blocks until a packet or the deadline; cancelling ctx early (the
	// runner stopping) must end it too.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}

	// On a raw socket every echo reply for this host arrives, including other
	// pings' (and, on loopback, our own request): id, sequence and a random
	// payload pick out ours. A datagram socket gets its id from the kernel.
	id, seq := int(rand.Uint32()&0xffff), int(rand.Uint32()&0xffff)
	payload := make([]byte, 16)
	binary.BigEndian.PutUint64(payload, rand.Uint64())
	binary.BigEndian.PutUint64(payload[8:], rand.Uint64())
	v4 := dst.Is4()
	var req, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1 // ICMPv4, for ParseMessage
	if !v4 {
		req, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	// The kernel fills in the ICMPv6 checksum (it needs the pseudo-header),
	// and rewrites the id on datagram sockets.
	msg := icmp.Message{Type: req, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}
	wire, err := msg.Marshal(nil)
	if err != nil {
		return false, fmt.Sprintf("build echo request: %v", err)
	}
	var to net.Addr = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if dgram {
		to = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	if _, err := conn.WriteTo(wire, to); err != nil {
		return false, describe(ctx, err, start)
	}

	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
				return false, fmt.Sprintf("no echo reply from %s within %s", dst, time.Since(start).Round(time.Millisecond))
			}
			return false, fmt.Sprintf("read: %v", err)
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		switch body := m.Body.(type) {
		case *icmp.Echo:
			if m.Type != reply || body.Seq != seq || string(body.Data) != string(payload) {
				continue
			}
			if !dgram && body.ID != id {
				continue
			}
			if !sameAddr(from, dst) {
				continue
			}
			return true, fmt.Sprintf("echo reply from %s in %s", dst, time.Since(start).Round(time.Microsecond))
		case *icmp.DstUnreach:
			// Only raw sockets see these; a router saying "host unreachable"
			// ends the probe now instead of at the timeout.
			if !dgram && quotesOurs(body.Data, v4, id, seq) {
				return false, fmt.Sprintf("destination unreachable (code %d) reported by %s", m.Code, addrString(from))
			}
		case *icmp.TimeExceeded:
			if !dgram && quotesOurs(body.Data, v4, id, seq) {
				return false, fmt.Sprintf("time exceeded reported by %s", addrString(from))
			}
		}
	}
}

// resolve gives the address to ping: the literal, or the first resolved address of
// the source's family (any family without a source).
func (p *ICMP) resolve(ctx context.Context) (netip.Addr, error) {
	if a, err := netip.ParseAddr(p.Target); err == nil {
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", p.Target)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", p.Target, err)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if !p.Source.IsValid() || a.Is4() == p.Source.Unmap().Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("resolve %s: no address of the source's family", p.Target)
}

// listen opens a raw ICMP socket, or an unprivileged datagram one when raw
// sockets are refused. dgram says which it got.
func (p *ICMP) listen(dst netip.Addr) (conn *icmp.PacketConn, dgram bool, err error) {
	rawNet, dgramNet, laddr := "ip4:icmp", "udp4", "0.0.0.0"
	if !dst.Is4() {
		rawNet, dgramNet, laddr = "ip6:ipv6-icmp", "udp6", "::"
	}
	if p.Source.IsValid() {
		if p.Source.Unmap().Is4() != dst.Is4() {
			return nil, false, fmt.Errorf("source %s and target %s are of different IP families", p.Source, dst)
		}
		laddr = p.Source.Unmap().String()
	}
	if p.mode != icmpDatagram && !p.rawDenied.Load() {
		c, err := icmp.ListenPacket(rawNet, laddr)
		if err == nil {
			return c, false, nil
		}
		if !errors.Is(err, os.ErrPermission) || p.mode == icmpRaw {
			return nil, false, fmt.Errorf("open raw icmp socket: %w", err)
		}
		p.rawDenied.Store(true)
	}
	c, err := icmp.ListenPacket(dgramNet, laddr)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, true, fmt.Errorf("open icmp socket: %w (raw sockets need root or CAP_NET_RAW; "+
				"unprivileged ping needs net.ipv4.ping_group_range to include group %d)", err, os.Getegid())
		}
		return nil, true, fmt.Errorf("open icmp socket: %w", err)
	}
	return c, true, nil
}

// sameAddr compares a reply's source with the target, ignoring zones and
// IPv4-mapped forms.
func sameAddr(from net.Addr, dst netip.Addr) bool {
	var ip net.IP
	switch a := from.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return false
	}
	got, ok := netip.AddrFromSlice(ip)
	return ok && got.Unmap() == dst.WithZone("").Unmap()
}

func addrString(a net.Addr) string {
	if a == nil {
		return "?"
	}
	return a.String()
}

// quotesOurs says whether an ICMP error quotes our echo request: the quoted IP
// header, then the first 8 bytes of our ICMP message (type, code, checksum, id, seq).
func quotesOurs(data []byte, v4 bool, id, seq int) bool {
	var hdr int
	var echoType byte
	if v4 {
		if len(data) < 20 {
			return false
		}
		hdr, echoType = int(data[0]&0x0f)*4, 8
	} else {
		// Extension headers between the fixed header and ICMPv6 are not followed:
		// a quote we cannot read only means waiting for the timeout.
		if len(data) < 40 || data[6] != 58 {
			return false
		}
		hdr, echoType = 40, 128
	}
	if len(data) < hdr+8 || data[hdr] != echoType {
		return false
	}
	return int(binary.BigEndian.Uint16(data[hdr+4:])) == id && int(binary.BigEndian.Uint16(data[hdr+6:])) == seq
}
