package process

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newProc(t *testing.T, spec config.Resource, opts Options) *Process {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "svc"
	}
	p, err := New(spec, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Whatever a test leaves running is killed, so that no test leaks into the next.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := p.Stop(ctx); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
		_ = p.Close()
	})
	return p
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustState(t *testing.T, p *Process, want resource.State) resource.Output {
	t.Helper()
	st, out, err := p.Monitor(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Monitor: %v", err)
	}
	if st != want {
		t.Fatalf("Monitor = %s (%q), want %s", st, out.Text, want)
	}
	return out
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test switches users")
	}
}

func pidFromFile(t *testing.T, dir string) pidRecord {
	t.Helper()
	rec, ok, err := readRecord(filepath.Join(dir, "svc.pid"))
	if err != nil || !ok {
		t.Fatalf("pid file: ok=%v err=%v", ok, err)
	}
	return rec
}

func alivePid(pid int) bool {
	s, err := readStat(pid)
	return err == nil && !s.zombie()
}

func TestStartMonitorStop(t *testing.T) {
	dir := t.TempDir()
	p := newProc(t, config.Resource{Command: []string{"/usr/bin/sleep", "1000"}}, Options{StateDir: dir})

	mustState(t, p, resource.Stopped)
	if out, err := p.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Stop before Start: %v (%q)", err, out.Text)
	}
	out, err := p.Start(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Start: %v (%q)", err, out.Text)
	}
	rec := pidFromFile(t, dir)
	if !alivePid(rec.PID) {
		t.Fatalf("pid %d from the pid file is not running", rec.PID)
	}
	if pg, _ := syscall.Getpgid(rec.PID); pg != rec.PID {
		t.Fatalf("pgid %d, want its own group %d", pg, rec.PID)
	}
	mustState(t, p, resource.Running)

	// Start is idempotent: the same process keeps running.
	if out, err := p.Start(ctxT(t, 5*time.Second)); err != nil || !strings.Contains(out.Text, "already") {
		t.Fatalf("second Start: %v (%q)", err, out.Text)
	}
	if again := pidFromFile(t, dir); again.PID != rec.PID {
		t.Fatalf("second Start replaced pid %d with %d", rec.PID, again.PID)
	}

	t0 := time.Now()
	out, err = p.Stop(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Stop: %v (%q)", err, out.Text)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Stop of a process that obeys TERM took %s", d)
	}
	t.Logf("stop: %s", out.Text)
	if !strings.Contains(out.Text, "SIGTERM") {
		t.Errorf("stop output %q does not say SIGTERM", out.Text)
	}
	if alivePid(rec.PID) {
		t.Fatalf("pid %d still running after Stop", rec.PID)
	}
	if _, err := os.Stat(filepath.Join(dir, "svc.pid")); !os.IsNotExist(err) {
		t.Fatalf("pid file left after Stop: %v", err)
	}
	mustState(t, p, resource.Stopped)
	if _, err := p.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestGraceThenKillWholeGroup(t *testing.T) {
	// The shell and its background child both ignore TERM (an ignored signal is
	// inherited across fork and exec).
	script := `trap "" TERM; /usr/bin/sleep 1000 & while :; do /usr/bin/sleep 0.05; done`
	p := newProc(t, config.Resource{
		Command: []string{"/bin/sh", "-c", script},
		Grace:   config.Duration(400 * time.Millisecond),
	}, Options{StateDir: t.TempDir()})
	if out, err := p.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v (%q)", err, out.Text)
	}
	pgid := p.own.rec.PID
	var members []int
	eventually(t, 2*time.Second, "the background child", func() bool {
		members, _ = liveMembers(pgid)
		return len(members) >= 2
	})

	t0 := time.Now()
	out, err := p.Stop(ctxT(t, 10*time.Second))
	d := time.Since(t0)
	if err != nil {
		t.Fatalf("Stop: %v (%q)", err, out.Text)
	}
	t.Logf("stop after %s: %s", d, out.Text)
	if d < 400*time.Millisecond {
		t.Errorf("Stop took %s, less than the grace period", d)
	}
	if !strings.Contains(out.Text, "SIGKILL") {
		t.Errorf("output %q does not say SIGKILL", out.Text)
	}
	for _, pid := range members {
		if alivePid(pid) {
			t.Errorf("group member %d survived Stop", pid)
		}
	}
	if left, _ := liveMembers(pgid); len(left) > 0 {
		t.Errorf("group %d still has %v", pgid, left)
	}
	mustState(t, p, resource.Stopped)
}

func TestStopTimeoutKillsAtOnce(t *testing.T) {
	p := newProc(t, config.Resource{
		Command: []string{"/bin/sh", "-c", `trap "" TERM; while :; do /usr/bin/sleep 0.05; done`},
		Grace:   config.Duration(time.Minute),
	}, Options{})
	if out, err := p.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v (%q)", err, out.Text)
	}
	t0 := time.Now()
	out, err := p.Stop(ctxT(t, 300*time.Millisecond))
	if err != nil {
		t.Fatalf("Stop: %v (%q)", err, out.Text)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("Stop with a 300ms ctx took %s: the grace period was not cut short", d)
	}
	if !strings.Contains(out.Text, "timed out") {
		t.Errorf("output %q does not say the stop timed out", out.Text)
	}
	mustState(t, p, resource.Stopped)
}

// Kill (lease lost) skips the grace period: a group whose service ignores
// SIGTERM with a minute's grace is gone at once, children included.
func TestKillSkipsTheGracePeriod(t *testing.T) {
	var _ resource.Killer = (*Process)(nil)
	p := newProc(t, config.Resource{
		Command: []string{"/bin/sh", "-c", `trap "" TERM; /usr/bin/sleep 1000 & while :; do /usr/bin/sleep 0.05; done`},
		Grace:   config.Duration(time.Minute),
	}, Options{StateDir: t.TempDir()})
	if out, err := p.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v (%q)", err, out.Text)
	}
	pgid := p.own.rec.PID
	var members []int
	eventually(t, 2*time.Second, "the background child", func() bool {
		members, _ = liveMembers(pgid)
		return len(members) >= 2
	})
	out, err := p.Kill(ctxT(t, time.Minute))
	if err != nil {
		t.Fatalf("Kill: %v (%q)", err, out.Text)
	}
	t.Logf("killed in %s: %s", out.Duration, out.Text)
	if out.Duration > 10*time.Second || strings.Contains(out.Text, "still running") {
		t.Errorf("Kill waited for the grace period: %s, %q", out.Duration, out.Text)
	}
	for _, pid := range members {
		if alivePid(pid) {
			t.Errorf("group member %d survived Kill", pid)
		}
	}
	mustState(t, p, resource.Stopped)
}

func TestExitOnItsOwnIsFailed(t *testing.T) {
	dir := t.TempDir()
	p := newProc(t, config.Resource{Command: []string{"/bin/sh", "-c", "/usr/bin/sleep 0.4; exit 7"}}, Options{StateDir: dir})
	if out, err := p.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v (%q)", err, out.Text)
	}
	mustState(t, p, resource.Running)
	var out resource.Output
	eventually(t, 5*time.Second, "Failed", func() bool {
		var st resource.State
		st, out, _ = p.Monitor(ctxT(t, time.Second))
		return st == resource.Failed
	})
	if out.ExitCode != 7 || !strings.Contains(out.Text, "status 7") {
		t.Fatalf("Failed output = %+v, want exit code 7", out)
	}
	// Failed stays until someone acts, and Stop clears it.
	mustState(t, p, resource.Failed)
	if _, err := p.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Stop after failure: %v", err)
	}
	mustState(t, p, resource.Stopped)
	// And it can be started again.
	if out, err := p.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("restart: %v (%q)", err, out.Text)
	}
	mustState(t, p, resource.Running)
}

func TestEarlyExitFailsStart(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "logs", "svc.log")
	dir := t.TempDir()
	p := newProc(t, config.Resource{
		Command: []string{"/bin/sh", "-c", "echo cannot open /etc/nothing >&2; exit 3"},
		Log:     logPath,
	}, Options{StateDir: dir})
	out, err := p.Start(ctxT(t, 5*time.Second))
	if err == nil {
		t.Fatalf("Start of a command that exits at once succeeded: %q", out.Text)
	}
	t.Logf("error: %v", err)
	if out.ExitCode != 3 || !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), "cannot open /etc/nothing") {
		t.Fatalf("error %q / output %+v should carry exit status 3 and the command's output", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "svc.pid")); !os.IsNotExist(err) {
		t.Fatalf("pid file left by a failed start: %v", err)
	}
	mustState(t, p, resource.Stopped)

	// A daemon that forks into the background looks like an exit with status 0.
	q := newProc(t, config.Resource{Name: "false", Command: []string{"/usr/bin/true"}}, Options{})
	out, err = q.Start(ctxT(t, 5*time.Second))
	if err == nil || !strings.Contains(out.Text, "foreground") {
		t.Fatalf("Start of /usr/bin/true: err=%v out=%q, want a hint about the foreground", err, out.Text)
	}
}

func TestStartTimeoutLeavesNothing(t *testing.T) {
	p := newProc(t, config.Resource{Command: []string{"/usr/bin/sleep", "1000"}}, Options{Settle: 5 * time.Second, StateDir: t.TempDir()})
	_, err := p.Start(ctxT(t, 200*time.Millisecond))
	if err == nil {
		t.Fatal("Start outlived its ctx without an error")
	}
	mustState(t, p, resource.Stopped)
}

func TestAdoptionAfterAgentRestart(t *testing.T) {
	dir := t.TempDir()
	spec := config.Resource{Command: []string{"/bin/sh", "-c", "/usr/bin/sleep 1000 & exec /usr/bin/sleep 1000"}}
	first := newProc(t, spec, Options{StateDir: dir})
	if out, err := first.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v (%q)", err, out.Text)
	}
	rec := pidFromFile(t, dir)
	// The agent goes away without stopping its resources.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if !alivePid(rec.PID) {
		t.Fatal("Close stopped the process")
	}

	second := newProc(t, spec, Options{StateDir: dir})
	out := mustState(t, second, resource.Running)
	if !strings.Contains(out.Text, strconv.Itoa(rec.PID)) || !strings.Contains(out.Text, "adopted") {
		t.Errorf("adopted monitor text %q", out.Text)
	}
	if out, err := second.Start(ctxT(t, 5*time.Second)); err != nil || !strings.Contains(out.Text, "already") {
		t.Fatalf("Start of an adopted process: %v (%q)", err, out.Text)
	}
	if got := pidFromFile(t, dir); got.PID != rec.PID {
		t.Fatalf("Start replaced the adopted pid %d with %d", rec.PID, got.PID)
	}
	members, _ := liveMembers(rec.PID)
	if len(members) < 2 {
		t.Fatalf("group %d has %v, want the leader and its child", rec.PID, members)
	}
	if out, err := second.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Stop of an adopted process: %v (%q)", err, out.Text)
	}
	for _, pid := range members {
		if alivePid(pid) {
			t.Errorf("pid %d survived the Stop of the adopted group", pid)
		}
	}
	if s, err := readStat(rec.PID); err == nil {
		t.Errorf("adopted leader left as %c (a zombie of this test process should be reaped)", s.state)
	}
	mustState(t, second, resource.Stopped)
}

func TestAdoptedProcessThatDiedIsFailed(t *testing.T) {
	dir := t.TempDir()
	spec := config.Resource{Command: []string{"/usr/bin/sleep", "1000"}}
	first := newProc(t, spec, Options{StateDir: dir})
	if out, err := first.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v (%q)", err, out.Text)
	}
	rec := pidFromFile(t, dir)
	_ = first.Close()
	if err := syscall.Kill(rec.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := newProc(t, spec, Options{StateDir: dir})
	eventually(t, 2*time.Second, "Failed", func() bool {
		st, _, _ := second.Monitor(ctxT(t, time.Second))
		return st == resource.Failed
	})
	if _, err := second.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	mustState(t, second, resource.Stopped)
}

func TestPidReuseAndStaleBoot(t *testing.T) {
	dir := t.TempDir()
	// A record whose pid is alive (this test process) but with another start
	// time: the pid was reused and must not be signalled.
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := bootID()
	path := filepath.Join(dir, "svc.pid")
	if err := writeRecord(path, pidRecord{PID: os.Getpid(), StartTime: self.startTime + 1, BootID: boot}); err != nil {
		t.Fatal(err)
	}
	p := newProc(t, config.Resource{Command: []string{"/usr/bin/sleep", "1000"}}, Options{StateDir: dir})
	mustState(t, p, resource.Failed)
	out, err := p.Stop(ctxT(t, 5*time.Second))
	if err != nil || !strings.Contains(out.Text, "another process") {
		t.Fatalf("Stop with a reused pid: %v (%q)", err, out.Text)
	}
	mustState(t, p, resource.Stopped) // and this test is still alive

	// A record from an earlier boot: the machine went down, which is not a failure.
	if err := writeRecord(path, pidRecord{PID: os.Getpid(), StartTime: self.startTime, BootID: "earlier-boot"}); err != nil {
		t.Fatal(err)
	}
	mustState(t, p, resource.Stopped)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("stale pid file kept: %v", err)
	}
}

func TestUserEnvDirAndLog(t *testing.T) {
	requireRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	logPath := filepath.Join(t.TempDir(), "svc.log")
	if err := os.WriteFile(logPath, []byte("earlier run\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	p := newProc(t, config.Resource{
		Command: []string{"/bin/sh", "-c", `echo "uid=$(id -u) gid=$(id -g) home=$HOME greeting=$GREETING pwd=$(pwd) path=$PATH"; echo to-stderr >&2; exec /usr/bin/sleep 1000`},
		User:    "nobody",
		Env:     map[string]string{"GREETING": "ciao"},
		Dir:     "/tmp",
		Log:     logPath,
	}, Options{StateDir: t.TempDir()})
	if err := p.Validate(ctxT(t, time.Second)); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if out, err := p.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v (%q)", err, out.Text)
	}
	var log string
	eventually(t, 2*time.Second, "output in the log", func() bool {
		b, _ := os.ReadFile(logPath)
		log = string(b)
		return strings.Contains(log, "to-stderr")
	})
	for _, want := range []string{
		"earlier run\n", // appended, not truncated
		"uid=" + nobody.Uid + " gid=" + nobody.Gid,
		"home=" + nobody.HomeDir,
		"greeting=ciao",
		"pwd=/tmp",
		"path=" + basePath,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "GOFLAGS") {
		t.Errorf("the agent's environment leaked into the command")
	}
	if _, err := p.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec config.Resource
		want string
	}{
		{"empty", config.Resource{Name: "x"}, "empty command"},
		{"relative", config.Resource{Name: "x", Command: []string{"sleep"}}, "absolute path"},
		{"signal", config.Resource{Name: "x", Command: []string{"/bin/true"}, StopSignal: "NOPE"}, "stop signal"},
		{"log", config.Resource{Name: "x", Command: []string{"/bin/true"}, Log: "x.log"}, "log"},
		{"grace", config.Resource{Name: "x", Command: []string{"/bin/true"}, Grace: -1}, "grace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.spec, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	p, err := New(config.Resource{Name: "x", Command: []string{"/bin/true"}, StopSignal: "sigint"}, Options{})
	if err != nil || p.sig != syscall.SIGINT || p.grace != DefaultGrace {
		t.Fatalf("New = %+v, %v", p, err)
	}
	bad, _ := New(config.Resource{Name: "x", Command: []string{"/nonexistent/cmd"}, User: "no-such-user-vigil"}, Options{})
	if err := bad.Validate(context.Background()); err == nil {
		t.Fatal("Validate accepted a missing command")
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0 0 0"
	s, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.state != 'S' || s.ppid != 1 || s.pgrp != 4242 || s.startTime != 987654 {
		t.Fatalf("parseStat = %+v", s)
	}
}
