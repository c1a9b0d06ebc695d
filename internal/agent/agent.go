package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/console"
	"github.com/vigil-ha/vigil/internal/grouprun"
	"github.com/vigil-ha/vigil/internal/heartbeat"
	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/pki"
	"github.com/vigil-ha/vigil/internal/store"
	"github.com/vigil-ha/vigil/internal/workflow/runner"
)

// Options configure one agent.
type Options struct {
	Config  *config.Config
	Node    string
	DataDir string
	Logger  *slog.Logger
	// RaftHeartbeat overrides the raft heartbeat timeout; zero derives it from deadtime.
	RaftHeartbeat time.Duration
	// Factory builds resource agents; nil uses the built-in types.
	Factory grouprun.Factory
}

// Agent is one running node. Build it with New, then call Run once.
type Agent struct {
	cfg    *config.Config
	self   config.Node
	opt    Options
	log    *slog.Logger
	token  string
	hmac   []byte
	caPEM  []byte
	peerTL *tls.Config // client side, with this node's certificate
	srvTLS *tls.Config

	incarnation uint64
	refused     map[string]membership.Epoch

	syncs syncRegistry // the sync resources, for the replication lag metric

	drills drillRuns // the drills this node runs (drills.go)

	start time.Time // monotonic origin of the engine's clock
	view  atomic.Pointer[membership.View]

	transport *heartbeat.Transport
	store     *store.Store
	shipper   *shipper
	coord     *coordinator
	checks    *checks // nil when this node probes nothing
	runner    *grouprun.Runner
	wf        *runner.Engine // this node's workflow engine (workflows.go)
	steps     stepMetrics    // workflow step durations (metrics_steps.go)
	releaseCh chan string

	lastGroups groupsSeen                          // loop only
	rtt        *heartbeat.RTTMeter                 // loop only
	rtts       atomic.Pointer[[]heartbeat.LinkRTT] // the loop's last RTT snapshot, for /metrics
	isolated   bool                                // loop only

	// notif delivers notifications while this node coordinates (notify.go).
	notif notifier

	// bg tracks short-lived background work (isolation scripts); bgCtx ends with Run.
	bg    *sync.WaitGroup
	bgCtx context.Context

	clientsMu sync.Mutex
	clients   map[string]*apiclient.Client // guarded by clientsMu; per peer, for forwarding
}

// New loads secrets and local state; nothing listens until Run.
func New(opt Options) (*Agent, error) {
	cfg := opt.Config
	self, ok := cfg.Node(opt.Node)
	if !ok {
		return nil, fmt.Errorf("node %q is not in %s (nodes: %v)", opt.Node, cfg.Path, cfg.NodeNames())
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	a := &Agent{cfg: cfg, self: self, opt: opt, log: opt.Logger.With("node", self.Name),
		releaseCh: make(chan string, 1), clients: map[string]*apiclient.Client{}, rtt: heartbeat.NewRTTMeter()}
	if err := a.loadSecrets(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var err error
	if a.incarnation, err = nextIncarnation(opt.DataDir, time.Now()); err != nil {
		return nil, err
	}
	if a.refused, err = loadRefusals(opt.DataDir); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Agent) loadSecrets() error {
	var err error
	if a.caPEM, err = os.ReadFile(a.cfg.SecretsPath("ca.crt")); err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	certPEM, err := os.ReadFile(a.cfg.SecretsPath("nodes", a.self.Name+".crt"))
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(a.cfg.SecretsPath("nodes", a.self.Name+".key"))
	if err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	if a.peerTL, err = pki.PeerTLS(a.caPEM, certPEM, keyPEM); err != nil {
		return fmt.Errorf("peer TLS: %w", err)
	}
	if a.srvTLS, err = pki.ServerTLS(a.caPEM, certPEM, keyPEM); err != nil {
		return fmt.Errorf("API TLS: %w", err)
	}
	if a.hmac, err = pki.LoadHMACKey(a.cfg.SecretsPath("heartbeat.key")); err != nil {
		return err
	}
	if a.token, err = pki.LoadToken(a.cfg.SecretsPath("operator.token")); err != nil {
		return err
	}
	return nil
}

// Run starts every subsystem and blocks until ctx is done or one of them fails;
// it stops and waits for all of them before returning.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.start = time.Now()
	engine, err := a.newEngine()
	if err != nil {
		return err
	}
	if err := a.openTransport(); err != nil {
		return err
	}
	defer a.transport.Close()
	if err := a.openStore(); err != nil {
		return err
	}
	defer a.store.Close()
	servers, err := a.listenAPI()
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	goFn := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	if err := a.cleanupVIPs(ctx); err != nil {
		return err
	}
	// Before the groups: workflow resources run on the engine, and their stop
	// workflows need it until the group workers are done.
	if err := a.openWorkflows(); err != nil {
		return err
	}
	defer a.closeWorkflows()
	if a.runner, err = a.newRunner(); err != nil {
		return err
	}
	if a.checks, err = a.newChecks(); err != nil {
		return err
	}
	a.coord = newCoordinator()
	a.bg, a.bgCtx = &sync.WaitGroup{}, ctx
	defer a.bg.Wait()
	recv := make(chan heartbeat.Received, 256)
	a.shipper = newShipper(a.ship, a.log)
	// What a previous run left goes before the first heartbeat announces this
	// incarnation, which ends that run's epoch at once (Runner.CleanupAtStart).
	a.runner.CleanupAtStart(ctx)
	// Heartbeats (and so the lease) outlive the other subsystems at shutdown: the
	// groups are stopped first, while this node still holds its lease, so no peer
	// can take them over while they still run here.
	loopCtx, loopCancel := context.WithCancel(context.Background())
	defer loopCancel()
	goFn("heartbeat transport", func(context.Context) error { return a.transport.Run(loopCtx, recv) })
	goFn("event shipper", a.shipper.run)
	goFn("coordinator", a.runCoordinator)
	goFn("notifications", a.runNotifications)
	runnerDone := make(chan struct{})
	goFn("groups", func(ctx context.Context) error {
		defer close(runnerDone)
		return a.runner.Run(ctx)
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		select {
		case <-runnerDone:
		case <-time.After(stopGroupsTimeout):
			a.log.Error("groups did not stop in time; stopping heartbeats anyway")
		}
		loopCancel()
	}()
	if a.checks != nil {
		goFn("checks", a.runChecks)
	}
	goFn("split-brain probes", a.runSplitBrain)
	goFn("sync guard watch", a.watchUnguarded)
	goFn("workflow events", a.reportWorkflows)
	goFn("drill schedule", a.runDrillSchedule)
	for _, srv := range servers {
		goFn("api "+srv.addr, srv.serve)
	}
	a.log.Info("agent started", "incarnation", a.incarnation, "cluster", a.cfg.Cluster.Name,
		"addresses", a.self.Addresses, "keepalive", a.cfg.Cluster.Timing.Keepalive.D(),
		"deadtime", a.cfg.Cluster.Timing.Deadtime.D(), "lease", a.cfg.Cluster.Timing.LeaseDuration())
	loopErr := a.loop(loopCtx, engine, recv)
	cancel(loopErr)
	loopCancel()
	wg.Wait()
	// The group workers reported their stops while shutting down: hand those
	// reports to the coordinator, which waits for them before moving the groups.
	dctx, dcancel := context.WithTimeout(context.Background(), shutdownDrain)
	a.shipper.drain(dctx)
	dcancel()
	a.closeClients()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	a.log.Info("agent stopped")
	return nil
}

// stopGroupsTimeout bounds how long a stopping agent keeps heartbeating while its
// groups stop (the runner's own stops are bounded too).
const stopGroupsTimeout = 60 * time.Second

// Release makes this node give up its lease (used by later subsystems and tests).
func (a *Agent) Release(reason string) {
	select {
	case a.releaseCh <- reason:
	default:
	}
}

func (a *Agent) now() time.Duration { return time.Since(a.start) }

func (a *Agent) newEngine() (*membership.Engine, error) {
	t := a.cfg.Cluster.Timing
	var members []membership.Member
	for _, n := range a.cfg.Nodes {
		members = append(members, membership.Member{Name: n.Name, Witness: n.Witness, Links: len(n.Addresses)})
	}
	return membership.New(membership.Config{
		Self: a.self.Name, Incarnation: a.incarnation, Members: members,
		Keepalive: t.Keepalive.D(), Warntime: t.Warntime.D(), Deadtime: t.Deadtime.D(), Initdead: t.Initdead.D(),
		Lease: t.LeaseDuration(), Refused: a.refused,
	}, a.now())
}

func (a *Agent) openTransport() error {
	var err error
	a.transport, err = heartbeat.Listen(heartbeat.Config{
		Key: a.hmac, Listen: a.self.Addresses, Port: a.cfg.Cluster.Ports.Heartbeat,
		Known: a.cfg.NodeNames(), Self: a.self.Name,
	})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

func (a *Agent) openStore() error {
	var peers []store.Peer
	for _, n := range a.cfg.Nodes {
		addrs := a.cfg.RaftAddrs(n)
		peers = append(peers, store.Peer{ID: n.Name, Addr: addrs[0], Alternates: addrs[1:]})
	}
	var err error
	a.store, err = store.Open(store.Config{
		NodeID: a.self.Name, Peers: peers, DataDir: filepath.Join(a.opt.DataDir, "raft"),
		TLS: a.peerTL, Logger: a.log, HeartbeatTimeout: a.raftHeartbeat(),
	})
	if err != nil {
		return fmt.Errorf("replicated log: %w", err)
	}
	return nil
}

type apiServer struct {
	addr string
	ln   net.Listener
	srv  *http.Server
}

func (s *apiServer) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

func (a *Agent) listenAPI() ([]*apiServer, error) {
	// The web console at / on every node, over the API (which it serves at /v1/).
	sla := map[string]float64{}
	for _, g := range a.cfg.Groups {
		sla[g.Name] = g.SLA
	}
	con, err := console.New(console.Options{API: httpapi.New(a, a.token, a.log), Logger: a.log, SLA: sla})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	h := a.withMetrics(con) // metrics.go: /metrics beside the API
	var out []*apiServer
	for _, addr := range a.cfg.APIAddrs(a.self) {
		ln, err := tls.Listen("tcp", addr, a.srvTLS)
		if err != nil {
			for _, s := range out {
				s.ln.Close()
			}
			return nil, fmt.Errorf("api listen %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)}
		srv.RegisterOnShutdown(con.Close) // Shutdown waits for requests; the console's live streams end here
		out = append(out, &apiServer{addr: addr, ln: ln, srv: srv})
	}
	return out, nil
}

func (a *Agent) closeClients() {
	a.clientsMu.Lock()
	defer a.clientsMu.Unlock()
	for _, c := range a.clients {
		c.Close()
	}
}

// raftHeartbeat ties the consensus timers to deadtime. Failure detection is the
// heartbeats' job; raft only has to elect a new coordinator within about the time a
// lease takes to expire. Its leader sends a heartbeat every tenth of this timeout,
// the biggest share of an idle node's CPU, so it is no shorter than it must be.
func (a *Agent) raftHeartbeat() time.Duration {
	if a.opt.RaftHeartbeat > 0 {
		return a.opt.RaftHeartbeat
	}
	return min(max(a.cfg.Cluster.Timing.Deadtime.D()/2, 200*time.Millisecond), 2*time.Second)
}
