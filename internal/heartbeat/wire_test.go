package heartbeat

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

var testKey = []byte("vigil-test-heartbeat-key-32bytes")

func samplePacket(peers int) *Packet {
	p := &Packet{
		From:        "alessandro",
		Link:        1,
		Incarnation: 7,
		Seq:         123456,
		LeaseEpoch:  42,
		LeaseHeld:   true,
	}
	for i := range peers {
		p.Peers = append(p.Peers, PeerReport{
			Name:           fmt.Sprintf("node-%d", i),
			AckIncarnation: uint64(3 + i),
			AckSeq:         uint64(1000 * (i + 1)),
			GrantEpoch:     uint64(40 + i),
			Granting:       i%2 == 0,
			State:          uint8(i % 3),
			LinksUp:        0b11,
			EchoSeq:        uint64(999 * (i + 1)),
			EchoHold:       uint32(150 * i),
		})
	}
	return p
}

// maxPacket fills every field to its limit, so it is the largest valid encoding.
func maxPacket() *Packet {
	p := &Packet{From: strings.Repeat("f", MaxNameLen), Link: MaxLinks - 1,
		Incarnation: ^uint64(0), Seq: ^uint64(0), LeaseEpoch: ^uint64(0), LeaseHeld: true}
	for i := range MaxPeers {
		name := fmt.Sprintf("%02d", i) + strings.Repeat("p", MaxNameLen-2)
		p.Peers = append(p.Peers, PeerReport{Name: name, AckIncarnation: ^uint64(0), AckSeq: ^uint64(0),
			GrantEpoch: ^uint64(0), Granting: true, State: StateDead, LinksUp: 0xff, EchoSeq: ^uint64(0), EchoHold: ^uint32(0)})
	}
	return p
}

// sign authenticates an arbitrary body, to reach the field checks behind the MAC.
func sign(body []byte) []byte {
	return appendMAC(testKey, append([]byte(nil), body...))
}

func mustEncode(t testing.TB, p *Packet) []byte {
	t.Helper()
	b, err := Encode(testKey, p)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, p := range []*Packet{
		{From: "a"},
		samplePacket(0),
		samplePacket(1),
		samplePacket(3),
		maxPacket(),
	} {
		b := mustEncode(t, p)
		if len(b) != encodedSize(p)+MACSize {
			t.Errorf("encoded %d bytes, encodedSize says %d", len(b), encodedSize(p)+MACSize)
		}
		got, err := Decode(testKey, b)
		if err != nil {
			t.Fatalf("Decode(%d peers): %v", len(p.Peers), err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, p)
		}
	}
}

func TestSizes(t *testing.T) {
	b := mustEncode(t, samplePacket(3))
	t.Logf("3-peer packet (names 10+6 bytes): %d bytes", len(b))
	if len(b) != 5+1+10+1+24+2+3*(1+6+39)+32 {
		t.Errorf("3-peer packet is %d bytes", len(b))
	}
	mb := mustEncode(t, maxPacket())
	t.Logf("largest valid packet: %d bytes", len(mb))
	if len(mb) != maxPacketLen || len(mb) > MaxPacketSize {
		t.Errorf("largest packet %d bytes, maxPacketLen %d, MaxPacketSize %d", len(mb), maxPacketLen, MaxPacketSize)
	}
}

func TestEveryBitFlipRejected(t *testing.T) {
	b := mustEncode(t, samplePacket(3))
	for i := range len(b) * 8 {
		c := bytes.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		p, err := Decode(testKey, c)
		if err == nil {
			t.Fatalf("bit %d flipped: accepted %+v", i, p)
		}
		want := ErrBadMAC
		if i/8 < headerSize {
			want = ErrMalformed
		}
		if !errors.Is(err, want) {
			t.Errorf("bit %d flipped: %v, want %v", i, err, want)
		}
	}
}

func TestWrongKey(t *testing.T) {
	b := mustEncode(t, samplePacket(3))
	other := bytes.Clone(testKey)
	other[0] ^= 1
	if _, err := Decode(other, b); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("Decode with wrong key: %v, want ErrBadMAC", err)
	}
}

func TestShortKey(t *testing.T) {
	if _, err := Encode(testKey[:MinKeyLen-1], samplePacket(1)); !errors.Is(err, ErrBadKey) {
		t.Errorf("Encode with short key: %v", err)
	}
	if _, err := Decode(nil, mustEncode(t, samplePacket(1))); !errors.Is(err, ErrBadKey) {
		t.Errorf("Decode with nil key: %v", err)
	}
}

func TestTruncatedAndExtended(t *testing.T) {
	b := mustEncode(t, samplePacket(3))
	for n := range len(b) {
		if _, err := Decode(testKey, b[:n]); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadMAC) {
			t.Errorf("truncated to %d: %v", n, err)
		}
	}
	body := b[:len(b)-MACSize]
	// Re-signed prefixes get past the MAC, so the parser must catch them.
	for n := range len(body) {
		if _, err := Decode(testKey, sign(body[:n])); !errors.Is(err, ErrMalformed) {
			t.Errorf("body truncated to %d and re-signed: %v, want ErrMalformed", n, err)
		}
	}
	if _, err := Decode(testKey, sign(append(bytes.Clone(body), 0))); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v, want ErrMalformed", err)
	}
	if _, err := Decode(testKey, append(bytes.Clone(b), 0)); !errors.Is(err, ErrBadMAC) {
		t.Errorf("byte appended after MAC: %v, want ErrBadMAC", err)
	}
	huge := make([]byte, MaxPacketSize+1)
	copy(huge, b)
	if _, err := Decode(testKey, huge); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized: %v, want ErrMalformed", err)
	}
}

// TestSignedButInvalid covers peers that hold the key but send nonsense.
func TestSignedButInvalid(t *testing.T) {
	valid := func() []byte {
		b := mustEncode(t, samplePacket(1))
		return bytes.Clone(b[:len(b)-MACSize])
	}
	// Offsets in samplePacket(1): from "alessandro" (10 bytes).
	const (
		offFromLen = headerSize
		offLink    = offFromLen + 1 + 10
		offFlags   = offLink + 1 + 24
		offCount   = offFlags + 1
		offPeer    = offCount + 1
		offPFlags  = offPeer + 1 + 6 + 24
		offState   = offPFlags + 1
	)
	cases := map[string]func([]byte) []byte{
		"empty from":        func(b []byte) []byte { b[offFromLen] = 0; return b },
		"long from":         func(b []byte) []byte { b[offFromLen] = MaxNameLen + 1; return b },
		"link out of range": func(b []byte) []byte { b[offLink] = MaxLinks; return b },
		"unknown flag":      func(b []byte) []byte { b[offFlags] |= 0x80; return b },
		"too many peers":    func(b []byte) []byte { b[offCount] = MaxPeers + 1; return b },
		"count past end":    func(b []byte) []byte { b[offCount] = 2; return b },
		"empty peer name":   func(b []byte) []byte { b[offPeer] = 0; return b },
		"long peer name":    func(b []byte) []byte { b[offPeer] = 200; return b },
		"peer flag":         func(b []byte) []byte { b[offPFlags] |= 0x02; return b },
		"state 3":           func(b []byte) []byte { b[offState] = 3; return b },
		"version 1":         func(b []byte) []byte { b[4] = 1; return b },
		"version 3":         func(b []byte) []byte { b[4] = 3; return b },
		"duplicate peer": func(b []byte) []byte {
			peer := bytes.Clone(b[offPeer:])
			b[offCount] = 2
			return append(b, peer...)
		},
	}
	for name, mutate := range cases {
		_, err := Decode(testKey, sign(mutate(valid())))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	cases := map[string]func(p *Packet){
		"empty from":      func(p *Packet) { p.From = "" },
		"long from":       func(p *Packet) { p.From = strings.Repeat("x", MaxNameLen+1) },
		"link":            func(p *Packet) { p.Link = MaxLinks },
		"too many peers":  func(p *Packet) { p.Peers = maxPacket().Peers; p.Peers = append(p.Peers, PeerReport{Name: "one-more"}) },
		"empty peer name": func(p *Packet) { p.Peers[1].Name = "" },
		"long peer name":  func(p *Packet) { p.Peers[1].Name = strings.Repeat("x", MaxNameLen+1) },
		"state":           func(p *Packet) { p.Peers[2].State = 3 },
		"duplicate":       func(p *Packet) { p.Peers[2].Name = p.Peers[0].Name },
	}
	for name, mutate := range cases {
		p := samplePacket(3)
		mutate(p)
		if _, err := Encode(testKey, p); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Encode(testKey, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil packet: %v, want ErrInvalid", err)
	}
}

func BenchmarkEncodeDecode(b *testing.B) {
	p := samplePacket(3)
	b.ReportAllocs()
	for b.Loop() {
		enc, err := Encode(testKey, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(testKey, enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	p := samplePacket(3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(testKey, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, err := Encode(testKey, samplePacket(3))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(testKey, enc); err != nil {
			b.Fatal(err)
		}
	}
}
