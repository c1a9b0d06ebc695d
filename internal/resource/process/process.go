package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
)

const (
	// DefaultGrace is how long a process gets between its stop signal and SIGKILL.
	DefaultGrace = 10 * time.Second
	// DefaultSettle is how long Start watches a new process: a command that exits
	// this soon (a typo, a missing file, a daemon that forks into the background)
	// did not start, and saying so at once beats a failed monitor later.
	DefaultSettle = 200 * time.Millisecond

	// killWait bounds the wait after SIGKILL, which only a process stuck in an
	// uninterruptible sleep (a dead NFS server, a failing disk) survives.
	killWait = 5 * time.Second
	// pollEvery is how often a stop looks whether the process group is empty.
	pollEvery = 20 * time.Millisecond
	// tailBytes bounds the log excerpt attached to a failed start.
	tailBytes = 4 << 10
	// basePath is the whole inherited environment: the agent's own environment
	// (its sockets, tokens, test variables) is none of the command's business.
	basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

var (
	_ resource.Agent     = (*Process)(nil)
	_ resource.Validator = (*Process)(nil)
)

// Options are the node-local settings of a process resource.
type Options struct {
	Logger *slog.Logger
	// StateDir keeps the pid file (<resource name>.pid) with which a restarted
	// agent adopts, monitors and stops a process an earlier agent started. Use
	// one directory per group: resource names are unique only within a group.
	// Empty: no pid file, so a restarted agent loses track of the process.
	StateDir string
	// Settle overrides DefaultSettle.
	Settle time.Duration
}

// Process supervises one long-running command. Its methods may be called from
// several goroutines; they are serialised.
type Process struct {
	name    string
	argv    []string
	env     map[string]string
	user    string
	dir     string
	logPath string
	sig     syscall.Signal
	grace   time.Duration
	settle  time.Duration
	pidPath string
	log     *slog.Logger

	mu sync.Mutex
	// own is the process this object started, nil before Start and after Stop.
	// Without it the pid file is the only memory (a process adopted from an
	// earlier agent).
	own *child
}

// New checks spec and returns its supervisor; nothing is started.
func New(spec config.Resource, opts Options) (*Process, error) {
	name := spec.Name
	if name == "" {
		name = "process"
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, fmt.Errorf("process %s: empty command", name)
	}
	if !filepath.IsAbs(spec.Command[0]) {
		return nil, fmt.Errorf("process %s: command %q: use an absolute path (the agent's PATH is not the operator's)", name, spec.Command[0])
	}
	if strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("process %s: the name names the pid file, so it cannot contain '/'", name)
	}
	sig := syscall.SIGTERM
	if spec.StopSignal != "" {
		n := config.SignalNumber(spec.StopSignal)
		if n == 0 {
			return nil, fmt.Errorf("process %s: stop signal %q: use a name such as TERM, INT, QUIT, HUP", name, spec.StopSignal)
		}
		sig = syscall.Signal(n)
	}
	grace := time.Duration(spec.Grace)
	switch {
	case grace < 0:
		return nil, fmt.Errorf("process %s: grace %s must not be negative", name, grace)
	case grace == 0:
		grace = DefaultGrace
	}
	for field, path := range map[string]string{"dir": spec.Dir, "log": spec.Log} {
		if path != "" && !filepath.IsAbs(path) {
			return nil, fmt.Errorf("process %s: %s %q: use an absolute path", name, field, path)
		}
	}
	settle := opts.Settle
	if settle <= 0 {
		settle = DefaultSettle
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	p := &Process{
		name:    name,
		argv:    append([]string(nil), spec.Command...),
		env:     spec.Env,
		user:    spec.User,
		dir:     spec.Dir,
		logPath: spec.Log,
		sig:     sig,
		grace:   grace,
		settle:  settle,
		log:     lg.With("resource", name, "type", "process"),
	}
	if opts.StateDir != "" {
		p.pidPath = filepath.Join(opts.StateDir, name+".pid")
	}
	return p, nil
}

// Validate checks what can be checked before a start: the command is an
// executable file, the working directory exists, the user is known.
func (p *Process) Validate(ctx context.Context) error {
	fi, err := os.Stat(p.argv[0])
	switch {
	case err != nil:
		return fmt.Errorf("process %s: command: %w", p.name, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("process %s: command %s is not an executable file", p.name, p.argv[0])
	}
	if p.dir != "" {
		fi, err := os.Stat(p.dir)
		if err != nil {
			return fmt.Errorf("process %s: dir: %w", p.name, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("process %s: dir %s is not a directory", p.name, p.dir)
		}
	}
	if _, _, err := p.identity(); err != nil {
		return fmt.Errorf("process %s: %w", p.name, err)
	}
	return nil
}

// Start runs the command unless it already runs, and returns once it has
// survived the settle time.
func (p *Process) Start(ctx context.Context) (resource.Output, error) {
	t0 := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	done := func(code int, text string, err error) (resource.Output, error) {
		return resource.Output{Text: text, ExitCode: code, Duration: time.Since(t0)}, err
	}
	o, err := p.observe()
	if err != nil {
		return done(-1, err.Error(), fmt.Errorf("start %s: %w", p.name, err))
	}
	if o.state == resource.Running {
		return done(0, "already "+o.text, nil)
	}
	if o.rec != nil {
		// A run that failed may have left children in its group; the new run
		// must be the only one.
		p.killLeftovers(*o.rec)
	}
	p.own = nil
	if err := removeRecord(p.pidPath); err != nil {
		return done(-1, err.Error(), fmt.Errorf("start %s: %w", p.name, err))
	}

	c, logOffset, err := p.spawn()
	if err != nil {
		return done(-1, err.Error(), fmt.Errorf("start %s: %w", p.name, err))
	}
	p.own = c
	p.log.Info("started", "pid", c.rec.PID, "command", p.argv)
	if p.pidPath != "" {
		if err := writeRecord(p.pidPath, c.rec); err != nil {
			// A process no later agent could find is one that could keep running
			// after its group moved: better not to run it at all.
			_, _ = p.terminate(context.Background(), c.rec, c, true)
			p.own = nil
			return done(-1, err.Error(), fmt.Errorf("start %s: %w", p.name, err))
		}
	}

	timer := time.NewTimer(p.settle)
	defer timer.Stop()
	select {
	case <-timer.C:
		return done(0, fmt.Sprintf("started (pid %d)", c.rec.PID), nil)
	case <-c.done:
		code, how := c.exitText()
		tail := p.logSince(logOffset)
		p.killLeftovers(c.rec)
		p.own = nil
		_ = removeRecord(p.pidPath)
		msg := fmt.Sprintf("pid %d %s within %s of starting", c.rec.PID, how, p.settle)
		if code == 0 {
			msg += " (a process resource needs a command that stays in the foreground)"
		}
		return done(code, msg+"\n"+tail, fmt.Errorf("start %s: %s: %s", p.name, msg, firstLine(tail)))
	case <-ctx.Done():
		// The caller gave up on this start: it must not leave a process behind.
		text, _ := p.terminate(context.Background(), c.rec, c, true)
		p.own = nil
		_ = removeRecord(p.pidPath)
		return done(-1, text, fmt.Errorf("start %s: %w", p.name, ctx.Err()))
	}
}

// Stop sends the stop signal to the process group, waits for the grace period,
// then kills whatever is left of the group. Stopping a stopped process succeeds.
// When ctx ends before the grace period, the group is killed at once.
func (p *Process) Stop(ctx context.Context) (resource.Output, error) { return p.stop(ctx, false) }

// Kill ends the process group with SIGKILL at once, without the grace period
// (resource.Killer): a node that lost its lease must be done before the
// others may start the group.
func (p *Process) Kill(ctx context.Context) (resource.Output, error) { return p.stop(ctx, true) }

func (p *Process) stop(ctx context.Context, kill bool) (resource.Output, error) {
	t0 := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	done := func(code int, text string, err error) (resource.Output, error) {
		return resource.Output{Text: text, ExitCode: code, Duration: time.Since(t0)}, err
	}
	c := p.own
	var rec pidRecord
	switch {
	case c != nil:
		rec = c.rec
	case p.pidPath == "":
		return done(0, "not running", nil)
	default:
		r, ok, err := readRecord(p.pidPath)
		if err != nil {
			return done(-1, err.Error(), fmt.Errorf("stop %s: %w", p.name, err))
		}
		if !ok {
			return done(0, "not running", nil)
		}
		rec = r
		if lv, err := rec.check(); err == nil && lv == staleBoot {
			_ = removeRecord(p.pidPath)
			return done(0, "not running (its pid file was from before the last boot)", nil)
		}
	}
	if !rec.ownsGroup() {
		_ = removeRecord(p.pidPath)
		return done(0, fmt.Sprintf("not running (pid %d now belongs to another process, left alone)", rec.PID), nil)
	}
	text, err := p.terminate(ctx, rec, c, kill)
	if err != nil {
		// The pid file stays, so that a retry, or the next agent, finds the group.
		return done(-1, text, fmt.Errorf("stop %s: %w", p.name, err))
	}
	p.own = nil
	if err := removeRecord(p.pidPath); err != nil {
		return done(-1, text, fmt.Errorf("stop %s: %w", p.name, err))
	}
	p.log.Info("stopped", "pid", rec.PID, "how", text)
	return done(0, text, nil)
}

// Monitor reports Running while the process runs (whichever agent started it),
// Stopped when it was never started or was stopped, and Failed when it ended on
// its own, with its exit status when this agent saw it end.
func (p *Process) Monitor(ctx context.Context) (resource.State, resource.Output, error) {
	t0 := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	o, err := p.observe()
	if err != nil {
		return resource.Failed, resource.Output{Text: err.Error(), ExitCode: -1, Duration: time.Since(t0)}, fmt.Errorf("monitor %s: %w", p.name, err)
	}
	return o.state, resource.Output{Text: o.text, ExitCode: o.code, Duration: time.Since(t0)}, nil
}

// Close stops watching the process without stopping it: the agent is going
// away and a later one will adopt the process through the pid file. The
// Process must not be used afterwards.
func (p *Process) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.own != nil {
		p.own.release()
	}
	return nil
}

// observation is what observe found; rec names the group a failed run may
// have left processes in.
type observation struct {
	state resource.State
	text  string
	code  int
	rec   *pidRecord
}

func (p *Process) observe() (observation, error) {
	if c := p.own; c != nil {
		select {
		case <-c.done:
			code, how := c.exitText()
			return observation{resource.Failed, fmt.Sprintf("pid %d %s", c.rec.PID, how), code, &c.rec}, nil
		default:
			return observation{resource.Running, fmt.Sprintf("running (pid %d)", c.rec.PID), 0, &c.rec}, nil
		}
	}
	if p.pidPath == "" {
		return observation{state: resource.Stopped, text: "not running"}, nil
	}
	rec, ok, err := readRecord(p.pidPath)
	if err != nil {
		return observation{}, err
	}
	if !ok {
		return observation{state: resource.Stopped, text: "not running"}, nil
	}
	lv, err := rec.check()
	if err != nil {
		return observation{}, err
	}
	switch lv {
	case alive:
		return observation{resource.Running, fmt.Sprintf("running (pid %d, adopted from an earlier agent)", rec.PID), 0, &rec}, nil
	case staleBoot:
		// The machine went down, not the process: nothing failed that a
		// restart policy should count.
		if err := removeRecord(p.pidPath); err != nil {
			return observation{}, err
		}
		return observation{state: resource.Stopped, text: "not running (its pid file was from before the last boot)"}, nil
	}
	return observation{resource.Failed, fmt.Sprintf("pid %d, started by an earlier agent, has exited; its exit status is unknown", rec.PID), -1, &rec}, nil
}

// identity resolves the user the command runs as, and its environment.
func (p *Process) identity() (*syscall.Credential, []string, error) {
	env := map[string]string{"PATH": basePath}
	var cred *syscall.Credential
	if p.user != "" {
		u, err := user.Lookup(p.user)
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			if _, nerr := strconv.Atoi(p.user); nerr == nil {
				u, err = user.LookupId(p.user)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("user %q: %w", p.user, err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, fmt.Errorf("user %q: %w", p.user, err)
		}
		if int(uid) != os.Geteuid() || int(gid) != os.Getegid() {
			if os.Geteuid() != 0 {
				return nil, nil, fmt.Errorf("user %q: the agent must run as root to start a command as another user", p.user)
			}
			cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
			ids, err := u.GroupIds()
			if err != nil {
				p.log.Warn("supplementary groups unknown; running with the primary group only", "user", p.user, "err", err)
			}
			for _, s := range ids {
				if g, err := strconv.ParseUint(s, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(g))
				}
			}
		}
		env["HOME"], env["USER"], env["LOGNAME"] = u.HomeDir, u.Username, u.Username
	}
	for k, v := range p.env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]string, 0, len(keys))
	for _, k := range keys {
		list = append(list, k+"="+env[k])
	}
	return cred, list, nil
}

// spawn starts the command in a new process group and a goroutine that reaps
// it. It returns the log's size before the start, to show what this run wrote.
func (p *Process) spawn() (*child, int64, error) {
	cred, env, err := p.identity()
	if err != nil {
		return nil, 0, err
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer stdin.Close()
	var out *os.File
	var offset int64
	if p.logPath != "" {
		if err := os.MkdirAll(filepath.Dir(p.logPath), 0o755); err != nil {
			return nil, 0, fmt.Errorf("log directory: %w", err)
		}
		// Opened by the agent, so the log needs no permission for the user the
		// command runs as; O_APPEND keeps it correct under copytruncate rotation.
		out, err = os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, 0, fmt.Errorf("open log: %w", err)
		}
		if offset, err = out.Seek(0, io.SeekEnd); err != nil {
			out.Close()
			return nil, 0, fmt.Errorf("open log: %w", err)
		}
	} else if out, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer out.Close()
	dir := p.dir
	if dir == "" {
		dir = "/" // not the agent's working directory, which may be unmounted later
	}
	proc, err := os.StartProcess(p.argv[0], p.argv, &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{stdin, out, out},
		// Its own group, so that a stop reaches the children too; no Pdeathsig,
		// since the process must outlive an agent restart.
		Sys: &syscall.SysProcAttr{Setpgid: true, Credential: cred},
	})
	if err != nil {
		return nil, 0, fmt.Errorf("run %s: %w", p.argv[0], err)
	}
	c, err := watch(proc, p.argv)
	if err != nil {
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
		_, _ = proc.Wait()
		return nil, 0, err
	}
	return c, offset, nil
}

// terminate ends process group rec.PID: the stop signal, the grace period (or
// none when kill is set, or once ctx ends), then SIGKILL. c, when not nil, is
// the group's leader as this agent started it.
func (p *Process) terminate(ctx context.Context, rec pidRecord, c *child, kill bool) (string, error) {
	pgid := rec.PID
	t0 := time.Now()
	var notes []string
	if members, err := liveMembers(pgid); err == nil && len(members) == 0 {
		notes = append(notes, fmt.Sprintf("process group %d had already ended", pgid))
	} else {
		sig := p.sig
		if kill {
			sig = syscall.SIGKILL
		}
		if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Sprintf("signal %s to process group %d: %v", unix.SignalName(sig), pgid, err), fmt.Errorf("signal process group %d: %w", pgid, err)
		}
		if sig != syscall.SIGKILL && waitEmpty(ctx, pgid, t0.Add(p.grace)) {
			notes = append(notes, fmt.Sprintf("process group %d ended %s after %s", pgid, since(t0), unix.SignalName(sig)))
		} else {
			why := "killed"
			switch {
			case sig == syscall.SIGKILL:
			case ctx.Err() != nil:
				why = fmt.Sprintf("still running when the stop timed out (%s after %s); killed", since(t0), unix.SignalName(sig))
			default:
				why = fmt.Sprintf("still running %s after %s; killed", p.grace, unix.SignalName(sig))
			}
			if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return why, fmt.Errorf("kill process group %d: %w", pgid, err)
			}
			if !waitEmpty(context.Background(), pgid, time.Now().Add(killWait)) {
				left, _ := liveMembers(pgid)
				text := fmt.Sprintf("process group %d: %s, but pids %v survived SIGKILL for %s (uninterruptible sleep?)", pgid, why, left, killWait)
				return text, errors.New(text)
			}
			notes = append(notes, fmt.Sprintf("process group %d %s with SIGKILL", pgid, why))
		}
	}
	if c != nil {
		select {
		case <-c.done:
			_, how := c.exitText()
			notes = append(notes, "leader "+how)
		case <-time.After(killWait):
			// Only a leader that left its group could still run; report it.
			return strings.Join(notes, "; "), fmt.Errorf("pid %d has not exited although its group is empty", pgid)
		}
	} else {
		reapIfOurs(pgid)
	}
	return strings.Join(notes, "; "), nil
}

// killLeftovers ends what a failed run left in its group, when the group is
// still provably ours.
func (p *Process) killLeftovers(rec pidRecord) {
	if lv, err := rec.check(); err != nil || lv == staleBoot || !rec.ownsGroup() {
		return
	}
	if members, err := liveMembers(rec.PID); err != nil || len(members) == 0 {
		return
	}
	p.log.Warn("killing what a failed run left in its process group", "pgid", rec.PID)
	_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
	waitEmpty(context.Background(), rec.PID, time.Now().Add(killWait))
	reapIfOurs(rec.PID)
}

// logSince returns what the log gained after offset, at most tailBytes of its end.
func (p *Process) logSince(offset int64) string {
	if p.logPath == "" {
		return "(no output: the resource has no log)"
	}
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	size := fi.Size()
	prefix := ""
	if size-offset > tailBytes {
		offset, prefix = size-tailBytes, "…"
	}
	b := make([]byte, size-offset)
	n, err := f.ReadAt(b, offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	if n == 0 {
		return "(no output)"
	}
	return prefix + string(b[:n])
}

// waitEmpty waits until group pgid has no live member, until deadline or until
// ctx ends, and tells whether the group emptied.
func waitEmpty(ctx context.Context, pgid int, deadline time.Time) bool {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if members, err := liveMembers(pgid); err == nil && len(members) == 0 {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// reapIfOurs collects pid if it is a zombie child of this process, which
// happens when one agent process adopts what another Process object started.
func reapIfOurs(pid int) {
	s, err := readStat(pid)
	if err != nil || s.ppid != os.Getpid() || !s.zombie() {
		return
	}
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
