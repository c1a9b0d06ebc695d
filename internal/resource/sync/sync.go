package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// StampFile is written into every destination tree after a successful pass. It
// lives in the copy, so a node taking over can tell how old its data is without
// asking the (possibly dead) node that wrote it.
const StampFile = ".vigil-sync-stamp"

// ioTimeout is rsync's --timeout: a peer that dies mid-transfer must not hang
// the pass (and every later one) for ever.
const ioTimeout = 60 * time.Second

// Peer is a node the data is copied to.
type Peer struct {
	Name string
	Addr string // IP address, reachable from this node
}

// Options are what the agent knows beyond the resource's config.
type Options struct {
	Logger *slog.Logger
	Self   string // this node's name, written into the stamps
	Peers  []Peer // the targets; this node is skipped if listed
	Rsync  string // the rsync program; "" means rsync from PATH
	Port   int    // rsync daemon port; 0 means rsync's default (873)
}

// Syncer is one sync resource on one node. It only ever copies outwards: it runs
// where the group runs, so the direction follows the group.
type Syncer struct {
	r   config.Resource
	opt Options

	interval time.Duration
	// lastOK is the start time (unix ns) of the last pass that reached every
	// peer; started is when Start ran. Both are read by Lag from any goroutine.
	lastOK  atomic.Int64
	started atomic.Int64
	// progress is per target; the map is fixed by New, its values are atomic.
	progress map[string]*progress

	// loop is the pass loop's lifetime; only Start and Stop touch these, and the
	// agent calls them from one goroutine.
	cancel context.CancelFunc
	done   chan struct{}
	// lastErr holds the last pass's error text for Monitor's output.
	lastErr atomic.Value
}

// progress is one target's replication, read from any goroutine.
type progress struct {
	lastOK atomic.Int64 // start (unix ns) of the last pass that reached the target; 0: none since Start
	err    atomic.Value // string: the last pass's failure for the target, "" if it succeeded
}

// TargetStatus is the replication to one target as the source sees it.
type TargetStatus struct {
	Target string
	// LastPass is the start of the last pass that reached Target: the copy there
	// has every write made here before it. Zero when none has since Start.
	LastPass time.Time
	// Lag is the time since LastPass, or since Start when no pass reached Target yet.
	Lag time.Duration
	// Err is why the last pass to Target failed; "" when it succeeded.
	Err string
}

// New checks the resource and returns a stopped syncer.
func New(r config.Resource, opt Options) (*Syncer, error) {
	if len(r.Paths) == 0 {
		return nil, errors.New("sync: no paths")
	}
	for _, p := range r.Paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("sync: %q is not an absolute path", p)
		}
	}
	switch r.Transport {
	case "", "ssh", "rsyncd":
	default:
		return nil, fmt.Errorf("sync: transport %q: use ssh or rsyncd", r.Transport)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Rsync == "" {
		opt.Rsync = "rsync"
	}
	s := &Syncer{r: r, opt: opt, interval: time.Duration(r.Interval), progress: map[string]*progress{}}
	if s.interval <= 0 {
		s.interval = config.DefaultSyncInterval
	}
	s.lastErr.Store("")
	for _, p := range opt.Peers {
		if p.Name != opt.Self {
			pr := &progress{}
			pr.err.Store("")
			s.progress[p.Name] = pr
		}
	}
	return s, nil
}

// Start reports how old this node's copy is (the data-loss window of a takeover)
// and starts replicating outwards: a first pass at once, then one per interval,
// and one a second after files change (when inotify can watch the paths).
func (s *Syncer) Start(ctx context.Context) (resource.Output, error) {
	t0 := time.Now()
	text := s.CopyAge(t0)
	if s.done == nil {
		loopCtx, cancel := context.WithCancel(context.Background())
		s.cancel, s.done = cancel, make(chan struct{})
		s.resetProgress()
		s.started.Store(t0.UnixNano())
		go s.loop(loopCtx, s.done)
	}
	s.opt.Logger.Info("sync started", "copy", text)
	return resource.Output{Text: text, Duration: time.Since(t0)}, nil
}

// Copy is what this node's copy of one path says about itself.
type Copy struct {
	Path  string
	Stamp Stamp // zero when Err is set
	// Err wraps os.ErrNotExist when the path holds no stamp: it never received
	// a copy, or this node was always the source.
	Err error
}

// Paths are the directories this resource replicates.
func (s *Syncer) Paths() []string { return append([]string(nil), s.r.Paths...) }

// Copies reads the stamp of every path: which node last copied it here, and as
// of when.
func (s *Syncer) Copies() []Copy {
	out := make([]Copy, 0, len(s.r.Paths))
	for _, p := range s.r.Paths {
		st, err := ReadStamp(p)
		out = append(out, Copy{Path: p, Stamp: st, Err: err})
	}
	return out
}

// CopyAge describes, per path, when this node's copy was last written by a pass
// from another node, relative to now.
func (s *Syncer) CopyAge(now time.Time) string {
	var lines []string
	for _, c := range s.Copies() {
		p, st, err := c.Path, c.Stamp, c.Err
		switch {
		case errors.Is(err, os.ErrNotExist):
			lines = append(lines, fmt.Sprintf("%s: no sync stamp (never received a copy here, or this node was always the source)", p))
		case err != nil:
			lines = append(lines, fmt.Sprintf("%s: %v", p, err))
		default:
			lines = append(lines, fmt.Sprintf("%s: copy from %s as of %s, %s old (writes after that on %s are not here)",
				p, st.From, st.Time.UTC().Format(time.RFC3339Nano), now.Sub(st.Time).Round(time.Millisecond), st.From))
		}
	}
	return strings.Join(lines, "\n")
}

// Stop ends the pass loop, killing a pass in progress. The caller may then run
// one last Pass, while it is sure the group cannot start elsewhere (the agent
// does, while its lease holds), so that the last writes made here are not lost
// to the next pass from wherever the group goes.
func (s *Syncer) Stop(ctx context.Context) (resource.Output, error) {
	if s.done == nil {
		return resource.Output{Text: "not running"}, nil
	}
	s.cancel()
	select {
	case <-s.done:
	case <-ctx.Done():
		return resource.Output{}, fmt.Errorf("sync: stop: the pass did not end: %w", ctx.Err())
	}
	s.cancel, s.done = nil, nil
	s.started.Store(0)
	s.resetProgress()
	return resource.Output{Text: "stopped"}, nil
}

// resetProgress forgets the passes of a previous run (and a final pass made
// after Stop): lag counts from Start.
func (s *Syncer) resetProgress() {
	s.lastOK.Store(0)
	for _, pr := range s.progress {
		pr.lastOK.Store(0)
		pr.err.Store("")
	}
}

// Monitor reports running while the loop runs. A peer that cannot be reached is
// not a failure of the group (it is often the node that just died): it shows as
// lag and in the output.
func (s *Syncer) Monitor(ctx context.Context) (resource.State, resource.Output, error) {
	if s.done == nil {
		return resource.Stopped, resource.Output{Text: "not running"}, nil
	}
	select {
	case <-s.done:
		return resource.Failed, resource.Output{Text: "the sync loop ended"}, nil
	default:
	}
	text := fmt.Sprintf("lag %s", s.Lag(time.Now()).Round(time.Second))
	if e, _ := s.lastErr.Load().(string); e != "" {
		text += "; last pass: " + e
	}
	return resource.Running, resource.Output{Text: text}, nil
}

// Lag is the replication lag: the time since the start of the last pass that
// reached every peer (writes since then may exist only here), or since Start if
// none has. Zero when not running.
func (s *Syncer) Lag(now time.Time) time.Duration {
	ok := s.lastOK.Load()
	if ok == 0 {
		ok = s.started.Load()
	}
	if ok == 0 || s.started.Load() == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, ok))
}

// Targets reports the replication to each target, in the order of the peers;
// nil when not running.
func (s *Syncer) Targets(now time.Time) []TargetStatus {
	started := s.started.Load()
	if started == 0 {
		return nil
	}
	var out []TargetStatus
	for _, p := range s.opt.Peers {
		pr, ok := s.progress[p.Name]
		if !ok {
			continue
		}
		ts := TargetStatus{Target: p.Name, Lag: now.Sub(time.Unix(0, started))}
		if ok := pr.lastOK.Load(); ok != 0 {
			ts.LastPass = time.Unix(0, ok)
			ts.Lag = now.Sub(ts.LastPass)
		}
		ts.Err, _ = pr.err.Load().(string)
		out = append(out, ts)
	}
	return out
}

// Active says whether the resource runs here (between Start and Stop); safe from
// any goroutine.
func (s *Syncer) Active() bool { return s.started.Load() != 0 }

// changeSettle lets a burst of writes (an unpacked archive, a deploy) end before
// the pass it triggers starts.
const changeSettle = time.Second

func (s *Syncer) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	trigger := make(chan struct{}, 1)
	watching, ready := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watching)
		if err := watchTrees(ctx, s.r.Paths, trigger, ready); err != nil {
			s.opt.Logger.Warn("sync: changes are not watched, only the periodic pass runs", "err", err)
		}
	}()
	// Runs before close(done): Stop returns only once the watcher has ended too.
	defer func() { <-watching }()
	// The first pass waits for the watches, so no change made during it is missed.
	select {
	case <-ready:
	case <-ctx.Done():
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
			if soon := time.Now().Add(changeSettle); soon.Before(next) {
				next = soon
				t.Reset(changeSettle)
			}
			continue
		case <-t.C:
		}
		if err := s.Pass(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.lastErr.Store(err.Error())
			s.opt.Logger.Warn("sync pass failed", "err", err)
		} else {
			s.lastErr.Store("")
		}
		next = time.Now().Add(s.interval)
		t.Reset(s.interval)
	}
}

// Pass copies every path to every peer once, then stamps each copy. It tries
// every peer even when one fails, and returns the failures joined.
func (s *Syncer) Pass(ctx context.Context) error {
	start := time.Now()
	var errs []error
	for _, p := range s.opt.Peers {
		if p.Name == s.opt.Self {
			continue
		}
		err := s.passTo(ctx, p, start)
		if ctx.Err() != nil {
			// Cut short by Stop: says nothing about the target.
			return errors.Join(append(errs, err)...)
		}
		pr := s.progress[p.Name]
		if err != nil {
			errs = append(errs, err)
			pr.err.Store(err.Error())
			continue
		}
		pr.lastOK.Store(start.UnixNano())
		pr.err.Store("")
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.lastOK.Store(start.UnixNano())
	return nil
}

func (s *Syncer) passTo(ctx context.Context, p Peer, start time.Time) error {
	for _, path := range s.r.Paths {
		src := strings.TrimSuffix(filepath.Clean(path), "/") + "/"
		dst, err := s.dest(p, path)
		if err != nil {
			return err
		}
		// The stamp is excluded so that --delete keeps the destination's stamp and
		// a stamp this node received while it was a standby is never sent back.
		args := []string{"-a", "--delete", "--mkpath", "--exclude=/" + StampFile}
		if s.r.BWLimit != "" {
			// Keeps bulk copies from crowding the heartbeat network they share.
			args = append(args, "--bwlimit="+s.r.BWLimit)
		}
		if err := s.rsync(ctx, p, append(args, src, dst)...); err != nil {
			return fmt.Errorf("sync %s to %s: %w", path, p.Name, err)
		}
		// Stamped only after the data arrived: the stamp never claims more than was copied.
		tmp, err := writeTempStamp(Stamp{From: s.opt.Self, Time: start})
		if err != nil {
			return fmt.Errorf("sync %s to %s: %w", path, p.Name, err)
		}
		err = s.rsync(ctx, p, "--chmod=F644", tmp, dst+StampFile)
		_ = os.Remove(tmp)
		if err != nil {
			return fmt.Errorf("sync %s to %s: stamp: %w", path, p.Name, err)
		}
	}
	return nil
}

// dest is the rsync destination of path on p: over ssh the same path, through a
// daemon the path under the module (whose path is / on a real node).
func (s *Syncer) dest(p Peer, path string) (string, error) {
	a, err := netip.ParseAddr(p.Addr)
	if err != nil {
		return "", fmt.Errorf("sync to %s: address %q: %w", p.Name, p.Addr, err)
	}
	host := a.String()
	clean := strings.TrimSuffix(filepath.Clean(path), "/") + "/"
	switch s.r.Transport {
	case "rsyncd":
		if a.Is6() {
			host = "[" + host + "]"
		}
		if s.opt.Port != 0 {
			host = fmt.Sprintf("%s:%d", host, s.opt.Port)
		}
		module := s.r.Module
		if module == "" {
			module = config.DefaultSyncModule
		}
		return fmt.Sprintf("rsync://%s@%s/%s%s", s.user(), host, module, clean), nil
	default:
		if a.Is6() {
			host = "[" + host + "]"
		}
		return fmt.Sprintf("%s@%s:%s", s.user(), host, clean), nil
	}
}

func (s *Syncer) user() string {
	if s.r.User != "" {
		return s.r.User
	}
	if s.r.Transport == "rsyncd" {
		return config.DefaultSyncModule
	}
	return "root"
}

func (s *Syncer) rsync(ctx context.Context, p Peer, args ...string) error {
	argv := []string{s.opt.Rsync, fmt.Sprintf("--timeout=%d", int(ioTimeout.Seconds()))}
	var env []string
	switch s.r.Transport {
	case "rsyncd":
		argv = append(argv, "--password-file="+s.r.SecretsFile)
	default:
		// BatchMode: a missing key must fail the pass, not wait for a password.
		ssh := "ssh -o BatchMode=yes -o ConnectTimeout=10"
		if s.r.KeyFile != "" {
			// Only that key: ssh would otherwise offer ~/.ssh's keys first.
			ssh += " -o IdentitiesOnly=yes -i " + s.r.KeyFile
		}
		if s.r.KnownHosts != "" {
			// The targets' host keys come from the operator's file, and nothing
			// else is accepted: a changed or unknown key fails the pass.
			ssh += " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + s.r.KnownHosts
		}
		if s.opt.Port != 0 {
			ssh += fmt.Sprintf(" -p %d", s.opt.Port)
		}
		argv = append(argv, "-e", ssh)
		// ssh reads known_hosts under HOME, which runexec's minimal environment lacks.
		if h := os.Getenv("HOME"); h != "" {
			env = append(env, "HOME="+h)
		}
	}
	argv = append(argv, args...)
	// DieWithAgent: a pass that outlived a killed agent could still be copying
	// after the group has started elsewhere, backwards over the new copy.
	res, err := runexec.Run(ctx, runexec.Cmd{Argv: argv, Env: env, DieWithAgent: true})
	if err != nil {
		return fmt.Errorf("rsync: %w", err)
	}
	if rerr := res.Err(); rerr != nil {
		return fmt.Errorf("rsync %s: %w: %s", exitMeaning(res.ExitCode), rerr, lastLines(res.Output))
	}
	return nil
}

// exitMeaning names the rsync exit codes an operator meets, from rsync(1).
func exitMeaning(code int) string {
	switch code {
	case 4:
		return "refused by the target (with rsyncd, its pre-xfer exec: the sync guard refuses while the target runs the group)"
	case 5:
		return "could not start the transfer (authentication failed or module refused)"
	case 10:
		return "socket error (peer down or daemon not listening)"
	case 12:
		return "protocol stream error"
	case 23, 24:
		return "partial transfer"
	case 30:
		return "timed out"
	case 255:
		return "ssh failed (unreachable or key refused)"
	}
	return "failed"
}

func lastLines(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}
