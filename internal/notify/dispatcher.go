package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Retry defaults: quick enough to ride out a receiver's restart, slow enough
// not to hammer one that is down.
const (
	DefaultRetryMin = time.Second
	DefaultRetryMax = 5 * time.Minute
)

// indexFlushEvery bounds how stale the last dispatched index on disk may be when
// no notification was queued (events no route matched): losing it costs at most
// a re-evaluation of those events, so it is not worth a sync per event.
const indexFlushEvery = 5 * time.Second

// Errors from Run.
var (
	ErrRunning = errors.New("notification dispatcher already running")
	ErrClosed  = errors.New("notification dispatcher closed")
)

// Options configure a Dispatcher.
type Options struct {
	Node    string // this node, named in payloads as the sender
	Cluster string // cluster name, the first part of a payload's id
	// StateDir holds the spool; "" keeps undelivered notifications in memory only.
	StateDir string
	// ConfigDir resolves relative paths (secret_file, password_file, ca_file, dir).
	ConfigDir string
	Logger    *slog.Logger
	Now       func() time.Time
	// RetryMin and RetryMax bound the exponential backoff between attempts.
	RetryMin, RetryMax time.Duration
}

// Dispatcher queues notifications per target and delivers them with retries.
// Notify never waits for a receiver; each target has its own worker, so a slow
// one delays only itself.
type Dispatcher struct {
	cfg       Config
	opt       Options
	log       *slog.Logger
	queueSize int
	maxAge    time.Duration
	targets   []*target
	byName    map[string]*target
	spool     *spool // nil without StateDir

	persistWake chan struct{}
	flushMu     sync.Mutex // one spool writer at a time, so ops land in order

	mu         sync.Mutex
	nextID     uint64      // guarded by mu
	lastIndex  uint64      // guarded by mu
	indexDirty bool        // guarded by mu
	ops        []op        // guarded by mu: spool changes not yet written
	resync     bool        // guarded by mu: the spool must be rewritten from memory
	logs       []logRecord // guarded by mu: written by unlock, so a slow log never holds the lock
	running    bool        // guarded by mu
	closed     bool        // guarded by mu
}

type target struct {
	name    string
	typ     string
	timeout time.Duration
	send    sender
	wake    chan struct{}

	queue    []*item  // guarded by Dispatcher.mu; oldest first
	busy     *item    // guarded by Dispatcher.mu; being delivered, never dropped
	counters counters // guarded by Dispatcher.mu
	failing  bool     // guarded by Dispatcher.mu; to log the first failure and the recovery only
	dropping bool     // guarded by Dispatcher.mu; to log the first drop until the next delivery
}

// sender delivers one notification. It returns a permanentError when retrying cannot help.
type sender interface {
	send(ctx context.Context, p Payload) error
	close()
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// New builds a dispatcher for cfg (validated by the config loader) and loads the
// notifications a previous run left undelivered. Nothing is sent until Run.
func New(cfg Config, opt Options) (*Dispatcher, error) {
	if ps := cfg.Validate("notifications"); len(ps) > 0 {
		return nil, fmt.Errorf("notifications: %s", ps[0])
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = DefaultRetryMin
	}
	if opt.RetryMax < opt.RetryMin {
		opt.RetryMax = max(DefaultRetryMax, opt.RetryMin)
	}
	d := &Dispatcher{cfg: cfg, opt: opt, log: opt.Logger, queueSize: cfg.QueueSize, maxAge: cfg.MaxAge.D(),
		byName: map[string]*target{}, persistWake: make(chan struct{}, 1)}
	if d.queueSize == 0 {
		d.queueSize = DefaultQueueSize
	}
	if d.maxAge == 0 {
		d.maxAge = DefaultMaxAge
	}
	for _, tc := range cfg.Targets {
		s, timeout, err := newSender(tc, opt)
		if err != nil {
			// A target that cannot be set up (an unreadable ca_file) must not keep the
			// agent from starting: its notifications wait, visibly, for a fixed config.
			opt.Logger.Error("notification target unusable", "target", tc.Name, "err", err)
			s = brokenSender{fmt.Errorf("target unusable: %w", err)}
		}
		t := &target{name: tc.Name, typ: tc.Type, timeout: timeout, send: s, wake: make(chan struct{}, 1)}
		d.targets = append(d.targets, t)
		d.byName[t.name] = t
	}
	if opt.StateDir != "" {
		if err := d.openSpool(); err != nil {
			d.closeSenders()
			return nil, err
		}
	}
	d.mu.Lock()
	d.unlock() // what loading logged
	return d, nil
}

func (d *Dispatcher) openSpool() error {
	sp, err := openSpool(d.opt.StateDir)
	if err != nil {
		return err
	}
	l, err := sp.load()
	if err != nil {
		sp.close()
		return err
	}
	d.spool = sp
	d.lastIndex = l.lastIndex
	if l.corrupt > 0 {
		d.log.Warn("notification spool: unreadable records discarded", "count", l.corrupt)
	}
	for name, q := range l.queues {
		if q[len(q)-1].ID > d.nextID {
			d.nextID = q[len(q)-1].ID
		}
		t, ok := d.byName[name]
		if !ok {
			d.log.Warn("notification target removed from the config: its undelivered notifications are discarded",
				"target", name, "count", len(q))
			if err := sp.dropTarget(name); err != nil {
				d.log.Warn("notification spool", "err", err)
			}
			continue
		}
		t.queue = q
	}
	for _, t := range d.targets {
		t.counters = l.stats[t.name]
		// A smaller queue_size than last time: keep the newest.
		for len(t.queue) > d.queueSize {
			d.dropOldestLocked(t)
		}
		if n := len(t.queue); n > 0 {
			d.log.Info("undelivered notifications from the previous run", "target", t.name, "count", n)
		}
	}
	return nil
}

// Notify queues ev for every target a route sends it to. It never blocks on a
// receiver or the disk. ev.Index, when set, is recorded as dispatched (LastIndex).
func (d *Dispatcher) Notify(ev model.Event) {
	deliveries := d.cfg.Match(ev)
	now := d.opt.Now()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		d.log.Debug("notification after close discarded", "event", ev.Kind, "index", ev.Index)
		return
	}
	if ev.Index > d.lastIndex {
		d.lastIndex, d.indexDirty = ev.Index, true
	}
	var woken []*target
	for _, del := range deliveries {
		t := d.byName[del.Target]
		if t == nil {
			continue // Validate refuses routes to unknown targets
		}
		d.nextID++
		it := &item{ID: d.nextID, Target: t.name, Routes: del.Routes, Event: ev, Created: now}
		if len(t.queue) >= d.queueSize {
			d.dropOldestLocked(t)
		}
		t.queue = append(t.queue, it)
		d.putLocked(it)
		woken = append(woken, t)
	}
	d.unlock()
	for _, t := range woken {
		poke(t.wake)
	}
	if len(woken) > 0 {
		poke(d.persistWake)
	}
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs []any
}

func (d *Dispatcher) logLocked(level slog.Level, msg string, attrs ...any) {
	d.logs = append(d.logs, logRecord{level, msg, attrs})
}

// unlock releases mu, then writes what was logged under it: Notify must not wait
// for a log sink that is slow (a stalled journald, a test's output).
func (d *Dispatcher) unlock() {
	logs := d.logs
	d.logs = nil
	d.mu.Unlock()
	for _, r := range logs {
		d.log.Log(context.Background(), r.level, r.msg, r.attrs...)
	}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dropOldestLocked makes room in a full queue: the oldest waiting notification
// goes, except one being delivered right now.
func (d *Dispatcher) dropOldestLocked(t *target) {
	for i, it := range t.queue {
		if it == t.busy {
			continue
		}
		t.queue = append(t.queue[:i:i], t.queue[i+1:]...)
		t.counters.Dropped++
		d.deleteLocked(it)
		level := slog.LevelDebug
		if !t.dropping {
			// Once per episode: a flood must not turn into a flood of log lines.
			t.dropping, level = true, slog.LevelWarn
		}
		d.logLocked(level, "notification queue full: oldest notification dropped", "target", t.name,
			"event", it.Event.Kind, "index", it.Event.Index, "queue_size", d.queueSize)
		return
	}
}

func (d *Dispatcher) putLocked(it *item) {
	data, err := json.Marshal(it)
	if err != nil {
		// Cannot happen for these types; the notification still lives in memory.
		d.logLocked(slog.LevelError, "notification not spooled", "err", err)
		return
	}
	d.ops = append(d.ops, op{target: it.Target, id: it.ID, data: data})
}

func (d *Dispatcher) deleteLocked(it *item) {
	d.ops = append(d.ops, op{target: it.Target, id: it.ID})
}

// LastIndex is the highest event index handed to Notify, as restored from the spool
// at New; the agent resumes after it when this node becomes coordinator again.
func (d *Dispatcher) LastIndex() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastIndex
}

// Run delivers until ctx ends, then writes the spool and returns once every
// goroutine it started has ended. Undelivered notifications stay in the spool.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	if d.running {
		d.mu.Unlock()
		return ErrRunning
	}
	d.running = true
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range d.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx, t)
		}()
	}
	d.persist(ctx)
	wg.Wait()
	d.flush() // what the workers changed while stopping
	d.mu.Lock()
	d.running = false
	d.mu.Unlock()
	return nil
}

// Close writes what is pending and releases the spool and the senders'
// connections. Call it after Run has returned.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.flush()
	d.closeSenders()
	if d.spool != nil {
		return d.spool.close()
	}
	return nil
}

func (d *Dispatcher) closeSenders() {
	for _, t := range d.targets {
		t.send.close()
	}
}

// persist writes spool changes as they come, batching whatever accumulated while
// the previous transaction synced.
func (d *Dispatcher) persist(ctx context.Context) {
	tick := time.NewTicker(indexFlushEvery)
	defer tick.Stop()
	d.flush()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.persistWake:
			d.flush()
		case <-tick.C:
			d.mu.Lock()
			dirty := d.indexDirty || len(d.ops) > 0 || d.resync
			d.mu.Unlock()
			if dirty {
				d.flush()
			}
		}
	}
}

func (d *Dispatcher) flush() {
	if d.spool == nil {
		d.mu.Lock()
		d.ops = nil
		d.mu.Unlock()
		return
	}
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.Lock()
	ops, idx, resync := d.ops, d.lastIndex, d.resync
	d.ops, d.indexDirty, d.resync = nil, false, false
	stats := make(map[string]counters, len(d.targets))
	var all map[string][]op
	for _, t := range d.targets {
		stats[t.name] = t.counters
	}
	if resync {
		all = make(map[string][]op, len(d.targets))
		for _, t := range d.targets {
			for _, it := range t.queue {
				if data, err := json.Marshal(it); err == nil {
					all[t.name] = append(all[t.name], op{target: t.name, id: it.ID, data: data})
				}
			}
		}
	}
	d.mu.Unlock()
	var err error
	if resync {
		err = d.spool.rewrite(all, idx, stats)
	} else {
		err = d.spool.apply(ops, idx, stats)
	}
	if err != nil {
		// The notifications are still in memory; the next write rewrites the spool whole.
		d.log.Error("notification spool not written; undelivered notifications would not survive a restart", "err", err)
		d.mu.Lock()
		d.resync, d.indexDirty = true, true
		d.mu.Unlock()
	}
}

// work delivers t's queue in order: a notification that fails is retried
// before the next one is tried, so a receiver sees events in log order.
func (d *Dispatcher) work(ctx context.Context, t *target) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p, it, wait := d.next(t)
		if it == nil {
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			if wait <= 0 {
				wait = time.Hour
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
			case <-timer.C:
			}
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, t.timeout)
		err := t.send.send(sctx, p)
		cancel()
		if ctx.Err() != nil {
			// Stopping: the attempt was cut short by us, not by the receiver.
			d.release(t, it)
			return
		}
		d.finish(t, it, err)
	}
}

// next returns the notification due now, or how long until the head is due
// (zero: the queue is empty). Notifications past max_age are given up first.
func (d *Dispatcher) next(t *target) (Payload, *item, time.Duration) {
	d.mu.Lock()
	defer d.unlock()
	now := d.opt.Now()
	for len(t.queue) > 0 {
		it := t.queue[0]
		if now.Sub(it.Created) > d.maxAge {
			d.giveUpLocked(t, it, fmt.Sprintf("not delivered within max_age %s", d.maxAge))
			continue
		}
		if wait := it.NextTry.Sub(now); wait > 0 {
			return Payload{}, nil, wait
		}
		t.busy = it
		return d.payload(it), it, 0
	}
	return Payload{}, nil, 0
}

func (d *Dispatcher) release(t *target, it *item) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.busy == it {
		t.busy = nil
	}
}

func (d *Dispatcher) finish(t *target, it *item, err error) {
	d.mu.Lock()
	defer func() {
		d.unlock()
		poke(d.persistWake)
	}()
	t.busy = nil
	now := d.opt.Now()
	if err == nil {
		d.removeLocked(t, it)
		t.counters.Delivered++
		t.counters.LastSuccess = now
		t.dropping = false
		if t.failing {
			t.failing = false
			d.logLocked(slog.LevelInfo, "notification target delivering again", "target", t.name)
		}
		return
	}
	msg := err.Error()
	t.counters.LastError, t.counters.LastErrorAt = msg, now
	it.Attempts++
	it.LastError = msg
	var perm permanentError
	if errors.As(err, &perm) {
		d.giveUpLocked(t, it, "refused: "+msg)
		return
	}
	deadline := it.Created.Add(d.maxAge)
	if !now.Before(deadline) {
		d.giveUpLocked(t, it, fmt.Sprintf("not delivered within max_age %s: %s", d.maxAge, msg))
		return
	}
	// The last attempt happens at the deadline rather than being skipped past it.
	it.NextTry = now.Add(d.backoff(it.Attempts))
	if it.NextTry.After(deadline) {
		it.NextTry = deadline
	}
	d.putLocked(it)
	attrs := []any{"target", t.name, "event", it.Event.Kind, "index", it.Event.Index, "attempt", it.Attempts,
		"retry_in", it.NextTry.Sub(now).Round(time.Millisecond), "err", msg}
	if !t.failing {
		t.failing = true
		d.logLocked(slog.LevelWarn, "notification not delivered; retrying", attrs...)
	} else {
		d.logLocked(slog.LevelDebug, "notification not delivered; retrying", attrs...)
	}
}

func (d *Dispatcher) giveUpLocked(t *target, it *item, why string) {
	d.removeLocked(t, it)
	t.counters.Failed++
	t.counters.LastError, t.counters.LastErrorAt = why, d.opt.Now()
	d.logLocked(slog.LevelWarn, "notification given up", "target", t.name, "event", it.Event.Kind, "index", it.Event.Index,
		"attempts", it.Attempts, "reason", why)
}

func (d *Dispatcher) removeLocked(t *target, it *item) {
	for i, q := range t.queue {
		if q == it {
			t.queue = append(t.queue[:i:i], t.queue[i+1:]...)
			d.deleteLocked(it)
			return
		}
	}
}

// backoff doubles from RetryMin up to RetryMax, with ±20 % jitter so that
// targets failing together do not retry in lockstep.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.opt.RetryMin
	for i := 1; i < attempts && b < d.opt.RetryMax; i++ {
		b *= 2
	}
	b = min(b, d.opt.RetryMax)
	return time.Duration(float64(b) * (0.8 + 0.4*rand.Float64()))
}

// TargetStatus is what the API and console show about one target.
type TargetStatus struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Queued notifications are not delivered yet; they are retried and survive restarts.
	Queued int `json:"queued"`
	// Delivered, Failed (given up: refused by the receiver or older than max_age) and
	// Dropped (pushed out of a full queue) count since the spool was created.
	Delivered    uint64    `json:"delivered"`
	Failed       uint64    `json:"failed"`
	Dropped      uint64    `json:"dropped"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
	OldestQueued time.Time `json:"oldest_queued,omitzero"`
	NextAttempt  time.Time `json:"next_attempt,omitzero"`
}

// Status reports every target, in config order.
func (d *Dispatcher) Status() []TargetStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]TargetStatus, 0, len(d.targets))
	for _, t := range d.targets {
		s := TargetStatus{Name: t.name, Type: t.typ, Queued: len(t.queue), Delivered: t.counters.Delivered,
			Failed: t.counters.Failed, Dropped: t.counters.Dropped, LastError: t.counters.LastError,
			LastErrorAt: t.counters.LastErrorAt, LastSuccess: t.counters.LastSuccess}
		if len(t.queue) > 0 {
			s.OldestQueued, s.NextAttempt = t.queue[0].Created, t.queue[0].NextTry
			if s.NextAttempt.IsZero() {
				s.NextAttempt = s.OldestQueued
			}
		}
		out = append(out, s)
	}
	return out
}

// Pending is one undelivered notification, for the console.
type Pending struct {
	Target    string          `json:"target"`
	Routes    []string        `json:"routes"`
	Index     uint64          `json:"index"`
	Kind      model.EventKind `json:"kind"`
	Severity  model.Severity  `json:"severity"`
	Summary   string          `json:"summary"`
	Created   time.Time       `json:"created"`
	Attempts  int             `json:"attempts"`
	NextTry   time.Time       `json:"next_try,omitzero"`
	LastError string          `json:"last_error,omitempty"`
}

// Undelivered lists queued notifications, oldest first, at most limit (<= 0: all).
func (d *Dispatcher) Undelivered(limit int) []Pending {
	d.mu.Lock()
	var out []Pending
	for _, t := range d.targets {
		for _, it := range t.queue {
			out = append(out, Pending{Target: t.name, Routes: it.Routes, Index: it.Event.Index, Kind: it.Event.Kind,
				Severity: it.Event.Severity, Summary: Summary(it.Event), Created: it.Created, Attempts: it.Attempts,
				NextTry: it.NextTry, LastError: it.LastError})
		}
	}
	d.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
