package ip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/arp"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/resource"
)

const (
	// A blocked probe can only time out, so a short wait cannot turn it
	// into a false pass; a reachable one gets retries.
	blockWait = 300 * time.Millisecond
	reachWait = 3 * time.Second
)

// newLab makes hosts srv (.1) and cli (.2) on one network 10.79.third.0/24.
func newLab(t *testing.T, tag string, third int) (*lab.Lab, *lab.Host, *lab.Host) {
	t.Helper()
	l := lab.NewForTest(t, lab.Options{
		Name:     tag,
		Networks: []lab.Network{{Name: "pub", Subnet: fmt.Sprintf("10.79.%d.0/24", third)}},
		Hosts:    []string{"srv", "cli"},
	})
	return l, l.Host("srv"), l.Host("cli")
}

func nsPath(h *lab.Host) string { return "/run/netns/" + h.Netns() }

// newVIP makes a VIP inside srv and makes sure the test leaves nothing
// behind in srv: Stop, then Cleanup.
func newVIP(t *testing.T, srv *lab.Host, name, addr string, opts Options) *VIP {
	t.Helper()
	opts.NetNS = nsPath(srv)
	v, err := New(config.Resource{Name: name, Type: "ip", Address: addr, Interface: "eth0"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := v.Stop(ctx); err != nil {
			t.Errorf("stop %s: %v", v, err)
		}
		if err := CleanupNetNS(ctx, nsPath(srv)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return v
}

func mustStart(t *testing.T, v *VIP) resource.Output {
	t.Helper()
	out, err := v.Start(t.Context())
	if err != nil {
		t.Fatalf("start %s: %v\n%s", v, err, out.Text)
	}
	t.Logf("start %s (%v):\n%s", v, out.Duration, out.Text)
	return out
}

func mustRenew(t *testing.T, v *VIP, d time.Duration) {
	t.Helper()
	if err := v.RenewLease(d); err != nil {
		t.Fatal(err)
	}
}

func wantState(t *testing.T, v *VIP, want resource.State) {
	t.Helper()
	st, out, err := v.Monitor(t.Context())
	if err != nil {
		t.Fatalf("monitor %s: %v", v, err)
	}
	if st != want {
		t.Fatalf("monitor %s: %v, want %v\n%s", v, st, want, out.Text)
	}
}

func run(t *testing.T, h *lab.Host, argv ...string) string {
	t.Helper()
	out, err := h.Run(t.Context(), argv...)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return string(out)
}

func macOf(t *testing.T, h *lab.Host) string {
	t.Helper()
	return strings.TrimSpace(run(t, h, "cat", "/sys/class/net/eth0/address"))
}

// server accepts TCP connections on addr inside h, each answered with one
// byte, until the test ends.
func server(t *testing.T, h *lab.Host, addr string) string {
	t.Helper()
	ln, err := h.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte{'!'})
			c.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// tcpOnce completes one exchange with a server, or fails within wait.
func tcpOnce(ctx context.Context, from *lab.Host, addr string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c, err := from.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil {
		return err
	}
	return nil
}

// tcp checks that from reaches (or not) the server at addr.
func tcp(t *testing.T, from *lab.Host, addr string, want bool) {
	t.Helper()
	if !want {
		if err := tcpOnce(t.Context(), from, addr, blockWait); err == nil {
			t.Fatalf("TCP %s from %s: connected, want blocked", addr, from.Name())
		}
		return
	}
	deadline := time.Now().Add(reachWait)
	for {
		err := tcpOnce(t.Context(), from, addr, blockWait)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("TCP %s from %s: %v, want connected", addr, from.Name(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// arpResolve asks for ip from inside h with an ARP request, as arping
// does, and returns the MAC that answered.
func arpResolve(h *lab.Host, ip string, wait time.Duration) (net.HardwareAddr, error) {
	var c *arp.Client
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		return nil, err
	}
	return c.Resolve(netip.MustParseAddr(ip))
}

// arpCheck checks that h gets (or not) an ARP reply for ip with mac.
func arpCheck(t *testing.T, h *lab.Host, ip, mac string, want bool) {
	t.Helper()
	if !want {
		if hw, err := arpResolve(h, ip, blockWait); err == nil {
			t.Fatalf("ARP for %s from %s: answered by %s, want no answer", ip, h.Name(), hw)
		}
		return
	}
	deadline := time.Now().Add(reachWait)
	for {
		hw, err := arpResolve(h, ip, blockWait)
		if err == nil {
			if hw.String() != mac {
				t.Fatalf("ARP for %s from %s: answered by %s, want %s", ip, h.Name(), hw, mac)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ARP for %s from %s: %v, want an answer from %s", ip, h.Name(), err, mac)
		}
	}
}

// neighMAC returns the MAC in h's neighbour entry for ip, or "".
func neighMAC(t *testing.T, h *lab.Host, ip string) string {
	t.Helper()
	f := strings.Fields(run(t, h, "ip", "neigh", "show", ip, "dev", "eth0"))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1]
		}
	}
	return ""
}

func waitNeigh(t *testing.T, h *lab.Host, ip, mac string) {
	t.Helper()
	deadline := time.Now().Add(reachWait)
	for {
		got := neighMAC(t, h, ip)
		if got == mac {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's neighbour entry for %s: %q, want %s", h.Name(), ip, got, mac)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasAddr(t *testing.T, h *lab.Host, ip string) bool {
	t.Helper()
	return strings.Contains(run(t, h, "ip", "-o", "addr", "show", "dev", "eth0"), " "+ip+"/")
}

func logRuleset(t *testing.T, h *lab.Host) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Logf("nft not installed: ruleset not shown")
		return ""
	}
	out := run(t, h, "nft", "list", "ruleset")
	t.Logf("nft list ruleset in %s:\n%s", h.Name(), out)
	return out
}

// leaseLeft reads the VIP's @leased element from the kernel, in every
// family; ok is false if any family lacks it.
func leaseLeft(t *testing.T, v *VIP) (left time.Duration, ok bool) {
	t.Helper()
	ok = true
	err := withNft(t.Context(), v.opts.NetNS, func(c *nftables.Conn) error {
		for _, f := range v.fams {
			e, found, err := element(c, f.leasedSet(), v.vip())
			if err != nil {
				return err
			}
			if !found {
				ok = false
				continue
			}
			left = max(left, e.Expires)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left, ok
}

// TestLeaseGatesVIP is the safety model's point 3 on one node: traffic to
// the VIP, and ARP answers for it, flow only while the lease element lives.
func TestLeaseGatesVIP(t *testing.T) {
	_, srv, cli := newLab(t, "vip1", 1)
	const vipIP = "10.79.1.100"
	srvMAC := macOf(t, srv)
	v := newVIP(t, srv, "vip", vipIP+"/24", Options{GARPInterval: 50 * time.Millisecond})
	wantState(t, v, resource.Stopped)

	// Start without a lease: the address is there but gated.
	out := mustStart(t, v)
	if !strings.Contains(out.Text, "no lease is current") {
		t.Errorf("start without a lease: output does not say the announcements were skipped:\n%s", out.Text)
	}
	if !hasAddr(t, srv, vipIP) {
		t.Fatalf("%s not on srv's eth0 after Start", vipIP)
	}
	wantState(t, v, resource.Running)
	vipAddr := server(t, srv, vipIP)
	ownAddr := server(t, srv, srv.Addr("pub"))
	arpCheck(t, cli, vipIP, srvMAC, false)
	tcp(t, cli, vipAddr, false)
	tcp(t, cli, ownAddr, true)

	// A lease opens the VIP.
	mustRenew(t, v, 5*time.Second)
	arpCheck(t, cli, vipIP, srvMAC, true)
	tcp(t, cli, vipAddr, true)
	logRuleset(t, srv)

	// A sub-second lease: let through at once, cut when it runs out,
	// with nobody renewing.
	const short = 800 * time.Millisecond
	t0 := time.Now()
	mustRenew(t, v, short)
	if left, ok := leaseLeft(t, v); !ok || left > short || left < short-200*time.Millisecond {
		t.Fatalf("lease element after RenewLease(%v): left %v, present %v", short, left, ok)
	}
	tcp(t, cli, vipAddr, true)
	if time.Since(t0) > short-100*time.Millisecond {
		t.Skipf("machine too slow: the first probe took %v of an %v lease", time.Since(t0), short)
	}
	time.Sleep(time.Until(t0.Add(short + 50*time.Millisecond)))
	if left, ok := leaseLeft(t, v); ok {
		t.Fatalf("lease element still there %v after a %v lease (expires in %v)", time.Since(t0), short, left)
	}
	arpCheck(t, cli, vipIP, srvMAC, false)
	tcp(t, cli, vipAddr, false)
	tcp(t, cli, ownAddr, true) // the node's own address is not gated
	wantState(t, v, resource.Running)

	// Renewing brings it back; revoking cuts at once.
	mustRenew(t, v, 5*time.Second)
	arpCheck(t, cli, vipIP, srvMAC, true)
	tcp(t, cli, vipAddr, true)
	if err := v.RevokeLease(); err != nil {
		t.Fatal(err)
	}
	if _, ok := leaseLeft(t, v); ok {
		t.Fatal("lease element still there after RevokeLease")
	}
	tcp(t, cli, vipAddr, false)
	arpCheck(t, cli, vipIP, srvMAC, false)

	// Stop removes the address and the VIP's elements, idempotently.
	mustRenew(t, v, 5*time.Second)
	for i := 0; i < 2; i++ {
		out, err := v.Stop(t.Context())
		if err != nil {
			t.Fatalf("stop #%d: %v\n%s", i+1, err, out.Text)
		}
		t.Logf("stop #%d:\n%s", i+1, out.Text)
	}
	if hasAddr(t, srv, vipIP) {
		t.Fatalf("%s still on srv's eth0 after Stop", vipIP)
	}
	if _, ok := leaseLeft(t, v); ok {
		t.Fatal("lease element still there after Stop")
	}
	gated := inVIPs(t, v)
	if gated {
		t.Fatal("VIP still in @vips after Stop")
	}
	wantState(t, v, resource.Stopped)
	tcp(t, cli, ownAddr, true)
}

func inVIPs(t *testing.T, v *VIP) bool {
	t.Helper()
	var in bool
	err := withNft(t.Context(), v.opts.NetNS, func(c *nftables.Conn) error {
		for _, f := range v.fams {
			_, ok, err := element(c, f.vipsSet(), v.vip())
			if err != nil {
				return err
			}
			in = in || ok
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestGratuitousARP: after Start, a client that had the VIP at another MAC
// (the previous holder's) has it at srv's without asking, and exactly
// GARPCount announcements went out.
func TestGratuitousARP(t *testing.T) {
	_, srv, cli := newLab(t, "vip2", 2)
	const vipIP = "10.79.2.100"
	srvMAC := macOf(t, srv)
	run(t, cli, "ip", "neigh", "replace", vipIP, "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")

	var dump *lab.Proc
	logPath := filepath.Join(t.TempDir(), "tcpdump.log")
	if _, err := exec.LookPath("tcpdump"); err == nil {
		dump = startTcpdump(t, cli, logPath, garpFilter, 3)
	} else {
		t.Logf("tcpdump not installed: the number of announcements is not checked")
	}

	v := newVIP(t, srv, "vip", vipIP+"/24", Options{GARPCount: 3, GARPInterval: 100 * time.Millisecond})
	mustRenew(t, v, 10*time.Second)
	out := mustStart(t, v)
	if !strings.Contains(out.Text, "gratuitous ARP 1/3 sent") {
		t.Errorf("start output does not report the announcement:\n%s", out.Text)
	}
	waitNeigh(t, cli, vipIP, srvMAC)

	if dump != nil {
		select {
		case <-dump.Done():
		case <-time.After(5 * time.Second):
			b, _ := os.ReadFile(logPath)
			t.Fatalf("tcpdump did not see 3 announcements in 5s:\n%s", b)
		}
		b, _ := os.ReadFile(logPath)
		if n := bytes.Count(b, []byte("tell "+vipIP)); n != 3 {
			t.Fatalf("tcpdump saw %d announcements, want 3:\n%s", n, b)
		}
		t.Logf("tcpdump in cli:\n%s", b)
	}

	// The announcer stops with Stop (and goleak checks it is gone).
	mustRenew(t, v, 10*time.Second)
	mustStart(t, v)
	if _, err := v.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Nor does it announce past the lease: the VIP may be starting on
	// another node by then.
	if dump == nil {
		return
	}
	w := newVIP(t, srv, "vip", vipIP+"/24", Options{GARPCount: 10, GARPInterval: 100 * time.Millisecond})
	logPath = filepath.Join(t.TempDir(), "tcpdump2.log")
	dump = startTcpdump(t, cli, logPath, garpFilter, 10)
	mustRenew(t, w, 300*time.Millisecond)
	mustStart(t, w)
	time.Sleep(1500 * time.Millisecond)
	if err := dump.Kill(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(logPath)
	n := bytes.Count(b, []byte("tell "+vipIP))
	t.Logf("with a 300ms lease: %d of 10 announcements sent", n)
	if n < 1 || n > 4 {
		t.Fatalf("with a 300ms lease, tcpdump saw %d of 10 announcements 100ms apart, want 1 to 4:\n%s", n, b)
	}
}

// garpFilter matches ARP packets whose sender IP is 10.79.2.100.
const garpFilter = "arp and arp[14:4] = 0x0a4f0264"

// startTcpdump runs tcpdump -c count in h and waits until it listens.
func startTcpdump(t *testing.T, h *lab.Host, logPath, filter string, count int) *lab.Proc {
	t.Helper()
	p, err := h.Start("tcpdump", []string{"tcpdump", "-i", "eth0", "-n", "-l", "-c", fmt.Sprint(count), filter}, nil, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if bytes.Contains(b, []byte("listening on")) {
			return p
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMonitor walks the monitor through its states.
func TestMonitor(t *testing.T) {
	l, srv, _ := newLab(t, "vip3", 3)
	const vipIP = "10.79.3.100"
	v := newVIP(t, srv, "vip", vipIP+"/24", Options{GARPCount: 1})
	wantState(t, v, resource.Stopped)
	mustRenew(t, v, 10*time.Second)
	mustStart(t, v)
	wantState(t, v, resource.Running)

	// Cable pulled: no carrier.
	if err := l.CutLink("srv", "pub"); err != nil {
		t.Fatal(err)
	}
	waitState(t, v, resource.Failed)
	if err := l.RestoreLink("srv", "pub"); err != nil {
		t.Fatal(err)
	}
	waitState(t, v, resource.Running)

	// Administratively down.
	run(t, srv, "ip", "link", "set", "eth0", "down")
	wantState(t, v, resource.Failed)
	run(t, srv, "ip", "link", "set", "eth0", "up")
	waitState(t, v, resource.Running)

	// Removed by hand while started: not running.
	run(t, srv, "ip", "addr", "del", vipIP+"/24", "dev", "eth0")
	wantState(t, v, resource.Stopped)
	mustStart(t, v)
	wantState(t, v, resource.Running)

	// Ungated (ruleset flushed by hand): Failed, and the next renewal
	// rebuilds the gate with the VIP in it.
	run(t, srv, "nft", "flush", "ruleset")
	wantState(t, v, resource.Failed)
	mustRenew(t, v, 10*time.Second)
	wantState(t, v, resource.Running)

	st, out, err := v.Monitor(t.Context())
	t.Logf("monitor: %v, %v\n%s", st, err, out.Text)
	if _, err := v.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantState(t, v, resource.Stopped)

	// An interface that goes away under a started VIP: Failed. With ARP
	// off it also shows the path where there is nothing to announce.
	run(t, srv, "ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1")
	run(t, srv, "ip", "link", "set", "dum0", "arp", "off", "up")
	run(t, srv, "ip", "link", "set", "dum1", "up")
	d, err := New(config.Resource{Name: "dum", Address: "10.79.103.1/24", Interface: "dum0"}, Options{NetNS: nsPath(srv)})
	if err != nil {
		t.Fatal(err)
	}
	mustRenew(t, d, 10*time.Second)
	if out := mustStart(t, d); !strings.Contains(out.Text, "does not resolve addresses") {
		t.Errorf("start on a NOARP interface:\n%s", out.Text)
	}
	wantState(t, d, resource.Running)
	run(t, srv, "ip", "link", "del", "dum0")
	wantState(t, d, resource.Failed)
	if out, err := d.Stop(t.Context()); err != nil || !strings.Contains(out.Text, "interface dum0 is gone") {
		t.Fatalf("stop with the interface gone: %v\n%s", err, out.Text)
	}
	wantState(t, d, resource.Stopped)

	// A missing interface: Stopped while not started, and Start says why.
	w, err := New(config.Resource{Name: "gone", Address: "10.79.3.101/24", Interface: "nosuch0"}, Options{NetNS: nsPath(srv)})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err = w.Monitor(t.Context())
	if err != nil || st != resource.Stopped {
		t.Fatalf("monitor with a missing interface: %v %v", st, err)
	}
	if out, err := w.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "nosuch0: no such interface") {
		t.Fatalf("start on a missing interface: %v\n%s", err, out.Text)
	}
	if _, err := w.Stop(t.Context()); err != nil {
		t.Fatalf("stop on a missing interface: %v", err)
	}
}

func waitState(t *testing.T, v *VIP, want resource.State) {
	t.Helper()
	deadline := time.Now().Add(reachWait)
	for {
		st, out, err := v.Monitor(t.Context())
		if err == nil && st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor %s: %v %v, want %v\n%s", v, st, err, want, out.Text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSharedTables: several VIPs (groups) share the tables; each touches
// only its own elements, the rules are made once, and concurrent renewals
// with starts, monitors and stops are safe.
func TestSharedTables(t *testing.T) {
	_, srv, cli := newLab(t, "vip4", 4)
	a := newVIP(t, srv, "a", "10.79.4.100/24", Options{GARPInterval: 10 * time.Millisecond})
	b := newVIP(t, srv, "b", "10.79.4.101/24", Options{GARPInterval: 10 * time.Millisecond})

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for _, v := range []*VIP{a, b} {
		mustRenew(t, v, 5*time.Second)
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if err := v.RenewLease(5 * time.Second); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for i := 0; i < 5; i++ {
		for _, v := range []*VIP{a, b} {
			if _, err := v.Start(ctx); err != nil {
				t.Fatal(err)
			}
			wantState(t, v, resource.Running)
		}
		if _, err := a.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		wantState(t, b, resource.Running)
	}
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("renew: %v", err)
	}

	// Renewal cost, into a namespace (a socket made on a thread that
	// enters it) and with the tables in place.
	const n = 200
	t0 := time.Now()
	for i := 0; i < n; i++ {
		mustRenew(t, b, 5*time.Second)
	}
	t.Logf("RenewLease: %v per call", time.Since(t0)/n)

	// b still serves after a stopped; a is out of @vips, b is in.
	bAddr := server(t, srv, "10.79.4.101")
	tcp(t, cli, bAddr, true)
	if inVIPs(t, a) || !inVIPs(t, b) {
		t.Fatalf("@vips: a in %v (want false), b in %v (want true)", inVIPs(t, a), inVIPs(t, b))
	}
	err := withNft(t.Context(), nsPath(srv), func(c *nftables.Conn) error {
		for _, f := range []family{famIP, famARP} {
			rules, err := c.GetRules(f.table(), f.chain())
			if err != nil {
				return err
			}
			if len(rules) != 1 {
				return fmt.Errorf("%s %s %s has %d rules, want 1", f.name, TableName, ChainName, len(rules))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Revoking a's lease leaves b's alone.
	mustStart(t, a)
	if err := a.RevokeLease(); err != nil {
		t.Fatal(err)
	}
	tcp(t, cli, bAddr, true)
	logRuleset(t, srv)
}

// TestCleanup: the start-up cleanup removes the VIPs it finds in @vips and
// the tables, and leaves other tables alone.
func TestCleanup(t *testing.T) {
	_, srv, _ := newLab(t, "vip5", 5)
	const vipIP = "10.79.5.100"
	run(t, srv, "nft", "add", "table", "inet", "other")
	v := newVIP(t, srv, "vip", vipIP+"/24", Options{GARPCount: -1})
	mustRenew(t, v, 10*time.Second)
	mustStart(t, v)
	if !hasAddr(t, srv, vipIP) {
		t.Fatal("VIP not added")
	}
	if err := CleanupNetNS(t.Context(), nsPath(srv)); err != nil {
		t.Fatal(err)
	}
	if hasAddr(t, srv, vipIP) {
		t.Fatal("VIP still on eth0 after Cleanup")
	}
	tables := run(t, srv, "nft", "list", "tables")
	if strings.Contains(tables, TableName+"\n") || !strings.Contains(tables, "table inet other") {
		t.Fatalf("tables after Cleanup:\n%s", tables)
	}
	// Idempotent.
	if err := CleanupNetNS(t.Context(), nsPath(srv)); err != nil {
		t.Fatal(err)
	}
	// Cleanup works in the namespace of the calling thread, here srv's
	// (never the test machine's own).
	mustRenew(t, v, 10*time.Second)
	mustStart(t, v)
	if err := srv.Do(func() error { return Cleanup(t.Context()) }); err != nil {
		t.Fatal(err)
	}
	if hasAddr(t, srv, vipIP) || strings.Contains(run(t, srv, "nft", "list", "tables"), "vigil") {
		t.Fatal("Cleanup from inside the namespace left the VIP or its tables")
	}
}

// TestIPv6: the VIP gets an unsolicited neighbour advertisement out, and
// the lease gates both its traffic and the neighbour solicitations for it.
func TestIPv6(t *testing.T) {
	_, srv, cli := newLab(t, "vip6", 6)
	const vipIP = "fd00:79::100"
	run(t, srv, "ip", "-6", "addr", "add", "fd00:79::1/64", "dev", "eth0", "nodad")
	run(t, cli, "ip", "-6", "addr", "add", "fd00:79::2/64", "dev", "eth0", "nodad")
	srvMAC := macOf(t, srv)
	run(t, cli, "ip", "-6", "neigh", "replace", vipIP, "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")

	v := newVIP(t, srv, "vip6", vipIP+"/64", Options{GARPInterval: 50 * time.Millisecond})
	mustRenew(t, v, 10*time.Second)
	out := mustStart(t, v)
	if !strings.Contains(out.Text, "unsolicited neighbour advertisement 1/3 sent") {
		t.Errorf("start output does not report the advertisement:\n%s", out.Text)
	}
	waitNeigh(t, cli, vipIP, srvMAC) // the NA overrode the stale entry
	wantState(t, v, resource.Running)
	vipAddr := server(t, srv, vipIP)
	ownAddr := server(t, srv, "fd00:79::1")
	tcp(t, cli, vipAddr, true)
	logRuleset(t, srv)

	// Resolution from scratch works while leased.
	run(t, cli, "ip", "-6", "neigh", "flush", "dev", "eth0")
	tcp(t, cli, vipAddr, true)
	waitNeigh(t, cli, vipIP, srvMAC)

	// Lease over: traffic cut, and a client that must resolve the VIP
	// again gets no neighbour advertisement.
	if err := v.RevokeLease(); err != nil {
		t.Fatal(err)
	}
	tcp(t, cli, vipAddr, false)
	tcp(t, cli, ownAddr, true)
	run(t, cli, "ip", "-6", "neigh", "del", vipIP, "dev", "eth0")
	tcp(t, cli, vipAddr, false)
	time.Sleep(100 * time.Millisecond)
	if got := neighMAC(t, cli, vipIP); got != "" {
		t.Fatalf("cli resolved %s to %s without a lease", vipIP, got)
	}

	// A short lease opens it, then closes it by itself.
	const short = 900 * time.Millisecond
	t0 := time.Now()
	mustRenew(t, v, short)
	tcp(t, cli, vipAddr, true)
	if time.Since(t0) > short-100*time.Millisecond {
		t.Skipf("machine too slow: the first probe took %v of an %v lease", time.Since(t0), short)
	}
	time.Sleep(time.Until(t0.Add(short + 50*time.Millisecond)))
	tcp(t, cli, vipAddr, false)

	if _, err := v.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if hasAddr(t, srv, vipIP) {
		t.Fatal("VIP still on eth0 after Stop")
	}
	wantState(t, v, resource.Stopped)
}
