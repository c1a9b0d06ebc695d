package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// mountedAt counts the mounts of path in this mount namespace.
func mountedAt(t *testing.T, path string) int {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte(" "+path+" "))
}

// TestDebianResourceAgentsFailOver: a group of Debian's own OCF agents, unchanged
// (Dummy, and Filesystem on a real loop device), runs on its preferred node and
// moves to the other when that node goes away. Both agents share this machine,
// so the file system is mounted at one path by whichever node holds the group.
func TestDebianResourceAgentsFailOver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a loop device")
	}
	for _, agent := range []string{"Dummy", "Filesystem"} {
		if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/" + agent); err != nil {
			t.Fatalf("Debian's resource-agents package is required (scripts/install-deps.sh installs it): %v", err)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	mustRun(t, "truncate", "-s", "32M", img)
	mustRun(t, "mkfs.ext4", "-q", "-F", img)
	dev := mustRun(t, "losetup", "-f", "--show", img)
	t.Cleanup(func() {
		_ = exec.Command("umount", filepath.Join(dir, "mnt")).Run()
		_ = exec.Command("losetup", "-d", dev).Run()
	})
	mnt := filepath.Join(dir, "mnt")
	groups := fmt.Sprintf(`  - name: data
    nodes: [a, b]
    resources:
      - {name: flag, type: ocf, agent: heartbeat/Dummy, params: {state: %s/dummy.state}, monitor_interval: 1s}
      - {name: fs, type: ocf, agent: heartbeat/Filesystem, params: {device: %s, directory: %s, fstype: ext4}, monitor_interval: 1s}
`, dir, dev, mnt)
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: groups})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	cl := c.Client("b")
	defer cl.Close()
	runningOn := func(node string) func() bool {
		return func() bool {
			gs, err := cl.Groups(context.Background())
			return err == nil && len(gs) == 1 && gs[0].Node == node && gs[0].State == "running"
		}
	}
	c.WaitFor("data running on a", 30*time.Second, runningOn("a"))
	if n := mountedAt(t, mnt); n != 1 {
		t.Fatalf("file system mounted %d times", n)
	}
	if err := os.WriteFile(filepath.Join(mnt, "written-on-a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Stop("a")
	c.WaitFor("data running on b", 30*time.Second, runningOn("b"))
	if n := mountedAt(t, mnt); n != 1 {
		t.Fatalf("file system mounted %d times after the move", n)
	}
	if _, err := os.Stat(filepath.Join(mnt, "written-on-a")); err != nil {
		t.Fatal("the data written on a is not there after the takeover")
	}
	evs, err := cl.Events(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, ev := range evs {
		if ev.Kind == model.EventResourceAction && ev.Resource == "fs" && strings.HasPrefix(ev.Reason, "start ocf: ok") {
			started++
		}
	}
	if started != 2 {
		t.Errorf("want the Filesystem agent started once on each node, got %d starts", started)
	}
}
