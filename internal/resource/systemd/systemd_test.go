package systemd

import (
	"context"
	"strings"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/resource/systemd/systemdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Units the tests install in the container.
var units = map[string]string{
	"vigil-sleep.service": "[Service]\nExecStart=/usr/bin/sleep infinity\n",
	// Starts, then its main process exits 3 on its own.
	"vigil-crash.service": "[Service]\nExecStart=/bin/sh -c '/usr/bin/sleep 0.3; exit 3'\n",
	// Its start job itself fails.
	"vigil-false.service": "[Service]\nType=oneshot\nExecStart=/usr/bin/false\n",
	// Never becomes ready: its start job waits as long as the caller lets it.
	"vigil-slow.service": "[Service]\nType=notify\nTimeoutStartSec=infinity\nExecStart=/usr/bin/sleep infinity\n",
	// Ignores SIGTERM (an ignored signal stays ignored across exec), so a
	// graceful stop lasts its whole minute of TimeoutStopSec, and is
	// restarted at once whenever it dies. One process: with a child, systemd
	// in this cgroup-v1 container sometimes misses that the unit's cgroup
	// became empty after the kill and waits out the timeout (not so with
	// cgroup v2, where the kernel tells it).
	"vigil-stubborn.service": "[Service]\nExecStart=/bin/sh -c 'trap \"\" TERM; exec /usr/bin/sleep infinity'\nTimeoutStopSec=60\nRestart=always\nRestartSec=100ms\n",
	// Crashes, and systemd waits to restart it.
	"vigil-flap.service": "[Service]\nExecStart=/bin/sh -c '/usr/bin/sleep 0.3; exit 2'\nRestart=always\nRestartSec=1h\n",
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newUnit(t *testing.T, c *systemdtest.Container, unit string) *Unit {
	t.Helper()
	u, err := New(config.Resource{Name: "r", Type: "systemd", Unit: unit}, Options{Connect: c.Connect})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u
}

func monitor(t *testing.T, u *Unit) (resource.State, resource.Output) {
	t.Helper()
	st, out, err := u.Monitor(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Monitor: %v", err)
	}
	return st, out
}

func mustState(t *testing.T, u *Unit, want resource.State) resource.Output {
	t.Helper()
	st, out := monitor(t, u)
	if st != want {
		t.Fatalf("Monitor(%s) = %s (%q), want %s", u.Name(), st, out.Text, want)
	}
	return out
}

func eventually(t *testing.T, u *Unit, want resource.State) resource.Output {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for {
		st, out := monitor(t, u)
		if st == want {
			return out
		}
		if time.Now().After(end) {
			t.Fatalf("Monitor(%s) still %s (%q), want %s", u.Name(), st, out.Text, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRealSystemd runs every unit test against one real systemd, booted in a
// container (systemdtest), since a boot costs about two seconds.
func TestRealSystemd(t *testing.T) {
	c := systemdtest.Boot(t)
	if err := c.AddUnits(ctxT(t, 10*time.Second), units); err != nil {
		t.Fatal(err)
	}

	t.Run("StartMonitorStop", func(t *testing.T) {
		u := newUnit(t, c, "vigil-sleep.service")
		mustState(t, u, resource.Stopped)
		out, err := u.Start(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatalf("Start: %v (%q)", err, out.Text)
		}
		t.Logf("start (%s): %s", out.Duration, out.Text)
		out = mustState(t, u, resource.Running)
		if !strings.Contains(out.Text, "ActiveState=active SubState=running") {
			t.Errorf("monitor text %q", out.Text)
		}
		if out, err := u.Start(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("second Start: %v (%q)", err, out.Text)
		}
		out, err = u.Stop(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatalf("Stop: %v (%q)", err, out.Text)
		}
		t.Logf("stop (%s): %s", out.Duration, out.Text)
		mustState(t, u, resource.Stopped)
		if out, err := u.Stop(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("second Stop: %v (%q)", err, out.Text)
		}
	})

	t.Run("UnitThatDiesIsFailed", func(t *testing.T) {
		u := newUnit(t, c, "vigil-crash.service")
		if out, err := u.Start(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Start: %v (%q)", err, out.Text)
		}
		out := eventually(t, u, resource.Failed)
		t.Logf("failed: %s", out.Text)
		if out.ExitCode != 3 || !strings.Contains(out.Text, "ActiveState=failed") || !strings.Contains(out.Text, "Result=exit-code") {
			t.Errorf("failed output %+v, want exit code 3 and Result=exit-code", out)
		}
		// Stop clears the failure.
		if out, err := u.Stop(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Stop of a failed unit: %v (%q)", err, out.Text)
		}
		mustState(t, u, resource.Stopped)
	})

	t.Run("FailingStartJob", func(t *testing.T) {
		u := newUnit(t, c, "vigil-false.service")
		out, err := u.Start(ctxT(t, 10*time.Second))
		if err == nil {
			t.Fatalf("Start of /usr/bin/false succeeded: %q", out.Text)
		}
		t.Logf("error: %v", err)
		for _, want := range []string{"job failed", "ActiveState=failed", "Result=exit-code", "ExecMainStatus=1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		mustState(t, u, resource.Failed)
		if _, err := u.Stop(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		mustState(t, u, resource.Stopped)
	})

	t.Run("UnknownUnit", func(t *testing.T) {
		u := newUnit(t, c, "vigil-nosuch")
		if u.Name() != "vigil-nosuch.service" {
			t.Errorf("name %q, want the .service suffix added", u.Name())
		}
		_, err := u.Start(ctxT(t, 10*time.Second))
		if err == nil || !strings.Contains(err.Error(), "vigil-nosuch.service not found") {
			t.Fatalf("Start of an unknown unit: %v", err)
		}
		t.Logf("error: %v", err)
		out := mustState(t, u, resource.Stopped)
		if !strings.Contains(out.Text, "LoadState=not-found") {
			t.Errorf("monitor text %q should say not-found", out.Text)
		}
		if out, err := u.Stop(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Stop of an unknown unit: %v (%q)", err, out.Text)
		}
	})

	t.Run("StartTimeoutStopsTheUnit", func(t *testing.T) {
		u := newUnit(t, c, "vigil-slow.service")
		watcher := newUnit(t, c, "vigil-slow.service")
		type res struct {
			out resource.Output
			err error
		}
		done := make(chan res, 1)
		go func() {
			out, err := u.Start(ctxT(t, 1500*time.Millisecond))
			done <- res{out, err}
		}()
		// While the start job waits, the unit is activating, which counts as Running.
		var r res
	wait:
		for {
			select {
			case r = <-done:
				t.Error("the start ended before Monitor saw the unit activating")
				break wait
			default:
			}
			st, out := monitor(t, watcher)
			if strings.Contains(out.Text, "activating") {
				if st != resource.Running || !strings.Contains(out.Text, "ActiveState=activating") {
					t.Errorf("during start: %s (%q), want running/activating", st, out.Text)
				}
				r = <-done
				break wait
			}
			time.Sleep(10 * time.Millisecond)
		}
		if r.err == nil || !strings.Contains(r.err.Error(), "deadline exceeded") {
			t.Fatalf("Start past its ctx: %v (%q)", r.err, r.out.Text)
		}
		t.Logf("error: %v", r.err)
		eventually(t, watcher, resource.Stopped)
	})

	// Kill (lease lost) does not wait for the unit's graceful stop, and
	// systemd does not bring the unit back.
	t.Run("KillSkipsTheStopTimeout", func(t *testing.T) {
		u := newUnit(t, c, "vigil-stubborn.service")
		if out, err := u.Start(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Start: %v (%q)", err, out.Text)
		}
		mustState(t, u, resource.Running)
		out, err := u.Kill(ctxT(t, 50*time.Second))
		if err != nil {
			t.Fatalf("Kill: %v (%q)", err, out.Text)
		}
		t.Logf("kill (%s): %s", out.Duration, out.Text)
		if out.Duration >= 30*time.Second {
			t.Fatalf("Kill took %s: it waited for the unit's 60 s stop timeout", out.Duration)
		}
		mustState(t, u, resource.Stopped)
		time.Sleep(time.Second) // ten times RestartSec
		mustState(t, u, resource.Stopped)
		if out, err := u.Kill(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Kill of a stopped unit: %v (%q)", err, out.Text)
		}
	})

	t.Run("AutoRestartIsFailed", func(t *testing.T) {
		u := newUnit(t, c, "vigil-flap.service")
		if out, err := u.Start(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Start: %v (%q)", err, out.Text)
		}
		out := eventually(t, u, resource.Failed)
		if !strings.Contains(out.Text, "SubState=auto-restart") {
			t.Errorf("failed text %q, want auto-restart", out.Text)
		}
		if _, err := u.Stop(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		mustState(t, u, resource.Stopped)
	})

	t.Run("Reconnect", func(t *testing.T) {
		u := newUnit(t, c, "vigil-sleep.service")
		mustState(t, u, resource.Stopped)
		first := u.conn
		first.Close() // as when the bus drops the connection
		mustState(t, u, resource.Stopped)
		if u.conn == first || !u.conn.Connected() {
			t.Fatal("Monitor did not reconnect")
		}
		u.conn.Close()
		if out, err := u.Start(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Start after a lost connection: %v (%q)", err, out.Text)
		}
		if _, err := u.Stop(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("DefaultConnectionHonoursEnvironment", func(t *testing.T) {
		t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", c.BusAddress())
		u, err := New(config.Resource{Name: "r", Unit: "vigil-sleep.service"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		if out, err := u.Start(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Start: %v (%q)", err, out.Text)
		}
		mustState(t, u, resource.Running)
		if _, err := u.Stop(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	// Last: it restarts the container's bus under every connection.
	t.Run("BusRestart", func(t *testing.T) {
		u := newUnit(t, c, "vigil-sleep.service")
		if out, err := u.Start(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Start: %v (%q)", err, out.Text)
		}
		before := u.conn
		admin, err := c.Connect(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, err = admin.RestartUnitContext(ctxT(t, 5*time.Second), "dbus.service", "replace", nil)
		admin.Close()
		if err != nil {
			t.Fatalf("restart dbus.service: %v", err)
		}
		end := time.Now().Add(10 * time.Second)
		for before.Connected() {
			if time.Now().After(end) {
				t.Fatal("the old connection survived a restart of dbus-daemon")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The new bus and systemd's name on it come back within a second or so;
		// until then Monitor reports an error, never a wrong state.
		t0 := time.Now()
		for {
			st, out, err := u.Monitor(ctxT(t, 5*time.Second))
			if err == nil {
				if st != resource.Running {
					t.Fatalf("after the bus restart: %s (%q), want running", st, out.Text)
				}
				break
			}
			if time.Now().After(end) {
				t.Fatalf("no answer 10s after the bus restart: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("answering again %s after the old connection dropped", time.Since(t0).Round(time.Millisecond))
		if u.conn == before {
			t.Error("Monitor answered on the dead connection")
		}
		if _, err := u.Stop(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		mustState(t, u, resource.Stopped)
	})

	t.Run("ConnectTimeout", func(t *testing.T) {
		block := make(chan struct{})
		u, err := New(config.Resource{Name: "r", Unit: "x.service"}, Options{Connect: func(ctx context.Context) (*sdbus.Conn, error) {
			select {
			case <-block:
			case <-ctx.Done():
			}
			return nil, context.Canceled
		}})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		_, _, err = u.Monitor(ctxT(t, 200*time.Millisecond))
		if err == nil || time.Since(t0) > 2*time.Second {
			t.Fatalf("Monitor with a hung bus: %v after %s", err, time.Since(t0))
		}
		_ = u.Close() // ends the abandoned dial
		close(block)
	})
}

func TestNew(t *testing.T) {
	if _, err := New(config.Resource{Name: "r"}, Options{}); err == nil {
		t.Error("New accepted an empty unit")
	}
	if _, err := New(config.Resource{Name: "r", Unit: "a b.service"}, Options{}); err == nil {
		t.Error("New accepted a unit name with a space")
	}
	u, err := New(config.Resource{Name: "r", Unit: "mnt-data.mount"}, Options{})
	if err != nil || u.Name() != "mnt-data.mount" {
		t.Fatalf("New = %v, %v", u, err)
	}
	_ = u.Close()
}
