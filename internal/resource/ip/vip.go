package ip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
)

// Defaults for Options.
const (
	DefaultGARPCount    = 3
	DefaultGARPInterval = 200 * time.Millisecond
)

// Options tune a VIP.
type Options struct {
	Logger *slog.Logger // nil discards
	// GARPCount announcements (gratuitous ARP or unsolicited neighbour
	// advertisements) are sent on Start, GARPInterval apart: the first before
	// Start returns, the rest in the background. 0 means DefaultGARPCount, a
	// negative count sends none.
	GARPCount int
	// GARPInterval 0 means DefaultGARPInterval.
	GARPInterval time.Duration
	// NetNS is the path of the network namespace to work in (e.g.
	// /run/netns/NAME): addresses, nftables and announcement sockets all go
	// there. "" is the namespace of the process.
	NetNS string
}

// VIP is one virtual IP address on one interface. It implements
// resource.Agent and resource.Leased.
//
// The lease protocol: the caller calls RenewLease before Start and then
// every time the node's lease is extended; Start never grants a lease by
// itself. While no lease element is current, the kernel drops all traffic
// to the VIP, and ARP requests or neighbour solicitations for it, on
// arrival, so the node stops answering on the VIP within about a
// millisecond (one jiffy) after the lease it was last given, even if the
// agent is frozen or dead.
//
// Start, Stop and Monitor come from one goroutine at a time (resource.Agent);
// RenewLease and RevokeLease may be called from another goroutine meanwhile.
type VIP struct {
	name   string
	prefix netip.Prefix
	ifname string
	opts   Options
	log    *slog.Logger
	fams   []family

	// base is the monotonic reference of leaseEnd, so that wall-clock steps
	// never extend a lease.
	base time.Time
	// leaseEnd is when the last lease given to the kernel runs out, in
	// nanoseconds since base; 0 when none was given or it was revoked. The
	// announcer reads it so that it never announces an unleased VIP.
	leaseEnd atomic.Int64

	// started is set by Start and cleared by a successful Stop: the address
	// is meant to be on the interface. Atomic because RenewLease and
	// RevokeLease read it without v.mu (see repair).
	started atomic.Bool

	mu  sync.Mutex // serialises Start and Stop with the announcer's owner
	ann *announcer
}

var (
	_ resource.Agent  = (*VIP)(nil)
	_ resource.Leased = (*VIP)(nil)
)

// New checks spec (an ip resource: Address as a CIDR such as 10.0.0.100/24
// or fd00::100/64, Interface such as eth0) and returns its VIP. Nothing is
// changed on the system until Start or RenewLease.
func New(spec config.Resource, opts Options) (*VIP, error) {
	what := "ip resource"
	if spec.Name != "" {
		what = fmt.Sprintf("ip resource %q", spec.Name)
	}
	if spec.Type != "" && spec.Type != "ip" {
		return nil, fmt.Errorf("%s: type is %q, not ip", what, spec.Type)
	}
	p, err := parseVIP(spec.Address)
	if err != nil {
		return nil, fmt.Errorf("%s: address: %w", what, err)
	}
	if err := checkIfName(spec.Interface); err != nil {
		return nil, fmt.Errorf("%s: interface: %w", what, err)
	}
	switch {
	case opts.GARPCount == 0:
		opts.GARPCount = DefaultGARPCount
	case opts.GARPCount < 0:
		opts.GARPCount = 0
	}
	switch {
	case opts.GARPInterval == 0:
		opts.GARPInterval = DefaultGARPInterval
	case opts.GARPInterval < 0:
		return nil, fmt.Errorf("%s: GARP interval %v is negative", what, opts.GARPInterval)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &VIP{
		name:   spec.Name,
		prefix: p,
		ifname: spec.Interface,
		opts:   opts,
		log:    log.With("resource", spec.Name, "vip", p.String(), "interface", spec.Interface),
		fams:   familiesFor(p.Addr()),
		base:   time.Now(),
	}, nil
}

func parseVIP(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("missing: give the virtual IP with its prefix length, e.g. 10.0.0.100/24 or fd00::100/64")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if _, aerr := netip.ParseAddr(s); aerr == nil {
			return netip.Prefix{}, fmt.Errorf("%q has no prefix length: write it as %s/24 (IPv4) or %s/64 (IPv6), as on the interface's network", s, s, s)
		}
		return netip.Prefix{}, fmt.Errorf("%q is not an address with a prefix length (e.g. 10.0.0.100/24): %w", s, err)
	}
	a := p.Addr()
	switch {
	case a.Zone() != "":
		return netip.Prefix{}, fmt.Errorf("%q: drop the zone; the interface is given separately", s)
	case a.Is4In6():
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address: write the IPv4 address", s)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return netip.Prefix{}, fmt.Errorf("%q cannot be a virtual IP: use a unicast address that is not loopback or link-local", s)
	case a.Is4() && p.Bits() < 32 && a == p.Masked().Addr():
		return netip.Prefix{}, fmt.Errorf("%q is the network address of its prefix, not a host address", s)
	case a.Is4() && p.Bits() < 31 && a == lastAddr(p):
		return netip.Prefix{}, fmt.Errorf("%q is the broadcast address of its prefix, not a host address", s)
	}
	return p, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(1)<<host - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// checkIfName applies the kernel's rules for interface names (dev_valid_name).
func checkIfName(s string) error {
	switch {
	case s == "":
		return errors.New("missing: give the interface to add the address to, e.g. eth0")
	case len(s) > unix.IFNAMSIZ-1:
		return fmt.Errorf("%q is longer than %d characters, the kernel's limit", s, unix.IFNAMSIZ-1)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not an interface name", s)
	case strings.Contains(s, ":"):
		return fmt.Errorf("%q: give the interface without an alias label (e.g. eth0, not eth0:1)", s)
	case strings.ContainsAny(s, "/ \t\n\r\x00"):
		return fmt.Errorf("%q: interface names contain no '/' and no white space", s)
	}
	return nil
}

// Prefix returns the VIP with its prefix length.
func (v *VIP) Prefix() netip.Prefix { return v.prefix }

// Interface returns the interface the VIP goes on.
func (v *VIP) Interface() string { return v.ifname }

func (v *VIP) String() string { return v.prefix.String() + " on " + v.ifname }

func (v *VIP) vip() netip.Addr { return v.prefix.Addr() }

func (v *VIP) tableNames() string {
	names := make([]string, len(v.fams))
	for i, f := range v.fams {
		names[i] = f.name + " " + TableName
	}
	return strings.Join(names, ", ")
}

func (v *VIP) leased() bool {
	end := v.leaseEnd.Load()
	return end != 0 && time.Since(v.base) < time.Duration(end)
}

// Start gates the VIP in nftables, adds it to the interface and announces
// it. The VIP goes into @vips before the address is added, so it never
// answers without a lease check; Start grants no lease, so traffic flows
// only once RenewLease has been called (call it first). Without a current
// lease the announcements are skipped, since they would draw traffic that
// the kernel then drops. Starting a started VIP re-announces it.
//
// The first announcement goes out before Start returns; the others follow
// in a goroutine owned by the VIP. That goroutine does not follow ctx,
// which callers cancel as soon as Start returns (it carries the action's
// timeout): it ends after its last announcement, when the lease runs out,
// or when Stop, RevokeLease or the next Start halt it, and they wait for it.
//
// If an announcement socket cannot be opened or the first announcement
// fails, Start returns the error with the address left in place: Stop
// removes it.
func (v *VIP) Start(ctx context.Context) (resource.Output, error) {
	t0 := time.Now()
	var out strings.Builder
	err := v.start(ctx, &out)
	return finish(t0, &out, err)
}

func (v *VIP) start(ctx context.Context, out *strings.Builder) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ann != nil {
		v.ann.halt()
		v.ann = nil
	}
	vip := v.vip()
	err := withNft(ctx, v.opts.NetNS, func(c *nftables.Conn) error { return ensureTables(c, v.fams, vip) })
	if err != nil {
		return fmt.Errorf("gate %s in nftables: %w", vip, err)
	}
	fmt.Fprintf(out, "%s is in @%s of %s (traffic passes only while it is in @%s)\n", vip, SetVIPs, v.tableNames(), SetLeased)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("add %s to %s: %w", v.prefix, v.ifname, err)
	}

	h, err := openNetlink(ctx, v.opts.NetNS)
	if err != nil {
		return fmt.Errorf("add %s to %s: %w", v.prefix, v.ifname, err)
	}
	defer h.Close()
	link, ok, err := linkByName(h, v.ifname)
	if err != nil {
		return fmt.Errorf("add %s to %s: %w", v.prefix, v.ifname, err)
	}
	if !ok {
		return fmt.Errorf("add %s to %s: no such interface%s", v.prefix, v.ifname, inNS(v.opts.NetNS))
	}
	if up, why := linkUp(link); !up {
		return fmt.Errorf("add %s to %s: interface is %s", v.prefix, v.ifname, why)
	}
	v.started.Store(true)
	// NODAD makes an IPv6 VIP usable at once instead of after a second of
	// duplicate address detection (which a peer still holding the VIP
	// during a takeover would fail); IPv4 ignores the flag.
	addr := &netlink.Addr{IPNet: prefixIPNet(v.prefix), Flags: unix.IFA_F_NODAD}
	switch err := h.AddrAdd(link, addr); {
	case errors.Is(err, unix.EEXIST):
		fmt.Fprintf(out, "%s was already on %s\n", v.prefix, v.ifname)
	case err != nil:
		return fmt.Errorf("add %s to %s: %w", v.prefix, v.ifname, err)
	default:
		fmt.Fprintf(out, "added %s to %s (nodad)\n", v.prefix, v.ifname)
		v.log.Info("virtual IP added")
	}
	return v.announce(link, out)
}

// announce sends the first announcement now and starts the announcer for
// the others. Callers hold v.mu.
func (v *VIP) announce(link netlink.Link, out *strings.Builder) error {
	kind := "gratuitous ARP"
	if v.vip().Is6() {
		kind = "unsolicited neighbour advertisement"
	}
	a := link.Attrs()
	switch {
	case v.opts.GARPCount == 0:
		fmt.Fprintf(out, "%s disabled\n", kind)
		return nil
	case a.Flags&net.FlagLoopback != 0 || a.RawFlags&unix.IFF_NOARP != 0 || len(a.HardwareAddr) != 6:
		fmt.Fprintf(out, "no %s: %s does not resolve addresses over Ethernet\n", kind, v.ifname)
		return nil
	case !v.leased():
		fmt.Fprintf(out, "no %s: no lease is current (call RenewLease before Start); traffic to %s is dropped until then\n", kind, v.vip())
		v.log.Warn("started without a current lease: announcements skipped")
		return nil
	}
	ifi := &net.Interface{Index: a.Index, Name: a.Name, HardwareAddr: a.HardwareAddr, MTU: a.MTU, Flags: a.Flags}
	s, err := openSender(v.opts.NetNS, ifi, v.vip())
	if err != nil {
		return fmt.Errorf("announce %s on %s: %w", v.vip(), v.ifname, err)
	}
	if err := s.send(); err != nil {
		_ = s.close()
		return fmt.Errorf("announce %s on %s: send %s: %w", v.vip(), v.ifname, kind, err)
	}
	fmt.Fprintf(out, "%s 1/%d sent for %s at %s", kind, v.opts.GARPCount, v.vip(), a.HardwareAddr)
	if v.opts.GARPCount == 1 {
		out.WriteString("\n")
		return s.close()
	}
	fmt.Fprintf(out, ", %d more every %v in the background\n", v.opts.GARPCount-1, v.opts.GARPInterval)
	ann := &announcer{stop: make(chan struct{}), done: make(chan struct{})}
	v.ann = ann
	go v.repeat(ann, s, kind)
	return nil
}

func (v *VIP) repeat(ann *announcer, s sender, kind string) {
	defer close(ann.done)
	defer func() { _ = s.close() }()
	tick := time.NewTicker(v.opts.GARPInterval)
	defer tick.Stop()
	for i := 2; i <= v.opts.GARPCount; i++ {
		select {
		case <-ann.stop:
			return
		case <-tick.C:
		}
		// A VIP whose lease ran out may be starting elsewhere: announcing it
		// here would pull its clients to a node that drops their packets.
		if !v.leased() {
			v.log.Warn("lease not current: remaining announcements dropped", "sent", i-1, "kind", kind)
			return
		}
		if err := s.send(); err != nil {
			v.log.Warn("announcement failed", "n", i, "kind", kind, "err", err)
		}
	}
}

// Stop revokes the VIP's lease (its traffic stops at once), removes the
// address and then takes the VIP out of @vips. Stopping a stopped VIP, or
// one whose interface is gone, succeeds.
func (v *VIP) Stop(ctx context.Context) (resource.Output, error) {
	t0 := time.Now()
	var out strings.Builder
	err := v.stop(ctx, &out)
	return finish(t0, &out, err)
}

func (v *VIP) stop(ctx context.Context, out *strings.Builder) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ann != nil {
		v.ann.halt()
		v.ann = nil
	}
	if err := v.revoke(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "lease of %s revoked\n", v.vip())

	h, err := openNetlink(ctx, v.opts.NetNS)
	if err != nil {
		return fmt.Errorf("remove %s from %s: %w", v.prefix, v.ifname, err)
	}
	defer h.Close()
	link, ok, err := linkByName(h, v.ifname)
	if err != nil {
		return fmt.Errorf("remove %s from %s: %w", v.prefix, v.ifname, err)
	}
	if ok {
		a, err := findAddr(h, link, v.vip())
		if err != nil {
			return fmt.Errorf("remove %s from %s: %w", v.prefix, v.ifname, err)
		}
		if a == nil {
			fmt.Fprintf(out, "%s was not on %s\n", v.vip(), v.ifname)
		} else {
			if err := h.AddrDel(link, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("remove %s from %s: %w", a.IPNet, v.ifname, err)
			}
			fmt.Fprintf(out, "removed %s from %s\n", a.IPNet, v.ifname)
			v.log.Info("virtual IP removed")
		}
	} else {
		fmt.Fprintf(out, "interface %s is gone, and %s with it\n", v.ifname, v.vip())
	}
	// Only now that the address is gone may the VIP leave @vips: before,
	// it would answer unchecked.
	err = withNft(ctx, v.opts.NetNS, func(c *nftables.Conn) error {
		if err := queueRemove(c, v.fams, v.vip(), SetVIPs); err != nil {
			return err
		}
		return c.Flush()
	})
	switch {
	case isNotExist(err):
		// No tables: nothing gates, and nothing needs ungating.
	case err != nil:
		return fmt.Errorf("remove %s from @%s of %s: %w", v.vip(), SetVIPs, v.tableNames(), err)
	default:
		fmt.Fprintf(out, "%s removed from @%s\n", v.vip(), SetVIPs)
	}
	v.started.Store(false)
	return nil
}

func finish(t0 time.Time, out *strings.Builder, err error) (resource.Output, error) {
	o := resource.Output{Text: out.String(), Duration: time.Since(t0)}
	if err != nil {
		o.Text += "error: " + err.Error() + "\n"
		o.ExitCode = 1
	}
	return o, err
}

// Monitor reports Running when the address is on the interface, the
// interface is up (administratively, and with a carrier) and the VIP is in
// @vips of every table it needs. It reports Stopped when the address is not
// on the interface. It reports Failed when the address should be there
// (Start ran and Stop has not) but the interface is missing or down, when
// the address is there on an interface that is down, and when the address
// is there but the VIP is missing from @vips (someone flushed the ruleset:
// the VIP would answer without a lease check). Whether the lease is current
// does not change the state, since the lease belongs to the node, not to
// the resource; the output says when it runs out.
func (v *VIP) Monitor(ctx context.Context) (resource.State, resource.Output, error) {
	t0 := time.Now()
	var out strings.Builder
	st, err := v.monitor(ctx, &out)
	o, err := finish(t0, &out, err)
	if err != nil {
		return resource.Failed, o, err
	}
	return st, o, nil
}

func (v *VIP) monitor(ctx context.Context, out *strings.Builder) (resource.State, error) {
	started := v.started.Load()
	h, err := openNetlink(ctx, v.opts.NetNS)
	if err != nil {
		return resource.Failed, fmt.Errorf("monitor %s: %w", v, err)
	}
	defer h.Close()
	link, ok, err := linkByName(h, v.ifname)
	if err != nil {
		return resource.Failed, fmt.Errorf("monitor %s: %w", v, err)
	}
	if !ok {
		fmt.Fprintf(out, "interface %s does not exist%s\n", v.ifname, inNS(v.opts.NetNS))
		if started {
			out.WriteString("the address should be on it\n")
			return resource.Failed, nil
		}
		return resource.Stopped, nil
	}
	a, err := findAddr(h, link, v.vip())
	if err != nil {
		return resource.Failed, fmt.Errorf("monitor %s: %w", v, err)
	}
	up, why := linkUp(link)
	if a == nil {
		fmt.Fprintf(out, "%s is not on %s\n", v.vip(), v.ifname)
		if started && !up {
			fmt.Fprintf(out, "interface %s is %s while the address should be on it\n", v.ifname, why)
			return resource.Failed, nil
		}
		return resource.Stopped, nil
	}
	fmt.Fprintf(out, "%s is on %s\n", a.IPNet, v.ifname)
	state := resource.Running
	if !up {
		fmt.Fprintf(out, "interface %s is %s\n", v.ifname, why)
		state = resource.Failed
	}
	err = withNft(ctx, v.opts.NetNS, func(c *nftables.Conn) error {
		for _, f := range v.fams {
			_, gated, err := element(c, f.vipsSet(), v.vip())
			if err != nil {
				return err
			}
			if !gated {
				fmt.Fprintf(out, "%s is NOT in @%s of %s %s: it answers without a lease check\n", v.vip(), SetVIPs, f.name, TableName)
				state = resource.Failed
			}
			e, leased, err := element(c, f.leasedSet(), v.vip())
			if err != nil {
				return err
			}
			if leased {
				fmt.Fprintf(out, "%s %s: lease runs out in %v\n", f.name, TableName, e.Expires)
			} else {
				fmt.Fprintf(out, "%s %s: no current lease (traffic dropped)\n", f.name, TableName)
			}
		}
		return nil
	})
	if err != nil {
		return resource.Failed, fmt.Errorf("monitor %s: %w", v, err)
	}
	return state, nil
}

// RenewLease lets the VIP's traffic through for remaining from now: the
// element in @leased of every table gets a timeout of remaining, rounded up
// to a millisecond (the unit of nftables timeouts; the kernel counts in
// jiffies, so expiry may come up to one tick later), all in one netlink
// transaction. A remaining of zero or less revokes the lease. It works
// before Start (and should come first); if the tables are missing (a
// Cleanup ran), they are made again, and the VIP put back into @vips when
// it is started.
func (v *VIP) RenewLease(remaining time.Duration) error {
	if remaining <= 0 {
		return v.RevokeLease()
	}
	timeout := msCeil(remaining)
	// Measured before the kernel hears of it, so that this process's idea
	// of the lease (which the announcer goes by) never outlasts the
	// kernel's element.
	end := time.Since(v.base) + remaining
	ctx, cancel := context.WithTimeout(context.Background(), netlinkTimeout)
	defer cancel()
	renew := func(c *nftables.Conn) error {
		if err := queueRenew(c, v.fams, v.vip(), timeout); err != nil {
			return err
		}
		return c.Flush()
	}
	err := withNft(ctx, v.opts.NetNS, renew)
	if isNotExist(err) {
		err = v.repair(ctx, renew)
	}
	if err != nil {
		return fmt.Errorf("renew lease of %s in %s: %w", v.vip(), v.tableNames(), err)
	}
	v.leaseEnd.Store(int64(end))
	v.log.Debug("lease renewed", "timeout", timeout)
	return nil
}

// RevokeLease deletes the VIP's @leased elements at once, so its traffic
// stops, and stops any announcements in progress.
func (v *VIP) RevokeLease() error {
	ctx, cancel := context.WithTimeout(context.Background(), netlinkTimeout)
	defer cancel()
	err := v.revoke(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ann != nil {
		v.ann.halt()
		v.ann = nil
	}
	return err
}

func (v *VIP) revoke(ctx context.Context) error {
	v.leaseEnd.Store(0)
	del := func(c *nftables.Conn) error {
		if err := queueRemove(c, v.fams, v.vip(), SetLeased); err != nil {
			return err
		}
		return c.Flush()
	}
	err := withNft(ctx, v.opts.NetNS, del)
	if isNotExist(err) {
		if !v.started.Load() {
			// No tables, so nothing is leased; and the VIP is not ours to
			// gate (repair would not put it into @vips either).
			return nil
		}
		err = v.repair(ctx, del)
	}
	if err != nil {
		return fmt.Errorf("revoke lease of %s in %s: %w", v.vip(), v.tableNames(), err)
	}
	v.log.Info("lease revoked")
	return nil
}

// repair makes the tables again after they went missing under a VIP (a
// Cleanup, a ruleset flush), putting a started VIP back into @vips so that
// it stays gated, then retries op.
func (v *VIP) repair(ctx context.Context, op func(*nftables.Conn) error) error {
	// A Start running meanwhile may set started just after this read; it
	// adds the VIP to @vips itself before adding the address.
	started := v.started.Load()
	var vip netip.Addr
	if started {
		vip = v.vip()
	}
	// The normal path of the first RenewLease on a fresh node, and the
	// repair after a Cleanup or a ruleset flush.
	v.log.Info("nftables tables absent: creating them", "gate_vip", started)
	return withNft(ctx, v.opts.NetNS, func(c *nftables.Conn) error {
		if err := ensureTables(c, v.fams, vip); err != nil {
			return err
		}
		return op(c)
	})
}
