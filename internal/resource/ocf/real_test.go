package ocf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// requireTools fails with the Debian package to install for each missing tool.
func requireTools(t *testing.T, toolPkg ...string) {
	t.Helper()
	for i := 0; i+1 < len(toolPkg); i += 2 {
		if _, err := exec.LookPath(toolPkg[i]); err != nil {
			// LookPath uses the test's PATH; agents get the sbin directories too.
			found := false
			for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
				if _, err := os.Stat(filepath.Join(dir, toolPkg[i])); err == nil {
					found = true
				}
			}
			if !found {
				t.Fatalf("%s is missing: apt-get install %s", toolPkg[i], toolPkg[i+1])
			}
		}
	}
}

// loopDevice makes a small ext4 image and attaches it to a loop device that
// is detached when the test ends, pass or fail.
func loopDevice(t *testing.T) string {
	t.Helper()
	requireTools(t, "truncate", "coreutils", "mkfs.ext4", "e2fsprogs", "losetup", "mount")
	img := filepath.Join(t.TempDir(), "disk.img")
	sh(t, "truncate", "-s", "32M", img)
	sh(t, "mkfs.ext4", "-q", "-F", img)
	dev := sh(t, "losetup", "-f", "--show", img)
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup printed %q", dev)
	}
	t.Cleanup(func() {
		res, err := runexec.Run(context.Background(), runexec.Cmd{Argv: []string{"losetup", "-d", dev}})
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			t.Errorf("detach %s: %v: %s", dev, err, res.Output)
		}
	})
	return dev
}

// mountedAt reports the source mounted at dir, "" if nothing is.
func mountedAt(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	src := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[4] != dir {
			continue
		}
		for i := 6; i+2 < len(f); i++ {
			if f[i] == "-" {
				src = f[i+2]
			}
		}
	}
	return src
}

// unmountAtCleanup leaves no mount behind a failed test.
func unmountAtCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		for mountedAt(t, dir) != "" {
			res, err := runexec.Run(context.Background(), runexec.Cmd{Argv: []string{"umount", dir}})
			if err == nil {
				err = res.Err()
			}
			if err != nil {
				t.Errorf("cleanup: umount %s: %v: %s", dir, err, res.Output)
				return
			}
		}
	})
}

func TestFilesystemOnALoopDevice(t *testing.T) {
	requireRoot(t)
	requireResourceAgents(t)
	requireTools(t, "modprobe", "kmod", "fuser", "psmisc", "blkid", "util-linux")
	dev := loopDevice(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	unmountAtCleanup(t, dir)
	spec := config.Resource{Name: "data", Type: "ocf", Agent: "heartbeat/Filesystem",
		Params: map[string]string{"device": dev, "directory": dir, "fstype": "ext4"}}
	a, err := New(spec, Options{Instance: "g:data"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("validate: %v", err)
	}
	expect := func(want resource.State) {
		t.Helper()
		st, out, err := a.Monitor(ctxT(t, 40*time.Second))
		if st != want || err != nil {
			t.Fatalf("monitor: %v %v, want %v\n%s", st, err, want, out.Text)
		}
	}
	expect(resource.Stopped)
	for range 2 {
		if out, err := a.Start(ctxT(t, time.Minute)); err != nil {
			t.Fatalf("start: %v\n%s", err, out.Text)
		}
		if got := mountedAt(t, dir); got != dev {
			t.Fatalf("%s has %q mounted, want %s", dir, got, dev)
		}
		expect(resource.Running)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if out, err := a.Stop(ctxT(t, time.Minute)); err != nil {
			t.Fatalf("stop: %v\n%s", err, out.Text)
		}
		if got := mountedAt(t, dir); got != "" {
			t.Fatalf("%s still has %s mounted", dir, got)
		}
		expect(resource.Stopped)
	}
}

func TestIPaddr2InANamespace(t *testing.T) {
	requireRoot(t)
	requireResourceAgents(t)
	l := lab.NewForTest(t, lab.Options{
		Name:     "ocf1",
		Networks: []lab.Network{{Name: "pub", Subnet: "10.80.1.0/24"}},
		Hosts:    []string{"a", "b"},
	})
	ha, hb := l.Host("a"), l.Host("b")
	const vip = "10.80.1.100"
	spec := config.Resource{Name: "vip", Type: "ocf", Agent: "heartbeat/IPaddr2",
		Params: map[string]string{"ip": vip, "cidr_netmask": "24", "nic": ha.Iface("pub")}}
	a, err := New(spec, Options{Instance: "g:vip", Wrapper: []string{"ip", "netns", "exec", ha.Netns()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("validate: %v", err)
	}
	expect := func(want resource.State) {
		t.Helper()
		st, out, err := a.Monitor(ctxT(t, 20*time.Second))
		if st != want || err != nil {
			t.Fatalf("monitor: %v %v, want %v\n%s", st, err, want, out.Text)
		}
	}
	hasVIP := func() bool {
		out, err := ha.Run(ctxT(t, 10*time.Second), "ip", "-4", "-o", "addr", "show", "dev", ha.Iface("pub"))
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return strings.Contains(string(out), " "+vip+"/24 ")
	}
	expect(resource.Stopped)
	for range 2 {
		if out, err := a.Start(ctxT(t, 20*time.Second)); err != nil {
			t.Fatalf("start: %v\n%s", err, out.Text)
		}
		expect(resource.Running)
	}
	if !hasVIP() {
		t.Fatal("the VIP is not on host a's interface")
	}
	// The root namespace must not have it: the agent really ran inside the namespace.
	if out, _ := runexec.Run(ctxT(t, 5*time.Second), runexec.Cmd{Argv: []string{"ip", "-4", "-o", "addr"}}); strings.Contains(string(out.Output), " "+vip+"/") {
		t.Fatal("the VIP landed in the root namespace")
	}
	if out, err := hb.Run(ctxT(t, 10*time.Second), "ping", "-c", "1", "-W", "2", vip); err != nil {
		t.Fatalf("host b cannot reach the VIP: %v\n%s", err, out)
	}
	for range 2 {
		if out, err := a.Stop(ctxT(t, 20*time.Second)); err != nil {
			t.Fatalf("stop: %v\n%s", err, out.Text)
		}
		expect(resource.Stopped)
	}
	if hasVIP() {
		t.Fatal("the VIP is still on host a after stop")
	}

	// IPaddr2 requires ip: the check happens before anything runs.
	b, err := New(config.Resource{Name: "vip2", Type: "ocf", Agent: "heartbeat/IPaddr2", Params: map[string]string{"nic": "eth0"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(ctxT(t, 30*time.Second)); err == nil || !strings.Contains(err.Error(), `missing required parameter "ip"`) {
		t.Fatalf("validate without ip: %v", err)
	}
}
