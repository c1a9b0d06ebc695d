package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/model"
)

// cmdType is the first byte of every raft command. Values are part of the
// on-disk format: new types are appended, never renumbered or reused.
type cmdType byte

const (
	_ cmdType = iota // 0 is never valid, so a zeroed entry cannot pass for a command
	// cmdAppend carries a JSON-encoded []model.Event to add to the log.
	cmdAppend
)

// encodeAppend builds the command that appends evs.
func encodeAppend(evs []model.Event) ([]byte, error) {
	payload, err := json.Marshal(evs)
	if err != nil {
		return nil, fmt.Errorf("encode events: %w", err)
	}
	return append([]byte{byte(cmdAppend)}, payload...), nil
}

// fsm is the replicated state: every event ever committed, in order.
// All events are kept for now; retention (dropping events older than the
// reporting window) will be one more command type, so that every replica
// drops the same ones.
type fsm struct {
	mu sync.RWMutex
	// events is append-only between restores: Snapshot relies on elements
	// below len never changing once written. Guarded by mu.
	events []model.Event
	// lastIndex is the Index given to the newest event ever applied. It is
	// state of its own, not len(events), so that indexes stay unique and
	// contiguous after retention drops old events. Guarded by mu.
	lastIndex uint64

	// state is the projection of events (assignments, flags, requests),
	// rebuilt from the events on Restore. Guarded by mu.
	state *clusterstate.State

	hub *hub
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(h *hub) *fsm { return &fsm{hub: h, state: clusterstate.New()} }

// clusterState returns a copy of the projection.
func (f *fsm) clusterState() *clusterstate.State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone()
}

// Apply implements raft.FSM. It must be deterministic: every replica applies
// the same commands in the same order and must reach the same state, so
// nothing here may depend on the clock, the node or map order. A bad command
// leaves the state unchanged on every replica and returns an error value
// (raft hands it to the proposer through ApplyFuture.Response).
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) == 0 {
		return fmt.Errorf("log %d: empty command", l.Index)
	}
	switch cmdType(l.Data[0]) {
	case cmdAppend:
		var evs []model.Event
		if err := json.Unmarshal(l.Data[1:], &evs); err != nil {
			return fmt.Errorf("log %d: decode append command: %w", l.Index, err)
		}
		f.mu.Lock()
		for i := range evs {
			f.lastIndex++
			evs[i].Index = f.lastIndex
			f.state.Apply(evs[i])
		}
		f.events = append(f.events, evs...)
		f.mu.Unlock()
		f.hub.publish(evs)
		return evs
	default:
		return fmt.Errorf("log %d: unknown command type %d", l.Index, l.Data[0])
	}
}

// events returns a copy of the committed events with Index > after, at most
// limit of them (limit <= 0: all).
func (f *fsm) eventsAfter(after uint64, limit int) []model.Event {
	f.mu.RLock()
	defer f.mu.RUnlock()
	i := sort.Search(len(f.events), func(i int) bool { return f.events[i].Index > after })
	rest := f.events[i:]
	if limit > 0 && len(rest) > limit {
		rest = rest[:limit]
	}
	if len(rest) == 0 {
		return nil
	}
	return append([]model.Event(nil), rest...)
}

// newestMatching scans from the newest event back and returns up to n events
// that keep accepts, newest first, copying only those.
func (f *fsm) newestMatching(keep func(*model.Event) bool, n int) []model.Event {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []model.Event
	for i := len(f.events) - 1; i >= 0 && len(out) < n; i-- {
		if keep(&f.events[i]) {
			out = append(out, f.events[i])
		}
	}
	return out
}

func (f *fsm) counts() (n int, last uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.events), f.lastIndex
}

// snapshotHeader is the first JSON line of a snapshot; one event per line follows.
// JSON lines keep Persist and Restore streaming instead of holding the whole
// encoded log in memory.
type snapshotHeader struct {
	Version   int    `json:"version"`
	LastIndex uint64 `json:"last_index"`
	Count     int    `json:"count"`
}

const snapshotVersion = 1

// Snapshot implements raft.FSM. It only captures the slice under the lock;
// the encoding happens in Persist, off raft's FSM goroutine. Sharing the
// backing array is safe because Apply only ever writes past the captured len
// and Restore installs a new slice.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{events: f.events[:len(f.events):len(f.events)], lastIndex: f.lastIndex}, nil
}

// Restore implements raft.FSM: it replaces the whole state with the snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	events, last, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	state := clusterstate.New()
	for _, ev := range events {
		state.Apply(ev)
	}
	f.mu.Lock()
	prevLast := f.lastIndex
	f.events, f.lastIndex, f.state = events, last, state
	f.mu.Unlock()

	// Subscribers have seen events up to prevLast. When the snapshot moves the
	// log forward (a lagging follower receiving InstallSnapshot) they get the
	// events they missed. If it cannot give them a gap-free continuation (it
	// moves the log back, or retention dropped the events they missed) they
	// are dropped and must re-read with Events.
	i := sort.Search(len(events), func(i int) bool { return events[i].Index > prevLast })
	missed := events[i:]
	if last < prevLast || (len(missed) > 0 && missed[0].Index != prevLast+1) {
		f.hub.closeAll()
		return nil
	}
	f.hub.publish(missed)
	return nil
}

func readSnapshot(r io.Reader) ([]model.Event, uint64, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, 0, fmt.Errorf("decode header: %w", err)
	}
	if h.Version != snapshotVersion {
		return nil, 0, fmt.Errorf("unsupported snapshot version %d", h.Version)
	}
	if h.Count < 0 {
		return nil, 0, fmt.Errorf("negative event count %d", h.Count)
	}
	events := make([]model.Event, 0, min(h.Count, 1<<16))
	var prev uint64
	for i := 0; i < h.Count; i++ {
		var ev model.Event
		if err := dec.Decode(&ev); err != nil {
			return nil, 0, fmt.Errorf("decode event %d of %d: %w", i+1, h.Count, err)
		}
		if ev.Index <= prev || ev.Index > h.LastIndex {
			return nil, 0, fmt.Errorf("event %d has index %d out of order (previous %d, last %d)", i+1, ev.Index, prev, h.LastIndex)
		}
		prev = ev.Index
		events = append(events, ev)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("trailing data after %d events", h.Count)
	}
	return events, h.LastIndex, nil
}

type fsmSnapshot struct {
	events    []model.Event
	lastIndex uint64
}

var _ raft.FSMSnapshot = (*fsmSnapshot)(nil)

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist snapshot: close sink: %w", err)
	}
	return nil
}

func (s *fsmSnapshot) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Version: snapshotVersion, LastIndex: s.lastIndex, Count: len(s.events)}); err != nil {
		return fmt.Errorf("encode header: %w", err)
	}
	for i := range s.events {
		if err := enc.Encode(&s.events[i]); err != nil {
			return fmt.Errorf("encode event %d: %w", s.events[i].Index, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
