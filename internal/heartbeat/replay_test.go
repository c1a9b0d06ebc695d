package heartbeat

import (
	"errors"
	"testing"
)

func TestReplayGuard(t *testing.T) {
	g := NewReplayGuard([]string{"a", "b"})
	pk := func(from string, link uint8, inc, seq uint64) *Packet {
		return &Packet{From: from, Link: link, Incarnation: inc, Seq: seq}
	}
	steps := []struct {
		name string
		p    *Packet
		want error
	}{
		{"first (0,0) is new", pk("a", 0, 0, 0), nil},
		{"identical replay", pk("a", 0, 0, 0), ErrReplay},
		{"next seq", pk("a", 0, 5, 10), nil},
		{"same round on link 1", pk("a", 1, 5, 10), nil},
		{"replay on link 1", pk("a", 1, 5, 10), ErrReplay},
		{"older seq", pk("a", 0, 5, 9), ErrReplay},
		{"same seq", pk("a", 0, 5, 10), ErrReplay},
		{"older incarnation, higher seq", pk("a", 0, 4, 1000), ErrReplay},
		{"restart: higher incarnation, lower seq", pk("a", 0, 6, 1), nil},
		{"old incarnation after restart", pk("a", 0, 5, 11), ErrReplay},
		{"other sender independent", pk("b", 0, 5, 9), nil},
		{"unknown sender", pk("mallory", 0, 99, 99), ErrUnknownSender},
		{"unknown sender again", pk("mallory", 0, 100, 100), ErrUnknownSender},
		{"link out of range", pk("a", MaxLinks, 99, 99), ErrInvalid},
	}
	for _, s := range steps {
		err := g.Accept(s.p)
		if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
			t.Errorf("%s: %v, want %v", s.name, err, s.want)
		}
	}
	if len(g.last) != 2 {
		t.Errorf("guard tracks %d senders, want 2", len(g.last))
	}
}
