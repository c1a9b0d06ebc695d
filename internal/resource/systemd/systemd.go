package systemd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
)

var _ resource.Agent = (*Unit)(nil)

// cleanupTimeout bounds the stop sent after a start that ran out of time: the
// caller's ctx is over by then.
const cleanupTimeout = 10 * time.Second

// watchBus is how often a wait for a job result checks that the bus is still
// there: a job result sent while the connection was down is lost.
const watchBus = 250 * time.Millisecond

// killTick is how often Kill checks whether the stop job has begun, to send
// SIGKILL: a node that lost its lease has only the margin its peers wait.
const killTick = 20 * time.Millisecond

// Options are the node-local settings of a systemd resource.
type Options struct {
	Logger *slog.Logger
	// Connect opens a bus connection to systemd; nil means the system bus
	// (sdbus.NewSystemConnectionContext, which honours $DBUS_SYSTEM_BUS_ADDRESS).
	// Its ctx bounds the connection's whole life (godbus closes the connection
	// when ctx ends), so it is the Unit's own context, cancelled by Close, and
	// never an action's ctx.
	Connect func(ctx context.Context) (*sdbus.Conn, error)
}

// Unit manages one systemd unit through systemd's D-Bus API.
//
// Monitor maps ActiveState to a resource state: active and reloading are
// Running; inactive is Stopped; failed is Failed. Of the transitional states,
// activating counts as Running (a start in progress, e.g. a Type=notify service
// not yet ready: calling it failed would make the group restart a slow unit
// over and over), except activating/auto-restart, which is a crashed service
// waiting for systemd to restart it, so Failed. deactivating is Failed: our own
// Stop waits for its job, so a unit seen going down is going down without us.
type Unit struct {
	name    string
	connect func(context.Context) (*sdbus.Conn, error)
	log     *slog.Logger

	life    context.Context // bounds connections; ended by Close
	end     context.CancelFunc
	dialing sync.WaitGroup // dials abandoned by a caller whose ctx ended

	mu   sync.Mutex // serialises actions and guards conn
	conn *sdbus.Conn
}

// New returns the agent of spec.Unit; it connects on first use.
func New(spec config.Resource, opts Options) (*Unit, error) {
	name := strings.TrimSpace(spec.Unit)
	if name == "" {
		return nil, fmt.Errorf("systemd %s: no unit", spec.Name)
	}
	if strings.ContainsAny(name, "/ ") {
		return nil, fmt.Errorf("systemd %s: %q is not a unit name (e.g. mariadb.service)", spec.Name, name)
	}
	if !strings.Contains(name, ".") {
		name += ".service" // as systemctl does
	}
	connect := opts.Connect
	if connect == nil {
		connect = sdbus.NewSystemConnectionContext
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	life, end := context.WithCancel(context.Background())
	return &Unit{
		name:    name,
		connect: connect,
		log:     lg.With("resource", spec.Name, "type", "systemd", "unit", name),
		life:    life,
		end:     end,
	}, nil
}

// Name is the unit's full name, e.g. "mariadb.service".
func (u *Unit) Name() string { return u.name }

// Start asks systemd to start the unit and waits for the job's result. When ctx
// ends first, it asks systemd to stop the unit again, so that a start the
// caller gave up on does not come up later.
func (u *Unit) Start(ctx context.Context) (resource.Output, error) {
	t0 := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	result, enqueued, err := u.job(ctx, "start", func(c *sdbus.Conn, ch chan<- string) error {
		_, err := c.StartUnitContext(ctx, u.name, "replace", ch)
		return err
	}, nil)
	if err != nil {
		if enqueued && ctx.Err() != nil {
			u.stopAfterTimeout()
			return u.output(t0, 1, "start timed out; stop requested"), fmt.Errorf("start %s: %w; stop requested", u.name, err)
		}
		return u.output(t0, 1, err.Error()), fmt.Errorf("start %s: %w", u.name, explain(err))
	}
	st := u.status(ctx)
	if result != "done" || st.Active == "failed" {
		return u.output(t0, st.exitCode(), st.String()), fmt.Errorf("start %s: job %s (%s)", u.name, result, st)
	}
	return u.output(t0, 0, st.String()), nil
}

// Stop asks systemd to stop the unit and waits for the job's result. A failed
// unit is reset, so that Monitor then says Stopped; a unit systemd does not
// know is stopped already.
func (u *Unit) Stop(ctx context.Context) (resource.Output, error) { return u.stop(ctx, false) }

// Kill is Stop without the unit's graceful shutdown (resource.Killer): with
// the stop job queued, so that systemd does not restart the unit, every
// process of the unit gets SIGKILL at once instead of after the unit's own
// stop command and TimeoutStopSec. A node that lost its lease must be done
// before any other node may start the group.
func (u *Unit) Kill(ctx context.Context) (resource.Output, error) { return u.stop(ctx, true) }

func (u *Unit) stop(ctx context.Context, kill bool) (resource.Output, error) {
	t0 := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	var sigkill func(*sdbus.Conn)
	if kill {
		// Only once the stop job runs (deactivating): processes killed
		// before it starts make systemd enter its final kill phase with
		// nothing left, and where it gets no cgroup-empty notification
		// (cgroup v1 in a container) it then waits out TimeoutStopSec. Again
		// on every tick, for children forked while systemd listed the
		// unit's processes.
		sigkill = func(c *sdbus.Conn) {
			st, err := u.readStatus(ctx)
			if err != nil || st.Active != "deactivating" {
				return
			}
			if err := c.KillUnitWithTarget(ctx, u.name, sdbus.All, int32(syscall.SIGKILL)); err != nil {
				u.log.Debug("SIGKILL to the unit's processes not sent", "unit", u.name, "err", err)
			}
		}
	}
	result, _, err := u.job(ctx, "stop", func(c *sdbus.Conn, ch chan<- string) error {
		_, err := c.StopUnitContext(ctx, u.name, "replace", ch)
		return err
	}, sigkill)
	if isNoSuchUnit(err) {
		return u.output(t0, 0, "not loaded: "+err.Error()), nil
	}
	if err != nil {
		return u.output(t0, 1, err.Error()), fmt.Errorf("stop %s: %w", u.name, err)
	}
	st := u.status(ctx)
	if result != "done" {
		return u.output(t0, 1, st.String()), fmt.Errorf("stop %s: job %s (%s)", u.name, result, st)
	}
	if st.Active == "failed" {
		// What failed is over once stopped; the failure was reported by Monitor.
		note := st.String()
		if err := u.call(ctx, func(c *sdbus.Conn) error { return c.ResetFailedUnitContext(ctx, u.name) }); err != nil {
			return u.output(t0, 1, note), fmt.Errorf("stop %s: reset failed state: %w", u.name, err)
		}
		st = u.status(ctx)
		return u.output(t0, 0, fmt.Sprintf("%s (failed state reset; was %s)", st, note)), nil
	}
	return u.output(t0, 0, st.String()), nil
}

// Monitor reads the unit's state; see Unit for the mapping.
func (u *Unit) Monitor(ctx context.Context) (resource.State, resource.Output, error) {
	t0 := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	st, err := u.readStatus(ctx)
	if err != nil {
		return resource.Failed, u.output(t0, -1, err.Error()), fmt.Errorf("monitor %s: %w", u.name, err)
	}
	state := resource.Failed
	switch st.Active {
	case "active", "reloading":
		state = resource.Running
	case "inactive":
		state = resource.Stopped
	case "activating":
		if st.Sub != "auto-restart" {
			state = resource.Running
		}
	}
	code := 0
	if state == resource.Failed {
		code = st.exitCode()
	}
	return state, u.output(t0, code, st.String()), nil
}

// Close drops the bus connection. The Unit must not be used afterwards.
func (u *Unit) Close() error {
	u.end()
	u.mu.Lock()
	if u.conn != nil {
		u.conn.Close()
		u.conn = nil
	}
	u.mu.Unlock()
	u.dialing.Wait()
	return nil
}

func (u *Unit) output(t0 time.Time, code int, text string) resource.Output {
	return resource.Output{Text: text, ExitCode: code, Duration: time.Since(t0)}
}

// job enqueues a job and waits for its result ("done", "failed", "canceled",
// "timeout", "dependency", "skipped"), and tells whether systemd accepted the job.
// While it waits, meanwhile (if not nil) runs every killTick.
func (u *Unit) job(ctx context.Context, what string, enqueue func(*sdbus.Conn, chan<- string) error, meanwhile func(*sdbus.Conn)) (string, bool, error) {
	var result string
	enqueued := false
	err := u.call(ctx, func(c *sdbus.Conn) error {
		// Buffered: go-systemd sends the result while holding its job lock, and
		// must not block on a reader that gave up.
		ch := make(chan string, 1)
		if err := enqueue(c, ch); err != nil {
			return err
		}
		enqueued = true
		every := watchBus
		if meanwhile != nil {
			every = killTick
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case result = <-ch:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("waiting for the %s job: %w", what, ctx.Err())
			case <-tick.C:
				if !c.Connected() {
					return fmt.Errorf("bus connection lost while waiting for the %s job", what)
				}
				if meanwhile != nil {
					meanwhile(c)
				}
			}
		}
	})
	return result, enqueued, err
}

// call runs f on a live connection. When f fails because the connection went
// away (dbus-daemon restarted, systemd re-executed), it reconnects and tries
// once more: every call made here is safe to repeat.
func (u *Unit) call(ctx context.Context, f func(*sdbus.Conn) error) error {
	c, err := u.bus(ctx)
	if err != nil {
		return err
	}
	err = f(c)
	if err == nil || c.Connected() || ctx.Err() != nil {
		return err
	}
	u.log.Warn("bus connection lost; reconnecting", "err", err)
	c, rerr := u.bus(ctx)
	if rerr != nil {
		return fmt.Errorf("%w (then: %w)", err, rerr)
	}
	return f(c)
}

// bus returns the current connection, dialling a new one when there is none or
// it was lost. A dial outlives a caller whose ctx ends first (the connection's
// life is bound to the Unit, not to the action), so it runs in a goroutine that
// closes what it gets when nobody waits any more.
func (u *Unit) bus(ctx context.Context) (*sdbus.Conn, error) {
	if u.conn != nil && u.conn.Connected() {
		return u.conn, nil
	}
	if u.conn != nil {
		u.conn.Close()
		u.conn = nil
	}
	if err := u.life.Err(); err != nil {
		return nil, errors.New("connect to systemd: agent closed")
	}
	type dialed struct {
		c   *sdbus.Conn
		err error
	}
	got := make(chan dialed)
	abandon := make(chan struct{})
	u.dialing.Add(1)
	go func() {
		defer u.dialing.Done()
		c, err := u.connect(u.life)
		select {
		case got <- dialed{c, err}:
		case <-abandon:
			if c != nil {
				c.Close()
			}
		}
	}()
	select {
	case d := <-got:
		if d.err != nil {
			return nil, fmt.Errorf("connect to systemd: %w", d.err)
		}
		u.conn = d.c
		return d.c, nil
	case <-ctx.Done():
		close(abandon)
		return nil, fmt.Errorf("connect to systemd: %w", ctx.Err())
	}
}

// stopAfterTimeout asks systemd to stop the unit without waiting for the job.
func (u *Unit) stopAfterTimeout() {
	ctx, cancel := context.WithTimeout(u.life, cleanupTimeout)
	defer cancel()
	err := u.call(ctx, func(c *sdbus.Conn) error {
		_, err := c.StopUnitContext(ctx, u.name, "replace", nil)
		return err
	})
	if err != nil {
		u.log.Error("stop after a timed-out start failed", "err", err)
	}
}

// unitStatus is what systemd says of the unit, for decisions and for events.
type unitStatus struct {
	Load, Active, Sub string
	Result            string // of the type's interface (Service, Mount, ...), when it has one
	MainStatus        int32  // ExecMainStatus of a service: its main process's exit code
	hasMain           bool
	err               error // why the properties could not be read
}

func (s unitStatus) String() string {
	if s.err != nil {
		return "state unknown: " + s.err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ActiveState=%s SubState=%s", s.Active, s.Sub)
	if s.Result != "" {
		fmt.Fprintf(&b, " Result=%s", s.Result)
	}
	if s.hasMain && s.MainStatus != 0 {
		fmt.Fprintf(&b, " ExecMainStatus=%d", s.MainStatus)
	}
	if s.Load != "loaded" {
		fmt.Fprintf(&b, " LoadState=%s", s.Load)
	}
	return b.String()
}

// exitCode is the main process's exit status when systemd knows one, else 1.
func (s unitStatus) exitCode() int {
	if s.hasMain && s.MainStatus != 0 {
		return int(s.MainStatus)
	}
	return 1
}

// status is readStatus for error messages: a failure to read is part of the text.
func (u *Unit) status(ctx context.Context) unitStatus {
	st, err := u.readStatus(ctx)
	if err != nil {
		return unitStatus{err: err}
	}
	return st
}

func (u *Unit) readStatus(ctx context.Context) (unitStatus, error) {
	var st unitStatus
	err := u.call(ctx, func(c *sdbus.Conn) error {
		props, err := c.GetUnitPropertiesContext(ctx, u.name)
		if err != nil {
			return err
		}
		st.Load, _ = props["LoadState"].(string)
		st.Active, _ = props["ActiveState"].(string)
		st.Sub, _ = props["SubState"].(string)
		if st.Active == "active" || st.Active == "inactive" {
			return nil // nothing to explain
		}
		// Result and the exit status explain a failure; they live on the
		// type's own interface. Best effort: the state above is what counts.
		if iface := typeInterface(u.name); iface != "" {
			if tp, err := c.GetUnitTypePropertiesContext(ctx, u.name, iface); err == nil {
				st.Result, _ = tp["Result"].(string)
				st.MainStatus, st.hasMain = tp["ExecMainStatus"].(int32)
			}
		}
		return nil
	})
	if err != nil {
		return unitStatus{}, fmt.Errorf("read unit properties: %w", err)
	}
	return st, nil
}

// typeInterface is the D-Bus interface of the unit's type that has a Result.
func typeInterface(name string) string {
	i := strings.LastIndexByte(name, '.')
	switch name[i+1:] {
	case "service":
		return "Service"
	case "socket":
		return "Socket"
	case "mount":
		return "Mount"
	case "automount":
		return "Automount"
	case "swap":
		return "Swap"
	case "timer":
		return "Timer"
	case "path":
		return "Path"
	case "scope":
		return "Scope"
	}
	return ""
}

const noSuchUnit = "org.freedesktop.systemd1.NoSuchUnit"

func isNoSuchUnit(err error) bool {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name == noSuchUnit
	}
	var pe *dbus.Error
	return errors.As(err, &pe) && pe.Name == noSuchUnit
}

// explain adds the likely cause to errors an operator will meet.
func explain(err error) error {
	if isNoSuchUnit(err) {
		return fmt.Errorf("%w (is the unit file installed, and systemd reloaded?)", err)
	}
	return err
}
