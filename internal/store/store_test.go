package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashicorp/raft"

	"github.com/vigil-ha/vigil/internal/model"
)

type raftAddr = raft.ServerAddress

// TestMain checks for leaked goroutines once every (parallel) test is done:
// a per-test VerifyNone would see the other tests' clusters.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout is generous: tests run in parallel, under -race, on 2 cores.
const waitTimeout = 15 * time.Second

// Test timers: short, but not so short that a loaded machine flaps elections
// (at 150/100 ms, a load average of 30 made leaders step down mid-test).
const (
	testHeartbeat = 500 * time.Millisecond
	testLease     = 250 * time.Millisecond
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// --- logging ---

// tlogWriter sends log lines to t.Log until the test's cleanups are done, so
// a stray late line cannot panic the test binary.
type tlogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// testLogger logs at Warn and above; VIGIL_TEST_LOG=debug shows raft's chatter.
// Call it before registering cleanups that still log.
func testLogger(t *testing.T) *slog.Logger {
	w := &tlogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelWarn
	if os.Getenv("VIGIL_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// --- PKI ---

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var serial struct {
	mu sync.Mutex
	n  int64
}

func nextSerial() *big.Int {
	serial.mu.Lock()
	defer serial.mu.Unlock()
	serial.n++
	return big.NewInt(serial.n)
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a node certificate, as `vigil init` would: CN = node name, IP
// SANs for its addresses, usable as TLS server and client.
func (ca *testCA) issue(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) nodeTLS(t *testing.T, cn string) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, cn)},
		RootCAs:      ca.pool,
		ClientCAs:    ca.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// --- cluster ---

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type testCluster struct {
	t      *testing.T
	ca     *testCA
	log    *slog.Logger
	peers  []Peer
	dirs   []string
	tls    []*tls.Config
	mod    func(*Config)
	stores []*Store // nil while a node is stopped
	// outside marks nodes that are not expected to be in the cluster.
	outside map[int]bool
}

func newCluster(t *testing.T, n int, mod func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, log: testLogger(t), mod: mod, stores: make([]*Store, n)}
	c.ca = newCA(t, "vigil test CA")
	for i := range n {
		id := "n" + strconv.Itoa(i+1)
		c.peers = append(c.peers, Peer{ID: id, Addr: freeAddr(t)})
		c.dirs = append(c.dirs, t.TempDir())
		c.tls = append(c.tls, c.ca.nodeTLS(t, id))
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *testCluster) startAll() {
	for i := range c.stores {
		c.start(i)
	}
}

func (c *testCluster) start(i int) {
	c.t.Helper()
	cfg := Config{
		NodeID:             c.peers[i].ID,
		Peers:              c.peers,
		DataDir:            c.dirs[i],
		TLS:                c.tls[i],
		HeartbeatTimeout:   testHeartbeat,
		ElectionTimeout:    testHeartbeat,
		LeaderLeaseTimeout: testLease,
		Logger:             c.log,
	}
	if c.mod != nil {
		c.mod(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", cfg.NodeID, err)
	}
	c.stores[i] = s
}

func (c *testCluster) stop(i int) {
	c.t.Helper()
	if err := c.stores[i].Close(); err != nil {
		c.t.Errorf("close %s: %v", c.peers[i].ID, err)
	}
	c.stores[i] = nil
}

func (c *testCluster) stopAll() {
	for i, s := range c.stores {
		if s != nil {
			c.stop(i)
		}
	}
}

// waitLeader waits until one running node leads and every running node
// agrees on it, and returns its position.
func (c *testCluster) waitLeader() int {
	c.t.Helper()
	leader := -1
	waitFor(c.t, "a leader all running nodes agree on", func() bool {
		leader = -1
		for i, s := range c.stores {
			if s != nil && s.IsLeader() && !c.outside[i] {
				leader = i
			}
		}
		if leader < 0 {
			return false
		}
		for i, s := range c.stores {
			if s == nil || c.outside[i] {
				continue
			}
			if id, addr := s.Leader(); id != c.peers[leader].ID || addr != c.peers[leader].Addr {
				return false
			}
		}
		return true
	})
	return leader
}

// append appends on whichever node leads, retrying if leadership moves
// before the proposal is made.
func (c *testCluster) append(evs ...model.Event) []model.Event {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		li := c.waitLeader()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		got, err := c.stores[li].Append(ctx, evs...)
		cancel()
		if err == nil {
			return got
		}
		if !errors.Is(err, ErrNotLeader) || attempt > 5 {
			c.t.Fatalf("append on %s: %v", c.peers[li].ID, err)
		}
	}
}

// waitEvents waits until node i holds exactly want.
func (c *testCluster) waitEvents(i int, want []model.Event) {
	c.t.Helper()
	var got []model.Event
	waitFor(c.t, fmt.Sprintf("%s to hold %d events", c.peers[i].ID, len(want)), func() bool {
		got = c.stores[i].Events(0, 0)
		return len(got) >= len(want)
	})
	if !reflect.DeepEqual(got, want) {
		c.t.Fatalf("%s holds\n%+v\nwant\n%+v", c.peers[i].ID, got, want)
	}
}

var epoch = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

func testEvent(reason string) model.Event {
	return model.Event{
		Time:     epoch,
		Kind:     model.EventNodeJoined,
		Severity: model.SeverityInfo,
		Reporter: "test",
		Node:     "n1",
		Reason:   reason,
	}
}

func indexes(evs []model.Event) []uint64 {
	var out []uint64
	for _, ev := range evs {
		out = append(out, ev.Index)
	}
	return out
}

// --- cluster tests ---

func TestClusterReplicates(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	began := time.Now()
	c.startAll()
	li := c.waitLeader()
	t.Logf("3 nodes agreed on leader %s %v after Open", c.peers[li].ID, time.Since(began).Round(time.Millisecond))
	leader, follower := c.stores[li], c.stores[(li+1)%3]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := follower.Subscribe(ctx)

	got := c.append(testEvent("a"), testEvent("b"))
	if want := []uint64{1, 2}; !reflect.DeepEqual(indexes(got), want) {
		t.Fatalf("first append got indexes %v, want %v", indexes(got), want)
	}
	got = c.append(testEvent("c"))
	if want := []uint64{3}; !reflect.DeepEqual(indexes(got), want) {
		t.Fatalf("second append got indexes %v, want %v", indexes(got), want)
	}

	want := c.stores[c.waitLeader()].Events(0, 0)
	if len(want) != 3 || want[2].Reason != "c" {
		t.Fatalf("leader holds %+v", want)
	}
	for i := range c.stores {
		c.waitEvents(i, want)
	}
	for _, w := range want {
		select {
		case ev, ok := <-sub:
			if !ok {
				t.Fatal("subscription closed early")
			}
			if !reflect.DeepEqual(ev, w) {
				t.Fatalf("subscriber got %+v, want %+v", ev, w)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("subscriber did not get event %d", w.Index)
		}
	}

	if _, err := follower.Append(ctx, testEvent("x")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append on follower: got %v, want ErrNotLeader", err)
	}
	if got := indexes(follower.Events(1, 1)); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("Events(1, 1) = %v, want [2]", got)
	}
	if got := follower.Events(3, 0); len(got) != 0 {
		t.Fatalf("Events(3, 0) = %v, want none", got)
	}
	if id, addr := follower.Leader(); id != c.peers[li].ID || addr != c.peers[li].Addr {
		t.Fatalf("follower sees leader %s at %s, want %s", id, addr, c.peers[li])
	}
	if st := leader.Stats(); st["state"] != "Leader" || st["events"] != "3" || st["last_event_index"] != "3" {
		t.Fatalf("leader stats: %v", st)
	}

	// The latest leader value is always there to read.
	select {
	case id := <-follower.LeaderChanges():
		if id != c.peers[li].ID {
			t.Fatalf("LeaderChanges gave %q, want %q", id, c.peers[li].ID)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no leader change reported")
	}

	cancel()
	waitFor(t, "subscription to close on cancel", func() bool {
		select {
		case _, ok := <-sub:
			return !ok
		default:
			return false
		}
	})
}

func TestRestartKeepsEventsAndCatchesUp(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	c.startAll()
	c.append(testEvent("before-1"), testEvent("before-2"))
	f := (c.waitLeader() + 1) % 3
	c.waitEvents(f, c.stores[c.waitLeader()].Events(0, 0))

	c.stop(f)
	c.append(testEvent("while-down-1"))
	c.append(testEvent("while-down-2"), testEvent("while-down-3"))
	c.start(f)

	want := c.stores[c.waitLeader()].Events(0, 0)
	if len(want) != 5 {
		t.Fatalf("leader holds %d events, want 5", len(want))
	}
	c.waitEvents(f, want)
}

func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 2            // compact hard, so a lagging node needs a snapshot
		cfg.SnapshotThreshold = 1 << 20 // snapshots only when the test asks
		cfg.segmentSize = 1024          // see Config.segmentSize
	})
	c.startAll()
	c.append(testEvent("1"), testEvent("2"))
	c.append(testEvent("3"), testEvent("4"))
	li := c.waitLeader()
	f := (li + 1) % 3
	want := c.stores[li].Events(0, 0)
	c.waitEvents(f, want)

	// A node restarts from its own snapshot: the events are there as soon as
	// Open returns, before any leader contact.
	if err := c.stores[f].raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot on %s: %v", c.peers[f].ID, err)
	}
	c.stop(f)
	c.start(f)
	if got := c.stores[f].Events(0, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart from snapshot %s holds %+v, want %+v", c.peers[f].ID, got, want)
	}

	// A node that missed entries the leader has compacted away gets the
	// leader's snapshot (InstallSnapshot) and restores from it.
	c.stop(f)
	for i := range 3 {
		c.append(testEvent(strconv.Itoa(5+2*i)), testEvent(strconv.Itoa(6+2*i)))
	}
	li = c.waitLeader()
	// Both running nodes compact: under load leadership may move before f
	// returns, and a leader that still had the entries would send them instead.
	for i := range c.stores {
		if i == f {
			continue
		}
		if err := c.stores[i].raft.Snapshot().Error(); err != nil {
			t.Fatalf("snapshot on %s: %v", c.peers[i].ID, err)
		}
	}
	leaderSnap, _ := strconv.ParseUint(c.stores[li].Stats()["last_snapshot_index"], 10, 64)
	c.start(f)
	want = c.stores[li].Events(0, 0)
	if len(want) != 10 {
		t.Fatalf("leader holds %d events, want 10", len(want))
	}
	c.waitEvents(f, want)
	snap, _ := strconv.ParseUint(c.stores[f].Stats()["last_snapshot_index"], 10, 64)
	if snap < leaderSnap {
		t.Fatalf("%s last snapshot index %d, want >= the leader's %d (caught up by InstallSnapshot)", c.peers[f].ID, snap, leaderSnap)
	}

	// Indexes keep counting after a restore.
	got := c.append(testEvent("11"))
	if got[0].Index != 11 {
		t.Fatalf("index after restore = %d, want 11", got[0].Index)
	}
}

func TestLeaderFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	c.startAll()
	c.append(testEvent("first"))
	old := c.waitLeader()

	began := time.Now()
	c.stop(old)
	nl := c.waitLeader()
	t.Logf("new leader %s %v after the old leader closed", c.peers[nl].ID, time.Since(began).Round(time.Millisecond))
	if nl == old {
		t.Fatal("closed node still leads")
	}
	got := c.append(testEvent("second"))
	if got[0].Index != 2 {
		t.Fatalf("index on new leader = %d, want 2", got[0].Index)
	}

	c.start(old)
	want := c.stores[c.waitLeader()].Events(0, 0)
	for i := range c.stores {
		c.waitEvents(i, want)
	}
}

// A node whose certificate comes from another CA never becomes part of the
// cluster, in either direction.
func TestForeignNodeNeverJoins(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	c.tls[2] = newCA(t, "foreign CA").nodeTLS(t, "n3")
	c.outside = map[int]bool{2: true}
	c.startAll()
	li := c.waitLeader()
	if li == 2 {
		t.Fatal("the foreign node leads")
	}
	c.append(testEvent("a"))
	c.append(testEvent("b"))
	want := c.stores[li].Events(0, 0)
	c.waitEvents(1-li, want) // the other cluster node (0 or 1)
	intruder := c.stores[2]
	if id, _ := intruder.Leader(); id != "" {
		t.Fatalf("foreign node sees leader %q", id)
	}
	if got := intruder.Events(0, 0); len(got) != 0 {
		t.Fatalf("foreign node holds %+v", got)
	}
}

// --- TLS stream layer ---

// probe connects to addr as a raft peer would, presenting cert (nil: none)
// even if the server did not ask for its CA, and reports how the server
// reacted: nil if it kept the connection open, waiting for an RPC.
func probe(t *testing.T, addr string, cert *tls.Certificate, roots *x509.CertPool) error {
	t.Helper()
	cfg := &tls.Config{
		RootCAs:    roots,
		ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}
	d := &net.Dialer{Timeout: waitTimeout}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	// In TLS 1.3 the server judges the client certificate after the client
	// has finished its side of the handshake: a rejection shows on the next
	// read, as an alert.
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err == nil {
		return errors.New("server sent data unprompted")
	}
	return err
}

func TestListenerRejectsStrangers(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, nil)
	c.start(0) // n2 never runs: n1 stays a lonely candidate, listening
	addr, pool := c.peers[0].Addr, c.ca.pool
	foreign := newCA(t, "vigil test CA") // same name, other key

	peer := c.ca.issue(t, "n2")
	if err := probe(t, addr, &peer, pool); err != nil {
		t.Fatalf("peer n2 with a cluster certificate was refused: %v", err)
	}
	for name, cert := range map[string]*tls.Certificate{
		"foreign CA":          ptr(foreign.issue(t, "n2")),
		"cluster CA, no peer": ptr(c.ca.issue(t, "intruder")),
		"no certificate":      nil,
	} {
		err := probe(t, addr, cert, pool)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Logf("%s: rejected: %v", name, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestDialerChecksPeerIdentity(t *testing.T) {
	t.Parallel()
	log := testLogger(t)
	ca := newCA(t, "vigil test CA")
	foreign := newCA(t, "foreign CA")
	peers := []Peer{{ID: "n1", Addr: freeAddr(t)}, {ID: "n2", Addr: freeAddr(t)}, {ID: "n3", Addr: freeAddr(t)}}
	client, err := newTLSLayer([]string{peers[0].Addr}, peers[0].Addr, ca.nodeTLS(t, "n1"), peers, log)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// serve runs a layer at n2's address with the given identity.
	serve := func(cfg *tls.Config) *tlsLayer {
		t.Helper()
		l, err := newTLSLayer([]string{peers[1].Addr}, peers[1].Addr, cfg, peers, log)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	t.Run("right node", func(t *testing.T) {
		srv := serve(ca.nodeTLS(t, "n2"))
		defer srv.Close()
		conn, err := client.Dial(raftAddr(peers[1].Addr), waitTimeout)
		if err != nil {
			t.Fatalf("dial n2: %v", err)
		}
		defer conn.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := srv.Accept()
			if err == nil {
				accepted <- c
			}
			close(accepted)
		}()
		select {
		case c, ok := <-accepted:
			if !ok {
				t.Fatal("accept failed")
			}
			if cn := c.(*trackedConn).Conn.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "n1" {
				t.Fatalf("server sees client %q, want n1", cn)
			}
			c.Close()
		case <-time.After(waitTimeout):
			srv.Close() // unblocks Accept
			t.Fatal("server did not accept")
		}
	})
	for name, cfg := range map[string]*tls.Config{
		"other node's certificate": ca.nodeTLS(t, "n3"),
		"foreign CA":               foreign.nodeTLS(t, "n2"),
	} {
		t.Run(name, func(t *testing.T) {
			srv := serve(cfg)
			defer srv.Close()
			conn, err := client.Dial(raftAddr(peers[1].Addr), waitTimeout)
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded")
			}
			t.Logf("refused: %v", err)
		})
	}
	t.Run("unknown address", func(t *testing.T) {
		if _, err := client.Dial("127.0.0.1:1", waitTimeout); err == nil {
			t.Fatal("dial to an address outside the peer list succeeded")
		}
	})
}

// A peer whose first link is cut is still reached on its other one: the
// dial races every address. The first address here accepts TCP and then
// says nothing (a hung or half-cut path), the second serves raft.
func TestDialFallsBackToAnotherLink(t *testing.T) {
	t.Parallel()
	log := testLogger(t)
	ca := newCA(t, "vigil test CA")
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered, until the test ends
		}
	}()
	alt := freeAddr(t)
	peers := []Peer{{ID: "n1", Addr: freeAddr(t)}, {ID: "n2", Addr: hung.Addr().String(), Alternates: []string{alt}}}
	client, err := newTLSLayer([]string{peers[0].Addr}, peers[0].Addr, ca.nodeTLS(t, "n1"), peers, log)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, err := newTLSLayer([]string{alt}, peers[1].Addr, ca.nodeTLS(t, "n2"), peers, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	conn, err := client.Dial(raftAddr(peers[1].Addr), waitTimeout)
	if err != nil {
		t.Fatalf("dial n2 with its first link hung: %v", err)
	}
	defer conn.Close()
	if got := conn.(*trackedConn).raw.RemoteAddr().String(); got != alt {
		t.Fatalf("connected to %s, want n2's other link %s", got, alt)
	}
	// Without the alternate the same dial fails: the test can tell.
	solo, err := newTLSLayer([]string{freeAddr(t)}, "", ca.nodeTLS(t, "n1"), []Peer{{ID: "n2", Addr: hung.Addr().String()}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer solo.Close()
	if c, err := solo.Dial(raftAddr(hung.Addr().String()), 500*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a dial to the hung address alone succeeded")
	}
}

// Followers learn of a commit from the append itself, not from raft's idle
// CommitTimeout round: the node that must act on a coordinator's decision
// would otherwise wait for that timer. With a CommitTimeout of ten minutes,
// only the store's own push can get the events applied within the wait.
func TestFollowersApplyWithoutWaitingForCommitTimeout(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, func(cfg *Config) { cfg.CommitTimeout = 10 * time.Minute })
	c.startAll()
	for round := range 3 {
		got := c.append(testEvent(fmt.Sprintf("round %d", round)))
		for i := range c.stores {
			waitFor(t, fmt.Sprintf("%s to apply index %d", c.peers[i].ID, got[0].Index), func() bool {
				return c.stores[i].LastIndex() >= got[0].Index
			})
		}
	}
}

// A leader that closes hands leadership over, so the cluster has a new
// leader long before any follower's heartbeat timeout could have started an
// election. The timeout is 4 s here; a hand-over takes one round trip and
// one vote, so a new leader within half the timeout can only come from it.
func TestCloseHandsLeadershipOver(t *testing.T) {
	t.Parallel()
	const hb = 4 * time.Second
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = hb, hb, hb/2
	})
	c.startAll()
	// The first election itself needs one to two heartbeat timeouts.
	old := -1
	for deadline := time.Now().Add(60 * time.Second); old < 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 60 s")
		}
		for i, s := range c.stores {
			if s.IsLeader() {
				old = i
			}
		}
	}
	c.append(testEvent("before the hand-over"))

	began := time.Now()
	c.stop(old)
	nl := c.waitLeader()
	took := time.Since(began)
	t.Logf("new leader %s %v after %s closed", c.peers[nl].ID, took.Round(time.Millisecond), c.peers[old].ID)
	if took >= hb/2 {
		t.Fatalf("new leader only %v after the leader closed: not handed over (heartbeat timeout %v)", took, hb)
	}
	got := c.append(testEvent("after"))
	if got[0].Index != 2 {
		t.Fatalf("index on new leader = %d, want 2", got[0].Index)
	}
}
