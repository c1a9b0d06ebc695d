package store

import (
	"testing"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// openWAL opens the write-ahead log as Open does.
func openWAL(t *testing.T, dir string) (*raftwal.WAL, func()) {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(dir, raftwal.WithMetaStore(meta), raftwal.WithSegmentSize(walSegmentSize))
	if err != nil {
		_ = meta.Close()
		t.Fatalf("open WAL: %v", err)
	}
	return wal, func() { _ = wal.Close(); _ = meta.Close() }
}

// A follower whose log suffix raft clears (a leader change after a
// partition: "clearing log suffix") must still start afterwards. The chaos
// harness found nodes that panicked on every start with "sealed segment has
// no index block" (seeds 20261123 and 5511, and 7501 without any full disk):
// raft-wal v0.4.0 marked the tail segment sealed on DeleteRange without
// writing its index block (hashicorp/raft-wal#31, fixed in v0.4.1).
func TestWALSurvivesTailTruncationAndRestart(t *testing.T) {
	dir := t.TempDir()
	wal, closeWAL := openWAL(t, dir)
	var logs []*raft.Log
	for i := uint64(1); i <= 5; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("entry")})
	}
	if err := wal.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	// What raft does with a conflicting suffix, then the new leader's entry.
	if err := wal.DeleteRange(5, 5); err != nil {
		t.Fatalf("clear log suffix: %v", err)
	}
	if err := wal.StoreLog(&raft.Log{Index: 5, Term: 2, Type: raft.LogCommand, Data: []byte("new leader")}); err != nil {
		t.Fatal(err)
	}
	closeWAL()

	wal, closeWAL = openWAL(t, dir)
	defer closeWAL()
	for i := uint64(1); i <= 5; i++ {
		var l raft.Log
		if err := wal.GetLog(i, &l); err != nil {
			t.Fatalf("after a restart, entry %d: %v", i, err)
		}
		if want := map[bool]uint64{true: 2, false: 1}[i == 5]; l.Term != want {
			t.Errorf("entry %d: term %d, want %d", i, l.Term, want)
		}
	}
}
