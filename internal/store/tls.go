package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// handshakeTimeout bounds how long an inbound connection may take to prove
// who it is. Handshakes run off the accept loop, so a slow or hostile client
// only ties up its own goroutine for this long.
const handshakeTimeout = 10 * time.Second

// tlsLayer is a raft.StreamLayer over mutual TLS. Both directions require a
// certificate chaining to the cluster CA whose CommonName is a peer's node ID;
// when dialing, the CN must be the ID of the peer configured at that address,
// so one node cannot impersonate another even with a valid cluster cert.
// Only connections that completed the handshake reach raft.
//
// It tracks every connection so Close can cut them all: raft's
// NetworkTransport.Close only closes the listener, which would leave inbound
// handlers and pooled outbound connections (and their goroutines) alive for
// as long as the peers keep them open.
type tlsLayer struct {
	lns        []net.Listener // one per local address (link)
	advertise  net.Addr
	server     *tls.Config
	clients    map[string]*tls.Config // by peer address, alternates included
	alternates map[string][]string    // peer address -> its other links' addresses
	log        *slog.Logger

	ctx    context.Context // done when the layer is closed
	cancel context.CancelFunc
	ready  chan net.Conn // authenticated inbound connections for Accept
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // raw sockets; guarded by mu
	closed bool                  // guarded by mu
}

var _ raft.StreamLayer = (*tlsLayer)(nil)

// newTLSLayer listens on every address of bind (one per link) and advertises
// advertise (the address peers know this node by, which raft sends to
// followers as the leader address).
func newTLSLayer(bind []string, advertise string, base *tls.Config, peers []Peer, log *slog.Logger) (*tlsLayer, error) {
	ids := make(map[string]bool, len(peers))
	for _, p := range peers {
		ids[p.ID] = true
	}
	roots := base.RootCAs

	server := base.Clone()
	server.MinVersion = tls.VersionTLS13 // both ends are Vigil: no reason to speak anything older
	server.ClientAuth = tls.RequireAndVerifyClientCert
	server.VerifyConnection = chainVerify(base.VerifyConnection, func(cs tls.ConnectionState) error {
		// The stdlib already verified the chain against ClientCAs.
		cn := cs.PeerCertificates[0].Subject.CommonName
		if !ids[cn] {
			return fmt.Errorf("client certificate CN %q is not a cluster peer", cn)
		}
		return nil
	})

	clients := make(map[string]*tls.Config, len(peers))
	alternates := make(map[string][]string, len(peers))
	for _, p := range peers {
		want := p.ID
		c := base.Clone()
		c.MinVersion = tls.VersionTLS13
		// Peers are reached by address, and an address says nothing about
		// which node should answer there, so hostname verification is
		// replaced (not dropped) by verifyPeer: chain to the cluster CA and
		// CN equal to the configured node ID.
		c.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection below
		c.ServerName = ""
		c.VerifyConnection = chainVerify(func(cs tls.ConnectionState) error {
			return verifyPeer(cs.PeerCertificates, roots, want)
		}, base.VerifyConnection)
		clients[p.Addr] = c
		for _, alt := range p.Alternates {
			clients[alt] = c
		}
		alternates[p.Addr] = p.Alternates
	}

	var lns []net.Listener
	for _, b := range bind {
		ln, err := net.Listen("tcp", b)
		if err != nil {
			for _, o := range lns {
				_ = o.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", b, err)
		}
		lns = append(lns, ln)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsLayer{
		lns:        lns,
		advertise:  tcpAddr(advertise),
		server:     server,
		clients:    clients,
		alternates: alternates,
		log:        log,
		ctx:        ctx,
		cancel:     cancel,
		ready:      make(chan net.Conn),
		conns:      make(map[net.Conn]struct{}),
	}
	for _, ln := range lns {
		l.wg.Add(1)
		go l.acceptLoop(ln)
	}
	return l, nil
}

func chainVerify(first, second func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if first != nil {
			if err := first(cs); err != nil {
				return err
			}
		}
		if second != nil {
			return second(cs)
		}
		return nil
	}
}

// verifyPeer checks a server's certificate chain against the cluster CA and
// that it belongs to node want.
func verifyPeer(certs []*x509.Certificate, roots *x509.CertPool, want string) error {
	if len(certs) == 0 {
		return errors.New("peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	if leaf.Subject.CommonName != want {
		return fmt.Errorf("peer certificate is for node %q, expected %q", leaf.Subject.CommonName, want)
	}
	return nil
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// track registers a raw socket so Close can cut it; false once closed.
func (l *tlsLayer) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *tlsLayer) untrack(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

func (l *tlsLayer) acceptLoop(ln net.Listener) {
	defer l.wg.Done()
	for {
		raw, err := ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: back off rather than spin.
			l.log.Warn("raft: accept failed", "error", err)
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = raw.Close()
			return
		}
		l.conns[raw] = struct{}{}
		l.wg.Add(1) // under mu, so Close's Wait cannot have started yet
		l.mu.Unlock()
		go l.handshake(raw)
	}
}

func (l *tlsLayer) handshake(raw net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(raw, l.server)
	ctx, cancel := context.WithTimeout(l.ctx, handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.untrack(raw)
		_ = raw.Close()
		if l.ctx.Err() == nil {
			l.log.Warn("raft: rejected connection", "remote", raw.RemoteAddr().String(), "error", err)
		}
		return
	}
	c := &trackedConn{Conn: tc, raw: raw, layer: l}
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		_ = c.Close()
	}
}

// Accept implements net.Listener: it returns authenticated connections only.
func (l *tlsLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, fmt.Errorf("raft stream layer: %w", net.ErrClosed)
	}
}

// Dial implements raft.StreamLayer. It races the peer's address on every
// link and keeps the first connection that completes the handshake, so a cut
// link (which may drop packets silently) costs nothing while another works.
func (l *tlsLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	addr := string(address)
	if _, ok := l.clients[addr]; !ok {
		// Membership is static: raft only dials configured peers.
		return nil, fmt.Errorf("dial %s: not a configured peer address", addr)
	}
	ctx := l.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	addrs := append([]string{addr}, l.alternates[addr]...)
	if len(addrs) == 1 {
		return l.dialOne(ctx, addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(addrs))
	for _, a := range addrs {
		go func() {
			c, err := l.dialOne(ctx, a)
			results <- result{c, err}
		}()
	}
	var errs []error
	var won net.Conn
	for range addrs {
		r := <-results
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case won == nil:
			won = r.c
			cancel() // the others give up; any that still connect are closed below
		default:
			_ = r.c.Close()
		}
	}
	if won != nil {
		return won, nil
	}
	return nil, errors.Join(errs...)
}

func (l *tlsLayer) dialOne(ctx context.Context, addr string) (net.Conn, error) {
	cfg := l.clients[addr]
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if !l.track(raw) {
		_ = raw.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, net.ErrClosed)
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		l.untrack(raw)
		_ = raw.Close()
		return nil, fmt.Errorf("dial %s: tls handshake: %w", addr, err)
	}
	return &trackedConn{Conn: tc, raw: raw, layer: l}, nil
}

// Close implements net.Listener. It also closes every open connection and
// waits for the layer's own goroutines.
func (l *tlsLayer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	conns := l.conns
	l.conns = make(map[net.Conn]struct{})
	l.mu.Unlock()

	l.cancel()
	var errs []error
	for _, ln := range l.lns {
		errs = append(errs, ln.Close())
	}
	err := errors.Join(errs...)
	for c := range conns {
		_ = c.Close()
	}
	l.wg.Wait()
	if err != nil {
		return fmt.Errorf("close raft listener: %w", err)
	}
	return nil
}

// Addr implements net.Listener with the advertised address.
func (l *tlsLayer) Addr() net.Addr { return l.advertise }

// trackedConn forgets its socket in the layer when raft closes it.
type trackedConn struct {
	net.Conn // *tls.Conn
	raw      net.Conn
	layer    *tlsLayer
}

// Read reports a connection cut by the layer's own Close as a clean EOF: the
// node is shutting down on purpose, which raft would otherwise log as a
// decode error on every inbound connection.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.layer.ctx.Err() != nil {
		err = io.EOF
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.layer.untrack(c.raw)
	return c.Conn.Close()
}
