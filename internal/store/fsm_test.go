package store

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vigil-ha/vigil/internal/model"
)

func command(t *testing.T, evs ...model.Event) *raft.Log {
	t.Helper()
	data, err := encodeAppend(evs)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Type: raft.LogCommand, Index: 7, Data: data}
}

func TestFSMRejectsBadCommands(t *testing.T) {
	f := newFSM(newHub())
	for name, data := range map[string][]byte{
		"empty":        nil,
		"unknown type": {99, '[', ']'},
		"zero type":    {0},
		"bad json":     append([]byte{byte(cmdAppend)}, "[{"...),
		"not a list":   append([]byte{byte(cmdAppend)}, `{"kind":"x"}`...),
	} {
		resp := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 3, Data: data})
		if _, ok := resp.(error); !ok {
			t.Errorf("%s: Apply returned %v, want an error", name, resp)
		}
	}
	if n, last := f.counts(); n != 0 || last != 0 {
		t.Fatalf("bad commands changed the state: %d events, last index %d", n, last)
	}
}

func TestFSMIndexesAndSnapshotRoundTrip(t *testing.T) {
	f := newFSM(newHub())
	resp := f.Apply(command(t, testEvent("a"), testEvent("b")))
	if got := indexes(resp.([]model.Event)); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("indexes %v, want [1 2]", got)
	}
	f.Apply(command(t, testEvent("c")))

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Applying after Snapshot must not change what Persist writes.
	f.Apply(command(t, testEvent("d")))
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	g := newFSM(newHub())
	g.Apply(command(t, testEvent("to be replaced")))
	if err := g.Restore(&sink); err != nil {
		t.Fatal(err)
	}
	if got, want := g.eventsAfter(0, 0), f.eventsAfter(0, 3); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	if got := indexes(g.Apply(command(t, testEvent("e"))).([]model.Event)); !reflect.DeepEqual(got, []uint64{4}) {
		t.Fatalf("index after restore %v, want [4]", got)
	}

	for name, data := range map[string]string{
		"garbage":      "nope",
		"version":      `{"version":2,"last_index":0,"count":0}`,
		"short":        `{"version":1,"last_index":5,"count":2}` + "\n" + `{"index":1}`,
		"out of order": `{"version":1,"last_index":5,"count":2}` + "\n" + `{"index":2}` + "\n" + `{"index":1}`,
		"trailing":     `{"version":1,"last_index":5,"count":0}` + "\n" + `{"index":1}`,
	} {
		if err := g.Restore(readCloser{strings.NewReader(data)}); err == nil {
			t.Errorf("%s: restore succeeded", name)
		}
	}
	if n, last := g.counts(); n != 4 || last != 4 {
		t.Fatalf("failed restores changed the state: %d events, last index %d", n, last)
	}
}

func TestRestorePublishesMissedEvents(t *testing.T) {
	leader := newFSM(newHub())
	for _, r := range []string{"a", "b", "c"} {
		leader.Apply(command(t, testEvent(r)))
	}
	snap, _ := leader.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}

	h := newHub()
	follower := newFSM(h)
	follower.Apply(command(t, testEvent("a")))
	ch := h.subscribe(context.Background())
	if err := follower.Restore(&sink); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{2, 3} {
		if ev := <-ch; ev.Index != want {
			t.Fatalf("subscriber got index %d, want %d", ev.Index, want)
		}
	}
	h.close()
}

func TestHubCutsOffSlowSubscribers(t *testing.T) {
	h := newHub()
	slow := h.subscribe(context.Background())
	evs := make([]model.Event, subscriberBuffer+1)
	for i := range evs {
		evs[i].Index = uint64(i + 1)
	}
	done := make(chan struct{})
	go func() {
		h.publish(evs) // must not block although nobody reads
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("publish blocked on a slow subscriber")
	}
	n := 0
	for ev := range slow {
		n++
		if ev.Index != uint64(n) {
			t.Fatalf("event %d has index %d: subscribers must see no gaps", n, ev.Index)
		}
	}
	if n != subscriberBuffer {
		t.Fatalf("slow subscriber got %d events before being cut off, want %d", n, subscriberBuffer)
	}

	ctx, cancel := context.WithCancel(context.Background())
	byCtx := h.subscribe(ctx)
	cancel()
	for range byCtx { // ends once the AfterFunc closes it
	}

	open := h.subscribe(context.Background())
	h.close()
	if _, ok := <-open; ok {
		t.Fatal("subscription survived close")
	}
	if _, ok := <-h.subscribe(context.Background()); ok {
		t.Fatal("subscribe after close gave an open channel")
	}
}

func TestHCLogAdapterNames(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLog(slogNew(&buf), "raft", nil).Named("net").With("peer", "n2")
	l.Warn("hello", "k", "v")
	if got := buf.String(); strings.Count(got, "component=") != 1 || !strings.Contains(got, "component=raft.net") || !strings.Contains(got, "peer=n2") || !strings.Contains(got, "k=v") {
		t.Fatalf("log line %q", got)
	}
	if l.IsDebug() || !l.IsWarn() {
		t.Fatal("levels do not follow the slog handler")
	}
}

type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func slogNew(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
