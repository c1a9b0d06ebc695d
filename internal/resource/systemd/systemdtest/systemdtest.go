// Package systemdtest boots a real systemd in a systemd-nspawn container for tests, reachable over D-Bus from the host.
//
// Test machines have no systemd as PID 1, yet the systemd resource must be
// tested against the real thing, not a fake bus. systemd-nspawn boots the
// host's systemd from a tiny root directory that binds the host's /usr
// read-only; its system bus is reachable from the host through
// /proc/<container PID 1>/root. Boot takes about two seconds. Needs root and
// the Debian packages systemd-container, systemd and dbus.
package systemdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// RequireEnv names the environment variable that turns a skip (no root, no
// systemd-nspawn) into a failure, for CI machines that must run these tests.
const RequireEnv = "VIGIL_REQUIRE_SYSTEMD"

const (
	bootTimeout     = 60 * time.Second
	shutdownTimeout = 30 * time.Second
)

// Container is one booted systemd.
type Container struct {
	// Root is the container's root directory on the host.
	Root string
	// Leader is the host's pid of the container's PID 1 (systemd).
	Leader int
	// BootTime is how long the boot took, until systemd reported running.
	BootTime time.Duration

	cmd    *exec.Cmd
	exited chan struct{} // closed once systemd-nspawn has been waited for
	out    *tailBuffer

	startedAt time.Time
	once      sync.Once
	stopErr   error
}

// Unavailable says why no container can be booted here, or "" when one can.
func Unavailable() string {
	if os.Geteuid() != 0 {
		return "systemd-nspawn needs root"
	}
	var missing []string
	for _, bin := range []string{"systemd-nspawn", "dbus-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if _, err := os.Stat("/usr/lib/systemd/systemd"); err != nil {
		missing = append(missing, "/usr/lib/systemd/systemd")
	}
	if len(missing) > 0 {
		return fmt.Sprintf("%s not found: apt-get install systemd-container systemd dbus", strings.Join(missing, ", "))
	}
	return ""
}

// Boot boots a container for t and shuts it down when t ends. It skips t when
// Unavailable says so, unless $VIGIL_REQUIRE_SYSTEMD is set, and fails t when a
// boot that should work does not.
func Boot(t testing.TB) *Container {
	t.Helper()
	if why := Unavailable(); why != "" {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("real systemd required ($%s is set) but unavailable: %s", RequireEnv, why)
		}
		t.Skipf("no real systemd for this test: %s (set $%s to make this a failure)", why, RequireEnv)
	}
	root := filepath.Join(t.TempDir(), "root")
	c, err := Start(root)
	if err != nil {
		t.Fatalf("boot systemd in a container: %v", err)
	}
	t.Cleanup(func() {
		t0 := time.Now()
		if err := c.Shutdown(); err != nil {
			t.Errorf("container shutdown: %v", err)
			return
		}
		t.Logf("container powered off in %s", time.Since(t0).Round(time.Millisecond))
	})
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if err := c.WaitRunning(ctx); err != nil {
		t.Fatalf("boot systemd in a container: %v", err)
	}
	t.Logf("systemd booted in a container in %s (host pid %d)", c.BootTime.Round(time.Millisecond), c.Leader)
	return c
}

// Start prepares root (a directory that must not exist yet) and starts
// systemd-nspawn on it. The caller must call Shutdown; WaitRunning waits for the boot.
func Start(root string) (*Container, error) {
	if err := makeRoot(root); err != nil {
		return nil, err
	}
	name := "vigil-" + randomHex(4)
	cmd := exec.Command("systemd-nspawn", "-q", "-b", "-D", root,
		"--machine="+name,
		"--bind-ro=/usr",
		// Without a host systemd there is no machined to register with and no
		// unit to move into: both flags are required here.
		"--register=no", "--keep-unit",
		"--private-network",
		"--console=passive")
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	// If the test binary dies, nspawn still powers the container off cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run systemd-nspawn: %w", err)
	}
	c := &Container{Root: root, cmd: cmd, exited: make(chan struct{}), out: out}
	// Owned by the container: ends when nspawn exits, which Shutdown ensures.
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	leader, err := c.findLeader(10 * time.Second)
	if err != nil {
		_ = c.Shutdown()
		return nil, err
	}
	c.Leader = leader
	c.startedAt = t0
	return c, nil
}

// findLeader finds the container's init among nspawn's children: it is the
// child whose command became "systemd" (before its exec it is still nspawn).
func (c *Container) findLeader(limit time.Duration) (int, error) {
	end := time.Now().Add(limit)
	nspawn := c.cmd.Process.Pid
	for time.Now().Before(end) {
		select {
		case <-c.exited:
			return 0, fmt.Errorf("systemd-nspawn exited during boot: %s", c.out.String())
		default:
		}
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", nspawn))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, s := range strings.Fields(string(b)) {
				pid, err := strconv.Atoi(s)
				if err != nil {
					continue
				}
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				if strings.TrimSpace(string(comm)) == "systemd" {
					return pid, nil
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("no systemd among the children of systemd-nspawn (pid %d) after %s: %s", nspawn, limit, c.out.String())
}

// BusAddress is the container's system bus as the host reaches it, the value
// for $DBUS_SYSTEM_BUS_ADDRESS.
func (c *Container) BusAddress() string {
	return fmt.Sprintf("unix:path=/proc/%d/root/run/dbus/system_bus_socket", c.Leader)
}

// Connect opens a connection to the container's systemd, as a
// systemd.Options.Connect does. ctx bounds the connection's whole life.
func (c *Container) Connect(ctx context.Context) (*sdbus.Conn, error) {
	addr := c.BusAddress()
	return sdbus.NewConnection(func() (*dbus.Conn, error) {
		conn, err := dbus.Dial(addr, dbus.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			conn.Close()
			return nil, fmt.Errorf("authenticate to %s: %w", addr, err)
		}
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("hello to %s: %w", addr, err)
		}
		return conn, nil
	})
}

// WaitRunning waits until systemd reports the system running (or degraded:
// up, with a unit failed), and sets BootTime.
func (c *Container) WaitRunning(ctx context.Context) error {
	last := "no answer yet"
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("systemd-nspawn exited during boot (%s): %s", last, c.out.String())
		case <-ctx.Done():
			return fmt.Errorf("systemd not running after boot wait (%s): %w; console: %s", last, ctx.Err(), c.out.String())
		default:
		}
		state, err := c.systemState(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case state == "running" || state == "degraded":
			if !c.startedAt.IsZero() {
				c.BootTime = time.Since(c.startedAt)
			}
			return nil
		case state == "stopping" || state == "maintenance" || state == "offline":
			return fmt.Errorf("systemd state %q during boot: %s", state, c.out.String())
		default:
			last = "SystemState=" + state
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Container) systemState(ctx context.Context) (string, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/run/dbus/system_bus_socket", c.Leader)); err != nil {
		return "", errors.New("no system bus socket yet")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := c.Connect(cctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	p, err := conn.SystemStateContext(cctx)
	if err != nil {
		return "", err
	}
	s, _ := p.Value.Value().(string)
	return s, nil
}

// AddUnits writes unit files (name → content) into the container's
// /run/systemd/system and makes systemd reload.
func (c *Container) AddUnits(ctx context.Context, units map[string]string) error {
	dir := filepath.Join(fmt.Sprintf("/proc/%d/root", c.Leader), "run/systemd/system")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("unit directory: %w", err)
	}
	for name, content := range units {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write unit %s: %w", name, err)
		}
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// Shutdown powers the container off (SIGTERM to nspawn, which asks systemd
// for a clean poweroff) and waits for it; after shutdownTimeout it kills it.
// It may be called more than once.
func (c *Container) Shutdown() error {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
			return
		case <-time.After(shutdownTimeout):
		}
		// Killing the container's init ends its whole pid namespace.
		if c.Leader > 0 {
			_ = syscall.Kill(c.Leader, syscall.SIGKILL)
		}
		_ = c.cmd.Process.Kill()
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
		}
		c.stopErr = fmt.Errorf("container did not power off within %s and was killed: %s", shutdownTimeout, c.out.String())
	})
	return c.stopErr
}

// makeRoot builds the smallest root systemd boots from: its own etc/, empty
// mount points, and bin/lib/sbin as links into the host's /usr (bound read-only).
func makeRoot(root string) error {
	if _, err := os.Stat(root); err == nil {
		return fmt.Errorf("container root %s already exists", root)
	}
	for _, d := range []string{"etc", "var", "tmp", "root", "run", "proc", "sys", "dev", "usr"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("container root: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return fmt.Errorf("container root: %w", err)
	}
	for _, d := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+d, filepath.Join(root, d)); err != nil {
			return fmt.Errorf("container root: %w", err)
		}
	}
	osRelease, err := os.ReadFile("/usr/lib/os-release")
	if err != nil {
		return fmt.Errorf("container root: systemd-nspawn wants an os-release: %w", err)
	}
	files := map[string]string{
		"os-release": string(osRelease),
		"passwd":     "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group":      "root:x:0:\nnogroup:x:65534:\n",
		"hostname":   "vigil-test\n",
		// Without it glibc tries modules the minimal root has no use for.
		"nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
		// A valid machine id: without one, systemd's first-boot handling enables
		// every installed unit and the boot never finishes.
		"machine-id": randomHex(16) + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("container root: %w", err)
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// tailBuffer keeps the last max bytes of the console, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = b.buf[len(b.buf)-b.max:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(bytes.TrimSpace(b.buf))
	if s == "" {
		return "(no console output)"
	}
	return s
}
