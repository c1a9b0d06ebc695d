package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/clusterinit"
	"github.com/vigil-ha/vigil/internal/lab"
)

// demoNodes are two servers and a witness, as in the brief's smallest safe cluster.
var demoNodes = []struct {
	name    string
	witness bool
}{{"alpha", false}, {"bravo", false}, {"witness", true}}

type demoOpts struct {
	dir      string
	keep     bool
	loopback bool
	duration time.Duration
}

func demoCmd(g *globals) *cobra.Command {
	var o demoOpts
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local cluster of two nodes and a witness (network namespaces as root, loopback otherwise)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, o)
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "where to write the demo cluster's config and state (default: a temporary directory)")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the directory after exit")
	cmd.Flags().BoolVar(&o.loopback, "loopback", false, "use loopback addresses even as root")
	cmd.Flags().DurationVar(&o.duration, "duration", 0, "stop by itself after this long (0: until Ctrl-C)")
	return cmd
}

// demoProc is an agent process, wherever it runs.
type demoProc interface {
	Kill() error
}

type execProc struct{ cmd *exec.Cmd }

func (p execProc) Kill() error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	return nil
}

func runDemo(ctx context.Context, g *globals, o demoOpts) (err error) {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "vigil-demo-"); err != nil {
			return fmt.Errorf("demo dir: %w", err)
		}
		if !o.keep {
			defer os.RemoveAll(o.dir)
		}
	}
	useNetns := os.Geteuid() == 0 && !o.loopback
	var l *lab.Lab
	addrs := map[string][]string{}
	if useNetns {
		l, err = lab.New(ctx, lab.Options{Name: "demo", HostAddr: true,
			Networks: []lab.Network{{Name: "public", Subnet: "10.213.1.0/24"}, {Name: "heartbeat", Subnet: "10.213.2.0/24"}},
			Hosts:    []string{"alpha", "bravo", "witness"}})
		if err != nil {
			return fmt.Errorf("network namespaces: %w (try --loopback)", err)
		}
		defer func() {
			if cerr := l.Close(); cerr != nil {
				fmt.Fprintln(g.stderr, "demo cleanup:", cerr)
			}
		}()
		for _, n := range demoNodes {
			h := l.Host(n.name)
			addrs[n.name] = []string{h.Addr("public"), h.Addr("heartbeat")}
		}
	} else {
		for i, n := range demoNodes {
			addrs[n.name] = []string{fmt.Sprintf("127.213.1.%d", i+1), fmt.Sprintf("127.213.2.%d", i+1)}
		}
	}
	opt := clusterinit.Options{Dir: o.dir, Cluster: "demo", Force: true}
	for _, n := range demoNodes {
		opt.Nodes = append(opt.Nodes, clusterinit.NodeSpec{Name: n.name, Addresses: addrs[n.name], Witness: n.witness})
	}
	if _, err := clusterinit.Run(opt); err != nil {
		return fmt.Errorf("demo cluster: %w", err)
	}
	cfgPath := filepath.Join(o.dir, "vigil.yaml")
	url, err := addDemoGroup(cfgPath, self, useNetns)
	if err != nil {
		return err
	}
	var procs []demoProc
	defer func() {
		for _, p := range procs {
			_ = p.Kill()
		}
	}()
	for _, n := range demoNodes {
		argv := []string{self, "agent", "--config", cfgPath, "--node", n.name, "--data-dir", filepath.Join(o.dir, "data", n.name)}
		logPath := filepath.Join(o.dir, n.name+".log")
		p, err := startDemoAgent(l, n.name, argv, logPath)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	where := "loopback addresses 127.213.x.y"
	if useNetns {
		where = "network namespaces vl-demo-{alpha,bravo,witness} on bridges vb-demo-* (public 10.213.1.0/24, heartbeat 10.213.2.0/24)"
	}
	fmt.Fprintf(g.stdout, "Vigil demo: cluster \"demo\" with alpha, bravo and a witness, in %s.\n", where)
	fmt.Fprintf(g.stdout, "Config, keys and logs: %s\n\n", o.dir)
	if err := waitForQuorum(ctx, g, cfgPath); err != nil {
		return err
	}
	if err := printConsole(g.stdout, cfgPath, demoNodes[0].name); err != nil {
		return err
	}
	holder := waitForGroup(ctx, g, "web")
	fmt.Fprintf(g.stdout, "\nThe demo web service runs on %s:\n  curl %s\n", holder, url)
	fmt.Fprintf(g.stdout, "\nWatch it from another terminal:\n  export VIGIL_CONFIG=%s\n  vigil status\n  vigil groups\n  vigil events --follow\n", cfgPath)
	if useNetns && holder != "" {
		fmt.Fprintf(g.stdout, "\nPull the power of the active node and watch the VIP move (about 2-3 s):\n  ip netns pids vl-demo-%s | xargs kill -9; ip -n vl-demo-%s link set eth0 down; ip -n vl-demo-%s link set eth1 down\n  while sleep 0.5; do curl -s -m 0.4 %s || echo no answer; done\n", holder, holder, holder, url)
	}
	if holder != "" {
		fmt.Fprintf(g.stdout, "\nOr rehearse it: a failover drill moves web to the other node and back while\nmeasuring what clients see (also the console's Drills page):\n  vigil drill web --back\n")
	}
	fmt.Fprintln(g.stdout, "\nPress Ctrl-C to stop and clean up.")
	var stop <-chan time.Time
	if o.duration > 0 {
		stop = time.After(o.duration)
	}
	select {
	case <-ctx.Done():
	case <-stop:
	}
	fmt.Fprintln(g.stdout, "stopping the demo cluster")
	return nil
}

func startDemoAgent(l *lab.Lab, node string, argv []string, logPath string) (demoProc, error) {
	if l != nil {
		p, err := l.Host(node).Start("agent", argv, nil, logPath)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", node, err)
		}
		return p, nil
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("agent log: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", node, err)
	}
	logf.Close()
	return execProc{cmd: cmd}, nil
}

// waitForQuorum polls until a coordinator is elected, then prints the status table.
func waitForQuorum(ctx context.Context, g *globals, cfgPath string) error {
	g.configPath = cfgPath
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		c, _, err := g.connect("")
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.Status(sctx)
		cancel()
		c.Close()
		if err == nil && st.Leader != "" && st.Quorum {
			printStatus(g.stdout, st)
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	if last == nil {
		last = errors.New("no coordinator elected")
	}
	return fmt.Errorf("demo cluster did not form within 30s (see the agents' logs): %w", last)
}

// addDemoGroup appends the demo's web group: a VIP (namespaces) and the demo-web
// service. On loopback there is no VIP to move, so the service binds one shared
// loopback address that only the active node holds.
func addDemoGroup(cfgPath, self string, netns bool) (string, error) {
	listen, url, vip := "127.213.3.1:8080", "http://127.213.3.1:8080/", ""
	if netns {
		listen, url = "0.0.0.0:8080", "http://10.213.1.100:8080/"
		vip = "      - {name: vip, type: ip, address: 10.213.1.100/24, interface: eth0}\n"
	}
	group := fmt.Sprintf(`
groups:
  - name: web
    nodes: [alpha, bravo]
    failback: manual
    max_restarts: 1
    resources:
%s      - {name: www, type: process, command: [%q, demo-web, --listen, %q], monitor_interval: 2s}
    drill:
      probe: {type: http, url: %q, timeout: 300ms}
      interval: 100ms
      settle: 1s
`, vip, self, listen, url)
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", fmt.Errorf("demo group: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(group); err != nil {
		return "", fmt.Errorf("demo group: %w", err)
	}
	return url, nil
}

// waitForGroup waits until the group runs somewhere and returns where.
func waitForGroup(ctx context.Context, g *globals, name string) string {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c, _, err := g.connect("")
		if err != nil {
			return ""
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		gs, err := c.Groups(sctx)
		cancel()
		c.Close()
		for _, s := range gs {
			if err == nil && s.Name == name && s.State == "running" {
				return s.Node
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return ""
}
