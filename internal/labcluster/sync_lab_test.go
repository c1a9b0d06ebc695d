package labcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// The sync resource between real agents (issue 8): rsync over the heartbeat
// network from the node running the group to the other, authenticated
// (ssh with a key and the targets' host keys pinned, or an rsync daemon with a
// password), with a VIP in the group and the split-brain checker running.
//
// The lab's hosts share one file system, so each node gets a "disk" of its
// own: the replicated path is a bind mount, in the mount namespace of the
// node's agent and of its sshd, of a directory only that node has
// (Cluster.AddBind). The rsync daemon needs none: its module's path is the
// node's disk, as / would be on a real node.

const (
	// syncInterval is the resource's configured interval: a full pass starts
	// at most this long after the previous one ended (changes trigger one
	// sooner), so it bounds how stale a reachable target's copy gets.
	syncInterval = 3 * time.Second
	// passSlack is what one pass (two ssh handshakes, rsync, the stamp) may
	// take on this loaded machine: the test's allowance, not a target. A
	// write is on the targets at most the interval plus two passes later
	// (docs/config.md): the pass running when it is made may miss it.
	passSlack = 8 * time.Second
	syncGroup = "files"
)

func TestSyncReplicatesOutwards(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed (scripts/install-deps.sh)")
	}
	for _, tc := range []struct {
		transport, tag string
		third          int
	}{{"ssh", "s1", 1}, {"rsyncd", "s2", 3}} {
		t.Run(tc.transport, func(t *testing.T) {
			if tc.transport == "ssh" {
				if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
					t.Skip("openssh-server is not installed (scripts/install-deps.sh)")
				}
			}
			runSyncLab(t, tc.transport, tc.tag, tc.third)
		})
	}
}

// syncLab is a cluster whose group "files" holds a VIP and a sync resource.
type syncLab struct {
	*Cluster
	t         *testing.T
	transport string
	path      string            // the replicated directory, as every node sees it
	disks     map[string]string // node -> its own directory behind path
	tmp       string
}

// copyOf is the file rel in node's copy, as the test (outside the nodes'
// mount namespaces) reaches it.
func (sl *syncLab) copyOf(node, rel string) string {
	return filepath.Join(sl.disks[node], rel)
}

func runSyncLab(t *testing.T, transport, tag string, third int) {
	c := New(t, Options{Tag: tag, PublicSubnet: fmt.Sprintf("10.86.%d.0/24", third),
		HeartbeatSubnet: fmt.Sprintf("10.86.%d.0/24", third+1), Nodes: twoPlusWitness()})
	sl := &syncLab{Cluster: c, t: t, transport: transport, tmp: t.TempDir(), disks: map[string]string{}}
	sl.path = filepath.Join(sl.tmp, "srv", "files")
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
	for _, n := range []string{"a", "b"} {
		// The disk mirrors the path under a root of its own: the daemon's
		// module path is the root.
		sl.disks[n] = filepath.Join(sl.tmp, "disk-"+n, sl.path)
		for _, d := range []string{sl.path, sl.disks[n]} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		c.AddBind(n, sl.disks[n], sl.path)
		// A home of its own too, as a real node has: the ssh sessions' shell
		// must not run this machine's /root/.bashrc (pyenv's init takes
		// seconds per session on a loaded machine, and every rsync over ssh is
		// a session).
		home := filepath.Join(sl.tmp, "home-"+n)
		if err := os.MkdirAll(home, 0o700); err != nil {
			t.Fatal(err)
		}
		c.AddBind(n, home, "/root")
	}
	vip := fmt.Sprintf("10.86.%d.100/24", third)
	res := fmt.Sprintf("{name: data, type: sync, paths: [%s], interval: %s, transport: %s", sl.path, syncInterval, transport)
	if transport == "ssh" {
		key, knownHosts := sl.sshKeys()
		res += fmt.Sprintf(", key_file: %s, known_hosts: %s}", key, knownHosts)
	} else {
		pw := filepath.Join(sl.tmp, "rsync.pw")
		write0600(t, pw, "s3cret\n")
		write0600(t, filepath.Join(sl.tmp, "rsyncd.secrets"), "vigil:s3cret\n")
		res += fmt.Sprintf(", secrets_file: %s}", pw)
	}
	yaml := fmt.Sprintf("\ngroups:\n  - name: %s\n    nodes: [a, b]\n    failback: manual\n    resources:\n"+
		"      - {name: vip, type: ip, address: %s, interface: eth0}\n      - %s\n", syncGroup, vip, res)
	f, err := os.OpenFile(c.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Logf("group:%s", yaml)

	c.CheckSplitBrain(Watch{Group: syncGroup, VIP: netip.MustParsePrefix(vip).Addr()})
	sl.startServer("a")
	sl.startServer("b")
	c.StartAll()
	c.WaitHealthy(formTimeout)
	c.WaitGroupOn([]string{"a", "b", "w"}, syncGroup, "a", convergeTimeout)

	// 1. A file written on the active node reaches the standby within the
	// configured interval (plus one pass).
	bound := syncInterval + 2*passSlack
	sl.write("a", "one.txt", "one, written on a\n")
	written := time.Now()
	took := sl.waitContent("b", "one.txt", "one, written on a\n", bound)
	t.Logf("one.txt reached b %v after it was written on a (bound: interval %v + 2 × pass allowance %v)", took.Round(time.Millisecond), syncInterval, passSlack)
	// vigil groups shows the lag per target, on the group's node and, asked
	// through the API over mutual TLS, on the others.
	for _, o := range []string{"a", "b", "w"} {
		c.WaitFor("the sync lag of a → b in "+o+"'s vigil groups", bound, func() error {
			return syncShown(c, o, "a", "b", written.Add(-bound), bound)
		})
	}
	if out, err := c.Vigil(context.Background(), "w", "groups", "--node", "w"); err == nil {
		t.Logf("vigil groups on w:\n%s", out)
	}

	// 2. The active node loses power; b takes over and records how old its
	// copy was.
	offAt := c.PowerOff("a")
	c.WaitGroupOn([]string{"b", "w"}, syncGroup, "b", convergeTimeout)
	ev := c.WaitEvent("b", model.Event{Kind: model.EventDataLossWindow, Reporter: "b", Node: "a"}, 0, eventTimeout)
	t.Logf("data_loss_window: %s\n%s", ev.Reason, ev.Output)
	if ev.Group != syncGroup || ev.Resource != "data" || !strings.Contains(ev.Reason, "data-loss window up to") {
		t.Errorf("data_loss_window event %+v: want group %s, resource data and the window in its reason", ev, syncGroup)
	}
	if ev.Time.Before(offAt) {
		t.Errorf("data_loss_window at %v, before a lost power at %v", ev.Time, offAt)
	}
	sl.mustContent("b", "one.txt", "one, written on a\n")

	// 3. a comes back as a standby (failback: manual). b, the new active node,
	// replicates to it: b's new file arrives there, and what was written on a's
	// copy in the meantime is overwritten or removed, never sent to b.
	sl.write("b", "two.txt", "two, written on b\n")
	c.PowerOn("a")
	sl.startServer("a")
	sl.write("a", "stale.txt", "written on standby a\n")
	sl.write("a", "one.txt", "one, changed on standby a\n")
	standbyWrite := time.Now()
	c.WaitFor("b's copy replacing a's", convergeTimeout+bound, func() error {
		sl.neverBackwards()
		if err := sl.content("a", "two.txt", "two, written on b\n"); err != nil {
			return err
		}
		if err := sl.content("a", "one.txt", "one, written on a\n"); err != nil {
			return err
		}
		if _, err := os.Stat(sl.copyOf("a", "stale.txt")); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stale.txt still on a (%v)", err)
		}
		return nil
	})
	t.Logf("a's copy is b's again %v after the writes on standby a", time.Since(standbyWrite).Round(time.Millisecond))
	// Later passes change nothing either: b keeps its data, the group stays.
	deadline := time.Now().Add(2 * syncInterval)
	for time.Now().Before(deadline) {
		sl.neverBackwards()
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.GroupOn("w", syncGroup, "b"); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("the sync lag of b → a in a's vigil groups", bound, func() error {
		return syncShown(c, "a", "b", "a", standbyWrite.Add(-bound), bound)
	})

	// 4. A clean move back to a: b stops its sync resource with a final pass
	// (after the group's services, before the VIP), so its last write goes
	// with the group, and a's passes then keep it.
	evs, err := c.Events("w")
	if err != nil {
		t.Fatal(err)
	}
	before := evs[len(evs)-1].Index
	sl.write("b", "four.txt", "four, written on b just before the move\n")
	c.Operator("w", "move", syncGroup, "a")
	c.WaitGroupOn([]string{"a", "b", "w"}, syncGroup, "a", convergeTimeout)
	sl.mustContent("a", "four.txt", "four, written on b just before the move\n")
	stopped := false
	for _, ev := range GroupEvents(Since(sl.events("w"), before), syncGroup, model.EventResourceAction) {
		if ev.Reporter == "b" && ev.Resource == "data" && strings.HasPrefix(ev.Reason, "stop") {
			t.Logf("b stopped the sync resource: %s: %s", ev.Reason, ev.Output)
			stopped = strings.Contains(ev.Output, "final pass done")
		}
	}
	if !stopped {
		t.Errorf("no stop of the sync resource on b with a final pass done in the log:\n%s", FormatEvents(GroupEvents(Since(sl.events("w"), before), syncGroup)))
	}
	deadline = time.Now().Add(2 * syncInterval)
	for time.Now().Before(deadline) {
		for _, n := range []string{"a", "b"} {
			sl.mustContent(n, "four.txt", "four, written on b just before the move\n")
			sl.mustContent(n, "two.txt", "two, written on b\n")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (sl *syncLab) events(observer string) []model.Event {
	sl.t.Helper()
	evs, err := sl.Events(observer)
	if err != nil {
		sl.t.Fatal(err)
	}
	return evs
}

// neverBackwards fails the test at once if anything written on the standby
// reached the active node b.
func (sl *syncLab) neverBackwards() {
	sl.t.Helper()
	if _, err := os.Stat(sl.copyOf("b", "stale.txt")); err == nil {
		sl.t.Fatal("stale.txt, written on standby a, reached the active node b")
	}
	sl.mustContent("b", "one.txt", "one, written on a\n")
	sl.mustContent("b", "two.txt", "two, written on b\n")
}

// syncShown says why observer's `vigil groups --json` does not show group
// files replicating from source to target, with a pass after since and a lag
// within bound; nil if it does.
func syncShown(c *Cluster, observer, source, target string, since time.Time, bound time.Duration) error {
	g, err := c.Group(observer, syncGroup)
	if err != nil {
		return err
	}
	for _, s := range g.Sync {
		if s.Source != source || s.Target != target || s.Resource != "data" {
			continue
		}
		switch {
		case s.LastPass == nil:
			return fmt.Errorf("%s shows no pass %s → %s yet (error %q)", observer, source, target, s.Error)
		case s.LastPass.Before(since):
			return fmt.Errorf("%s shows the last pass %s → %s at %v, before %v", observer, source, target, s.LastPass, since)
		case s.Error != "":
			return fmt.Errorf("%s shows an error %s → %s: %s", observer, source, target, s.Error)
		case s.LagSeconds < 0 || s.LagSeconds > bound.Seconds():
			return fmt.Errorf("%s shows a lag of %.1fs %s → %s, want within %v", observer, s.LagSeconds, source, target, bound)
		}
		return nil
	}
	return fmt.Errorf("%s shows no sync %s → %s: sync %+v, unknown %q", observer, source, target, g.Sync, g.SyncUnknown)
}

func (sl *syncLab) write(node, rel, text string) {
	sl.t.Helper()
	if err := os.WriteFile(sl.copyOf(node, rel), []byte(text), 0o644); err != nil {
		sl.t.Fatal(err)
	}
}

func (sl *syncLab) content(node, rel, want string) error {
	b, err := os.ReadFile(sl.copyOf(node, rel))
	if err != nil {
		return fmt.Errorf("%s on %s: %w", rel, node, err)
	}
	if string(b) != want {
		return fmt.Errorf("%s on %s holds %q, want %q", rel, node, b, want)
	}
	return nil
}

func (sl *syncLab) mustContent(node, rel, want string) {
	sl.t.Helper()
	if err := sl.content(node, rel, want); err != nil {
		sl.t.Fatal(err)
	}
}

func (sl *syncLab) waitContent(node, rel, want string, timeout time.Duration) time.Duration {
	sl.t.Helper()
	start := time.Now()
	for {
		err := sl.content(node, rel, want)
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			sl.t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func write0600(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sshKeys makes the agents' client key (root's authorized key on every
// node), a host key per node, and the known_hosts file that pins them by
// heartbeat address; it returns the client key and known_hosts paths.
func (sl *syncLab) sshKeys() (key, knownHosts string) {
	t := sl.t
	dir := filepath.Join(sl.tmp, "ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	keygen := func(path string) string {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", filepath.Base(path), "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		pub, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(pub))
	}
	key = filepath.Join(dir, "id_ed25519")
	write0600(t, filepath.Join(dir, "authorized_keys"), keygen(key)+"\n")
	var kh strings.Builder
	for _, n := range []string{"a", "b"} {
		pub := keygen(filepath.Join(dir, "host_"+n))
		fmt.Fprintf(&kh, "%s %s\n", sl.Node(n).Host.Addr(Heartbeat), pub)
	}
	knownHosts = filepath.Join(dir, "known_hosts")
	write0600(t, knownHosts, kh.String())
	// sshd's privilege separation directory, compiled in.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	return key, knownHosts
}

// startServer starts what receives the copies on node, listening on its
// heartbeat address only: sshd (in the node's mount namespace, so that the
// rsync it runs writes to the node's disk) or an rsync daemon whose module
// is the node's disk. It waits until it accepts connections.
func (sl *syncLab) startServer(node string) {
	t := sl.t
	t.Helper()
	n := sl.Node(node)
	addr := n.Host.Addr(Heartbeat)
	logPath := filepath.Join(sl.tmp, "logs", sl.transport+"-"+node+".log")
	var argv []string
	port := "22"
	switch sl.transport {
	case "ssh":
		dir := filepath.Join(sl.tmp, "ssh")
		cfg := filepath.Join(dir, "sshd_config_"+node)
		write0600(t, cfg, fmt.Sprintf(`ListenAddress %s
Port 22
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
LogLevel VERBOSE
`, addr, filepath.Join(dir, "host_"+node), filepath.Join(dir, "authorized_keys")))
		sl.mu.Lock()
		argv = n.Wrap([]string{"/usr/sbin/sshd", "-D", "-e", "-f", cfg})
		sl.mu.Unlock()
	default:
		port = "873"
		cfg := filepath.Join(sl.tmp, "rsyncd-"+node+".conf")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`address = %s
port = 873
use chroot = no
uid = root
gid = root
[vigil]
path = %s
read only = false
auth users = vigil
secrets file = %s
`, addr, filepath.Join(sl.tmp, "disk-"+node), filepath.Join(sl.tmp, "rsyncd.secrets"))), 0o644); err != nil {
			t.Fatal(err)
		}
		argv = []string{"rsync", "--daemon", "--no-detach", "--config=" + cfg}
	}
	if _, err := n.Host.Start(sl.transport, argv, nil, logPath); err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(addr, port)
	sl.WaitFor(sl.transport+" listening on "+target, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := n.Host.Dial(ctx, "tcp", target)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}
