package mount

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/runexec"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop devices and mount(2)")
	}
	for _, tp := range [][2]string{{"mkfs.ext4", "e2fsprogs"}, {"fsck.ext4", "e2fsprogs"}, {"fsck", "util-linux"},
		{"losetup", "mount"}, {"mount", "mount"}, {"nsenter", "util-linux"}, {"unshare", "util-linux"}} {
		if _, err := exec.LookPath(tp[0]); err != nil {
			found := false
			for _, dir := range []string{"/usr/sbin", "/sbin"} {
				if _, err := os.Stat(filepath.Join(dir, tp[0])); err == nil {
					found = true
				}
			}
			if !found {
				t.Fatalf("%s is missing: apt-get install %s", tp[0], tp[1])
			}
		}
	}
}

// sh runs a setup command, failing the test on error.
func sh(t *testing.T, argv ...string) string {
	t.Helper()
	res, err := runexec.Run(ctxT(t, time.Minute), runexec.Cmd{Argv: argv})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%v: %v: %s", argv, err, res.Output)
	}
	return strings.TrimSpace(string(res.Output))
}

// image makes a 32 MB file, with an ext4 file system when mkfs is set.
func image(t *testing.T, mkfs bool) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	sh(t, "truncate", "-s", "32M", img)
	if mkfs {
		sh(t, "mkfs.ext4", "-q", "-F", img)
	}
	return img
}

// loop attaches img to a loop device that is detached when the test ends.
func loop(t *testing.T, img string) string {
	t.Helper()
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

// mountPoint returns a directory whose mounts are undone when the test
// ends, pass or fail (registered after TempDir, so it runs before the
// directory is removed).
func mountPoint(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	t.Cleanup(func() {
		for i := 0; i < 10 && sourceAt(t, dir) != ""; i++ {
			res, err := runexec.Run(context.Background(), runexec.Cmd{Argv: []string{"umount", dir}})
			if err == nil && res.Err() != nil {
				res, _ = runexec.Run(context.Background(), runexec.Cmd{Argv: []string{"umount", "-l", dir}})
			}
			if err != nil {
				t.Errorf("cleanup: umount %s: %v", dir, err)
				return
			}
		}
	})
	return dir
}

// sourceAt is the source of the visible mount at dir, "" if none.
func sourceAt(t *testing.T, dir string) string {
	t.Helper()
	es, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	src := ""
	for _, e := range es {
		if e.Target == dir {
			src = e.Source
		}
	}
	return src
}

func expect(t *testing.T, a *Agent, want resource.State, errText string) {
	t.Helper()
	st, out, err := a.Monitor(ctxT(t, 10*time.Second))
	if st != want || (errText == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), errText)) {
		t.Fatalf("monitor: %v, %v; want %v with error %q\n%s", st, err, want, errText, out.Text)
	}
}

func start(t *testing.T, a *Agent) resource.Output {
	t.Helper()
	out, err := a.Start(ctxT(t, time.Minute))
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out.Text)
	}
	return out
}

func stop(t *testing.T, a *Agent) resource.Output {
	t.Helper()
	out, err := a.Stop(ctxT(t, time.Minute))
	if err != nil {
		t.Fatalf("stop: %v\n%s", err, out.Text)
	}
	return out
}

func TestMountWithFsckAndIdempotency(t *testing.T) {
	requireRoot(t)
	dev := loop(t, image(t, true))
	dir := mountPoint(t)
	a, err := New(config.Resource{Name: "data", Type: "mount", Device: dev, Path: dir, FSType: "ext4", Fsck: true, Options: "noatime"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, a, resource.Stopped, "")
	out := start(t, a)
	// The consistency check ran, on this device, and its verdict is on record.
	for _, want := range []string{"$ fsck -T -V -t ext4 -a " + dev, "fsck.ext4 -a " + dev, dev + ": clean", "exit 0 (no errors)", "$ mount -t ext4 -o noatime " + dev + " " + dir} {
		if !strings.Contains(out.Text, want) {
			t.Errorf("start output lacks %q:\n%s", want, out.Text)
		}
	}
	if got := sourceAt(t, dir); got != dev {
		t.Fatalf("mounted at %s: %q", dir, got)
	}
	expect(t, a, resource.Running, "")
	out = start(t, a)
	if !strings.Contains(out.Text, "already mounted") || strings.Contains(out.Text, "fsck") {
		t.Fatalf("second start should neither fsck a mounted device nor mount again:\n%s", out.Text)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop(t, a)
	expect(t, a, resource.Stopped, "")
	if got := sourceAt(t, dir); got != "" {
		t.Fatalf("%s still mounted at %s", got, dir)
	}
	out = stop(t, a)
	if !strings.Contains(out.Text, "not mounted") {
		t.Fatalf("second stop: %s", out.Text)
	}
	// The data survived the round trip.
	start(t, a)
	if data, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(data) != "data" {
		t.Fatalf("file after remount: %q %v", data, err)
	}
	stop(t, a)
}

func TestFsckFailureStopsTheMount(t *testing.T) {
	requireRoot(t)
	dev := loop(t, image(t, false)) // no file system: fsck exits 8
	dir := mountPoint(t)
	a, err := New(config.Resource{Name: "data", Type: "mount", Device: dev, Path: dir, FSType: "ext4", Fsck: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Start(ctxT(t, time.Minute))
	if err == nil || !strings.Contains(err.Error(), "exit 8 (operational error)") {
		t.Fatalf("start on a device without a file system: %v\n%s", err, out.Text)
	}
	if strings.Contains(out.Text, "$ mount") || sourceAt(t, dir) != "" {
		t.Fatalf("mounted after a failed fsck:\n%s", out.Text)
	}
	a, _ = New(config.Resource{Name: "data", Type: "mount", Device: dev, Path: dir, FSType: "nosuchfs", Fsck: true}, Options{})
	if _, err := a.Start(ctxT(t, time.Minute)); err == nil || !strings.Contains(err.Error(), "no fsck.nosuchfs") {
		t.Fatalf("fsck without a checker: %v", err)
	}
	a, _ = New(config.Resource{Name: "data", Type: "mount", Device: "/dev/nonexistent-vigil", Path: dir, FSType: "ext4"}, Options{})
	if _, err := a.Start(ctxT(t, time.Minute)); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing device: %v", err)
	}
}

// A symlink to the device and an image file (which mount(8) attaches to a
// loop device of its own) are both recognised in the mount table.
func TestDeviceThroughSymlinkAndImageFile(t *testing.T) {
	requireRoot(t)
	img := image(t, true)
	dev := loop(t, img)
	link := filepath.Join(t.TempDir(), "by-name")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	dir := mountPoint(t)
	a, _ := New(config.Resource{Name: "data", Type: "mount", Device: link, Path: dir, FSType: "ext4"}, Options{})
	start(t, a)
	expect(t, a, resource.Running, "")
	stop(t, a)
	expect(t, a, resource.Stopped, "")

	img2 := image(t, true)
	b, _ := New(config.Resource{Name: "img", Type: "mount", Device: img2, Path: dir, FSType: "ext4", Fsck: true}, Options{})
	start(t, b)
	if src := sourceAt(t, dir); !strings.HasPrefix(src, "/dev/loop") {
		t.Fatalf("image mounted from %q", src)
	}
	expect(t, b, resource.Running, "")
	// The other agent's device is a different loop device: not ours.
	expect(t, a, resource.Failed, "is mounted at "+dir+", not "+link)
	stop(t, b)
	expect(t, b, resource.Stopped, "")
}

func TestSomethingElseMountedThere(t *testing.T) {
	requireRoot(t)
	dev := loop(t, image(t, true))
	dir := mountPoint(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, "mount", "-t", "tmpfs", "vigil-test", dir)
	a, _ := New(config.Resource{Name: "data", Type: "mount", Device: dev, Path: dir, FSType: "ext4"}, Options{})
	expect(t, a, resource.Failed, "vigil-test (tmpfs) is mounted at "+dir)
	if _, err := a.Start(ctxT(t, time.Minute)); err == nil {
		t.Fatal("start over another mount succeeded")
	}
	out := stop(t, a) // our device is not mounted: nothing to do, the tmpfs is left alone
	if sourceAt(t, dir) != "vigil-test" || !strings.Contains(out.Text, "left alone") {
		t.Fatalf("stop touched someone else's mount:\n%s", out.Text)
	}
}

// bg is a command running in the background through runexec.
type bg struct {
	done chan struct{} // closed when it has ended; res is then set
	res  runexec.Result
}

// background runs argv until it is killed or the test ends.
func background(t *testing.T, dir string, argv ...string) *bg {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bg{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		res, err := runexec.Run(ctx, runexec.Cmd{Argv: argv, Dir: dir, Grace: 100 * time.Millisecond})
		if err != nil {
			t.Errorf("%v: %v", argv, err)
		}
		b.res = res
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%v did not end", argv)
		}
	})
	return b
}

func waitHolders(t *testing.T, fsDev uint64, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs, err := findHolders(fsDev)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes use %s, want %d: %v", len(hs), devString(fsDev), n, hs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fsDevAt(t *testing.T, dir string) uint64 {
	t.Helper()
	es, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Target == dir {
			return e.Dev
		}
	}
	t.Fatalf("nothing mounted at %s", dir)
	return 0
}

func TestStopEndsTheProcessesUsingTheMount(t *testing.T) {
	requireRoot(t)
	dev := loop(t, image(t, true))
	dir := mountPoint(t)
	a, _ := New(config.Resource{Name: "data", Type: "mount", Device: dev, Path: dir, FSType: "ext4"}, Options{KillGrace: 300 * time.Millisecond})
	start(t, a)
	if err := os.WriteFile(filepath.Join(dir, "log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// One process sits in the mount; another, elsewhere, holds a file open
	// and ignores SIGTERM, so only SIGKILL ends it.
	inside := background(t, dir, "sleep", "1000")
	stubborn := background(t, "/", "sh", "-c", `trap "" TERM; exec sleep 1000 3>>"$0"`, filepath.Join(dir, "log"))
	waitHolders(t, fsDevAt(t, dir), 2)

	out := stop(t, a)
	t.Logf("stop:\n%s", out.Text)
	for _, want := range []string{"in use by pid", "(sleep): cwd", "(sleep): fd 3 " + filepath.Join(dir, "log"), "SIGTERM, then SIGKILL"} {
		if !strings.Contains(out.Text, want) {
			t.Errorf("stop output lacks %q:\n%s", want, out.Text)
		}
	}
	expect(t, a, resource.Stopped, "")
	for name, b := range map[string]*bg{"inside": inside, "stubborn": stubborn} {
		select {
		case <-b.done:
			want := map[string]string{"inside": "terminated", "stubborn": "killed"}[name]
			if b.res.Signal != want {
				t.Errorf("%s ended by %q, want %q", name, b.res.Signal, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still runs after stop", name)
		}
	}
}

// A process started in a mount namespace of its own (as ip netns exec,
// unshare or a container does) holds a copy of the mount that a plain
// umount here leaves behind; Stop must release those too.
func TestStopReleasesCopiesInOtherMountNamespaces(t *testing.T) {
	requireRoot(t)
	dev := loop(t, image(t, true))
	dir := mountPoint(t)
	a, _ := New(config.Resource{Name: "data", Type: "mount", Device: dev, Path: dir, FSType: "ext4"}, Options{KillGrace: 300 * time.Millisecond})
	start(t, a)
	fsDev := fsDevAt(t, dir)
	idle := background(t, "/", "unshare", "-m", "--propagation", "private", "sleep", "1000")
	busy := background(t, "/", "unshare", "-m", "--propagation", "private", "sh", "-c", `cd "$0" && exec sleep 1000`, dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		others, err := otherNamespaces(fsDev)
		if err != nil {
			t.Fatal(err)
		}
		if len(others) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copies in other namespaces: %v", others)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitHolders(t, fsDev, 1)

	out := stop(t, a)
	t.Logf("stop:\n%s", out.Text)
	if !strings.Contains(out.Text, "nsenter --mount=/proc/") {
		t.Errorf("stop did not enter the other namespaces:\n%s", out.Text)
	}
	if others, err := otherNamespaces(fsDev); err != nil || len(others) != 0 {
		t.Fatalf("still mounted elsewhere: %v %v\n%s", others, err, out.Text)
	}
	select {
	case <-busy.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the process using the copy still runs")
	}
	select {
	case <-idle.done:
		t.Fatalf("the idle process in another namespace was killed: %+v", idle.res)
	default:
	}
}

func TestNewRejectsBadSpecs(t *testing.T) {
	for _, spec := range []config.Resource{
		{Name: "x", Type: "mount", Path: "/mnt/x", FSType: "ext4"},
		{Name: "x", Type: "mount", Device: "/dev/x", Path: "mnt/x", FSType: "ext4"},
		{Name: "x", Type: "mount", Device: "/dev/x", Path: "/", FSType: "ext4"},
		{Name: "x", Type: "mount", Device: "/dev/x", Path: "/mnt/x"},
		{Name: "x", Type: "mount", Device: "/dev/x", Path: "/mnt/x", FSType: "ext4,ro"},
		{Name: "x", Type: "ip", Device: "/dev/x", Path: "/mnt/x", FSType: "ext4"},
	} {
		if _, err := New(spec, Options{}); err == nil {
			t.Errorf("New(%+v) succeeded", spec)
		}
	}
}
