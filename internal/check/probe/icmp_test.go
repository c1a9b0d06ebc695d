package probe

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// skipWithoutICMP skips where neither socket kind may be opened (not root, and
// unprivileged ping off, as on the machines these tests were written on).
func skipWithoutICMP(t *testing.T, r check.Result) {
	t.Helper()
	if !r.OK && strings.Contains(r.Detail, "open icmp socket") && os.Geteuid() != 0 {
		t.Skipf("no ICMP here: %s", r.Detail)
	}
}

func TestICMPLoopback(t *testing.T) {
	p := build(t, check.Check{Type: check.ICMP, Target: "127.0.0.1", Observers: local})
	r := probeWithin(t, p, time.Second)
	skipWithoutICMP(t, r)
	wantOK(t, r, "echo reply from 127.0.0.1")

	t.Run("source", func(t *testing.T) {
		wantOK(t, probeWithin(t, build(t, check.Check{Type: check.ICMP, Target: "127.0.0.1", Source: "127.0.0.2", Observers: local}), time.Second), "echo reply")
	})
	t.Run("ipv6", func(t *testing.T) {
		if !hasIPv6Loopback() {
			t.Skip("no IPv6 loopback")
		}
		wantOK(t, probeWithin(t, build(t, check.Check{Type: check.ICMP, Target: "::1", Source: "::1", Observers: local}), time.Second), "echo reply from ::1")
	})
	t.Run("concurrent probes keep their replies apart", func(t *testing.T) {
		// Every raw socket sees every echo reply; each probe must pick its own.
		var wg sync.WaitGroup
		results := make([]check.Result, 32)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = probeWithin(t, &ICMP{Target: "127.0.0.1"}, 2*time.Second)
			}()
		}
		wg.Wait()
		for i, r := range results {
			if !r.OK {
				t.Errorf("probe %d: %+v", i, r)
			}
		}
	})
	t.Run("family mismatch", func(t *testing.T) {
		wantFail(t, probeWithin(t, &ICMP{Target: "127.0.0.1", Source: netip.MustParseAddr("::1")}, time.Second), "different IP families")
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		wantFail(t, (&ICMP{Target: "127.0.0.1"}).Probe(ctx), "cancelled")
	})
}

const icmpHelperEnv = "VIGIL_CHECK_ICMP_NETNS"

// TestICMPNamespace re-runs this test binary in a network namespace of its own,
// where it may change ping sysctls and drop root without touching the host.
func TestICMPNamespace(t *testing.T) {
	if mode := os.Getenv(icmpHelperEnv); mode != "" {
		icmpHelper(t, mode)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command")
	}
	modes := []string{"datagram", "fallback", "denied", "ignored", "names"}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestICMPNamespace$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), icmpHelperEnv+"="+mode)
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}
			out, err := cmd.CombinedOutput()
			if err != nil && strings.Contains(err.Error(), "operation not permitted") {
				t.Skipf("cannot make a network namespace: %v", err)
			}
			if err != nil || !strings.Contains(string(out), "helper "+mode+" ok") {
				t.Fatalf("helper %s: %v\n%s", mode, err, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "icmp_test.go") {
					t.Log(strings.TrimSpace(line))
				}
			}
		})
	}
}

// icmpHelper runs inside the fresh namespace (see TestICMPNamespace).
func icmpHelper(t *testing.T, mode string) {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	sysctl := func(name, value string) {
		if err := os.WriteFile("/proc/sys/net/"+name, []byte(value), 0o644); err != nil {
			t.Fatalf("sysctl %s: %v", name, err)
		}
	}
	dropRoot := func() {
		// Effective on every thread (Go applies set*id process-wide), so no
		// goroutine keeps CAP_NET_RAW behind our back.
		if err := syscall.Setgroups(nil); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setgid(65534); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setuid(65534); err != nil {
			t.Fatal(err)
		}
	}
	switch mode {
	case "datagram":
		// As root, but forced onto the unprivileged socket kind.
		sysctl("ipv4/ping_group_range", "0 2147483647")
		r := probeWithin(t, &ICMP{Target: "127.0.0.1", mode: icmpDatagram}, time.Second)
		t.Logf("datagram v4: %+v", r)
		wantOK(t, r, "echo reply from 127.0.0.1")
		if hasIPv6Loopback() {
			r := probeWithin(t, &ICMP{Target: "::1", Source: netip.MustParseAddr("::1"), mode: icmpDatagram}, time.Second)
			t.Logf("datagram v6: %+v", r)
			wantOK(t, r, "echo reply from ::1")
		}
	case "fallback":
		// Not root: raw sockets are refused and the probe falls back by itself.
		sysctl("ipv4/ping_group_range", "0 2147483647")
		dropRoot()
		p := &ICMP{Target: "127.0.0.1"}
		r := probeWithin(t, p, time.Second)
		t.Logf("fallback: %+v", r)
		wantOK(t, r, "echo reply")
		if !p.rawDenied.Load() {
			t.Fatal("raw socket was not refused: still privileged?")
		}
		wantOK(t, probeWithin(t, p, time.Second), "echo reply")
	case "denied":
		// Not root and unprivileged ping off (the new namespace's default "1 0").
		dropRoot()
		r := probeWithin(t, &ICMP{Target: "127.0.0.1"}, time.Second)
		t.Logf("denied: %+v", r)
		wantFail(t, r, "ping_group_range")
	case "ignored":
		// The kernel stops answering: the probe waits out its timeout, no longer.
		sysctl("ipv4/icmp_echo_ignore_all", "1")
		start := time.Now()
		r := probeWithin(t, &ICMP{Target: "127.0.0.1", mode: icmpRaw}, 300*time.Millisecond)
		t.Logf("ignored: %+v", r)
		wantFail(t, r, "no echo reply from 127.0.0.1 within 3")
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("took %s", took)
		}
	case "names":
		// Host names resolve at each probe. Here, with no route out, a name
		// that is not in /etc/hosts fails without any query leaving the machine.
		r := probeWithin(t, &ICMP{Target: "localhost", Source: netip.MustParseAddr("127.0.0.1")}, time.Second)
		t.Logf("localhost: %+v", r)
		wantOK(t, r, "echo reply from 127.0.0.1")
		r = probeWithin(t, &ICMP{Target: "no-such-host.invalid"}, time.Second)
		t.Logf("unresolvable: %+v", r)
		wantFail(t, r, "")
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
	t.Logf("helper %s ok", mode)
}
