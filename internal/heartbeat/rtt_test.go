package heartbeat

import (
	"testing"
	"time"
)

const ms = time.Millisecond

// Two meters exchange rounds over links with known one-way delays; each must
// report the sum of both ways, whatever the peer's hold time.
func TestRTTMeterMeasuresBothWays(t *testing.T) {
	a, b := NewRTTMeter(), NewRTTMeter()
	delay := []time.Duration{2 * ms, 7 * ms} // one way, per link

	// a sends round 10 at t=100ms; b hears it on each link after the delay.
	a.Sent(10, 100*ms)
	for link, d := range delay {
		b.Heard("a", link, 1, 10, 100*ms+d)
	}
	// b sends at t=150ms (holding a's round ~48ms), echoes per link.
	for link, d := range delay {
		seq, hold := b.Echo("a", link, 150*ms)
		if seq != 10 {
			t.Fatalf("link %d: echo seq %d, want 10", link, seq)
		}
		a.Echoed("b", link, seq, hold, 150*ms+d)
	}
	got := map[int]time.Duration{}
	for _, r := range a.RTTs() {
		if r.Peer != "b" {
			t.Fatalf("rtt for %q", r.Peer)
		}
		got[r.Link] = r.RTT
	}
	for link, d := range delay {
		if got[link] != 2*d {
			t.Errorf("link %d: rtt %v, want %v", link, got[link], 2*d)
		}
	}
}

func TestRTTMeterIgnoresWhatItCannotTrust(t *testing.T) {
	m := NewRTTMeter()
	m.Sent(5, 10*ms)
	m.Echoed("b", 0, 0, 0, 20*ms)          // nothing echoed
	m.Echoed("b", 0, 4, 0, 20*ms)          // a round never sent
	m.Echoed("b", 0, 5, 50_000, 20*ms)     // hold (50ms) longer than the round's age: a lie
	m.Echoed("b", 0, 5+sentRing, 0, 20*ms) // same ring slot, other round: forgotten
	if r := m.RTTs(); len(r) != 0 {
		t.Fatalf("recorded %v", r)
	}
	m.Echoed("b", 0, 5, 1000, 20*ms)
	if r := m.RTTs(); len(r) != 1 || r[0].RTT != 9*ms {
		t.Fatalf("rtts %v, want one of 9ms", r)
	}
}

func TestRTTMeterEchoesNewestRound(t *testing.T) {
	m := NewRTTMeter()
	if seq, hold := m.Echo("a", 0, time.Second); seq != 0 || hold != 0 {
		t.Fatalf("echo before hearing anything: %d %d", seq, hold)
	}
	m.Heard("a", 0, 1, 7, 10*ms)
	m.Heard("a", 0, 1, 6, 12*ms) // reordered older round: keep 7
	if seq, hold := m.Echo("a", 0, 13*ms); seq != 7 || hold != 3000 {
		t.Fatalf("echo %d hold %dµs, want 7, 3000", seq, hold)
	}
	m.Heard("a", 0, 2, 1, 20*ms) // peer restarted: its new rounds start over
	if seq, _ := m.Echo("a", 0, 21*ms); seq != 1 {
		t.Fatalf("after restart echo %d, want 1", seq)
	}
	if seq, _ := m.Echo("a", 1, 21*ms); seq != 0 {
		t.Fatalf("other link echoes %d, want nothing", seq)
	}
}
