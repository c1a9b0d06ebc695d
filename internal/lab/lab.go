package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Network is one private L2 segment (a bridge) that every host joins.
type Network struct {
	Name   string // e.g. "pub" or "hb"; the handle for Addr, CutLink and friends
	Subnet string // IPv4 prefix of /24 or shorter, e.g. "10.77.1.0/24"
}

// Options describe a lab.
type Options struct {
	// Name is a short tag (1-6 of [a-z0-9]) from which every kernel object
	// name derives. Labs that exist at the same time, in any process, need
	// different tags: New refuses a tag that a live lab holds.
	Name     string
	Networks []Network
	// Hosts are the host names ([a-z0-9-], at most 32 chars); host i gets
	// the address network+(i+1) on every network.
	Hosts []string
	// HostAddr gives the root namespace the address network+254 on every
	// bridge, so that the test process itself (or a browser) can reach the
	// hosts.
	HostAddr bool
}

// Lab is a set of hosts on private bridges. Its methods are safe for
// concurrent use.
type Lab struct {
	tag      string
	nets     []*network
	hosts    []*Host
	byName   map[string]*Host
	hostAddr bool
	lock     *os.File

	mu     sync.Mutex
	closed bool
	// drops holds the directed pairs whose frames are dropped: the key's
	// from-host sends, the to-host never receives.
	drops map[pair]bool
	// loss holds the packet loss, in percent, set with Degrade.
	loss map[lossKey]int
	// delays holds the queues that hold packets back, set with Delay.
	delays map[lossKey]*queue
}

type network struct {
	name   string
	idx    int
	prefix netip.Prefix
	bridge string
}

type pair struct{ from, to string }

const (
	maxTagLen   = 6
	maxNetworks = 10  // one digit in interface names
	maxHosts    = 100 // two digits in interface names
	// cmdTimeout bounds every ip/nft invocation so that a wedged tool fails
	// the test instead of hanging it.
	cmdTimeout = 30 * time.Second
	lockDir    = "/run/vigil-lab"
)

var (
	tagRE  = regexp.MustCompile(`^[a-z0-9]{1,6}$`)
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
)

// Kernel object names. The tag never contains '-', so the "-" after it
// keeps tag "t1" from matching the objects of tag "t10" when sweeping.
func nsPrefix(tag string) string     { return "vl-" + tag + "-" }
func vethPrefix(tag string) string   { return "vl-" + tag + "-" }
func bridgePrefix(tag string) string { return "vb-" + tag + "-" }

// New builds the lab. It first removes what a crashed earlier run with the
// same tag left behind (namespaces, their processes, bridges, veths).
func New(ctx context.Context, opt Options) (*Lab, error) {
	l, err := plan(opt)
	if err != nil {
		return nil, err
	}
	if err := l.acquire(); err != nil {
		return nil, err
	}
	if err := sweep(ctx, l.tag); err != nil {
		l.release()
		return nil, fmt.Errorf("lab %s: remove leftovers of an earlier run: %w", l.tag, err)
	}
	if err := l.build(ctx); err != nil {
		cerr := sweep(context.Background(), l.tag)
		l.release()
		return nil, errors.Join(fmt.Errorf("lab %s: %w", l.tag, err), cerr)
	}
	return l, nil
}

// plan validates the options and computes every name and address, so that
// bad input fails before anything is created.
func plan(opt Options) (*Lab, error) {
	if !tagRE.MatchString(opt.Name) {
		return nil, fmt.Errorf("lab name %q: want 1-%d characters of [a-z0-9] (interface names are limited to 15 characters)", opt.Name, maxTagLen)
	}
	tag := opt.Name
	if len(opt.Networks) == 0 || len(opt.Networks) > maxNetworks {
		return nil, fmt.Errorf("lab %s: want 1 to %d networks, got %d", tag, maxNetworks, len(opt.Networks))
	}
	if len(opt.Hosts) == 0 || len(opt.Hosts) > maxHosts {
		return nil, fmt.Errorf("lab %s: want 1 to %d hosts, got %d", tag, maxHosts, len(opt.Hosts))
	}
	l := &Lab{
		tag:      tag,
		byName:   map[string]*Host{},
		hostAddr: opt.HostAddr,
		drops:    map[pair]bool{},
		loss:     map[lossKey]int{},
		delays:   map[lossKey]*queue{},
	}
	for i, n := range opt.Networks {
		if !nameRE.MatchString(n.Name) {
			return nil, fmt.Errorf("lab %s: network name %q: want [a-z0-9-], at most 32 characters", tag, n.Name)
		}
		p, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			return nil, fmt.Errorf("lab %s: network %s: subnet: %w", tag, n.Name, err)
		}
		if !p.Addr().Is4() || p.Bits() > 24 || p.Bits() < 8 {
			return nil, fmt.Errorf("lab %s: network %s: subnet %s: want an IPv4 prefix from /8 to /24 (host addresses are .1 up and the root's is .254)", tag, n.Name, n.Subnet)
		}
		p = p.Masked()
		for _, o := range l.nets {
			if o.name == n.Name {
				return nil, fmt.Errorf("lab %s: network %s given twice", tag, n.Name)
			}
			if o.prefix.Overlaps(p) {
				return nil, fmt.Errorf("lab %s: network %s: subnet %s overlaps network %s (%s)", tag, n.Name, p, o.name, o.prefix)
			}
		}
		l.nets = append(l.nets, &network{name: n.Name, idx: i, prefix: p, bridge: bridgePrefix(tag) + strconv.Itoa(i)})
	}
	for i, name := range opt.Hosts {
		if !nameRE.MatchString(name) {
			return nil, fmt.Errorf("lab %s: host name %q: want [a-z0-9-], at most 32 characters, not starting with '-'", tag, name)
		}
		if l.byName[name] != nil {
			return nil, fmt.Errorf("lab %s: host %s given twice", tag, name)
		}
		h := &Host{lab: l, name: name, idx: i, netns: nsPrefix(tag) + name, cut: map[string]bool{}}
		l.hosts = append(l.hosts, h)
		l.byName[name] = h
	}
	return l, nil
}

// acquire takes an exclusive lock on the tag. Without it, a second lab
// with the same tag (another test package running in parallel) would sweep
// away the first one's hosts and both would fail in confusing ways. The
// kernel drops the lock when the process dies, so a crashed run never
// blocks the next one.
func (l *Lab) acquire() error {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return fmt.Errorf("lab %s: create lock dir: %w", l.tag, err)
	}
	path := filepath.Join(lockDir, l.tag+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lab %s: open lock: %w", l.tag, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lab %s: the tag is in use by another live lab (pid %s, lock %s): give each concurrent lab its own Name", l.tag, strings.TrimSpace(string(owner)), path)
		}
		return fmt.Errorf("lab %s: lock %s: %w", l.tag, path, err)
	}
	// The pid is only for the error message above.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	l.lock = f
	return nil
}

func (l *Lab) release() {
	if l.lock != nil {
		l.lock.Close()
		l.lock = nil
	}
}

func (l *Lab) build(ctx context.Context) error {
	if l.hostAddr {
		if err := l.checkRootRoutes(ctx); err != nil {
			return err
		}
	}
	for _, n := range l.nets {
		// No STP delay and no multicast snooping: the bridge should behave
		// like a dumb switch, forwarding at once and flooding multicast.
		if err := ip(ctx, "link", "add", n.bridge, "type", "bridge", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
			return fmt.Errorf("create bridge %s for network %s: %w", n.bridge, n.name, err)
		}
		if l.hostAddr {
			if err := ip(ctx, "addr", "add", n.rootPrefix(), "dev", n.bridge); err != nil {
				return fmt.Errorf("give the root namespace %s on bridge %s: %w", n.rootPrefix(), n.bridge, err)
			}
		} else {
			// Keeps the root namespace from sending IPv6 autoconfiguration
			// chatter into the lab.
			disableIPv6(n.bridge)
		}
		if err := ip(ctx, "link", "set", "dev", n.bridge, "up"); err != nil {
			return fmt.Errorf("bring up bridge %s: %w", n.bridge, err)
		}
	}
	for _, h := range l.hosts {
		if err := l.boot(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// checkRootRoutes refuses a subnet that the root namespace already routes
// elsewhere: giving the root an address in it would hijack or break that
// route.
func (l *Lab) checkRootRoutes(ctx context.Context) error {
	out, err := run(ctx, "ip", "-j", "-4", "route", "show")
	if err != nil {
		return fmt.Errorf("list root routes: %w", err)
	}
	var routes []struct {
		Dst string `json:"dst"`
		Dev string `json:"dev"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return fmt.Errorf("parse root routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == "" || r.Dst == "default" {
			continue
		}
		p, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			a, aerr := netip.ParseAddr(r.Dst)
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		for _, n := range l.nets {
			if p.Overlaps(n.prefix) {
				return fmt.Errorf("network %s: subnet %s overlaps the root namespace's route %s dev %s; HostAddr needs a subnet of its own", n.name, n.prefix, r.Dst, r.Dev)
			}
		}
	}
	return nil
}

// boot creates a host's namespace with fresh kernel state: loopback up, one
// veth per network with a fixed MAC and address, no default route so that
// nothing can leave the lab's bridges.
func (l *Lab) boot(ctx context.Context, h *Host) error {
	if err := ip(ctx, "netns", "add", h.netns); err != nil {
		return fmt.Errorf("create netns %s: %w", h.netns, err)
	}
	if err := ip(ctx, "-n", h.netns, "link", "set", "dev", "lo", "up"); err != nil {
		return fmt.Errorf("bring up lo in netns %s: %w", h.netns, err)
	}
	for _, n := range l.nets {
		veth := h.veth(n)
		inner := h.iface(n)
		if err := ip(ctx, "link", "add", veth, "type", "veth", "peer", "name", inner, "address", h.mac(n), "netns", h.netns); err != nil {
			return fmt.Errorf("create veth %s for host %s on network %s: %w", veth, h.name, n.name, err)
		}
		disableIPv6(veth)
		if err := ip(ctx, "link", "set", "dev", veth, "master", n.bridge); err != nil {
			return fmt.Errorf("attach veth %s to bridge %s: %w", veth, n.bridge, err)
		}
		if err := ip(ctx, "-n", h.netns, "addr", "add", h.prefix(n), "dev", inner); err != nil {
			return fmt.Errorf("address %s on %s in netns %s: %w", h.prefix(n), inner, h.netns, err)
		}
		if err := ip(ctx, "-n", h.netns, "link", "set", "dev", inner, "up"); err != nil {
			return fmt.Errorf("bring up %s in netns %s: %w", inner, h.netns, err)
		}
		if err := l.applyLink(ctx, h, n); err != nil {
			return err
		}
	}
	return nil
}

func disableIPv6(ifname string) {
	// Best effort: the file is absent when IPv6 is off altogether.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+ifname+"/disable_ipv6", []byte("1"), 0o644)
}

// Close kills every process in the lab's namespaces and deletes the
// namespaces, veths and bridges. It is idempotent and best effort: it
// carries on after a failure and returns all errors joined.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var errs []error
	for _, q := range l.delays {
		q.stop()
	}
	clear(l.delays)
	for _, h := range l.hosts {
		if err := killNetns(ctx, h.netns); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", h.name, err))
		}
	}
	// Reap our children so that no Wait goroutine outlives the lab.
	for _, h := range l.hosts {
		for _, p := range h.procs {
			if err := p.Kill(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := sweep(ctx, l.tag); err != nil {
		errs = append(errs, err)
	}
	l.release()
	return errors.Join(errs...)
}

// sweep deletes every kernel object that carries the tag, whether this
// process made it or a crashed one did.
func sweep(ctx context.Context, tag string) error {
	var errs []error
	nss, err := listNetns(ctx)
	if err != nil {
		return err
	}
	for _, ns := range nss {
		if !strings.HasPrefix(ns, nsPrefix(tag)) {
			continue
		}
		if err := killNetns(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	links, err := listLinks(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	// Deleting a veth deletes its peer at once, while a deleted namespace
	// takes its interfaces down asynchronously: delete veths explicitly so
	// that nothing lingers after Close returns.
	for _, name := range links {
		if strings.HasPrefix(name, vethPrefix(tag)) {
			if err := ipIgnoreMissing(ctx, "link", "del", "dev", name); err != nil {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", name, err))
			}
		}
	}
	for _, ns := range nss {
		if strings.HasPrefix(ns, nsPrefix(tag)) {
			if err := ip(ctx, "netns", "del", ns); err != nil {
				errs = append(errs, fmt.Errorf("delete netns %s: %w", ns, err))
			}
		}
	}
	for _, name := range links {
		if strings.HasPrefix(name, bridgePrefix(tag)) {
			if err := ipIgnoreMissing(ctx, "link", "del", "dev", name); err != nil {
				errs = append(errs, fmt.Errorf("delete bridge %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Host returns the named host, or nil if the lab has none by that name.
func (l *Lab) Host(name string) *Host { return l.byName[name] }

// Hosts returns the hosts in the order of Options.Hosts.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// RootAddr returns the root namespace's address on the network (".254"),
// or "" without Options.HostAddr or for an unknown network.
func (l *Lab) RootAddr(network string) string {
	n := l.net(network)
	if n == nil || !l.hostAddr {
		return ""
	}
	return n.nth(254).String()
}

func (l *Lab) net(name string) *network {
	for _, n := range l.nets {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (n *network) nth(i int) netip.Addr {
	b := n.prefix.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (n *network) rootPrefix() string {
	return netip.PrefixFrom(n.nth(254), n.prefix.Bits()).String()
}
