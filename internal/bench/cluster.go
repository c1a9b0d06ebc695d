package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/clusterinit"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
)

// Timing presets. Default is whatever config's defaults are, so the benchmark
// follows them if they change; tuned is the brief's target setting.
const (
	TimingDefault = "default"
	TimingTuned   = "tuned"
	tunedTiming   = "{keepalive: 50ms, warntime: 250ms, deadtime: 500ms, initdead: 5s}"
)

// The brief's smallest safe cluster: two servers and a witness.
var benchNodes = []struct {
	name    string
	witness bool
}{{"alpha", false}, {"bravo", false}, {"witness", true}}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// ClusterOptions say how to run the benchmark cluster.
type ClusterOptions struct {
	// Binary is the vigil executable the agents run (the CLI passes its own).
	Binary string
	// Timing is TimingDefault or TimingTuned.
	Timing string
	// Parent is where the temporary cluster directory goes; empty picks a
	// disk-backed temporary directory (never tmpfs, whose writes cost nothing).
	Parent string
	// Keep leaves the cluster directory (config, data, agent logs) behind.
	Keep bool
	// CPUProfiles makes each agent write a Go CPU profile, NODE.cpu.prof in
	// the cluster directory, which is then kept.
	CPUProfiles bool
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// cluster is three agent processes on loopback addresses, each in its own
// process group. Only the goroutine that made it may call its methods.
type cluster struct {
	dir      string
	fsType   string
	cfgPath  string
	cfg      *config.Config
	bin      string
	keep     bool
	profiles bool
	progress io.Writer
	names    []string
	voters   []string
	clients  map[string]*apiclient.Client
	procs    map[string]*agentProc
}

// agentProc is one running agent. Its waiter goroutine, owned by the cluster,
// ends when the process exits, which cluster.close guarantees.
type agentProc struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	logFile *os.File
	out     *countingWriter
	exited  chan struct{}
	err     error // the exit status; read only after exited is closed
}

// countingWriter counts what an agent printed. The agents' output reaches the
// log through a pipe, as it would reach journald, so that the file writes are
// the benchmark's and not charged to the agent's disk counters.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// startCluster writes a cluster directory and starts every agent; the caller
// must close it, also when it returns an error.
func startCluster(ctx context.Context, opt ClusterOptions) (c *cluster, err error) {
	if opt.Binary == "" {
		return nil, errors.New("no vigil binary to run the agents with")
	}
	if opt.Timing != TimingDefault && opt.Timing != TimingTuned {
		return nil, fmt.Errorf("timing %q: want %s or %s", opt.Timing, TimingDefault, TimingTuned)
	}
	parent, fsType := opt.Parent, ""
	if parent == "" {
		if parent, fsType, err = diskTempParent(); err != nil {
			return nil, err
		}
	} else if fsType, err = fsTypeOf(parent); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "vigil-bench-")
	if err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	progress := opt.Progress
	if progress == nil {
		progress = io.Discard
	}
	c = &cluster{dir: dir, fsType: fsType, bin: opt.Binary, keep: opt.Keep || opt.CPUProfiles, profiles: opt.CPUProfiles, progress: progress,
		clients: map[string]*apiclient.Client{}, procs: map[string]*agentProc{}}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (agent logs in %s)", err, c.dir)
		}
	}()
	if err := c.writeConfig(opt.Timing); err != nil {
		return c, err
	}
	if err := c.makeClients(); err != nil {
		return c, err
	}
	t := c.cfg.Cluster.Timing
	c.logf("cluster in %s (%s): %s on %s, ports %d-%d; keepalive %v, warntime %v, deadtime %v, initdead %v",
		c.dir, c.fsType, strings.Join(c.names, ", "), c.addrSummary(), c.cfg.Cluster.Ports.Heartbeat, c.cfg.Cluster.Ports.API,
		t.Keepalive.D(), t.Warntime.D(), t.Deadtime.D(), t.Initdead.D())
	for _, n := range c.names {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		if err := c.start(n); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.progress, format+"\n", args...)
}

// writeConfig runs `vigil init` into c.dir for a random 127.x.y block and port
// base, so that a second benchmark (or a test) on the machine does not collide,
// then rewrites the ports and timing as testcluster does.
func (c *cluster) writeConfig(timing string) error {
	var addrs [][]string
	var base int
	for attempt := 0; ; attempt++ {
		x, y := 100+rand.IntN(100), rand.IntN(250)
		addrs = addrs[:0]
		for i := range benchNodes {
			addrs = append(addrs, []string{fmt.Sprintf("127.%d.%d.%d", x, y, i+1)})
		}
		base = 20000 + rand.IntN(40000)
		err := portsFree(addrs, base)
		if err == nil {
			break
		}
		if attempt == 20 {
			return fmt.Errorf("no free port range on loopback after %d attempts: %w", attempt+1, err)
		}
	}
	init := clusterinit.Options{Dir: c.dir, Cluster: "bench"}
	for i, n := range benchNodes {
		init.Nodes = append(init.Nodes, clusterinit.NodeSpec{Name: n.name, Addresses: addrs[i], Witness: n.witness})
	}
	if _, err := clusterinit.Run(init); err != nil {
		return fmt.Errorf("init bench cluster: %w", err)
	}
	c.cfgPath = filepath.Join(c.dir, "vigil.yaml")
	data, err := os.ReadFile(c.cfgPath)
	if err != nil {
		return fmt.Errorf("read generated config: %w", err)
	}
	text := removeSection(string(data), "  ports:\n")
	text = strings.Replace(text, "cluster:\n", fmt.Sprintf("cluster:\n  ports: {heartbeat: %d, raft: %d, api: %d}\n", base, base+1, base+2), 1)
	if timing == TimingTuned {
		text = removeSection(text, "  timing:\n")
		text = strings.Replace(text, "cluster:\n", "cluster:\n  timing: "+tunedTiming+"\n", 1)
	}
	if err := os.WriteFile(c.cfgPath, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write bench config: %w", err)
	}
	if c.cfg, err = config.Load(c.cfgPath); err != nil {
		return fmt.Errorf("bench config: %w", err)
	}
	for _, n := range c.cfg.Nodes {
		for _, a := range n.Addresses {
			// Every packet of the benchmark must stay on this machine.
			if ip, err := netip.ParseAddr(a); err != nil || !loopback.Contains(ip) {
				return fmt.Errorf("bench config: node %s address %s is not on loopback", n.Name, a)
			}
		}
		c.names = append(c.names, n.Name)
		if !n.Witness {
			c.voters = append(c.voters, n.Name)
		}
	}
	if len(c.voters) != 2 || len(c.names) != 3 {
		return fmt.Errorf("bench config: want 2 voters and a witness, have %v", c.names)
	}
	return nil
}

// portsFree checks, by binding them for a moment, that the three ports are
// free on every address. Another program may still take one before the agents
// start, hence "free-ish"; the agent then fails and says so.
func portsFree(addrs [][]string, base int) error {
	var closers []io.Closer
	defer func() {
		for _, cl := range closers {
			cl.Close()
		}
	}()
	for _, node := range addrs {
		for _, a := range node {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(a, strconv.Itoa(base)))
			if err != nil {
				return fmt.Errorf("udp %s:%d: %w", a, base, err)
			}
			closers = append(closers, pc)
			for _, p := range []int{base + 1, base + 2} {
				l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(p)))
				if err != nil {
					return fmt.Errorf("tcp %s:%d: %w", a, p, err)
				}
				closers = append(closers, l)
			}
		}
	}
	return nil
}

// removeSection drops a block-style YAML mapping that starts with header and its
// more-indented lines (copied from testcluster, which is for tests only).
func removeSection(text, header string) string {
	i := strings.Index(text, header)
	if i < 0 {
		return text
	}
	rest := text[i+len(header):]
	end := 0
	for end < len(rest) {
		nl := strings.IndexByte(rest[end:], '\n')
		if nl < 0 {
			end = len(rest)
			break
		}
		line := rest[end : end+nl]
		if !strings.HasPrefix(line, "    ") && strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			break
		}
		end += nl + 1
	}
	return text[:i] + rest[end:]
}

func (c *cluster) addrSummary() string {
	var out []string
	for _, n := range c.cfg.Nodes {
		out = append(out, n.Addresses...)
	}
	return strings.Join(out, ", ")
}

func (c *cluster) makeClients() error {
	caPEM, err := os.ReadFile(c.cfg.SecretsPath("ca.crt"))
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	tlsCfg, err := pki.ClientTLS(caPEM, nil, nil)
	if err != nil {
		return fmt.Errorf("client TLS: %w", err)
	}
	token, err := pki.LoadToken(c.cfg.SecretsPath("operator.token"))
	if err != nil {
		return fmt.Errorf("operator token: %w", err)
	}
	for _, n := range c.cfg.Nodes {
		c.clients[n.Name] = apiclient.New(c.cfg.APIAddrs(n), tlsCfg, token)
	}
	// A client that tries several nodes in turn, for reading the replicated
	// log from whichever survivor answers.
	for _, v := range c.voters {
		var addrs []string
		for _, other := range c.others(v) {
			n, _ := c.cfg.Node(other)
			addrs = append(addrs, c.cfg.APIAddrs(n)...)
		}
		c.clients["others-of-"+v] = apiclient.New(addrs, tlsCfg, token)
	}
	return nil
}

// others lists every node but name.
func (c *cluster) others(name string) []string {
	var out []string
	for _, n := range c.names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) dataDir(name string) string { return filepath.Join(c.dir, "data", name) }

// start runs one agent as a child process in its own process group, so that a
// kill reaches everything it may have started and a Ctrl-C at the terminal
// reaches only the benchmark, which then cleans up in order.
func (c *cluster) start(name string) error {
	if p, ok := c.procs[name]; ok {
		return fmt.Errorf("start %s: already running as pid %d", name, p.pid)
	}
	logPath := filepath.Join(c.dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("agent %s log: %w", name, err)
	}
	out := &countingWriter{w: logFile}
	args := []string{"agent", "--config", c.cfgPath, "--node", name, "--data-dir", c.dataDir(name)}
	if c.profiles {
		args = append(args, "--cpu-profile", filepath.Join(c.dir, name+".cpu.prof"))
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig is the backstop for a benchmark killed with SIGKILL, which
	// cannot clean up: the agents then die with it instead of lingering.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start agent %s: %w", name, err)
	}
	p := &agentProc{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, logFile: logFile, out: out, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	c.procs[name] = p
	return nil
}

// kill sends SIGKILL to the agent's process group and waits until it is gone.
// It returns the moment just before the signal: the start of the outage.
func (c *cluster) kill(name string) (time.Time, error) {
	p, ok := c.procs[name]
	if !ok {
		return time.Time{}, fmt.Errorf("kill %s: not running", name)
	}
	at := time.Now()
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return at, fmt.Errorf("kill -9 %s (process group %d): %w", name, p.pid, err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		return at, fmt.Errorf("kill -9 %s: pid %d still there after 10s", name, p.pid)
	}
	delete(c.procs, name)
	return at, nil
}

// terminate asks every agent to stop (SIGTERM) and waits a while, so that
// their CPU profiles are written; close then kills what is left.
func (c *cluster) terminate() {
	for _, p := range c.procs {
		_ = syscall.Kill(p.pid, syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, p := range c.procs {
		select {
		case <-p.exited:
		case <-deadline:
			return
		}
	}
}

// close kills every agent, closes the clients and removes the directory
// unless asked to keep it.
func (c *cluster) close() error {
	var errs []error
	if c.profiles {
		c.terminate()
	}
	for _, n := range c.names {
		if _, ok := c.procs[n]; ok {
			if _, err := c.kill(n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, cl := range c.clients {
		cl.Close()
	}
	if c.keep {
		c.logf("kept %s", c.dir)
	} else if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", c.dir, err))
	}
	return errors.Join(errs...)
}

// exited reports an agent that stopped by itself, with the end of its log.
func (c *cluster) exited() error {
	for _, n := range c.names {
		p, ok := c.procs[n]
		if !ok {
			continue
		}
		select {
		case <-p.exited:
			delete(c.procs, n)
			return fmt.Errorf("agent %s exited (%v); end of its log:\n%s", n, p.err, tail(p.logPath, 2048))
		default:
		}
	}
	return nil
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	return strings.TrimRight(string(data), "\n")
}

// waitFormed polls every node until all see quorum, the same leader, and every
// node alive with a lease and every link up. It returns the leader.
func (c *cluster) waitFormed(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := c.exited(); err != nil {
			return "", err
		}
		leader, err := c.formed(ctx)
		if err == nil {
			return leader, nil
		}
		last = err
		if time.Now().After(deadline) {
			return "", fmt.Errorf("cluster not formed after %v: %w", timeout, last)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *cluster) formed(ctx context.Context) (string, error) {
	leader := ""
	for _, name := range c.names {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.clients[name].Status(sctx)
		cancel()
		if err != nil {
			return "", fmt.Errorf("status of %s: %w", name, err)
		}
		if err := healthy(st, c.names); err != nil {
			return "", err
		}
		if leader == "" {
			leader = st.Leader
		} else if st.Leader != leader {
			return "", fmt.Errorf("leaders differ: %s names %s, another node %s", name, st.Leader, leader)
		}
	}
	return leader, nil
}

// healthy says why st, one node's view, is not a fully formed cluster of the
// named nodes (the rule labcluster uses); nil if it is.
func healthy(st model.Status, names []string) error {
	var problems []string
	if !st.Quorum {
		problems = append(problems, "no quorum")
	}
	if st.Leader == "" {
		problems = append(problems, "no leader")
	}
	for _, name := range names {
		var n *model.NodeStatus
		for i := range st.Nodes {
			if st.Nodes[i].Name == name {
				n = &st.Nodes[i]
			}
		}
		if n == nil {
			problems = append(problems, name+" missing")
			continue
		}
		if n.State != model.NodeAlive {
			problems = append(problems, fmt.Sprintf("%s is %s", name, n.State))
		}
		if !n.Lease {
			problems = append(problems, name+" has no lease")
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

// In-memory filesystems would make the disk figures meaningless.
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

var fsNames = map[int64]string{
	0xef53: "ext4", 0x58465342: "xfs", 0x9123683e: "btrfs", 0x2fc12fc1: "zfs",
	0x794c7630: "overlayfs", 0x6969: "nfs", 0x01021994: "tmpfs", 0x858458f6: "ramfs",
}

func fsTypeOf(dir string) (string, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "", fmt.Errorf("statfs %s: %w", dir, err)
	}
	if name, ok := fsNames[int64(st.Type)]; ok {
		return name, nil
	}
	return fmt.Sprintf("fs 0x%x", st.Type), nil
}

// diskTempParent picks the first temporary directory not in memory.
func diskTempParent() (dir, fsType string, err error) {
	var tried []string
	for _, d := range []string{os.TempDir(), "/var/tmp"} {
		var st syscall.Statfs_t
		if err := syscall.Statfs(d, &st); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", d, err))
			continue
		}
		if st.Type == tmpfsMagic || st.Type == ramfsMagic {
			tried = append(tried, d+" is in memory")
			continue
		}
		t, _ := fsTypeOf(d)
		return d, t, nil
	}
	return "", "", fmt.Errorf("no disk-backed temporary directory (%s); pass --dir", strings.Join(tried, "; "))
}
