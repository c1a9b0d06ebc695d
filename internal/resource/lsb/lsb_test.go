package lsb

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
)

// initScript is a small Debian-style init script: start-stop-daemon
// detaches the daemon (a sleep) into its own session, as real scripts do.
// Files in its directory switch on misbehaviours seen in real scripts.
const initScript = `#!/bin/sh
DIR=$(dirname "$0")
PIDFILE=$DIR/svc.pid
case "$1" in
start)
	if [ -e "$DIR/noncompliant" ] && start-stop-daemon --status --pidfile "$PIDFILE"; then
		echo "already running" >&2; exit 1
	fi
	start-stop-daemon --start --quiet --oknodo --background --make-pidfile --pidfile "$PIDFILE" --startas /bin/sleep -- 86399
	sleep 0.05; cat "$PIDFILE" >> "$DIR/all.pids" 2>/dev/null # for the test's cleanup
	;;
stop)
	[ -e "$DIR/liar" ] && exit 0
	if [ -e "$DIR/noncompliant" ] && ! start-stop-daemon --status --pidfile "$PIDFILE"; then
		echo "not running" >&2; exit 1
	fi
	start-stop-daemon --stop --quiet --oknodo --retry TERM/5/KILL/5 --pidfile "$PIDFILE" || exit 1
	rm -f "$PIDFILE"
	;;
status)
	[ -e "$DIR/hang" ] && sleep 1000
	start-stop-daemon --status --pidfile "$PIDFILE"
	;;
*)
	echo "Usage: $0 {start|stop|status}" >&2; exit 2
	;;
esac
`

type fixture struct {
	dir   string
	agent *Agent
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: init scripts are run as root")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "svc"), []byte(initScript), 0o755); err != nil {
		t.Fatal(err)
	}
	// By name, looked up in the init directory.
	a, err := New(config.Resource{Name: "svc", Type: "lsb", Script: "svc"}, Options{InitDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if a.Script() != filepath.Join(dir, "svc") {
		t.Fatalf("script %s", a.Script())
	}
	f := &fixture{dir: dir, agent: a}
	// Kill every daemon the script ever started, even if a test failed
	// half-way and lost track of one.
	t.Cleanup(func() {
		data, _ := os.ReadFile(filepath.Join(dir, "all.pids"))
		for _, s := range strings.Fields(string(data)) {
			// The odd duration tells our daemon from a process that reused its pid.
			pid, err := strconv.Atoi(s)
			cmd, _ := os.ReadFile("/proc/" + s + "/cmdline")
			if err == nil && pid > 1 && string(cmd) == "/bin/sleep\x0086399\x00" {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return f
}

func (f *fixture) pid() int {
	data, err := os.ReadFile(filepath.Join(f.dir, "svc.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

func (f *fixture) flag(t *testing.T, name string, on bool) {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if on {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		_ = os.Remove(p)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) expect(t *testing.T, want resource.State, errText string) {
	t.Helper()
	st, out, err := f.agent.Monitor(ctxT(t, 10*time.Second))
	if st != want || (errText == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), errText)) {
		t.Fatalf("monitor: %v, %v; want %v with error %q\n%s", st, err, want, errText, out.Text)
	}
}

func (f *fixture) start(t *testing.T) {
	t.Helper()
	if out, err := f.agent.Start(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("start: %v\n%s", err, out.Text)
	}
}

func (f *fixture) stop(t *testing.T) {
	t.Helper()
	if out, err := f.agent.Stop(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("stop: %v\n%s", err, out.Text)
	}
}

func TestStartStopStatus(t *testing.T) {
	f := newFixture(t)
	f.expect(t, resource.Stopped, "")
	f.start(t)
	f.expect(t, resource.Running, "")
	pid := f.pid()
	f.start(t) // LSB: starting a running service succeeds
	if f.pid() != pid {
		t.Fatalf("second start replaced the daemon: %d then %d", pid, f.pid())
	}
	f.stop(t)
	f.expect(t, resource.Stopped, "")
	if syscall.Kill(pid, 0) == nil && !zombie(pid) {
		t.Fatalf("daemon %d survived stop", pid)
	}
	f.stop(t) // LSB: stopping a stopped service succeeds
}

func TestDeadWithPidFileIsFailed(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	pid := f.pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Wait until the orphan is reaped: a zombie still has a /proc entry,
	// which start-stop-daemon --status counts as running.
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not reaped", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.expect(t, resource.Failed, "exit 1 (dead, pid file exists)")
	f.stop(t) // cleans up the stale pid file
	f.expect(t, resource.Stopped, "")
}

func TestNonCompliantScriptsAreForgiven(t *testing.T) {
	f := newFixture(t)
	f.flag(t, "noncompliant", true)
	f.start(t)
	f.start(t) // exits 1 "already running"; status says running
	f.expect(t, resource.Running, "")
	f.stop(t)
	f.stop(t) // exits 1 "not running"; status says not running
	f.expect(t, resource.Stopped, "")
}

func TestStopThatLeavesTheServiceRunningFails(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.flag(t, "liar", true)
	_, err := f.agent.Stop(ctxT(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "still reports running") {
		t.Fatalf("stop of a lying script: %v", err)
	}
	f.flag(t, "liar", false)
	f.stop(t)
}

func TestStatusTimeoutIsFailed(t *testing.T) {
	f := newFixture(t)
	f.flag(t, "hang", true)
	begin := time.Now()
	st, _, err := f.agent.Monitor(ctxT(t, 300*time.Millisecond))
	if st != resource.Failed || err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("monitor of a hung status: %v %v", st, err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("monitor returned after %v", d)
	}
}

func TestMissingScript(t *testing.T) {
	a, err := New(config.Resource{Name: "x", Type: "lsb", Script: "/nonexistent/init.d/x"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := a.Monitor(ctxT(t, time.Second))
	if st != resource.Failed || err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("monitor: %v %v", st, err)
	}
	if _, err := a.Start(ctxT(t, time.Second)); err == nil {
		t.Fatal("start of a missing script succeeded")
	}
}

func TestNew(t *testing.T) {
	a, err := New(config.Resource{Name: "x", Type: "lsb", Script: "postfix"}, Options{})
	if err != nil || a.Script() != "/etc/init.d/postfix" {
		t.Fatalf("%v %v", a, err)
	}
	for _, s := range []string{"", "init.d/postfix", "..", "a\x00b"} {
		if _, err := New(config.Resource{Name: "x", Type: "lsb", Script: s}, Options{}); err == nil {
			t.Errorf("script %q accepted", s)
		}
	}
	if _, err := New(config.Resource{Name: "x", Type: "ocf", Script: "x"}, Options{}); err == nil {
		t.Error("type ocf accepted")
	}
	spec := config.Resource{Name: "x", Type: "lsb", Script: "x", Timeouts: config.Timeouts{Stop: config.Duration(time.Second)}}
	a, _ = New(spec, Options{})
	if s, p, m := a.Timeouts(); s != config.DefaultStartTimeout || p != time.Second || m != config.DefaultMonitorTimeout {
		t.Fatalf("timeouts %v %v %v", s, p, m)
	}
}

func zombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}
