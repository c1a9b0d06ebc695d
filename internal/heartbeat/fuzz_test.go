package heartbeat

import (
	"bytes"
	"reflect"
	"testing"
)

func fuzzSeeds(t interface{ Fatalf(string, ...any) }) [][]byte {
	var seeds [][]byte
	for _, p := range []*Packet{{From: "a"}, samplePacket(0), samplePacket(1), samplePacket(3), maxPacket()} {
		b, err := Encode(testKey, p)
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzDecode signs with testKey so the fuzzer can learn valid packets; most
// mutations die at the MAC, which FuzzUnmarshal makes up for.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("VGHB\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(testKey, b)
		if err != nil {
			return
		}
		again, err := Encode(testKey, p)
		if err != nil {
			t.Fatalf("decoded packet does not re-encode: %v\n%+v", err, p)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		q, err := Decode(testKey, again)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("re-encoded packet decodes to %+v, %v; want %+v", q, err, p)
		}
	})
}

// FuzzUnmarshal drives the parser directly, without the MAC in the way.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s[:len(s)-MACSize])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := unmarshal(body)
		if err != nil {
			return
		}
		if err := validate(p); err != nil {
			t.Fatalf("parser accepted an invalid packet: %v\n%+v", err, p)
		}
		again := marshal(nil, p)
		if !bytes.Equal(again, body) {
			t.Fatalf("re-marshalling differs:\n got %x\nwant %x", again, body)
		}
		q, err := unmarshal(again)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("re-marshalled body parses to %+v, %v; want %+v", q, err, p)
		}
	})
}
