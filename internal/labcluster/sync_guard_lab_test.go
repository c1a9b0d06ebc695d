package labcluster

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
)

// TestSyncFrozenSenderNeverOverwritesTheNewActive: the agent of the active
// node alone is frozen (SIGSTOP) in the middle of a long pass (a big file,
// --bwlimit); its rsync keeps sending. The other node takes the group over
// once the frozen node's lease is surely over, and its sync guard kills the
// incoming copy: the new active node's copy is never overwritten by the old
// node's data. The frozen node, whose agent still holds the group, refuses
// the new active node's passes meanwhile; resumed, it stops the group and
// becomes a standby that receives from the new active node.
func TestSyncFrozenSenderNeverOverwritesTheNewActive(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed (scripts/install-deps.sh)")
	}
	for _, tc := range []struct {
		transport, tag string
		third          int
	}{{"rsyncd", "q1", 1}, {"ssh", "q2", 3}} {
		t.Run(tc.transport, func(t *testing.T) {
			if tc.transport == "ssh" {
				if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
					t.Skip("openssh-server is not installed (scripts/install-deps.sh)")
				}
			}
			runFrozenSender(t, tc.transport, tc.tag, tc.third)
		})
	}
}

func runFrozenSender(t *testing.T, transport, tag string, third int) {
	c := New(t, Options{Tag: tag, PublicSubnet: fmt.Sprintf("10.91.%d.0/24", third),
		HeartbeatSubnet: fmt.Sprintf("10.91.%d.0/24", third+1), Nodes: twoPlusWitness()})
	sl := &syncLab{Cluster: c, t: t, transport: transport, tmp: t.TempDir(), disks: map[string]string{}}
	sl.path = filepath.Join(sl.tmp, "srv", "files")
	for _, n := range []string{"a", "b"} {
		sl.disks[n] = filepath.Join(sl.tmp, "disk-"+n)
		for _, d := range []string{sl.path, sl.disks[n]} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		c.AddBind(n, sl.disks[n], sl.path)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range []string{"a", "b"} {
			if b, err := os.ReadFile(filepath.Join(sl.tmp, "logs", transport+"-"+n+".log")); err == nil {
				t.Logf("---- %s log of %s ----\n%s", transport, n, b)
			}
		}
	})
	res := fmt.Sprintf("{name: data, type: sync, paths: [%s], interval: %s, transport: %s, bwlimit: 256K", sl.path, syncInterval, transport)
	if transport == "ssh" {
		key, knownHosts := sl.sshKeys()
		res += fmt.Sprintf(", key_file: %s, known_hosts: %s}", key, knownHosts)
		// Each node's sshd sees its own authorized_keys, forcing its guard;
		// and a home of its own (no slow /root/.bashrc per session).
		dir := filepath.Join(sl.tmp, "ssh")
		pub, err := os.ReadFile(filepath.Join(dir, "authorized_keys"))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"a", "b"} {
			own := filepath.Join(dir, "authorized_keys_"+n)
			write0600(t, own, fmt.Sprintf("command=\"%s sync-guard ssh --data-dir %s\",restrict %s", sl.Bin, c.Node(n).DataDir, pub))
			c.AddBind(n, own, filepath.Join(dir, "authorized_keys"))
			home := filepath.Join(sl.tmp, "home-"+n)
			if err := os.MkdirAll(home, 0o700); err != nil {
				t.Fatal(err)
			}
			c.AddBind(n, home, "/root")
		}
	} else {
		pw := filepath.Join(sl.tmp, "rsync.pw")
		write0600(t, pw, "s3cret\n")
		write0600(t, filepath.Join(sl.tmp, "rsyncd.secrets"), "vigil:s3cret\n")
		res += fmt.Sprintf(", secrets_file: %s}", pw)
	}
	// 256 KiB/s: the 12 MiB file takes about 48 s, far longer than the takeover.
	yaml := fmt.Sprintf("\ngroups:\n  - name: %s\n    nodes: [a, b]\n    failback: manual\n    resources:\n"+
		"      - {name: vip, type: ip, address: 10.91.%d.100/24, interface: eth0}\n      - %s\n", syncGroup, third, res)
	f, err := os.OpenFile(c.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, n := range []string{"a", "b"} {
		if transport == "ssh" {
			sl.startServer(n) // sshd in the node's mount namespace
		} else {
			sl.startGuardedDaemon(n)
		}
	}
	c.StartAll()
	c.WaitHealthy(formTimeout)
	c.WaitGroupOn([]string{"a", "b", "w"}, syncGroup, "a", convergeTimeout)
	bound := syncInterval + 2*passSlack
	sl.write("a", "one.txt", "one, written on a\n")
	sl.waitContent("b", "one.txt", "one, written on a\n", bound)

	// A long pass from a, frozen as soon as b receives it.
	writeBig(t, sl.copyOf("a", "big"), 12)
	c.WaitFor("a's pass of big writing on b", bound, func() error {
		if tmpFiles(sl.copyOf("b", "")) == 0 {
			return errors.New("no rsync temporary file in b's copy")
		}
		return nil
	})
	frozenAt := c.StopAgent("a")
	t.Cleanup(func() { _ = c.Node("a").proc.Cont() })
	c.WaitGroupOn([]string{"b", "w"}, syncGroup, "b", convergeTimeout)
	t.Logf("b runs the group %v after a's agent was frozen", time.Since(frozenAt).Round(time.Millisecond))

	// b is in charge: its writes stay, a's big file never lands, for longer
	// than a's whole pass would have taken.
	sl.write("b", "new.txt", "new, written on b\n")
	// Meanwhile a, frozen with the group held, refuses b's passes.
	refused := false
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		sl.mustContent("b", "new.txt", "new, written on b\n")
		sl.mustContent("b", "one.txt", "one, written on a\n")
		if _, err := os.Stat(sl.copyOf("b", "big")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a's big file landed on the new active node b (%v)", err)
		}
		if !refused {
			if g, err := c.Group("b", syncGroup); err == nil {
				for _, s := range g.Sync {
					if s.Target == "a" && strings.Contains(s.Error, "sync guard: refusing a write") {
						refused = true
						t.Logf("b → a while a is frozen: %s", s.Error)
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !refused {
		t.Error("b's passes to the frozen a were never refused by a's guard")
	}
	if b, _ := os.ReadFile(c.Node("b").LogPath); !strings.Contains(string(b), "sync guard: killed an incoming copy") {
		t.Error("b's log does not say that it killed a's incoming copy")
	}

	// a resumes: it has lost its lease, stops the group, releases its hold, and
	// receives b's copy (new.txt; big deleted, since b never had it).
	c.ContAgent("a")
	c.WaitFor("a's copy becoming b's", convergeTimeout+bound, func() error {
		sl.mustContent("b", "new.txt", "new, written on b\n")
		if err := sl.content("a", "new.txt", "new, written on b\n"); err != nil {
			return err
		}
		if _, err := os.Stat(sl.copyOf("a", "big")); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("big still on a (%v)", err)
		}
		return nil
	})
	// The killed receiver's temporary file went with it.
	if n := tmpFiles(sl.copyOf("b", "")); n != 0 {
		t.Errorf("%d rsync temporary files left in b's copy", n)
	}
	if err := c.GroupOn("w", syncGroup, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sl.copyOf("b", "big")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a's big file reached b after a resumed (%v)", err)
	}
}

// startGuardedDaemon starts an rsync daemon in node's mount namespace (its
// disk at the replicated path), module path /, as on a real node, with the
// sync guard as its pre-xfer exec.
func (sl *syncLab) startGuardedDaemon(node string) {
	t := sl.t
	n := sl.Node(node)
	addr := n.Host.Addr(Heartbeat)
	cfg := filepath.Join(sl.tmp, "rsyncd-"+node+".conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`address = %s
port = 873
use chroot = no
uid = root
gid = root
[vigil]
path = /
read only = false
auth users = vigil
secrets file = %s
pre-xfer exec = %s sync-guard rsyncd --data-dir %s
`, addr, filepath.Join(sl.tmp, "rsyncd.secrets"), sl.Bin, n.DataDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sl.tmp, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	sl.mu.Lock()
	argv := n.Wrap([]string{"rsync", "--daemon", "--no-detach", "--config=" + cfg})
	sl.mu.Unlock()
	if _, err := n.Host.Start("rsyncd", argv, nil, filepath.Join(sl.tmp, "logs", "rsyncd-"+node+".log")); err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(addr, "873")
	sl.WaitFor("rsyncd listening on "+target, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := n.Host.Dial(ctx, "tcp", target)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// tmpFiles counts rsync's temporary files (.NAME.XXXXXX) in dir.
func tmpFiles(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".big.") {
			n++
		}
	}
	return n
}

// writeBig writes mib MiB that rsync cannot compress away.
func writeBig(t *testing.T, path string, mib int) {
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
