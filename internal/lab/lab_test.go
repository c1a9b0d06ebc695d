package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// crashEnv makes the test binary a lab owner that dies without Close, for
// TestNewRemovesLeftovers.
const crashEnv = "VIGIL_LAB_TEST_CRASH"

func TestMain(m *testing.M) {
	if tag := os.Getenv(crashEnv); tag != "" {
		os.Exit(crashChild(tag))
	}
	goleak.VerifyTestMain(m)
}

func crashChild(tag string) int {
	l, err := New(context.Background(), twoNets(tag, 24, "a", "b"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := l.Host("a").Start("sleep", []string{"sleep", "1000"}, nil, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(p.Pid())
	return 0 // no Close: that is the crash
}

// twoNets gives every test its own tag and subnets 10.77.third.0/24 (pub)
// and 10.77.third+1.0/24 (hb).
func twoNets(tag string, third int, hosts ...string) Options {
	return Options{
		Name: tag,
		Networks: []Network{
			{Name: "pub", Subnet: fmt.Sprintf("10.77.%d.0/24", third)},
			{Name: "hb", Subnet: fmt.Sprintf("10.77.%d.0/24", third+1)},
		},
		Hosts: hosts,
	}
}

const (
	// A blocked probe can only time out, so a short wait cannot turn it
	// into a false pass; a reachable one gets retries and time for ARP.
	blockWait = 200 * time.Millisecond
	reachWait = 3 * time.Second
)

// tcpOK reports whether from completes a TCP handshake with a listener
// that to opens on addr.
func tcpOK(t *testing.T, from, to *Host, addr string, want bool) bool {
	t.Helper()
	ln, err := to.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wait := blockWait
	if want {
		wait = reachWait
	}
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(wait, 500*time.Millisecond))
		c, err := from.Dial(ctx, "tcp", ln.Addr().String())
		cancel()
		if err == nil {
			c.Close()
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// udpOK reports whether a datagram from from reaches a socket of to on
// addr; unlike TCP it needs only one direction.
func udpOK(t *testing.T, from, to *Host, addr string, want bool) bool {
	t.Helper()
	pc, err := to.ListenPacket("udp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := from.Dial(context.Background(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wait := blockWait
	if want {
		wait = reachWait
	}
	buf := make([]byte, 16)
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
		_, _ = c.Write([]byte("probe"))
		_ = pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _, err := pc.ReadFrom(buf); err == nil && string(buf[:n]) == "probe" {
			return true
		}
	}
	return false
}

func wantTCP(t *testing.T, from, to *Host, network string, want bool) {
	t.Helper()
	if got := tcpOK(t, from, to, to.Addr(network), want); got != want {
		t.Errorf("tcp %s -> %s on %s: reachable=%v, want %v", from.Name(), to.Name(), network, got, want)
	}
}

func wantUDP(t *testing.T, from, to *Host, network string, want bool) {
	t.Helper()
	if got := udpOK(t, from, to, to.Addr(network), want); got != want {
		t.Errorf("udp %s -> %s on %s: delivered=%v, want %v", from.Name(), to.Name(), network, got, want)
	}
}

func skipUnlessLab(t *testing.T) {
	t.Helper()
	if reason := unsupported(); reason != "" {
		t.Skipf("lab tests need root and network namespaces: %s", reason)
	}
}

func netnsList(t *testing.T) []string {
	t.Helper()
	names, err := listNetns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// leftovers lists the kernel objects that still carry the tag.
func leftovers(t *testing.T, tag string) []string {
	t.Helper()
	var left []string
	for _, ns := range netnsList(t) {
		if strings.HasPrefix(ns, nsPrefix(tag)) {
			left = append(left, "netns "+ns)
		}
	}
	links, err := listLinks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range links {
		if strings.HasPrefix(name, vethPrefix(tag)) || strings.HasPrefix(name, bridgePrefix(tag)) {
			left = append(left, "link "+name)
		}
	}
	return left
}

// procState returns the state letter of /proc/PID/stat ("S", "T", "Z"),
// or "" if the process is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func waitState(t *testing.T, pid int, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for procState(pid) != want {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: state %q, want %q", pid, procState(pid), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gone(pid int) bool {
	s := procState(pid)
	return s == "" || s == "Z"
}

func TestOptionsRejected(t *testing.T) {
	ok := twoNets("ok", 1, "a", "b")
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"empty tag", func(o *Options) { o.Name = "" }, "lab name"},
		{"long tag", func(o *Options) { o.Name = "abcdefg" }, "15 characters"},
		{"tag with dash", func(o *Options) { o.Name = "a-b" }, "lab name"},
		{"no networks", func(o *Options) { o.Networks = nil }, "networks"},
		{"no hosts", func(o *Options) { o.Hosts = nil }, "hosts"},
		{"duplicate host", func(o *Options) { o.Hosts = []string{"a", "a"} }, "host a given twice"},
		{"bad host", func(o *Options) { o.Hosts = []string{"A"} }, "host name"},
		{"duplicate network", func(o *Options) { o.Networks[1].Name = "pub" }, "network pub given twice"},
		{"overlap", func(o *Options) { o.Networks[1].Subnet = "10.77.0.0/16" }, "overlaps"},
		{"small subnet", func(o *Options) { o.Networks[0].Subnet = "10.77.1.0/25" }, "/24"},
		{"ipv6", func(o *Options) { o.Networks[0].Subnet = "fd00::/64" }, "IPv4"},
		{"bad subnet", func(o *Options) { o.Networks[0].Subnet = "10.77.1.0" }, "subnet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			o.Networks = append([]Network(nil), ok.Networks...)
			c.edit(&o)
			_, err := plan(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("plan: %v, want an error with %q", err, c.want)
			}
		})
	}
	if _, err := plan(ok); err != nil {
		t.Fatalf("plan of valid options: %v", err)
	}
}

func TestNamesFitInterfaceLimit(t *testing.T) {
	hosts := make([]string, maxHosts)
	for i := range hosts {
		hosts[i] = "h" + strconv.Itoa(i)
	}
	nets := make([]Network, maxNetworks)
	for i := range nets {
		nets[i] = Network{Name: "n" + strconv.Itoa(i), Subnet: fmt.Sprintf("10.%d.0.0/16", i)}
	}
	l, err := plan(Options{Name: "abcdef", Networks: nets, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range l.nets {
		if len(n.bridge) > 15 {
			t.Errorf("bridge %s: longer than 15", n.bridge)
		}
		for _, h := range l.hosts {
			if len(h.veth(n)) > 15 || len(h.iface(n)) > 15 {
				t.Errorf("host %s network %s: %s or %s longer than 15", h.name, n.name, h.veth(n), h.iface(n))
			}
		}
	}
	if got := l.Host("h99").Addr("n3"); got != "10.3.0.100" {
		t.Errorf("h99 on n3: %s, want 10.3.0.100", got)
	}
}

func TestConnectivity(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, twoNets("lct", 10, "a", "b", "w"))
	if _, err := exec.LookPath("ping"); err != nil {
		t.Fatalf("ping: %v (apt-get install iputils-ping)", err)
	}
	ctx := t.Context()
	for _, h := range l.Hosts() {
		out, err := h.Run(ctx, "ip", "route", "show")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "default") {
			t.Errorf("%s has a default route, traffic could leave the lab:\n%s", h.Name(), out)
		}
		out, err = h.Run(ctx, "ip", "-o", "addr", "show", "dev", "lo")
		if err != nil || !strings.Contains(string(out), "127.0.0.1/8") {
			t.Errorf("%s: loopback not up: %v\n%s", h.Name(), err, out)
		}
		for _, network := range []string{"pub", "hb"} {
			for _, peer := range l.Hosts() {
				if peer == h {
					continue
				}
				if out, err := h.Run(ctx, "ping", "-c1", "-W1", peer.Addr(network)); err != nil {
					t.Errorf("ping %s -> %s on %s: %v\n%s", h.Name(), peer.Name(), network, err, out)
				}
			}
		}
	}
	w := l.Host("w")
	if got, want := w.Addr("hb"), "10.77.11.3"; got != want {
		t.Errorf("w on hb: %s, want %s", got, want)
	}
	if got, want := w.Prefix("pub"), "10.77.10.3/24"; got != want {
		t.Errorf("w prefix on pub: %s, want %s", got, want)
	}
	if w.Iface("hb") != "eth1" || w.Addr("nope") != "" || l.Host("nope") != nil || l.RootAddr("pub") != "" {
		t.Errorf("accessors: iface %q addr(nope) %q rootaddr %q", w.Iface("hb"), w.Addr("nope"), l.RootAddr("pub"))
	}
	if w.Netns() != "vl-lct-w" {
		t.Errorf("netns %s, want vl-lct-w", w.Netns())
	}
}

func TestHostAddr(t *testing.T) {
	t.Parallel()
	opt := twoNets("lhost", 26, "a")
	opt.HostAddr = true
	l := NewForTest(t, opt)
	a := l.Host("a")
	if got := l.RootAddr("pub"); got != "10.77.26.254" {
		t.Fatalf("root address on pub: %q", got)
	}
	ln, err := a.Listen("tcp", net.JoinHostPort(a.Addr("pub"), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), reachWait)
	if err != nil {
		t.Fatalf("root namespace -> a: %v", err)
	}
	c.Close()

	other := opt
	other.Name = "lhost2"
	if _, err := New(t.Context(), other); err == nil || !strings.Contains(err.Error(), "overlaps the root namespace's route") {
		t.Fatalf("second HostAddr lab on the same subnet: %v, want an overlap error", err)
	}
	if left := leftovers(t, "lhost2"); len(left) > 0 {
		t.Errorf("failed New left %v", left)
	}
}

func TestCutLink(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, twoNets("lcut", 12, "a", "b"))
	a, b := l.Host("a"), l.Host("b")
	if err := l.CutLink("a", "pub"); err != nil {
		t.Fatal(err)
	}
	// b -> a also shows that a can still bind its pub address.
	wantTCP(t, a, b, "pub", false)
	wantTCP(t, b, a, "pub", false)
	wantTCP(t, a, b, "hb", true)
	if err := l.RestoreLink("a", "pub"); err != nil {
		t.Fatal(err)
	}
	wantTCP(t, a, b, "pub", true)
	wantTCP(t, b, a, "pub", true)

	if err := l.CutLink("b", "hb"); err != nil {
		t.Fatal(err)
	}
	wantTCP(t, a, b, "hb", false)
	wantTCP(t, a, b, "pub", true)
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	wantTCP(t, a, b, "hb", true)

	if err := l.CutLink("zz", "pub"); err == nil {
		t.Error("CutLink of an unknown host succeeded")
	}
	if err := l.RestoreLink("a", "zz"); err == nil {
		t.Error("RestoreLink of an unknown network succeeded")
	}
}

func TestPartition(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, twoNets("lpart", 14, "a", "b", "w"))
	a, b, w := l.Host("a"), l.Host("b"), l.Host("w")
	ctx := t.Context()
	// A virtual IP that a adds itself must be cut off with a.
	vip := "10.77.14.100"
	if out, err := a.Run(ctx, "ip", "addr", "add", vip+"/24", "dev", a.Iface("pub")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	if err := l.Partition([]string{"a"}, []string{"b", "w"}, false); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"pub", "hb"} {
		wantTCP(t, a, b, network, false)
		wantTCP(t, b, a, network, false)
		wantTCP(t, w, a, network, false)
		wantUDP(t, a, w, network, false)
		wantUDP(t, w, a, network, false)
		wantTCP(t, b, w, network, true)
	}
	if tcpOK(t, b, a, vip, false) {
		t.Error("b reaches a's virtual IP across the partition")
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	wantTCP(t, a, b, "pub", true)
	wantTCP(t, w, a, "hb", true)
	if !tcpOK(t, b, a, vip, true) {
		t.Error("b does not reach a's virtual IP after Heal")
	}

	if err := l.Partition([]string{"a"}, []string{"b"}, true); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"pub", "hb"} {
		wantUDP(t, a, b, network, false)
		wantUDP(t, b, a, network, true)
		// TCP needs answers, so it fails from either side.
		wantTCP(t, b, a, network, false)
		wantTCP(t, a, w, network, true)
		wantTCP(t, w, b, network, true)
	}
	// Adding the other direction turns it into a full partition.
	if err := l.Partition([]string{"b"}, []string{"a"}, true); err != nil {
		t.Fatal(err)
	}
	wantUDP(t, b, a, "pub", false)
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	wantUDP(t, a, b, "pub", true)
	wantUDP(t, b, a, "hb", true)

	if err := l.Partition([]string{"a"}, []string{"a"}, false); err == nil {
		t.Error("partition with a host on both sides succeeded")
	}
	if err := l.Partition([]string{"a"}, []string{"zz"}, false); err == nil {
		t.Error("partition with an unknown host succeeded")
	}
}

func TestProcesses(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, twoNets("lproc", 16, "a"))
	a := l.Host("a")
	dir := t.TempDir()

	p, err := a.Start("sleeper", []string{"sleep", "1000"}, nil, filepath.Join(dir, "sleep.log"))
	if err != nil {
		t.Fatal(err)
	}
	var nsStat syscall.Stat_t
	if err := syscall.Stat(netnsPath(a.Netns()), &nsStat); err != nil {
		t.Fatal(err)
	}
	// ip enters the namespace and then execs sleep: wait for both.
	deadline := time.Now().Add(3 * time.Second)
	for {
		var st syscall.Stat_t
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid()))
		err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", p.Pid()), &st)
		if err == nil && st.Ino == nsStat.Ino && strings.HasPrefix(string(cmdline), "sleep\x00") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d (%q) never ran sleep in netns %s", p.Pid(), cmdline, a.Netns())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.Pid(), "T")
	if err := p.Cont(); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.Pid(), "S")
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() || p.Wait() == nil {
		t.Fatalf("after Kill: exited %v, wait %v", p.Exited(), p.Wait())
	}
	if err := p.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
	if err := p.Stop(); err == nil {
		t.Error("Stop of an exited process succeeded")
	}

	logPath := filepath.Join(dir, "sub", "sh.log")
	q, err := a.Start("talker", []string{"sh", "-c", "echo out $LAB_TEST_VAR; echo err >&2; exit 3"}, []string{"LAB_TEST_VAR=xyz"}, logPath)
	if err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := q.Wait(); !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("talker exit: %v, want status 3", err)
	}
	got, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "out xyz\nerr\n" {
		t.Errorf("log: %q", got)
	}

	out, err := a.Run(t.Context(), "ip", "-o", "-4", "addr", "show", "dev", a.Iface("hb"))
	if err != nil || !strings.Contains(string(out), a.Prefix("hb")) {
		t.Errorf("Run ip addr: %v\n%s", err, out)
	}
	if _, err := a.Run(t.Context(), "false"); err == nil {
		t.Error("Run false succeeded")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := a.Run(ctx, "sh", "-c", "sleep 30 & sleep 30"); err == nil {
		t.Error("Run past its context succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v after its context ended", d)
	}
	if _, err := a.Start("empty", nil, nil, ""); err == nil {
		t.Error("Start of an empty command succeeded")
	}
}

func TestPowerOff(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, twoNets("lpow", 18, "a", "b"))
	a, b := l.Host("a"), l.Host("b")
	ctx := t.Context()
	p1, err := a.Start("sleep", []string{"sleep", "1000"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	// A child that leaves the process group must die too.
	p2, err := a.Start("forker", []string{"sh", "-c", "setsid sleep 1000 & exec sleep 1000"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	vip := "10.77.18.100"
	if out, err := a.Run(ctx, "ip", "addr", "add", vip+"/24", "dev", a.Iface("pub")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	waitPids := func(want func(int) bool) []int {
		deadline := time.Now().Add(3 * time.Second)
		for {
			pids, err := nsPids(ctx, a.Netns())
			if err != nil {
				t.Fatal(err)
			}
			if want(len(pids)) || time.Now().After(deadline) {
				return pids
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if pids := waitPids(func(n int) bool { return n >= 3 }); len(pids) < 3 {
		t.Fatalf("processes in %s: %v, want 3", a.Netns(), pids)
	}
	if err := l.Partition([]string{"a"}, []string{"b"}, false); err != nil {
		t.Fatal(err)
	}

	if err := a.PowerOff(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Proc{p1, p2} {
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still running after PowerOff", p.Name())
		}
	}
	if pids := waitPids(func(n int) bool { return n == 0 }); len(pids) > 0 {
		t.Fatalf("processes left in %s after PowerOff: %v", a.Netns(), pids)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	wantTCP(t, b, a, "pub", false)
	wantTCP(t, b, a, "hb", false)
	if _, err := a.Start("sleep", []string{"sleep", "1"}, nil, ""); err == nil {
		t.Error("Start on a powered-off host succeeded")
	}

	if err := l.Partition([]string{"a"}, []string{"b"}, false); err != nil {
		t.Fatal(err)
	}
	if err := a.PowerOn(); err != nil {
		t.Fatal(err)
	}
	// The partition survives the reboot, the virtual IP does not.
	wantTCP(t, b, a, "pub", false)
	out, err := a.Run(ctx, "ip", "-o", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), vip) || !strings.Contains(string(out), a.Prefix("pub")) {
		t.Errorf("addresses after PowerOn:\n%s", out)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	wantTCP(t, b, a, "pub", true)
	wantTCP(t, a, b, "hb", true)
	p3, err := a.Start("sleep", []string{"sleep", "1000"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if p3.Exited() {
		t.Error("process started after PowerOn exited at once")
	}
	if err := a.PowerOn(); err != nil {
		t.Errorf("PowerOn of a running host: %v", err)
	}
}

func TestFreeze(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, twoNets("lfrz", 20, "a", "b"))
	a, b := l.Host("a"), l.Host("b")
	p, err := a.Start("sleep", []string{"sleep", "1000"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, p.Pid(), "S")
	if err := a.Freeze(); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.Pid(), "T")
	wantTCP(t, b, a, "pub", false)
	wantTCP(t, b, a, "hb", false)
	if _, err := a.Start("sleep", []string{"sleep", "1"}, nil, ""); err == nil {
		t.Error("Start on a frozen host succeeded")
	}
	// A link cut while frozen stays cut after Thaw.
	if err := l.CutLink("a", "pub"); err != nil {
		t.Fatal(err)
	}
	if err := a.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.Pid(), "S")
	wantTCP(t, b, a, "hb", true)
	wantTCP(t, b, a, "pub", false)
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	wantTCP(t, b, a, "pub", true)
	if err := a.Thaw(); err != nil {
		t.Errorf("Thaw of a running host: %v", err)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	t.Parallel()
	skipUnlessLab(t)
	const tag = "lcls"
	l, err := New(t.Context(), twoNets(tag, 22, "a", "b", "w"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	p, err := l.Host("b").Start("sleep", []string{"sleep", "1000"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Partition([]string{"a"}, []string{"b"}, false); err != nil {
		t.Fatal(err)
	}
	if err := l.CutLink("w", "hb"); err != nil {
		t.Fatal(err)
	}
	if len(leftovers(t, tag)) != 3+2+3*2 {
		t.Fatalf("before Close: %v, want 3 netns, 2 bridges, 6 veths", leftovers(t, tag))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Error("process survived Close")
	}
	if left := leftovers(t, tag); len(left) > 0 {
		t.Errorf("after Close: %v", left)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Host("a").Start("sleep", []string{"sleep", "1"}, nil, ""); err == nil {
		t.Error("Start after Close succeeded")
	}
	if err := l.Heal(); err == nil {
		t.Error("Heal after Close succeeded")
	}
}

func TestNewRemovesLeftovers(t *testing.T) {
	t.Parallel()
	skipUnlessLab(t)
	const tag = "lcrash"
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+tag)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crashing lab owner: %v", err)
	}
	line, _ := bufio.NewReader(strings.NewReader(string(out))).ReadString('\n')
	orphan, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("crashing lab owner printed %q", out)
	}
	if gone(orphan) {
		t.Fatalf("orphan %d is not running", orphan)
	}
	if left := leftovers(t, tag); len(left) != 2+2+2*2 {
		t.Fatalf("after the crash: %v, want 2 netns, 2 bridges, 4 veths", left)
	}

	l := NewForTest(t, twoNets(tag, 24, "a", "b"))
	deadline := time.Now().Add(3 * time.Second)
	for !gone(orphan) {
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d of the crashed run still alive", orphan)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantTCP(t, l.Host("a"), l.Host("b"), "pub", true)

	if _, err := New(t.Context(), twoNets(tag, 24, "a", "b")); err == nil || !strings.Contains(err.Error(), "in use by another live lab") {
		t.Fatalf("second lab with a live tag: %v, want an in-use error", err)
	}
	wantTCP(t, l.Host("b"), l.Host("a"), "hb", true)
}

func TestStartMissingProgram(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, twoNets("lmiss", 28, "a"))
	if _, err := l.Host("a").Start("nope", []string{"no-such-program-xyz"}, nil, ""); err == nil || !strings.Contains(err.Error(), "no-such-program-xyz") {
		t.Fatalf("Start of a missing program: %v", err)
	}
}
