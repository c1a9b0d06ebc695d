// Package labcluster runs real `vigil agent` processes in the network
// namespaces of internal/lab, so that tests can check what an operator would
// see (`vigil status --json`, `vigil events --json`) while faults are
// injected: kill -9, link cuts, partitions, restarts, a wrong heartbeat key.
//
// A Cluster has two networks, "public" (link 0) and "heartbeat" (link 1);
// every node is a lab host with one address on each. The vigil binary is
// built once per test binary from this module's cmd/vigil.
package labcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/clusterinit"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
)

// Network names of every cluster; link i of a node is its address on
// Networks[i].
const (
	Public    = "public"
	Heartbeat = "heartbeat"
)

// PollInterval is how often WaitFor checks its condition. Each check usually
// runs `vigil status` in a namespace, which costs tens of milliseconds of CPU
// on a small machine, so polling faster only slows the agents under test.
const PollInterval = 75 * time.Millisecond

// cmdTimeout bounds one `vigil status` or `vigil events` call.
const cmdTimeout = 10 * time.Second

// NodeSpec describes one node of a lab cluster.
type NodeSpec struct {
	Name    string // a lab host name and a vigil node name: [a-z0-9-]
	Witness bool
	// PublicOnly gives the node only its public address in vigil.yaml (one
	// link), as the brief's example witness has.
	PublicOnly bool
	// WrongKey makes the node run from a private copy of the cluster
	// directory whose heartbeat.key differs from everyone else's.
	WrongKey bool
}

// Timing overrides cluster.timing in vigil.yaml; zero fields keep vigil's
// defaults (keepalive 200ms, warntime 1s, deadtime 2s, initdead 10s).
type Timing struct {
	Keepalive, Warntime, Deadtime, Initdead time.Duration
}

// Options describe a lab cluster.
type Options struct {
	// Tag names the lab's kernel objects (1-6 of [a-z0-9]); labs alive at the
	// same time, in any process, need different tags.
	Tag string
	// PublicSubnet and HeartbeatSubnet are /24 (or wider) IPv4 subnets,
	// distinct from every other lab's.
	PublicSubnet, HeartbeatSubnet string
	Nodes                         []NodeSpec
	Timing                        Timing
	// Clients are extra lab hosts that run no agent and are not in vigil.yaml
	// (e.g. a client of the groups' VIPs); they come after the nodes.
	Clients []string
}

// Cluster is a running lab cluster. Its methods must be called from the
// test's goroutine (they may call t.Fatal).
type Cluster struct {
	t      testing.TB
	Lab    *lab.Lab
	Dir    string // the cluster directory written by clusterinit
	Config string // Dir/vigil.yaml, the operators' config
	Timing Timing // effective timing, defaults filled in
	Bin    string // the vigil binary

	mu    sync.Mutex
	nodes map[string]*Node
	order []string
}

// Node is one agent of the cluster.
type Node struct {
	Name    string
	Host    *lab.Host
	Config  string // the config file the agent runs with
	DataDir string
	LogPath string
	// Env is added to the agent's environment at every start, e.g. HA_VARRUN
	// so that the OCF agents of nodes sharing this machine keep their state
	// files apart; set it before the node starts.
	Env []string
	// Binds are mounted for the agent at every start (binds.go); guarded by
	// the cluster's mu.
	Binds []Bind

	proc *lab.Proc
}

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// binary builds cmd/vigil once per test binary (CGO_ENABLED=0, as it ships).
func binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "vigil-labcluster-")
		if build.err != nil {
			return
		}
		bin := filepath.Join(build.dir, "vigil")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", bin, "github.com/vigil-ha/vigil/cmd/vigil")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build ./cmd/vigil: %w\n%s", err, out)
			return
		}
		build.bin = bin
		t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	})
	if build.err != nil {
		t.Fatalf("build vigil: %v", build.err)
	}
	return build.bin
}

// Cleanup removes the binary built for this test binary; call it from
// TestMain after m.Run.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// New builds the lab and writes the cluster directory, without starting any
// agent. The test skips with -short and where network namespaces are
// unavailable (not root).
// Everything is torn down when the test ends; if it failed, the tail of
// every agent's log is logged first.
func New(t testing.TB, opt Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("lab cluster tests run real agents in network namespaces; skipped with -short")
	}
	tmp := t.TempDir()
	var hosts []string
	for _, n := range opt.Nodes {
		hosts = append(hosts, n.Name)
	}
	hosts = append(hosts, opt.Clients...)
	l := lab.NewForTest(t, lab.Options{
		Name:     opt.Tag,
		Networks: []lab.Network{{Name: Public, Subnet: opt.PublicSubnet}, {Name: Heartbeat, Subnet: opt.HeartbeatSubnet}},
		Hosts:    hosts,
	})
	c := &Cluster{t: t, Lab: l, Dir: filepath.Join(tmp, "cluster"), nodes: map[string]*Node{}, Bin: binary(t)}
	c.Config = filepath.Join(c.Dir, clusterinit.ConfigFile)
	// Registered after the lab's Close, so it runs before it: the agents'
	// last words are in the logs either way.
	t.Cleanup(c.dumpLogsOnFailure)

	io := clusterinit.Options{Dir: c.Dir, Cluster: "lab-" + opt.Tag}
	for _, n := range opt.Nodes {
		h := l.Host(n.Name)
		addrs := []string{h.Addr(Public), h.Addr(Heartbeat)}
		if n.PublicOnly {
			addrs = addrs[:1]
		}
		io.Nodes = append(io.Nodes, clusterinit.NodeSpec{Name: n.Name, Addresses: addrs, Witness: n.Witness})
	}
	if _, err := clusterinit.Run(io); err != nil {
		t.Fatalf("vigil init: %v", err)
	}
	c.Timing = withDefaults(opt.Timing)
	if err := setTiming(c.Config, c.Timing); err != nil {
		t.Fatal(err)
	}
	for _, n := range opt.Nodes {
		node := &Node{
			Name:    n.Name,
			Host:    l.Host(n.Name),
			Config:  c.Config,
			DataDir: filepath.Join(tmp, "data", n.Name),
			LogPath: filepath.Join(tmp, "logs", n.Name+".log"),
		}
		if n.WrongKey {
			dir := filepath.Join(tmp, "cluster-"+n.Name)
			if err := os.CopyFS(dir, os.DirFS(c.Dir)); err != nil {
				t.Fatalf("copy cluster dir for %s: %v", n.Name, err)
			}
			key, err := pki.NewHMACKey()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, clusterinit.HeartbeatKeyFile), pki.EncodeHMACKey(key), 0o600); err != nil {
				t.Fatal(err)
			}
			node.Config = filepath.Join(dir, clusterinit.ConfigFile)
		}
		c.nodes[n.Name] = node
		c.order = append(c.order, n.Name)
	}
	return c
}

// Start is New followed by StartAll.
func Start(t testing.TB, opt Options) *Cluster {
	t.Helper()
	c := New(t, opt)
	c.StartAll()
	return c
}

func withDefaults(tm Timing) Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&tm.Keepalive, 200*time.Millisecond)
	def(&tm.Warntime, time.Second)
	def(&tm.Deadtime, 2*time.Second)
	def(&tm.Initdead, 10*time.Second)
	return tm
}

var timingRE = regexp.MustCompile(`(?m)^(\s+)(keepalive|warntime|deadtime|initdead):\s*\S+`)

// setTiming rewrites the timing lines of the starter vigil.yaml in place,
// keeping its comments.
func setTiming(path string, tm Timing) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	vals := map[string]time.Duration{"keepalive": tm.Keepalive, "warntime": tm.Warntime, "deadtime": tm.Deadtime, "initdead": tm.Initdead}
	n := 0
	out := timingRE.ReplaceAllStringFunc(string(data), func(line string) string {
		m := timingRE.FindStringSubmatch(line)
		n++
		return m[1] + m[2] + ": " + vals[m[2]].String()
	})
	if n != 4 {
		return fmt.Errorf("%s: found %d timing lines, want 4 (did clusterinit's template change?)", path, n)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// Names returns the node names in the order of Options.Nodes.
func (c *Cluster) Names() []string { return append([]string(nil), c.order...) }

// Node returns the named node; it fails the test for an unknown name.
func (c *Cluster) Node(name string) *Node {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		c.t.Fatalf("labcluster: no node %q (nodes: %v)", name, c.order)
	}
	return n
}

// StartAll starts every node's agent.
func (c *Cluster) StartAll() {
	c.t.Helper()
	for _, name := range c.order {
		c.StartNode(name)
	}
}

// StartNode starts the node's agent with its data dir; its output is
// appended to its log.
func (c *Cluster) StartNode(name string) {
	c.t.Helper()
	n := c.Node(name)
	if n.proc != nil && !n.proc.Exited() {
		c.t.Fatalf("labcluster: %s is already running (pid %d)", name, n.proc.Pid())
	}
	argv := []string{c.Bin, "agent", "--config", n.Config, "--node", name, "--data-dir", n.DataDir}
	c.mu.Lock()
	argv = n.Wrap(argv)
	c.mu.Unlock()
	p, err := n.Host.Start("agent", argv, n.Env, n.LogPath)
	if err != nil {
		c.t.Fatalf("start agent %s: %v", name, err)
	}
	n.proc = p
}

// Kill sends SIGKILL to the node's agent, waits until it is gone, and
// returns the moment just before the signal.
func (c *Cluster) Kill(name string) time.Time {
	c.t.Helper()
	n := c.Node(name)
	if n.proc == nil {
		c.t.Fatalf("labcluster: kill %s: not started", name)
	}
	at := time.Now()
	if err := n.proc.Kill(); err != nil {
		c.t.Fatalf("kill %s: %v", name, err)
	}
	return at
}

// Restart starts a killed node again with the same config and data dir.
func (c *Cluster) Restart(name string) {
	c.t.Helper()
	n := c.Node(name)
	if n.proc != nil && !n.proc.Exited() {
		c.t.Fatalf("labcluster: restart %s: still running; Kill it first", name)
	}
	c.StartNode(name)
}

// Running reports whether the node's agent process is alive.
func (c *Cluster) Running(name string) bool {
	n := c.Node(name)
	return n.proc != nil && !n.proc.Exited()
}

// Vigil runs the vigil CLI inside the node's namespace with the node's
// config and returns its standard output.
func (c *Cluster) Vigil(ctx context.Context, node string, args ...string) ([]byte, error) {
	n := c.Node(node)
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	argv := append([]string{c.Bin}, args...)
	argv = append(argv, "--config", n.Config)
	out, err := n.Host.Run(ctx, argv...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Status is `vigil status --json --node NODE`, run on the node itself: the
// node's own view of the cluster.
func (c *Cluster) Status(node string) (model.Status, error) {
	out, err := c.Vigil(context.Background(), node, "status", "--json", "--node", node)
	if err != nil {
		return model.Status{}, err
	}
	var st model.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return model.Status{}, fmt.Errorf("status of %s: %w: %s", node, err, out)
	}
	if st.Node != node {
		return model.Status{}, fmt.Errorf("status of %s answered by %q", node, st.Node)
	}
	return st, nil
}

// MustStatus is Status that fails the test on error.
func (c *Cluster) MustStatus(node string) model.Status {
	c.t.Helper()
	st, err := c.Status(node)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// eventsPage is the most events `vigil events` returns per call (the API's
// limit).
const eventsPage = 10000

// Events is `vigil events --json --node NODE`, run on the node itself: the
// whole replicated event log as that node has applied it, in index order.
func (c *Cluster) Events(node string) ([]model.Event, error) { return c.EventsAfter(node, 0) }

// EventsAfter is Events from index after on, read page by page.
func (c *Cluster) EventsAfter(node string, after uint64) ([]model.Event, error) {
	var all []model.Event
	for {
		if len(all) > 0 {
			after = all[len(all)-1].Index
		}
		out, err := c.Vigil(context.Background(), node, "events", "--json", "--node", node,
			"--after", strconv.FormatUint(after, 10), "--limit", strconv.Itoa(eventsPage))
		if err != nil {
			return nil, err
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			var ev model.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				return nil, fmt.Errorf("events of %s: %w: %s", node, err, line)
			}
			all = append(all, ev)
			n++
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("events of %s: %w", node, err)
		}
		if n < eventsPage {
			return all, nil
		}
	}
}

// WaitFor polls cond every PollInterval until it returns nil, and fails the
// test with cond's last error if that takes longer than timeout. It returns
// how long it waited.
func (c *Cluster) WaitFor(what string, timeout time.Duration, cond func() error) time.Duration {
	c.t.Helper()
	d, err := Poll(timeout, cond)
	if err != nil {
		c.t.Fatalf("waiting %v for %s: %v", timeout, what, err)
	}
	return d
}

// Poll calls cond every PollInterval until it returns nil or timeout
// passes; it returns the time waited and, on timeout, cond's last error.
func Poll(timeout time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), err
		}
		time.Sleep(PollInterval)
	}
}

// NodeIn returns the entry for name in st.Nodes.
func NodeIn(st model.Status, name string) (model.NodeStatus, bool) {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return model.NodeStatus{}, false
}

// Healthy says why st, one node's view, is not a fully formed cluster of
// the expected nodes: quorum, a leader, every node alive with a lease and
// every link up; nil if it is.
func Healthy(st model.Status, names []string) error {
	var problems []string
	if !st.Quorum {
		problems = append(problems, "no quorum")
	}
	if st.Leader == "" {
		problems = append(problems, "no leader")
	}
	if len(st.Nodes) != len(names) {
		problems = append(problems, fmt.Sprintf("%d nodes listed, want %d", len(st.Nodes), len(names)))
	}
	for _, name := range names {
		n, ok := NodeIn(st, name)
		if !ok {
			problems = append(problems, name+" missing")
			continue
		}
		if n.State != model.NodeAlive {
			problems = append(problems, fmt.Sprintf("%s is %s", name, n.State))
		}
		if !n.Lease {
			problems = append(problems, name+" has no lease")
		}
		if len(n.Links) == 0 {
			problems = append(problems, name+" lists no links")
		}
		for _, l := range n.Links {
			if l.State != model.LinkUp {
				problems = append(problems, fmt.Sprintf("%s link %s is %s", name, l.Address, l.State))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s sees: %s", st.Node, strings.Join(problems, "; "))
	}
	return nil
}

// WaitHealthy waits until every node reports a healthy cluster (see
// Healthy) and all name the same leader, which it returns.
func (c *Cluster) WaitHealthy(timeout time.Duration) string {
	c.t.Helper()
	var leader string
	d := c.WaitFor("a healthy cluster", timeout, func() error {
		leader = ""
		for _, name := range c.order {
			st, err := c.Status(name)
			if err != nil {
				return err
			}
			if err := Healthy(st, c.order); err != nil {
				return err
			}
			if leader == "" {
				leader = st.Leader
			} else if st.Leader != leader {
				return fmt.Errorf("leaders differ: %s says %s, another node %s", name, st.Leader, leader)
			}
		}
		return nil
	})
	c.t.Logf("cluster healthy after %v, leader %s", d.Round(time.Millisecond), leader)
	return leader
}

// Log returns the node's agent log.
func (c *Cluster) Log(name string) string {
	data, _ := os.ReadFile(c.Node(name).LogPath)
	return string(data)
}

// tailLines is how much of each agent's log a failed test shows.
const tailLines = 60

func (c *Cluster) dumpLogsOnFailure() {
	if !c.t.Failed() {
		return
	}
	for _, name := range c.order {
		data, err := os.ReadFile(c.nodes[name].LogPath)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				c.t.Logf("log of %s: %v", name, err)
			}
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > tailLines {
			lines = lines[len(lines)-tailLines:]
		}
		c.t.Logf("---- last %d lines of agent %s's log ----\n%s", len(lines), name, strings.Join(lines, "\n"))
	}
}

// Find returns the events that match every non-empty field of want (Kind,
// Node, Reporter, Link).
func Find(evs []model.Event, want model.Event) []model.Event {
	var out []model.Event
	for _, ev := range evs {
		if want.Kind != "" && ev.Kind != want.Kind ||
			want.Node != "" && ev.Node != want.Node ||
			want.Reporter != "" && ev.Reporter != want.Reporter ||
			want.Link != "" && ev.Link != want.Link {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// Check asks each observer for its status and applies check to it; it
// returns the first failure, naming the observer.
func (c *Cluster) Check(observers []string, check func(model.Status) error) error {
	for _, o := range observers {
		st, err := c.Status(o)
		if err != nil {
			return err
		}
		if err := check(st); err != nil {
			return fmt.Errorf("%s sees: %w", o, err)
		}
	}
	return nil
}

// WaitEvent waits until observer's event log holds an event matching want
// (see Find) with an index above after, and returns the first such event.
func (c *Cluster) WaitEvent(observer string, want model.Event, after uint64, timeout time.Duration) model.Event {
	c.t.Helper()
	var got model.Event
	c.WaitFor(fmt.Sprintf("a %s event (node %q, link %q) in %s's event log", want.Kind, want.Node, want.Link, observer), timeout, func() error {
		evs, err := c.Events(observer)
		if err != nil {
			return err
		}
		for _, ev := range Find(evs, want) {
			if ev.Index > after {
				got = ev
				return nil
			}
		}
		return fmt.Errorf("not among its %d events", len(evs))
	})
	return got
}
