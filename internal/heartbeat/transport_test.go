package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// loopbackPair returns two transports, "a" and "b", each with two links on
// distinct 127.R.L.N addresses sharing one port, as nodes in a cluster do.
// The port was free on 127.0.0.1 a moment ago and R is random, so a clash
// with another test is unlikely; a clash is retried anyway.
func loopbackPair(t *testing.T, known []string) (a, b *Transport) {
	t.Helper()
	var lastErr error
	for range 10 {
		port := freePort(t, "udp4", "127.0.0.1:0")
		r := 1 + rand.IntN(254)
		addr := func(link, node int) string { return fmt.Sprintf("127.%d.%d.%d", r, link+1, node) }
		a, lastErr = Listen(Config{Key: testKey, Listen: []string{addr(0, 1), addr(1, 1)}, Port: port, Known: known, Self: "a"})
		if lastErr != nil {
			continue
		}
		b, lastErr = Listen(Config{Key: testKey, Listen: []string{addr(0, 2), addr(1, 2)}, Port: port, Known: known, Self: "b"})
		if lastErr != nil {
			a.Close()
			continue
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	}
	t.Fatalf("no free loopback port pair: %v", lastErr)
	return nil, nil
}

func freePort(t *testing.T, network, addr string) int {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("cannot bind %s %s: %v", network, addr, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// running starts t.Run and returns a stop function that cancels it and
// checks that it returned nil.
func running(t *testing.T, tr *Transport, out chan<- Received) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx, out) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

func receive(t *testing.T, out <-chan Received) Received {
	t.Helper()
	select {
	case r := <-out:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no packet received")
		return Received{}
	}
}

// waitCounters polls because UDP gives no delivery signal for dropped packets.
func waitCounters(t *testing.T, tr *Transport, want Counters) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := tr.Counters()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters:\n got %+v\nwant %+v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawSender sends arbitrary bytes from a fresh socket, as an attacker on the link would.
func rawSender(t *testing.T, near netip.AddrPort) func(to netip.AddrPort, b []byte) {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(near.Addr(), 0)))
	if err != nil {
		t.Fatalf("raw sender: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return func(to netip.AddrPort, b []byte) {
		t.Helper()
		if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatalf("raw send: %v", err)
		}
	}
}

func TestTransportTwoLinks(t *testing.T) {
	a, b := loopbackPair(t, []string{"a", "b"})
	out := make(chan Received, 16)
	stop := running(t, b, out)
	defer stop()

	aAddrs, bAddrs := a.LocalAddrs(), b.LocalAddrs()
	p := samplePacket(3)
	p.From = "a"
	for link := range 2 {
		if err := a.Send(link, bAddrs[link], p); err != nil {
			t.Fatalf("Send link %d: %v", link, err)
		}
		if p.Link != uint8(link) {
			t.Errorf("Send did not set p.Link to %d", link)
		}
		r := receive(t, out)
		if r.Link != link || r.From != aAddrs[link] {
			t.Errorf("link %d: arrived on link %d from %s, want from %s", link, r.Link, r.From, aAddrs[link])
		}
		if !reflect.DeepEqual(r.Packet, p) {
			t.Errorf("link %d: got %+v, want %+v", link, r.Packet, p)
		}
	}
	waitCounters(t, b, Counters{Received: 2})
}

func TestTransportDropsAndCounts(t *testing.T) {
	a, b := loopbackPair(t, []string{"a", "b"})
	out := make(chan Received, 16)
	stop := running(t, b, out)
	defer stop()
	to := b.LocalAddrs()[0]
	send := rawSender(t, a.LocalAddrs()[0])
	want := Counters{}

	// A good packet first, so the replays below have something to repeat.
	good := &Packet{From: "a", Incarnation: 3, Seq: 10}
	if err := a.Send(0, to, good); err != nil {
		t.Fatal(err)
	}
	receive(t, out)
	want.Received++
	waitCounters(t, b, want)

	// The same packet again, from the real sender and from a third party.
	if err := a.Send(0, to, good); err != nil {
		t.Fatal(err)
	}
	send(to, mustEncode(t, good))
	want.Replayed += 2
	waitCounters(t, b, want)

	// An older seq in the same incarnation.
	send(to, mustEncode(t, &Packet{From: "a", Incarnation: 3, Seq: 9}))
	want.Replayed++
	waitCounters(t, b, want)

	// A sender holding another cluster's key.
	wrong := bytes.Clone(testKey)
	wrong[5] ^= 0xff
	forged, err := Encode(wrong, &Packet{From: "a", Incarnation: 3, Seq: 11})
	if err != nil {
		t.Fatal(err)
	}
	send(to, forged)
	want.BadMAC++
	waitCounters(t, b, want)

	// A node with the key but not in the configuration.
	send(to, mustEncode(t, &Packet{From: "mallory", Incarnation: 1, Seq: 1}))
	want.UnknownSender++
	waitCounters(t, b, want)

	// Our own name, as when a packet loops back.
	send(to, mustEncode(t, &Packet{From: "b", Incarnation: 1, Seq: 1}))
	want.FromSelf++
	waitCounters(t, b, want)

	// A link-1 packet arriving on link 0.
	send(to, mustEncode(t, &Packet{From: "a", Link: 1, Incarnation: 3, Seq: 12}))
	want.LinkMismatch++
	waitCounters(t, b, want)

	// Garbage, and a datagram larger than any packet.
	send(to, []byte("hello"))
	send(to, make([]byte, MaxPacketSize+100))
	want.Malformed += 2
	waitCounters(t, b, want)

	// A restarted sender: higher incarnation, seq back at 1. The forged
	// Seq 11 above must not have advanced the guard either.
	if err := a.Send(0, to, &Packet{From: "a", Incarnation: 4, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, out); r.Packet.Incarnation != 4 || r.Packet.Seq != 1 {
		t.Errorf("after restart got %+v", r.Packet)
	}
	want.Received++
	waitCounters(t, b, want)
	if n := len(out); n != 0 {
		t.Errorf("%d unexpected packets delivered", n)
	}
}

func TestTransportDropsWhenOutFull(t *testing.T) {
	a, b := loopbackPair(t, []string{"a", "b"})
	out := make(chan Received) // nobody reads it
	stop := running(t, b, out)
	defer stop()
	for seq := range uint64(3) {
		if err := a.Send(1, b.LocalAddrs()[1], &Packet{From: "a", Seq: seq + 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitCounters(t, b, Counters{Dropped: 3})
}

func TestTransportIPv6(t *testing.T) {
	pa := freePort(t, "udp6", "[::1]:0")
	pb := freePort(t, "udp6", "[::1]:0")
	if pa == pb {
		t.Skip("got the same port twice")
	}
	// Ports differ only because IPv6 loopback has a single address.
	a, err := Listen(Config{Key: testKey, Listen: []string{"::1"}, Port: pa, Known: []string{"a", "b"}, Self: "a"})
	if err != nil {
		t.Skipf("listen [::1]: %v", err)
	}
	defer a.Close()
	b, err := Listen(Config{Key: testKey, Listen: []string{"::1"}, Port: pb, Known: []string{"a", "b"}, Self: "b"})
	if err != nil {
		t.Skipf("listen [::1]: %v", err)
	}
	defer b.Close()
	out := make(chan Received, 1)
	stop := running(t, b, out)
	defer stop()
	if err := a.Send(0, b.LocalAddrs()[0], &Packet{From: "a", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, out); r.From != a.LocalAddrs()[0] || r.Packet.From != "a" {
		t.Errorf("got %+v from %s", r.Packet, r.From)
	}
}

// waitRunning avoids racing the goroutine that calls Run.
func waitRunning(t *testing.T, tr *Transport) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !tr.running.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
	}
}

func TestTransportRunLifecycle(t *testing.T) {
	_, b := loopbackPair(t, []string{"a", "b"})
	out := make(chan Received, 1)

	// Run can be restarted after its context ends.
	for range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx, out) }()
		waitRunning(t, b)
		if err := b.Run(ctx, out); err == nil {
			t.Error("second concurrent Run succeeded")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	}

	// Close during Run ends it with net.ErrClosed.
	done := make(chan error, 1)
	go func() { done <- b.Run(t.Context(), out) }()
	waitRunning(t, b)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Run after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := b.Run(t.Context(), out); err == nil {
		t.Error("Run after Close succeeded")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Send(0, netip.MustParseAddrPort("127.0.0.1:9"), &Packet{From: "b"}); err == nil {
		t.Error("Send after Close succeeded")
	}
}

func TestSendErrors(t *testing.T) {
	a, b := loopbackPair(t, []string{"a", "b"})
	to := b.LocalAddrs()[0]
	for name, send := range map[string]func() error{
		"link -1":    func() error { return a.Send(-1, to, &Packet{From: "a"}) },
		"link 2":     func() error { return a.Send(2, to, &Packet{From: "a"}) },
		"nil packet": func() error { return a.Send(0, to, nil) },
		"invalid":    func() error { return a.Send(0, to, &Packet{}) },
		"family":     func() error { return a.Send(0, netip.MustParseAddrPort("[2001:db8::1]:1"), &Packet{From: "a"}) },
	} {
		if err := send(); err == nil {
			t.Errorf("%s: Send succeeded", name)
		}
	}
	if got := a.Counters().SendErrors; got != 5 {
		t.Errorf("SendErrors = %d, want 5", got)
	}
}

func TestListenRejects(t *testing.T) {
	ok := Config{Key: testKey, Listen: []string{"127.0.0.1"}, Port: 7482, Self: "a"}
	for name, mutate := range map[string]func(c *Config){
		"short key":   func(c *Config) { c.Key = testKey[:8] },
		"no links":    func(c *Config) { c.Listen = nil },
		"nine links":  func(c *Config) { c.Listen = make([]string, MaxLinks+1) },
		"port 0":      func(c *Config) { c.Port = 0 },
		"port 65536":  func(c *Config) { c.Port = 65536 },
		"no self":     func(c *Config) { c.Self = "" },
		"bad address": func(c *Config) { c.Listen = []string{"127.0.0.1:7482"} },
		"hostname":    func(c *Config) { c.Listen = []string{"localhost"} },
		"wildcard v4": func(c *Config) { c.Listen = []string{"0.0.0.0"} },
		"wildcard v6": func(c *Config) { c.Listen = []string{"::"} },
		"multicast":   func(c *Config) { c.Listen = []string{"224.0.0.1"} },
	} {
		c := ok
		mutate(&c)
		if tr, err := Listen(c); err == nil {
			tr.Close()
			t.Errorf("%s: Listen succeeded", name)
		}
	}
	// A failing second link must release the first.
	port := freePort(t, "udp4", "127.0.0.1:0")
	if tr, err := Listen(Config{Key: testKey, Listen: []string{"127.0.0.1", "192.0.2.1"}, Port: port, Self: "a"}); err == nil {
		tr.Close()
		t.Skip("192.0.2.1 is assigned here")
	}
	tr, err := Listen(Config{Key: testKey, Listen: []string{"127.0.0.1"}, Port: port, Self: "a"})
	if err != nil {
		t.Fatalf("first link not released after failed Listen: %v", err)
	}
	tr.Close()
}
