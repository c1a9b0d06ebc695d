package lab

import (
	"net"
	"testing"
	"time"
)

// delivered sends n datagrams from from to a socket of to on network and
// counts how many arrive.
func delivered(t *testing.T, from, to *Host, network string, n int) int {
	t.Helper()
	pc, err := to.ListenPacket("udp", net.JoinHostPort(to.Addr(network), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := from.Dial(t.Context(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One datagram first, resent until it arrives, so that ARP is resolved
	// before counting. ARP frames are lossy too: at 30 % each way a request
	// and its reply both get through about half the time, and the kernel
	// asks once a second, so the wait must cover many attempts (a 3 s wait
	// failed about one run in eight).
	buf := make([]byte, 16)
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, _ = c.Write([]byte("warm"))
		_ = pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if k, _, err := pc.ReadFrom(buf); err == nil && string(buf[:k]) == "warm" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("udp %s -> %s on %s: nothing arrives", from.Name(), to.Name(), network)
		}
	}
	// Read while sending: the socket's receive buffer holds only about 250
	// such datagrams.
	counted := make(chan int)
	go func() {
		got := 0
		for {
			_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			k, _, err := pc.ReadFrom(buf)
			if err != nil {
				counted <- got
				return
			}
			if string(buf[:k]) == "probe" {
				got++
			}
		}
	}()
	for i := 0; i < n; i++ {
		_, _ = c.Write([]byte("probe"))
		time.Sleep(time.Millisecond)
	}
	got := <-counted
	return got
}

// A degraded cable loses about the given share of frames in each direction,
// and only that cable; Degrade 0 and Heal make it clean again.
func TestDegrade(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, Options{Name: "xdeg", Hosts: []string{"a", "b"}, Networks: []Network{
		{Name: "pub", Subnet: "10.88.200.0/24"}, {Name: "hb", Subnet: "10.88.201.0/24"}}})
	a, b := l.Host("a"), l.Host("b")
	const n = 400
	if err := l.Degrade("a", "pub", 30); err != nil {
		t.Fatal(err)
	}
	// 30 % loss: 280 of 400 expected, σ ≈ 9; the bounds are over 5σ away.
	for _, dir := range [][2]*Host{{a, b}, {b, a}} {
		if got := delivered(t, dir[0], dir[1], "pub", n); got < 220 || got > 340 {
			t.Errorf("30%% loss on a's pub cable: %s -> %s delivered %d of %d, want about 280", dir[0].Name(), dir[1].Name(), got, n)
		}
	}
	if got := delivered(t, a, b, "hb", n); got < n-5 {
		t.Errorf("a's hb cable is clean, yet %d of %d arrived", got, n)
	}
	if err := l.Degrade("a", "pub", 0); err != nil {
		t.Fatal(err)
	}
	if got := delivered(t, a, b, "pub", n); got < n-5 {
		t.Errorf("after Degrade 0: %d of %d arrived", got, n)
	}
	if err := l.Degrade("b", "hb", 100); err != nil {
		t.Fatal(err)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if got := delivered(t, a, b, "hb", n); got < n-5 {
		t.Errorf("after Heal: %d of %d arrived", got, n)
	}
	if err := l.Degrade("a", "pub", 101); err == nil {
		t.Error("a loss of 101% was accepted")
	}
	if err := l.Degrade("zz", "pub", 10); err == nil {
		t.Error("an unknown host was accepted")
	}
}
