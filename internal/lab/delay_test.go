package lab

import (
	"net"
	"strings"
	"testing"
	"time"
)

// connectTime is how long a TCP handshake from from to to's address on
// network takes.
func connectTime(t *testing.T, from, to *Host, network string) time.Duration {
	t.Helper()
	ln, err := to.Listen("tcp", net.JoinHostPort(to.Addr(network), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	c, err := from.Dial(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	c.Close()
	return d
}

// A delayed cable holds packets both ways: a handshake with the host
// takes at least two delays (the SYN in, the SYN-ACK out); its other cable
// and, after Delay 0 or Heal, this one are fast again. The lower bounds
// are exact (the delay is a floor); the upper ones only tell "delayed"
// from "not delayed" on a busy machine.
func TestDelay(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, Options{Name: "xdel", Hosts: []string{"a", "b"}, Networks: []Network{
		{Name: "pub", Subnet: "10.88.202.0/24"}, {Name: "hb", Subnet: "10.88.203.0/24"}}})
	a, b := l.Host("a"), l.Host("b")
	connectTime(t, b, a, "pub") // ARP resolved before timing
	const d = 300 * time.Millisecond
	if err := l.Delay("a", "pub", d); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if got := connectTime(t, b, a, "pub"); got < 2*d || got > 2*d+time.Second {
			t.Errorf("b -> a on the delayed cable: handshake took %v, want 2 × %v and a bit", got, d)
		}
		if got := connectTime(t, a, b, "pub"); got < 2*d {
			t.Errorf("a -> b on the delayed cable: handshake took %v, want at least 2 × %v", got, d)
		}
	}
	if got := connectTime(t, b, a, "hb"); got >= d {
		t.Errorf("b -> a on the clean cable: handshake took %v", got)
	}
	if err := l.Delay("a", "pub", 0); err != nil {
		t.Fatal(err)
	}
	if got := connectTime(t, b, a, "pub"); got >= d {
		t.Errorf("after Delay 0: handshake took %v", got)
	}
	if err := l.Delay("a", "hb", d); err != nil {
		t.Fatal(err)
	}
	if got := connectTime(t, b, a, "hb"); got < 2*d {
		t.Errorf("hb delayed: handshake took %v", got)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if got := connectTime(t, b, a, "hb"); got >= d {
		t.Errorf("after Heal: handshake took %v", got)
	}
	out, err := a.Run(t.Context(), "iptables", "-t", "mangle", "-S")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "NFQUEUE") {
		t.Errorf("queue rules left after Heal:\n%s", out)
	}
	if err := l.Delay("a", "pub", -time.Second); err == nil {
		t.Error("a negative delay was accepted")
	}
}
