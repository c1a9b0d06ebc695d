package ip

import (
	"net"
	"testing"
	"time"
)

// TestLeaseGatesOutput: without a lease, nothing leaves the node from the
// VIP, and in particular no ARP request with the VIP as sender, which would
// point a client's neighbour entry for the VIP back at this node (what a
// node resuming from a pause did, after its successor had taken the VIP).
func TestLeaseGatesOutput(t *testing.T) {
	_, srv, cli := newLab(t, "vip7", 7)
	const vipIP = "10.79.7.100"
	const fakeMAC = "02:00:00:00:00:99" // "the successor's"
	srvMAC := macOf(t, srv)
	v := newVIP(t, srv, "vip", vipIP+"/24", Options{GARPCount: -1})
	mustRenew(t, v, 10*time.Second)
	mustStart(t, v)
	if err := v.RevokeLease(); err != nil {
		t.Fatal(err)
	}

	in, err := cli.ListenPacket("udp", net.JoinHostPort(cli.Addr("pub"), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := srv.ListenPacket("udp", net.JoinHostPort(vipIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	send := func() {
		t.Helper()
		// srv must resolve cli anew: the ARP request would carry the VIP.
		run(t, srv, "ip", "neigh", "flush", "dev", "eth0")
		if _, err := out.WriteTo([]byte("from the VIP"), in.LocalAddr()); err != nil {
			t.Logf("send from the VIP: %v", err)
		}
	}
	received := func(wait time.Duration) bool {
		_ = in.SetReadDeadline(time.Now().Add(wait))
		b := make([]byte, 64)
		_, _, err := in.ReadFrom(b)
		return err == nil
	}

	run(t, cli, "ip", "neigh", "replace", vipIP, "lladdr", fakeMAC, "dev", "eth0", "nud", "stale")
	send()
	if received(blockWait) {
		t.Error("a datagram from the VIP left the node without a lease")
	}
	if got := neighMAC(t, cli, vipIP); got != fakeMAC {
		t.Errorf("without a lease, cli's neighbour entry for the VIP became %q (srv is %s), want it left at %s", got, srvMAC, fakeMAC)
	}

	// The ARP gate alone, without the IP one: the datagram leaves (the
	// kernel resolves cli first), but not an ARP request from the VIP.
	run(t, srv, "nft", "flush", "chain", "ip", TableName, ChainOut)
	run(t, cli, "ip", "neigh", "replace", vipIP, "lladdr", fakeMAC, "dev", "eth0", "nud", "stale")
	send()
	received(blockWait)
	if got := neighMAC(t, cli, vipIP); got != fakeMAC {
		t.Errorf("with the arp output gate alone, cli's neighbour entry for the VIP became %q (srv is %s), want it left at %s", got, srvMAC, fakeMAC)
	}

	// With a lease the same send goes out, and its ARP request moves cli's
	// entry: the gates, not the test, kept it in place above.
	mustRenew(t, v, 10*time.Second)
	run(t, cli, "ip", "neigh", "replace", vipIP, "lladdr", fakeMAC, "dev", "eth0", "nud", "stale")
	send()
	if !received(reachWait) {
		t.Error("no datagram from the VIP with a lease")
	}
	if got := neighMAC(t, cli, vipIP); got != srvMAC {
		t.Errorf("with a lease, cli's neighbour entry for the VIP is %q, want srv's %s: the test no longer shows what the gate prevents", got, srvMAC)
	}
	logRuleset(t, srv)
}
