package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/model"
)

var (
	// ErrNotLeader is returned by Append on a node that is not the raft
	// leader; nothing was proposed, so the caller may forward the same events
	// to the node named by Leader.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("store closed")
)

// Defaults for a LAN HA cluster; see Config.
const (
	DefaultHeartbeatTimeout  = 500 * time.Millisecond
	DefaultSnapshotThreshold = 8192
	DefaultTrailingLogs      = 10240
)

const (
	// transportTimeout is raft's I/O deadline per RPC (scaled up for
	// InstallSnapshot). It only bounds how long one stuck peer holds its own
	// replication goroutine; Close does not wait for it because closing the
	// stream layer cuts every connection.
	transportTimeout = 10 * time.Second
	// pushEnqueueTimeout bounds how long pushCommits waits to hand its
	// barrier to a busy raft; a push that cannot be queued is simply skipped
	// (the next append or CommitTimeout carries the commit index).
	pushEnqueueTimeout = time.Second
	// transportPool is how many idle connections raft keeps per peer.
	transportPool = 3
	// snapshotsRetained is how many snapshots stay on disk; more than one so
	// a snapshot that turns out unreadable has a predecessor.
	snapshotsRetained = 2
	// walSegmentSize replaces raft-wal's 64 MiB default: segments are
	// preallocated, and an event log on a small witness VM should not reserve
	// 64 MiB before its first event. 8 MiB still holds thousands of events.
	walSegmentSize = 8 << 20
)

// Peer is one raft voter. Every node is a voter, including a witness (a
// voter that runs no groups).
type Peer struct {
	ID   string // node name; must equal the CommonName of the node's certificate
	Addr string // host:port of the node's raft listener, as the other peers reach it
	// Alternates are the same listener's addresses on the node's other links:
	// a dial races them all, and this node listens on its own, so consensus
	// survives one cut link as the heartbeats do.
	Alternates []string
}

// Config holds everything Open needs.
type Config struct {
	NodeID string
	// BindAddr is the host:port to listen on; empty means this node's Addr in
	// Peers. It may differ from that Addr (e.g. 0.0.0.0:7946), which is still
	// what the other peers are told.
	BindAddr string
	// Peers lists all voters including this node. Membership is static: it is
	// written into the raft log on the first start, and later changes to this
	// list do not change the cluster (that needs raft AddVoter/RemoveServer).
	Peers []Peer
	// DataDir holds the write-ahead log (with raft's stable store) in wal/ and
	// snapshots in snapshots/. It is created if missing.
	DataDir string
	// TLS must carry this node's certificate in Certificates (or
	// GetCertificate), and the cluster CA in both RootCAs and ClientCAs. The
	// store enforces TLS 1.3 and client certificates whatever ClientAuth says,
	// and checks the peer's CommonName against Peers.
	TLS *tls.Config

	// Raft timers. Zero values default to HeartbeatTimeout 500ms,
	// ElectionTimeout = HeartbeatTimeout and LeaderLeaseTimeout =
	// HeartbeatTimeout/2: half of hashicorp/raft's WAN-safe defaults, which a
	// LAN round trip of well under a millisecond allows, so that a lost
	// coordinator is replaced (0.5–1s to notice, one election round to
	// replace) well inside the 2s default deadtime.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how often, with nothing new to send, the leader
	// still sends each follower an AppendEntries so that it learns the
	// commit index (hashicorp/raft's default is 50ms). The store tells
	// followers about its own commits at once instead (see pushCommits), so
	// this is only a backstop; zero means HeartbeatTimeout. At 50ms those
	// empty rounds were two thirds of an idle cluster's raft traffic.
	CommitTimeout time.Duration
	// SnapshotThreshold is how many new log entries trigger a snapshot (zero:
	// 8192); TrailingLogs how many entries stay in the log after one, so that
	// a briefly absent follower catches up from the log rather than a whole
	// snapshot (zero: 10240).
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// Logger receives raft's and the store's logs; nil means slog.Default().
	Logger *slog.Logger

	// segmentSize overrides walSegmentSize in tests: raft-wal still serves
	// compacted entries from the open segment, so only tiny segments make a
	// lagging follower need InstallSnapshot within a few entries.
	segmentSize int
}

func (c *Config) validateAndDefault() (self Peer, err error) {
	if c.NodeID == "" {
		return Peer{}, errors.New("node ID is empty")
	}
	if c.DataDir == "" {
		return Peer{}, errors.New("data dir is empty")
	}
	ids := make(map[string]bool, len(c.Peers))
	addrs := make(map[string]bool, len(c.Peers))
	found := false
	for i, p := range c.Peers {
		switch {
		case p.ID == "":
			return Peer{}, fmt.Errorf("peer %d: empty ID", i)
		case p.Addr == "":
			return Peer{}, fmt.Errorf("peer %q: empty address", p.ID)
		case ids[p.ID]:
			return Peer{}, fmt.Errorf("peer %q listed twice", p.ID)
		case addrs[p.Addr]:
			return Peer{}, fmt.Errorf("peer %q: address %s already used by another peer", p.ID, p.Addr)
		}
		ids[p.ID], addrs[p.Addr] = true, true
		if p.ID == c.NodeID {
			self, found = p, true
		}
	}
	if !found {
		return Peer{}, fmt.Errorf("node %q is not in its own peer list", c.NodeID)
	}
	if c.TLS == nil {
		return Peer{}, errors.New("TLS config is missing")
	}
	if len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil {
		return Peer{}, errors.New("TLS config has no node certificate")
	}
	// Without these the stdlib would fall back to the system roots and accept
	// any publicly trusted certificate.
	if c.TLS.RootCAs == nil || c.TLS.ClientCAs == nil {
		return Peer{}, errors.New("TLS config needs the cluster CA in both RootCAs and ClientCAs")
	}
	if c.BindAddr == "" {
		c.BindAddr = self.Addr
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = c.HeartbeatTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout / 2
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = c.HeartbeatTimeout
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.segmentSize == 0 {
		c.segmentSize = walSegmentSize
	}
	return self, nil
}

// Store is this node's replica of the cluster's event log.
type Store struct {
	raft  *raft.Raft
	fsm   *fsm
	hub   *hub
	trans *raft.NetworkTransport
	wal   *raftwal.WAL
	meta  *metadb.BoltMetaDB
	log   *slog.Logger

	observer *raft.Observer
	obsStop  chan struct{}
	obsDone  chan struct{}
	leaderCh chan string

	// pushCh asks pushCommits to tell followers about a new commit.
	pushCh   chan struct{}
	pushDone chan struct{}

	// transferWait bounds the hand-over of leadership at Close.
	transferWait time.Duration

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Open starts this node's replica. On the first start it writes the static
// cluster configuration (every node writing the identical configuration is
// safe in hashicorp/raft); later it reopens the state in DataDir and rejoins
// with it. Open does not wait for a leader.
func Open(cfg Config) (*Store, error) {
	self, err := cfg.validateAndDefault()
	if err != nil {
		return nil, fmt.Errorf("open store: config: %w", err)
	}
	log := cfg.Logger // the caller names the node; raft adds component=raft
	hl := newHCLog(log, "raft", nil)

	walDir := filepath.Join(cfg.DataDir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// raft-wal's Close does not close the bolt meta DB it opens itself, and
	// bolt's file lock would then block a reopen in the same process; owning
	// the meta DB lets Close release it.
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(walDir,
		raftwal.WithMetaStore(meta),
		raftwal.WithSegmentSize(cfg.segmentSize),
		raftwal.WithLogger(hl.Named("wal")))
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("open store: write-ahead log in %s: %w", walDir, err)
	}
	closeWAL := func() {
		_ = wal.Close()
		_ = meta.Close()
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, snapshotsRetained, hl.Named("snapshots"))
	if err != nil {
		closeWAL()
		return nil, fmt.Errorf("open store: snapshot store in %s: %w", cfg.DataDir, err)
	}
	layer, err := newTLSLayer(append([]string{cfg.BindAddr}, self.Alternates...), self.Addr, cfg.TLS, cfg.Peers, log)
	if err != nil {
		closeWAL()
		return nil, fmt.Errorf("open store: %w", err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: transportPool,
		Timeout: transportTimeout,
		Logger:  hl.Named("net"),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = hl

	fail := func(err error) (*Store, error) {
		_ = trans.Close()
		closeWAL()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("raft config: %w", err))
	}
	hasState, err := raft.HasExistingState(wal, wal, snaps)
	if err != nil {
		return fail(fmt.Errorf("read existing state: %w", err))
	}
	if !hasState {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := raft.BootstrapCluster(rc, wal, wal, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			return fail(fmt.Errorf("bootstrap cluster: %w", err))
		}
	}

	h := newHub()
	f := newFSM(h)
	r, err := raft.NewRaft(rc, f, wal, wal, snaps, trans)
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}

	s := &Store{
		raft:     r,
		fsm:      f,
		hub:      h,
		trans:    trans,
		wal:      wal,
		meta:     meta,
		log:      log,
		obsStop:  make(chan struct{}),
		obsDone:  make(chan struct{}),
		leaderCh: make(chan string, 1),
		pushCh:   make(chan struct{}, 1),
		pushDone: make(chan struct{}),
		closed:   make(chan struct{}),

		transferWait: 2 * cfg.ElectionTimeout,
	}
	go s.pushCommits()
	obsCh := make(chan raft.Observation, 16)
	// Blocking, so no leader change is ever lost; observeLeader never blocks
	// for long, and Close stops it only after raft has shut down.
	s.observer = raft.NewObserver(obsCh, true, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(s.observer)
	go s.observeLeader(obsCh)
	return s, nil
}

// pushCommits makes followers learn at once of what this leader committed.
// A follower applies an entry only when an AppendEntries tells it the entry
// is committed, and hashicorp/raft sends one only for new entries or every
// CommitTimeout; the entry that commits a coordinator's decision would
// otherwise wait for that timer on every other node, including the one
// that must act on it. A barrier is an empty entry whose replication carries
// the new commit index; one barrier covers every commit made before it, so
// a burst of appends costs one or two.
func (s *Store) pushCommits() {
	defer close(s.pushDone)
	for {
		select {
		case <-s.closed:
			return
		case <-s.pushCh:
		}
		if s.raft.State() != raft.Leader {
			continue
		}
		// Errors mean leadership or the store is gone: nothing to push then.
		_ = s.raft.Barrier(pushEnqueueTimeout).Error()
	}
}

// handOver transfers leadership if this node has it. Appends are already
// refused (s.closed), and raft refuses its own while the transfer runs.
func (s *Store) handOver() {
	if s.raft.State() != raft.Leader {
		return
	}
	fut := s.raft.LeadershipTransfer()
	done := make(chan error, 1)
	go func() { done <- fut.Error() }()
	select {
	case err := <-done:
		if err != nil {
			s.log.Info("stopping as leader without handing over", "err", err)
			return
		}
		s.log.Info("leadership handed over before stopping")
	case <-time.After(s.transferWait):
		// Shutdown resolves the future, which ends the goroutine.
		s.log.Warn("leadership hand-over did not finish in time; stopping anyway", "waited", s.transferWait)
	}
}

// pushCommit asks pushCommits for a round; it never blocks.
func (s *Store) pushCommit() {
	select {
	case s.pushCh <- struct{}{}:
	default:
	}
}

// observeLeader turns raft's leader observations into LeaderChanges values.
func (s *Store) observeLeader(obsCh <-chan raft.Observation) {
	defer close(s.obsDone)
	last := ""
	for {
		select {
		case <-s.obsStop:
			return
		case o := <-obsCh:
			id := string(o.Data.(raft.LeaderObservation).LeaderID)
			if id == last {
				continue
			}
			last = id
			// Latest wins: a consumer that was busy sees the current leader,
			// not a backlog of stale ones. This goroutine is the only sender,
			// so after emptying the slot the send cannot block.
			select {
			case <-s.leaderCh:
			default:
			}
			s.leaderCh <- id
		}
	}
}

// Append proposes evs as one raft entry and waits until it is committed and
// applied here. It returns the events as stored, with Index set (indexes are
// contiguous across the whole log, starting at 1). On a follower it returns
// ErrNotLeader without proposing. If leadership is lost or ctx ends while
// waiting, the outcome is unknown: the events may still be committed.
func (s *Store) Append(ctx context.Context, evs ...model.Event) ([]model.Event, error) {
	select {
	case <-s.closed:
		return nil, fmt.Errorf("append: %w", ErrClosed)
	default:
	}
	if len(evs) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	if s.raft.State() != raft.Leader {
		return nil, fmt.Errorf("append: %w", ErrNotLeader)
	}
	cmd, err := encodeAppend(evs)
	if err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	var enqueue time.Duration // zero: wait as long as it takes to enqueue
	if dl, ok := ctx.Deadline(); ok {
		enqueue = max(time.Until(dl), time.Millisecond)
	}
	fut := s.raft.Apply(cmd, enqueue)
	err = waitFuture(ctx, fut)
	s.pushCommit()
	if err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return nil, fmt.Errorf("append: %w", ErrNotLeader)
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, fmt.Errorf("append: %w", ErrClosed)
		default:
			return nil, fmt.Errorf("append: outcome unknown: %w", err)
		}
	}
	switch resp := fut.Response().(type) {
	case []model.Event:
		return resp, nil
	case error:
		return nil, fmt.Errorf("append: %w", resp)
	default:
		return nil, fmt.Errorf("append: unexpected FSM response %T", resp)
	}
}

// waitFuture waits for fut, or for ctx. raft futures cannot be abandoned, so
// with a cancellable ctx a goroutine keeps waiting; it ends when raft
// resolves the future, at the latest when raft shuts down.
func waitFuture(ctx context.Context, fut raft.Future) error {
	if ctx.Done() == nil {
		return fut.Error()
	}
	done := make(chan error, 1)
	go func() { done <- fut.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Events returns a copy of the committed events with Index > afterIndex, in
// order, at most limit of them (limit <= 0: all). It reads this replica, which
// may trail the leader; after a restart it holds what was in the last
// snapshot until the replica hears from a leader and replays its log.
func (s *Store) Events(afterIndex uint64, limit int) []model.Event {
	return s.fsm.eventsAfter(afterIndex, limit)
}

// NewestMatching returns up to n committed events that keep accepts, newest
// first. keep runs under the log's read lock: it must be quick and must not
// call the store.
func (s *Store) NewestMatching(keep func(*model.Event) bool, n int) []model.Event {
	return s.fsm.newestMatching(keep, n)
}

// Subscribe returns a channel of newly committed events, in Index order and
// without gaps. It is closed when ctx is done, when the store is closed, or
// when the subscriber falls 1024 events behind (so that a slow reader never
// blocks the log). A consumer that sees it closed while it still wants events
// re-reads from its last Index with Events and subscribes again; to start
// without missing anything, subscribe first, then read Events and skip what
// the channel repeats.
func (s *Store) Subscribe(ctx context.Context) <-chan model.Event {
	return s.hub.subscribe(ctx)
}

// Leader returns the current leader's node ID and raft address, or empty
// strings when there is none that this node knows of.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// LastIndex is the index of the newest committed event applied here.
func (s *Store) LastIndex() uint64 {
	_, last := s.fsm.counts()
	return last
}

// ClusterState is a copy of the projection of the committed log. On a new leader,
// call Barrier first so that it includes everything the previous leader committed.
func (s *Store) ClusterState() *clusterstate.State { return s.fsm.clusterState() }

// Barrier waits until every entry committed before the call is applied locally.
func (s *Store) Barrier(ctx context.Context) error {
	timeout := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	err := waitFuture(ctx, s.raft.Barrier(timeout))
	s.pushCommit()
	if err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	return nil
}

// IsLeader reports whether this node is the raft leader (the coordinator).
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// LeaderChanges returns one channel (the same on every call; meant for a
// single consumer) that yields the leader's node ID each time it changes, ""
// while there is none. It holds only the latest value: a consumer that falls
// behind skips intermediate leaders but always sees the current one. It is
// closed by Close.
func (s *Store) LeaderChanges() <-chan string { return s.leaderCh }

// Stats returns raft's statistics (state, term, indexes, configuration, …)
// plus the event count and the newest event Index, for debugging.
func (s *Store) Stats() map[string]string {
	st := s.raft.Stats()
	n, last := s.fsm.counts()
	st["events"] = strconv.Itoa(n)
	st["last_event_index"] = strconv.FormatUint(last, 10)
	return st
}

// Close shuts down raft, closes every connection, the write-ahead log and
// the subscriptions, and waits for the store's goroutines. A leader first
// hands leadership to the most up-to-date follower (raft's TimeoutNow), so
// that a planned stop of the coordinator's node does not leave the cluster
// without one until the followers' heartbeat timeout runs out; if that
// cannot be done within two election timeouts it shuts down anyway. Safe to
// call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	close(s.closed)
	<-s.pushDone
	s.handOver()
	fut := s.raft.Shutdown()
	// Cut connections before waiting: a replication goroutine blocked on a
	// silent peer would otherwise hold Shutdown for the transport timeout.
	// Closing the transport (not just its stream layer) first marks it shut
	// down, so its accept loop exits quietly instead of logging an error.
	transErr := s.trans.Close()
	var errs []error
	if err := fut.Error(); err != nil {
		errs = append(errs, fmt.Errorf("shut down raft: %w", err))
	}
	// Only now that raft cannot observe anything more may the blocking
	// observer's reader stop.
	s.raft.DeregisterObserver(s.observer)
	close(s.obsStop)
	<-s.obsDone
	close(s.leaderCh)
	s.hub.close()
	if transErr != nil {
		errs = append(errs, fmt.Errorf("close raft transport: %w", transErr))
	}
	if err := s.wal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close write-ahead log: %w", err))
	}
	if err := s.meta.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close write-ahead log metadata: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}
