package sync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/resource"
)

func write(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRsyncDaemonPass replicates from host a to an rsync daemon on host b, the
// two in separate network namespaces (sharing the file system, so source and
// destination are different paths).
func TestRsyncDaemonPass(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed (apt-get install rsync)")
	}
	l := lab.NewForTest(t, lab.Options{Name: "syn1", Networks: []lab.Network{{Name: "hb", Subnet: "10.84.1.0/24"}}, Hosts: []string{"a", "b"}})
	a, b := l.Host("a"), l.Host("b")
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src", "www")
	dstRoot := filepath.Join(tmp, "dst") // the module's path: / on a real node
	write(t, filepath.Join(src, "index.html"), "hello\n", 0o644)
	write(t, filepath.Join(src, "sub", "old.txt"), "old\n", 0o644)
	if err := os.MkdirAll(dstRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	// rsync refuses secrets and password files that others can read.
	write(t, filepath.Join(tmp, "rsyncd.secrets"), "vigil:s3cret\n", 0o600)
	write(t, filepath.Join(tmp, "client.pw"), "s3cret\n", 0o600)
	write(t, filepath.Join(tmp, "wrong.pw"), "nope\n", 0o600)
	addrB := b.Addr("hb")
	write(t, filepath.Join(tmp, "rsyncd.conf"), fmt.Sprintf(`address = %s
port = 873
use chroot = no
uid = root
gid = root
pid file = %s/rsyncd.pid
[vigil]
path = %s
read only = false
auth users = vigil
secrets file = %s/rsyncd.secrets
`, addrB, tmp, dstRoot, tmp), 0o644)
	if _, err := b.Start("rsyncd", []string{"rsync", "--daemon", "--no-detach", "--config=" + filepath.Join(tmp, "rsyncd.conf")}, nil, filepath.Join(tmp, "rsyncd.log")); err != nil {
		t.Fatal(err)
	}
	waitListening(t, a, net.JoinHostPort(addrB, "873"))

	peers := []Peer{{Name: "a", Addr: a.Addr("hb")}, {Name: "b", Addr: addrB}}
	r := config.Resource{Name: "www", Type: "sync", Paths: []string{src}, Transport: "rsyncd", SecretsFile: filepath.Join(tmp, "client.pw")}
	s, err := New(r, Options{Self: "a", Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	pass := func(s *Syncer) error {
		return a.Do(func() error { return s.Pass(t.Context()) })
	}
	before := time.Now()
	if err := pass(s); err != nil {
		t.Fatalf("pass: %v (daemon log: %s)", err, readLog(tmp))
	}
	copyDir := filepath.Join(dstRoot, src)
	if got := read(t, filepath.Join(copyDir, "index.html")); got != "hello\n" {
		t.Fatalf("copied index.html = %q", got)
	}
	st, err := ReadStamp(copyDir)
	if err != nil {
		t.Fatalf("no stamp after a pass: %v", err)
	}
	if st.From != "a" || st.Time.Before(before.Add(-time.Second)) || st.Time.After(time.Now()) {
		t.Fatalf("stamp = %+v, want from a at about %s", st, before)
	}
	if _, err := os.Stat(filepath.Join(src, StampFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the source got a stamp: %v", err)
	}

	// A deletion is replicated; the stamp survives --delete.
	if err := os.RemoveAll(filepath.Join(src, "sub")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "new.txt"), "new\n", 0o644)
	if err := pass(s); err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if _, err := os.Stat(filepath.Join(copyDir, "sub")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("deleted directory still in the copy: %v", err)
	}
	if got := read(t, filepath.Join(copyDir, "new.txt")); got != "new\n" {
		t.Fatalf("new.txt = %q", got)
	}
	if _, err := ReadStamp(copyDir); err != nil {
		t.Fatalf("stamp lost on the second pass: %v", err)
	}

	// Takeover: b starts the resource on its copy and reports the copy's age.
	time.Sleep(1100 * time.Millisecond)
	rb := r
	rb.Paths = []string{copyDir}
	sb, err := New(rb, Options{Self: "b", Peers: []Peer{{Name: "b", Addr: addrB}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sb.Start(t.Context())
	if err != nil {
		t.Fatalf("start on b: %v", err)
	}
	if !strings.Contains(out.Text, "copy from a as of") || !strings.Contains(out.Text, "s old") {
		t.Fatalf("start on b says %q, want the copy's age", out.Text)
	}
	if _, err := sb.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	// A wrong password is a clear error, not a silent skip.
	r.SecretsFile = filepath.Join(tmp, "wrong.pw")
	bad, err := New(r, Options{Self: "a", Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	err = pass(bad)
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), "auth failed") {
		t.Fatalf("wrong password: err = %v, want an authentication failure", err)
	}
	// Per target: the failure is the target's error; a pass that reached it
	// (the first syncer's) sets its last pass.
	bad.started.Store(time.Now().UnixNano())
	if ts := bad.Targets(time.Now()); len(ts) != 1 || ts[0].Target != "b" || !strings.Contains(ts[0].Err, "auth failed") || !ts[0].LastPass.IsZero() {
		t.Fatalf("targets after a failed pass: %+v", ts)
	}
	s.started.Store(before.UnixNano())
	if ts := s.Targets(time.Now()); len(ts) != 1 || ts[0].Target != "b" || ts[0].Err != "" || ts[0].LastPass.Before(before) || ts[0].Lag <= 0 {
		t.Fatalf("targets after good passes: %+v", ts)
	}
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "rsyncd.log"))
	return string(b)
}

func waitListening(t *testing.T, h *lab.Host, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		c, err := h.Dial(ctx, "tcp", addr)
		cancel()
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsync daemon not listening on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLagAndLifecycle needs no network: with no peer a pass succeeds at once.
func TestLagAndLifecycle(t *testing.T) {
	dir := t.TempDir()
	s, err := New(config.Resource{Name: "x", Type: "sync", Paths: []string{dir}}, Options{Self: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := s.Monitor(t.Context()); st != resource.Stopped {
		t.Fatalf("before start: %v", st)
	}
	out, err := s.Start(t.Context())
	if err != nil || !strings.Contains(out.Text, "no sync stamp") {
		t.Fatalf("start: %q, %v", out.Text, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.lastOK.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no pass completed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lag := s.Lag(time.Now()); lag < 0 || lag > 5*time.Second {
		t.Fatalf("lag %s", lag)
	}
	if st, out, _ := s.Monitor(t.Context()); st != resource.Running || !strings.Contains(out.Text, "lag") {
		t.Fatalf("monitor: %v %q", st, out.Text)
	}
	if _, err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.Lag(time.Now()) != 0 {
		t.Fatal("lag after stop")
	}
	if _, err := s.Stop(t.Context()); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

// TestChangeTriggersPass: with an hour's interval, only the watcher can cause
// the passes after the first, including for a directory created after Start.
func TestChangeTriggersPass(t *testing.T) {
	dir := t.TempDir()
	s, err := New(config.Resource{Name: "x", Type: "sync", Paths: []string{dir}, Interval: config.Duration(time.Hour)}, Options{Self: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	waitPass := func(after int64, what string) int64 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if v := s.lastOK.Load(); v > after {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("no pass after %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := waitPass(0, "start")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	second := waitPass(first, "mkdir")
	write(t, filepath.Join(dir, "sub", "f"), "x", 0o644)
	waitPass(second, "a write in the new directory")
}
