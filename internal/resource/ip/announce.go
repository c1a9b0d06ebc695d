package ip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// sender sends one announcement of the VIP: a gratuitous ARP (IPv4) or an
// unsolicited neighbour advertisement (IPv6).
type sender interface {
	send() error
	close() error
}

// openSender opens the socket for the announcements inside the namespace.
// The interface is described from netlink data rather than looked up with
// package net, whose lookups use the calling thread's namespace and cache
// interface names process-wide.
func openSender(nsPath string, ifi *net.Interface, vip netip.Addr) (sender, error) {
	var s sender
	err := inNetNS(nsPath, func() error {
		var err error
		if vip.Is4() {
			s, err = openARP(ifi, vip)
		} else {
			s, err = openNA(ifi, vip)
		}
		return err
	})
	return s, err
}

type arpSender struct {
	c     *packet.Conn
	frame []byte
}

// openARP prepares an ARP announcement (RFC 5227): a broadcast request
// whose sender and target IP are both the VIP. Linux updates an existing
// neighbour entry from it whatever arp_accept says, which is what moves
// clients and routers to this node's MAC after a failover.
func openARP(ifi *net.Interface, vip netip.Addr) (*arpSender, error) {
	p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, vip, make(net.HardwareAddr, len(ifi.HardwareAddr)), vip)
	if err != nil {
		return nil, fmt.Errorf("build gratuitous ARP for %s: %w", vip, err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("build gratuitous ARP for %s: %w", vip, err)
	}
	f := ethernet.Frame{Destination: ethernet.Broadcast, Source: ifi.HardwareAddr, EtherType: ethernet.EtherTypeARP, Payload: pb}
	fb, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("build gratuitous ARP frame for %s: %w", vip, err)
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("open packet socket on %s: %w", ifi.Name, err)
	}
	return &arpSender{c: c, frame: fb}, nil
}

func (s *arpSender) send() error {
	_, err := s.c.WriteTo(s.frame, &packet.Addr{HardwareAddr: ethernet.Broadcast})
	return err
}

func (s *arpSender) close() error { return s.c.Close() }

type naSender struct {
	c   net.PacketConn
	pc  *ipv6.PacketConn
	msg []byte
}

// openNA prepares an unsolicited neighbour advertisement (RFC 4861 7.2.6)
// to all-nodes with the Override flag and the target link-layer address, so
// that neighbours replace a cached MAC. Its source is the VIP itself, which
// is usable at once (added with nodad), unlike a link-local address that
// may still be tentative on a freshly booted interface.
func openNA(ifi *net.Interface, vip netip.Addr) (*naSender, error) {
	msg, err := ndp.MarshalMessage(&ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
	})
	if err != nil {
		return nil, fmt.Errorf("build neighbour advertisement for %s: %w", vip, err)
	}
	c, err := net.ListenPacket("ip6:ipv6-icmp", vip.String())
	if err != nil {
		return nil, fmt.Errorf("open ICMPv6 socket on %s: %w", vip, err)
	}
	pc := ipv6.NewPacketConn(c)
	var filter ipv6.ICMPFilter
	filter.SetAll(true) // send only: do not queue every ICMPv6 packet received
	// The kernel computes the ICMPv6 checksum on raw ICMPv6 sockets; hop
	// limit 255 is what receivers require of ND messages.
	err = errors.Join(
		pc.SetICMPFilter(&filter),
		pc.SetMulticastInterface(ifi),
		pc.SetMulticastHopLimit(255),
		pc.SetMulticastLoopback(false),
	)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("set up ICMPv6 socket on %s: %w", ifi.Name, err)
	}
	return &naSender{c: c, pc: pc, msg: msg}, nil
}

func (s *naSender) send() error {
	// No zone: the interface comes from IPV6_MULTICAST_IF, so nothing maps
	// an interface name to an index in this thread's namespace.
	_, err := s.pc.WriteTo(s.msg, nil, &net.IPAddr{IP: net.IPv6linklocalallnodes})
	return err
}

func (s *naSender) close() error { return s.c.Close() }

// announcer repeats announcements in the background. It belongs to a VIP,
// which stops it (and waits for it) on Stop, RevokeLease and a new Start;
// left alone it ends after its last send.
type announcer struct {
	stop chan struct{}
	done chan struct{}
}

func (a *announcer) halt() {
	close(a.stop)
	<-a.done
}
