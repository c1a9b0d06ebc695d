package sync

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
)

// The test binary doubles as `vigil sync-guard`: rsyncd's pre-xfer exec and the
// fake ssh below run it with these variables set.
const (
	envGuardMode = "VIGIL_TEST_SYNC_GUARD"     // rsyncd or ssh
	envGuardDir  = "VIGIL_TEST_SYNC_GUARD_DIR" // the guard's directory
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envGuardMode); mode != "" {
		os.Exit(guardMain(mode, Guard{Dir: os.Getenv(envGuardDir)}))
	}
	os.Exit(m.Run())
}

// guardMain is what internal/cli's sync-guard command does.
func guardMain(mode string, g Guard) int {
	switch mode {
	case "rsyncd":
		if err := g.CheckRsyncd(os.Getenv); err != nil {
			fmt.Println(err) // rsyncd shows stdout to the client
			return 1
		}
		return 0
	case "ssh":
		argv, err := g.CheckSSH(os.Getpid(), os.Getenv("SSH_ORIGINAL_COMMAND"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		err = syscall.Exec(argv[0], argv, os.Environ())
		fmt.Fprintln(os.Stderr, "exec:", err)
		return 1
	}
	return 2
}

func needRsync(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed (apt-get install rsync)")
	}
}

// guardDaemon is an rsync daemon on loopback whose module is root (a real
// node's / ), checked by the test binary as pre-xfer exec when guarded.
type guardDaemon struct {
	port  int
	guard Guard
	pw    string // the client's password file
	log   string
}

func startGuardDaemon(t *testing.T, guarded bool) *guardDaemon {
	t.Helper()
	needRsync(t)
	tmp := t.TempDir()
	d := &guardDaemon{guard: Guard{Dir: filepath.Join(tmp, "guard")}, pw: filepath.Join(tmp, "client.pw"), log: filepath.Join(tmp, "rsyncd.log")}
	write(t, filepath.Join(tmp, "rsyncd.secrets"), "vigil:s3cret\n", 0o600)
	write(t, d.pw, "s3cret\n", 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pre := ""
	if guarded {
		// rsyncd runs it through the shell, with its own environment plus RSYNC_*.
		pre = fmt.Sprintf("pre-xfer exec = %s=rsyncd %s=%s %s\n", envGuardMode, envGuardDir, d.guard.Dir, self)
	}
	conf := filepath.Join(tmp, "rsyncd.conf")
	write(t, conf, fmt.Sprintf(`address = 127.0.0.1
port = %d
use chroot = no
uid = root
gid = root
log file = %s
[vigil]
path = /
read only = false
auth users = vigil
secrets file = %s/rsyncd.secrets
%s`, d.port, d.log, tmp, pre), 0o644)
	cmd := exec.Command("rsync", "--daemon", "--no-detach", "--config="+conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port)))
		if err == nil {
			_ = c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsync daemon not listening on %d: %v", d.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *guardDaemon) readLog() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// syncer is the sending side of a pass from src to the same path on this host
// (through the daemon on loopback): the source and the destination are given
// separately, so the test fakes "the same path" with a daemon module at /.
func (d *guardDaemon) syncer(t *testing.T, src string) *Syncer {
	t.Helper()
	r := config.Resource{Name: "www", Type: "sync", Paths: []string{src}, Transport: "rsyncd", SecretsFile: d.pw}
	s, err := New(r, Options{Self: "old", Peers: []Peer{{Name: "new", Addr: "127.0.0.1"}}, Port: d.port})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGuardRsyncdRefusesHeldPaths: a real rsync daemon with the guard as its
// pre-xfer exec accepts a pass while no group holds the path, refuses it (and
// the destination keeps its own data) while one does, accepts it again once
// released, and is not bothered by a hold on another path.
func TestGuardRsyncdRefusesHeldPaths(t *testing.T) {
	d := startGuardDaemon(t, true)
	// Source and destination are different directories of this host: the
	// daemon's module is /, as on a real node.
	tmp := t.TempDir()
	src := filepath.Join(tmp, "data")
	write(t, filepath.Join(src, "f.txt"), "from the old node\n", 0o644)
	dst := filepath.Join(tmp, "copy")
	write(t, filepath.Join(dst, "f.txt"), "the new active node's own\n", 0o644)
	push := func() error {
		return rsyncPush(d, src, dst)
	}
	if err := push(); err != nil {
		t.Fatalf("push with no hold: %v\n%s", err, d.readLog())
	}
	if got := read(t, filepath.Join(dst, "f.txt")); got != "from the old node\n" {
		t.Fatalf("with no hold the copy is %q", got)
	}

	write(t, filepath.Join(dst, "f.txt"), "the new active node's own\n", 0o644)
	if err := d.guard.Hold("web", []string{dst}); err != nil {
		t.Fatal(err)
	}
	err := push()
	if err == nil {
		t.Fatalf("push into a held path succeeded")
	}
	if got := read(t, filepath.Join(dst, "f.txt")); got != "the new active node's own\n" {
		t.Fatalf("a refused push changed the copy: %q", got)
	}
	if log := d.readLog(); !strings.Contains(log, "pre-xfer exec") && !strings.Contains(log, "sync guard") {
		t.Errorf("the daemon's log does not show the refusal:\n%s", log)
	}
	// A push to a parent of the held path would rewrite it too.
	if err := rsyncPush(d, tmp+"/", tmp); err == nil {
		t.Fatalf("push into a parent of a held path succeeded")
	}

	// Another group's hold does not refuse this path.
	if err := d.guard.Release("web"); err != nil {
		t.Fatal(err)
	}
	if err := d.guard.Hold("mail", []string{filepath.Join(tmp, "mail")}); err != nil {
		t.Fatal(err)
	}
	if err := push(); err != nil {
		t.Fatalf("push after the release: %v\n%s", err, d.readLog())
	}
	if got := read(t, filepath.Join(dst, "f.txt")); got != "from the old node\n" {
		t.Fatalf("after the release the copy is %q", got)
	}
	// A pull (this node sends) is not a write here: allowed while held.
	if err := d.guard.Hold("web", []string{dst}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "pulled")
	c := exec.Command("rsync", "-a", "--password-file="+d.pw, fmt.Sprintf("rsync://vigil@127.0.0.1:%d/vigil%s/", d.port, dst), out+"/")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("pull from a held path: %v: %s", err, b)
	}
}

// rsyncPush copies src/ to dst/ on the daemon (its module is /).
func rsyncPush(d *guardDaemon, src, dst string, extra ...string) error {
	args := append([]string{"-a", "--delete", "--timeout=30", "--password-file=" + d.pw}, extra...)
	args = append(args, strings.TrimSuffix(src, "/")+"/", fmt.Sprintf("rsync://vigil@127.0.0.1:%d/vigil%s/", d.port, dst))
	b, err := exec.Command("rsync", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, b)
	}
	return nil
}

// TestGuardSyncerPassRefused: the product's own pass (Syncer.Pass) fails on a
// held target, and says so.
func TestGuardSyncerPassRefused(t *testing.T) {
	d := startGuardDaemon(t, true)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "data")
	write(t, filepath.Join(src, "f.txt"), "old\n", 0o644)
	// Through the module at /, the syncer writes to its own path: the hold is on
	// that path, so the pass is refused before it could copy the tree onto itself.
	if err := d.guard.Hold("web", []string{src}); err != nil {
		t.Fatal(err)
	}
	err := d.syncer(t, src).Pass(t.Context())
	if err == nil || !strings.Contains(err.Error(), "refused by the target") || !strings.Contains(err.Error(), "sync guard: refusing a write to "+src) {
		t.Fatalf("pass into a held path: err = %v, want a refused transfer\n%s", err, d.readLog())
	}
}

// bigFile writes n MiB of incompressible-enough data.
func bigFile(t *testing.T, path string, mib int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	x := uint32(2463534242)
	for i := 0; i < mib; i++ {
		for j := 0; j < len(buf); j += 4 {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			buf[j], buf[j+1], buf[j+2], buf[j+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		}
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
}

// slowPush starts a long push (bwlimit) of src/ to dst/ and waits until the
// receiver has started writing (its temporary file exists in dst).
func slowPush(t *testing.T, argv []string, dst string) (*exec.Cmd, chan error, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	// A killed client must not hang Wait on a pipe a child still holds.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		done <- cmd.Wait()
		close(ended)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-ended
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		ents, _ := os.ReadDir(dst)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".big") {
				return cmd, done, out
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the slow push ended before writing: %v: %s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow push wrote nothing in 20s: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkKilled: the hold plus KillReceivers ends the in-flight push, the new
// active node's file survives, and the old node's big file never lands.
func checkKilled(t *testing.T, g Guard, dst string, done chan error, out *strings.Builder, wantWhy string) {
	t.Helper()
	if err := g.Hold("web", []string{dst}); err != nil {
		t.Fatal(err)
	}
	killed, err := g.KillReceivers([]string{dst}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(killed) == 0 {
		t.Fatal("no receiver killed")
	}
	why := ""
	for _, k := range killed {
		why += k.Why + "; "
	}
	if !strings.Contains(why, wantWhy) {
		t.Errorf("killed %v, want one found as %q", killed, wantWhy)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the push succeeded although its receiver was killed: %s", out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the push did not end after its receiver was killed")
	}
	// Nothing more arrives: the copy stays the new active node's.
	time.Sleep(300 * time.Millisecond)
	if got := read(t, filepath.Join(dst, "mine.txt")); got != "new active\n" {
		t.Fatalf("the new active node's file is %q", got)
	}
	if _, err := os.Stat(filepath.Join(dst, "big")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old node's big file landed: %v", err)
	}
	ents, _ := os.ReadDir(dst)
	for _, e := range ents {
		if e.Name() != "mine.txt" {
			t.Errorf("left in the new active node's copy: %s", e.Name())
		}
	}
}

func inflightDirs(t *testing.T) (src, dst string) {
	tmp := t.TempDir()
	src, dst = filepath.Join(tmp, "old"), filepath.Join(tmp, "new")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	bigFile(t, filepath.Join(src, "big"), 8)
	write(t, filepath.Join(dst, "mine.txt"), "new active\n", 0o644)
	return src, dst
}

// TestGuardKillsInflightDaemonReceiver: a push admitted by the guard before the
// node took the group is killed when it does, found through its registration.
func TestGuardKillsInflightDaemonReceiver(t *testing.T) {
	d := startGuardDaemon(t, true)
	src, dst := inflightDirs(t)
	// Without --delete the new active node's own file would survive a completed
	// push too; the assertion that matters is that the big file never lands.
	_, done, out := slowPush(t, []string{"rsync", "-a", "--bwlimit=256", "--timeout=30", "--password-file=" + d.pw,
		src + "/", fmt.Sprintf("rsync://vigil@127.0.0.1:%d/vigil%s/", d.port, dst)}, dst)
	checkKilled(t, d.guard, dst, done, out, "admitted by the sync guard")
}

// TestGuardKillsInflightUnguardedReceiver: a push into a daemon without the
// guard (or started before it was configured) is found in /proc by its working
// directory and killed.
func TestGuardKillsInflightUnguardedReceiver(t *testing.T) {
	d := startGuardDaemon(t, false)
	src, dst := inflightDirs(t)
	_, done, out := slowPush(t, []string{"rsync", "-a", "--bwlimit=256", "--timeout=30", "--password-file=" + d.pw,
		src + "/", fmt.Sprintf("rsync://vigil@127.0.0.1:%d/vigil%s/", d.port, dst)}, dst)
	checkKilled(t, d.guard, dst, done, out, "rsync working in "+dst)
}

// fakeSSH writes a remote shell for rsync -e that does what sshd does with a
// forced command: the client's command in SSH_ORIGINAL_COMMAND, the forced
// command (the test binary as sync-guard ssh) run instead, here on the same host.
func fakeSSH(t *testing.T, g Guard) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fake-ssh")
	// rsync runs: fake-ssh [-l USER] HOST rsync --server ...; ssh joins the
	// command's words with blanks.
	write(t, path, fmt.Sprintf(`#!/bin/sh
if [ "$1" = "-l" ]; then shift 2; fi
shift
SSH_ORIGINAL_COMMAND="$*" %s=ssh %s=%s exec %s
`, envGuardMode, envGuardDir, g.Dir, self), 0o755)
	return path
}

// TestGuardSSHForcedCommand: through the forced command, a push is refused
// while held and accepted otherwise, a command other than rsync --server is
// refused, and an in-flight receiver (the guard's own pid, now rsync) is killed.
func TestGuardSSHForcedCommand(t *testing.T) {
	needRsync(t)
	g := Guard{Dir: filepath.Join(t.TempDir(), "guard")}
	rsh := fakeSSH(t, g)
	tmp := t.TempDir()
	src, dst := filepath.Join(tmp, "old"), filepath.Join(tmp, "new")
	write(t, filepath.Join(src, "f.txt"), "old\n", 0o644)
	write(t, filepath.Join(dst, "f.txt"), "new active\n", 0o644)
	push := func() ([]byte, error) {
		return exec.Command("rsync", "-a", "--timeout=30", "-e", rsh, src+"/", "root@127.0.0.1:"+dst+"/").CombinedOutput()
	}
	if err := g.Hold("web", []string{dst}); err != nil {
		t.Fatal(err)
	}
	if out, err := push(); err == nil || !strings.Contains(string(out), "refusing a write to "+dst) {
		t.Fatalf("push into a held path: %v: %s", err, out)
	}
	if got := read(t, filepath.Join(dst, "f.txt")); got != "new active\n" {
		t.Fatalf("a refused push changed the copy: %q", got)
	}
	if err := g.Release("web"); err != nil {
		t.Fatal(err)
	}
	if out, err := push(); err != nil {
		t.Fatalf("push with no hold: %v: %s", err, out)
	}
	if got := read(t, filepath.Join(dst, "f.txt")); got != "old\n" {
		t.Fatalf("with no hold the copy is %q", got)
	}
	out, err := exec.Command(rsh, "127.0.0.1", "sh", "-c", "id").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "only rsync --server") {
		t.Fatalf("another command through the key: %v: %s", err, out)
	}

	src, dst = inflightDirs(t)
	_, done, outb := slowPush(t, []string{"rsync", "-a", "--bwlimit=256", "--timeout=30", "-e", rsh, src + "/", "127.0.0.1:" + dst + "/"}, dst)
	checkKilled(t, g, dst, done, outb, "admitted by the sync guard")
}

func TestSplitCommand(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "rsync --server -logDtpre.iLsfxCIvu --delete . /srv/www/", want: []string{"rsync", "--server", "-logDtpre.iLsfxCIvu", "--delete", ".", "/srv/www/"}},
		{in: `rsync --server . /srv/my\ dir/`, want: []string{"rsync", "--server", ".", "/srv/my dir/"}},
		{in: `rsync --server . '/srv/a b'`, want: []string{"rsync", "--server", ".", "/srv/a b"}},
		{in: "rsync --server . /srv; rm -rf /", bad: true},
		{in: "rsync --server . $(id)", bad: true},
		{in: `rsync --server . "/srv/$HOME"`, bad: true},
		{in: "rsync --server . 'open", bad: true},
	} {
		got, err := splitCommand(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: accepted as %q", c.in, got)
			}
			continue
		}
		if err != nil || strings.Join(got, "\x00") != strings.Join(c.want, "\x00") {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestGuardKillsChildrenOfAdmitted: a receiver admitted before it forked
// (rsync's generator and receiver) dies with its children, which could
// otherwise finish the file being written.
func TestGuardKillsChildrenOfAdmitted(t *testing.T) {
	g := Guard{Dir: filepath.Join(t.TempDir(), "guard")}
	cmd := exec.Command("sh", "-c", "sleep 60 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var child int
	if _, err := fmt.Fscan(out, &child); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if err := g.Admit(cmd.Process.Pid, "/srv/www"); err != nil {
		t.Fatal(err)
	}
	killed, err := g.KillReceivers([]string{"/srv/www"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int]bool{}
	for _, k := range killed {
		pids[k.PID] = true
	}
	if !pids[cmd.Process.Pid] || !pids[child] {
		t.Fatalf("killed %+v, want the admitted %d and its child %d", killed, cmd.Process.Pid, child)
	}
	if st, err := procState(child); err == nil && st != "Z" {
		t.Fatalf("the child %d still runs (state %s)", child, st)
	}
}

// Unguarded tells copies that came through the check from copies that did
// not: the agent warns about a target whose rsyncd (or ssh key) lacks it.
func TestUnguardedSeesCopiesThatSkippedTheCheck(t *testing.T) {
	for _, guarded := range []bool{true, false} {
		t.Run(fmt.Sprintf("guarded=%v", guarded), func(t *testing.T) {
			d := startGuardDaemon(t, guarded)
			tmp := t.TempDir()
			src, dst, never := filepath.Join(tmp, "data"), filepath.Join(tmp, "copy"), filepath.Join(tmp, "never")
			write(t, filepath.Join(src, StampFile), "a 2026-11-23T05:00:00Z\n", 0o644)
			write(t, filepath.Join(never, "f.txt"), "no stamp: never received a copy\n", 0o644)
			if err := rsyncPush(d, src, dst); err != nil {
				t.Fatalf("push: %v\n%s", err, d.readLog())
			}
			got := d.guard.Unguarded([]string{dst, never})
			if guarded && len(got) != 0 {
				t.Fatalf("a copy that went through the guard is reported unguarded: %v", got)
			}
			if !guarded && (len(got) != 1 || got[0] != dst) {
				t.Fatalf("Unguarded = %v, want [%s]", got, dst)
			}
		})
	}
	// A check long before the stamp arrived does not cover it.
	g := Guard{Dir: t.TempDir()}
	g.markChecked()
	old := time.Now().Add(-2 * unguardedSlack)
	if err := os.Chtimes(g.checkedFile(), old, old); err != nil {
		t.Fatal(err)
	}
	p := t.TempDir()
	write(t, filepath.Join(p, StampFile), "a 2026-11-23T05:00:00Z\n", 0o644)
	if got := g.Unguarded([]string{p}); len(got) != 1 {
		t.Fatalf("a stamp that landed long after the last check: Unguarded = %v", got)
	}
}
