package testcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/agent"
	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/clusterinit"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/grouprun"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
)

// Options shape a test cluster. Names ending in "-w" are witnesses.
type Options struct {
	Nodes []string
	Links int // addresses per node; default 1
	// Timing, in vigil.yaml syntax, e.g. "{keepalive: 50ms, warntime: 250ms, deadtime: 500ms, initdead: 2s}".
	Timing string
	// Groups is appended to vigil.yaml as its groups section (YAML).
	Groups string
	// Extra is appended to vigil.yaml as is (e.g. a fencing section).
	Extra string
	// Factory, when set, builds each node's resource agents (fakes in tests).
	Factory func(node string) grouprun.Factory
}

// Cluster is a set of agents sharing one config, each on its own 127.x address.
type Cluster struct {
	t      testing.TB
	Dir    string
	Config *config.Config
	token  string
	caPEM  []byte

	factory func(node string) grouprun.Factory

	mu     sync.Mutex
	agents map[string]*running // guarded by mu
}

type running struct {
	cancel context.CancelFunc
	done   chan error
}

// New writes a cluster directory and loads its config; nothing runs until Start.
func New(t testing.TB, opt Options) *Cluster {
	t.Helper()
	if opt.Links == 0 {
		opt.Links = 1
	}
	dir := t.TempDir()
	// A random 127.x.y block and port range keeps parallel test binaries apart.
	x, y := 100+rand.IntN(100), rand.IntN(200)
	port := 20000 + rand.IntN(30000)
	init := clusterinit.Options{Dir: dir, Cluster: "test"}
	for i, name := range opt.Nodes {
		var addrs []string
		for l := 0; l < opt.Links; l++ {
			addrs = append(addrs, fmt.Sprintf("127.%d.%d.%d", x, y+l, i+1))
		}
		init.Nodes = append(init.Nodes, clusterinit.NodeSpec{Name: name, Addresses: addrs, Witness: strings.HasSuffix(name, "-w")})
	}
	if _, err := clusterinit.Run(init); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vigil.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	text = strings.Replace(text, "cluster:\n", fmt.Sprintf("cluster:\n  ports: {heartbeat: %d, raft: %d, api: %d}\n", port, port+1, port+2), 1)
	text = removeSection(text, "  ports:\n")
	if opt.Timing != "" {
		text = removeSection(text, "  timing:\n")
		text = strings.Replace(text, "cluster:\n", "cluster:\n  timing: "+opt.Timing+"\n", 1)
	}
	if opt.Groups != "" {
		text += "\ngroups:\n" + opt.Groups
	}
	text += opt.Extra
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("test config: %v\n%s", err, text)
	}
	c := &Cluster{t: t, Dir: dir, Config: cfg, agents: map[string]*running{}, factory: opt.Factory}
	if c.token, err = pki.LoadToken(cfg.SecretsPath("operator.token")); err != nil {
		t.Fatal(err)
	}
	if c.caPEM, err = os.ReadFile(cfg.SecretsPath("ca.crt")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.StopAll)
	return c
}

// removeSection drops a block-style YAML mapping that starts with header and its
// more-indented lines, so a test can replace it.
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

// Start runs the named node's agent in this process.
func (c *Cluster) Start(name string) {
	c.t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{c.t, name}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opt := agent.Options{Config: c.Config, Node: name, DataDir: filepath.Join(c.Dir, "data", name), Logger: logger}
	if c.factory != nil {
		opt.Factory = c.factory(name)
	}
	a, err := agent.New(opt)
	if err != nil {
		c.t.Fatalf("agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	c.mu.Lock()
	c.agents[name] = r
	c.mu.Unlock()
}

// Stop stops one agent and waits for it.
func (c *Cluster) Stop(name string) {
	c.mu.Lock()
	r, ok := c.agents[name]
	delete(c.agents, name)
	c.mu.Unlock()
	if !ok {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		c.t.Errorf("agent %s: %v", name, err)
	}
}

// StopAll stops every agent.
func (c *Cluster) StopAll() {
	for _, n := range c.Config.NodeNames() {
		c.Stop(n)
	}
}

// Client is an operator client for the named node.
func (c *Cluster) Client(name string) *apiclient.Client {
	n, _ := c.Config.Node(name)
	tlsCfg, err := pki.ClientTLS(c.caPEM, nil, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return apiclient.New(c.Config.APIAddrs(n), tlsCfg, c.token)
}

// Status asks the named node for its view.
func (c *Cluster) Status(name string) (model.Status, error) {
	cl := c.Client(name)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cl.Status(ctx)
}

// WaitFor polls cond until it holds or timeout passes; the machine may be slow.
func (c *Cluster) WaitFor(what string, timeout time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// NodeIn finds a node in a status.
func NodeIn(st model.Status, name string) (model.NodeStatus, bool) {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return model.NodeStatus{}, false
}

type testWriter struct {
	t    testing.TB
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}
