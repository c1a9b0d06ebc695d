package heartbeat

import "testing"

func TestReplayGuardCountsLoss(t *testing.T) {
	g := NewReplayGuard([]string{"b"})
	accept := func(link uint8, inc, seq uint64) {
		t.Helper()
		_ = g.Accept(&Packet{From: "b", Link: link, Incarnation: inc, Seq: seq})
	}
	for _, seq := range []uint64{1, 2, 5, 6, 4 /* late: refused, already counted lost */, 10} {
		accept(0, 1, seq)
	}
	accept(1, 1, 3)
	accept(1, 2, 1) // restarted: counting begins again, nothing lost
	accept(1, 2, 2)
	got := map[int]LinkStats{}
	for _, s := range g.Stats() {
		if s.From != "b" {
			t.Errorf("from %q", s.From)
		}
		got[s.Link] = s
	}
	if len(got) != 2 {
		t.Fatalf("stats %v", got)
	}
	if s := got[0]; s.Received != 5 || s.Lost != 5 { // 3, 4, 7, 8, 9
		t.Errorf("link 0: %+v", s)
	}
	if s := got[1]; s.Received != 3 || s.Lost != 0 {
		t.Errorf("link 1: %+v", s)
	}
}
