package lsb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// DefaultInitDir is where a script given by name is looked up.
const DefaultInitDir = "/etc/init.d"

// Exit codes of the status action (LSB core specification, "Init Script Actions").
const (
	StatusRunning    = 0
	StatusDeadPid    = 1 // program is dead and a pid file exists
	StatusDeadLock   = 2 // program is dead and a lock file exists
	StatusNotRunning = 3
	StatusUnknown    = 4
)

var statusNames = map[int]string{
	StatusRunning:    "running",
	StatusDeadPid:    "dead, pid file exists",
	StatusDeadLock:   "dead, lock file exists",
	StatusNotRunning: "not running",
	StatusUnknown:    "status unknown",
}

// Exit codes of the other actions.
var actionNames = map[int]string{
	0: "success",
	1: "generic or unspecified error",
	2: "invalid or excess arguments",
	3: "unimplemented feature",
	4: "user had insufficient privilege",
	5: "program is not installed",
	6: "program is not configured",
	7: "program is not running",
}

// Options tune how the script is run.
type Options struct {
	// InitDir is where a bare script name is looked up; "" means DefaultInitDir.
	InitDir string
	Logger  *slog.Logger
	// Wrapper is put before every command, e.g. {"ip", "netns", "exec", "ns1"}.
	Wrapper []string
}

// Agent runs one init script.
type Agent struct {
	name     string
	script   string
	timeouts config.Timeouts
	wrapper  []string
	log      *slog.Logger
}

var _ resource.Agent = (*Agent)(nil)

// New prepares the init script of spec (type lsb). Script is an absolute
// path or a name under Options.InitDir.
func New(spec config.Resource, opts Options) (*Agent, error) {
	if spec.Type != "" && spec.Type != "lsb" {
		return nil, fmt.Errorf("lsb: resource %q has type %q, not lsb", spec.Name, spec.Type)
	}
	script := spec.Script
	switch {
	case script == "" || strings.ContainsRune(script, 0):
		return nil, fmt.Errorf("lsb: resource %q: script %q: want a path or a name under %s", spec.Name, script, DefaultInitDir)
	case strings.Contains(script, "/"):
		if !filepath.IsAbs(script) {
			return nil, fmt.Errorf("lsb: resource %q: script %q: use an absolute path or a bare name", spec.Name, script)
		}
		script = filepath.Clean(script)
	case script == "." || script == "..":
		return nil, fmt.Errorf("lsb: resource %q: script %q is not a name", spec.Name, script)
	default:
		dir := opts.InitDir
		if dir == "" {
			dir = DefaultInitDir
		}
		script = filepath.Join(dir, script)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{
		name:     spec.Name,
		script:   script,
		timeouts: spec.Timeouts,
		wrapper:  append([]string(nil), opts.Wrapper...),
		log:      log.With("resource", spec.Name, "lsb", script),
	}, nil
}

// Script is the init script's path.
func (a *Agent) Script() string { return a.script }

// Timeouts are the configured per-action timeouts, else Vigil's defaults.
func (a *Agent) Timeouts() (start, stop, monitor time.Duration) {
	pick := func(d config.Duration, def time.Duration) time.Duration {
		if d > 0 {
			return d.D()
		}
		return def
	}
	return pick(a.timeouts.Start, config.DefaultStartTimeout), pick(a.timeouts.Stop, config.DefaultStopTimeout),
		pick(a.timeouts.Monitor, config.DefaultMonitorTimeout)
}

// Start runs "start". LSB requires 0 for a service that already runs, but
// many scripts answer 1 then; so a failed start is followed by "status", and
// a service that status reports running counts as started.
func (a *Agent) Start(ctx context.Context) (resource.Output, error) {
	to, _, _ := a.Timeouts()
	ctx, cancel := withDefaultTimeout(ctx, to)
	defer cancel()
	res, err := a.run(ctx, "start")
	out := output(res)
	if err != nil {
		return out, err
	}
	if res.ExitCode == 0 && !res.TimedOut && res.Signal == "" {
		return out, nil
	}
	startErr := a.actionError("start", res)
	if res.TimedOut || ctx.Err() != nil {
		return out, startErr
	}
	st, sres, err := a.status(ctx)
	out = join(out, sres)
	if err == nil && st == StatusRunning {
		a.log.Info("start failed but status reports running: taken as started", "exit", res.ExitCode)
		return out, nil
	}
	return out, startErr
}

// Stop runs "stop" and then "status": a script that exits 0 while status
// still reports the service running has not stopped it, and the group must
// not start it elsewhere. A failed stop of a service that status reports not
// running (1, 2 or 3) counts as stopped, the same leniency as Start.
func (a *Agent) Stop(ctx context.Context) (resource.Output, error) {
	_, to, _ := a.Timeouts()
	ctx, cancel := withDefaultTimeout(ctx, to)
	defer cancel()
	res, err := a.run(ctx, "stop")
	out := output(res)
	if err != nil {
		return out, err
	}
	var stopErr error
	if res.ExitCode != 0 || res.TimedOut || res.Signal != "" {
		stopErr = a.actionError("stop", res)
		if res.TimedOut || ctx.Err() != nil {
			return out, stopErr
		}
	}
	st, sres, err := a.status(ctx)
	out = join(out, sres)
	if err != nil {
		return out, errors.Join(stopErr, err)
	}
	switch st {
	case StatusNotRunning, StatusDeadPid, StatusDeadLock:
		if stopErr != nil {
			a.log.Info("stop failed but status reports not running: taken as stopped", "exit", res.ExitCode, "status", st)
		}
		return out, nil
	case StatusRunning:
		if stopErr == nil {
			stopErr = fmt.Errorf("lsb %s stop: exit 0 but status still reports running", a.script)
		}
		return out, stopErr
	}
	if stopErr != nil {
		return out, stopErr
	}
	// stop succeeded and status cannot tell (4 or a private code): trust stop.
	return out, nil
}

// Monitor runs "status": 0 is Running, 3 Stopped, and 1, 2, 4 or anything
// else Failed, since a dead service with a pid or lock file needs cleaning up.
func (a *Agent) Monitor(ctx context.Context) (resource.State, resource.Output, error) {
	_, _, to := a.Timeouts()
	ctx, cancel := withDefaultTimeout(ctx, to)
	defer cancel()
	st, res, err := a.status(ctx)
	out := output(res)
	if err != nil {
		return resource.Failed, out, err
	}
	switch st {
	case StatusRunning:
		return resource.Running, out, nil
	case StatusNotRunning:
		return resource.Stopped, out, nil
	}
	return resource.Failed, out, fmt.Errorf("lsb %s status: exit %d (%s)%s", a.script, st, statusName(st), reason(res.Output))
}

// status returns the status action's exit code; the error is for a status
// that could not give one (not started, timed out, killed).
func (a *Agent) status(ctx context.Context) (int, runexec.Result, error) {
	res, err := a.run(ctx, "status")
	if err != nil {
		return StatusUnknown, res, err
	}
	if res.TimedOut || res.Signal != "" {
		return StatusUnknown, res, a.actionError("status", res)
	}
	return res.ExitCode, res, nil
}

func (a *Agent) run(ctx context.Context, action string) (runexec.Result, error) {
	fi, err := os.Stat(a.script)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return runexec.Result{ExitCode: 5}, fmt.Errorf("lsb %s %s: the script is not installed", a.script, action)
	case err != nil:
		return runexec.Result{ExitCode: 5}, fmt.Errorf("lsb %s %s: %w", a.script, action, err)
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		return runexec.Result{ExitCode: 5}, fmt.Errorf("lsb %s %s: not an executable file", a.script, action)
	}
	argv := append(append([]string(nil), a.wrapper...), a.script, action)
	res, err := runexec.Run(ctx, runexec.Cmd{Argv: argv, KeepChildren: action == "start" || action == "restart"})
	if err != nil {
		return res, fmt.Errorf("lsb %s %s: %w", a.script, action, err)
	}
	a.log.Debug("lsb action", "action", action, "exit", res.ExitCode, "timed_out", res.TimedOut, "duration", res.Duration)
	return res, nil
}

func (a *Agent) actionError(action string, res runexec.Result) error {
	switch {
	case res.TimedOut:
		return fmt.Errorf("lsb %s %s: timed out after %s, process group killed", a.script, action, res.Duration.Round(time.Millisecond))
	case res.Signal != "":
		return fmt.Errorf("lsb %s %s: killed by %s", a.script, action, res.Signal)
	}
	name, ok := actionNames[res.ExitCode]
	if !ok {
		name = "script-specific code"
	}
	return fmt.Errorf("lsb %s %s: exit %d (%s)%s", a.script, action, res.ExitCode, name, reason(res.Output))
}

func statusName(code int) string {
	if n, ok := statusNames[code]; ok {
		return n
	}
	return "script-specific code"
}

// reason is the script's last line of output, the usual place for its complaint.
func reason(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return ""
	}
	if len(last) > 300 {
		last = last[:300] + "…"
	}
	return ": " + last
}

// withDefaultTimeout bounds a call whose caller gave no deadline, so that a
// hung script cannot block the group for ever.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

func output(res runexec.Result) resource.Output {
	text := string(res.Output)
	if res.Truncated {
		text += "\n[output truncated]"
	}
	return resource.Output{Text: text, ExitCode: res.ExitCode, Duration: res.Duration}
}

// join appends the follow-up status call to the action's output, keeping the
// action's exit code.
func join(out resource.Output, status runexec.Result) resource.Output {
	out.Text += "\n[status: exit " + strconv.Itoa(status.ExitCode) + " (" + statusName(status.ExitCode) + ")]\n" + string(status.Output)
	out.Duration += status.Duration
	return out
}
