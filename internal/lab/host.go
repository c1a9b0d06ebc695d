package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Host is one machine of the lab: a network namespace with one interface
// per network.
type Host struct {
	lab   *Lab
	name  string
	idx   int
	netns string

	// Guarded by lab.mu.
	cut    map[string]bool // networks taken down by CutLink
	frozen bool
	off    bool
	ruled  bool // the namespace may hold the lab's nftables table
	procs  []*Proc
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Netns returns the name of the host's namespace, for `ip netns exec`.
func (h *Host) Netns() string { return h.netns }

// Addr returns the host's IPv4 address on the network, e.g. "10.77.1.1",
// or "" for an unknown network.
func (h *Host) Addr(network string) string {
	n := h.lab.net(network)
	if n == nil {
		return ""
	}
	return n.nth(h.idx + 1).String()
}

// Prefix returns the host's address with the network's prefix length,
// e.g. "10.77.1.1/24", or "" for an unknown network.
func (h *Host) Prefix(network string) string {
	n := h.lab.net(network)
	if n == nil {
		return ""
	}
	return h.prefix(n)
}

// Iface returns the name of the host's interface on the network as seen
// inside its namespace ("eth0", "eth1", ... in the order of
// Options.Networks), or "" for an unknown network.
func (h *Host) Iface(network string) string {
	n := h.lab.net(network)
	if n == nil {
		return ""
	}
	return h.iface(n)
}

func (h *Host) prefix(n *network) string {
	return fmt.Sprintf("%s/%d", n.nth(h.idx+1), n.prefix.Bits())
}

func (h *Host) iface(n *network) string { return "eth" + strconv.Itoa(n.idx) }

// veth is the root namespace's end of the host's cable, the bridge port.
func (h *Host) veth(n *network) string {
	return fmt.Sprintf("%s%d-%d", vethPrefix(h.lab.tag), h.idx, n.idx)
}

// mac is fixed so that partition rules can name a host's frames before
// asking the kernel anything; bridges are separate L2 domains, so labs with
// other tags may reuse the same MACs.
func (h *Host) mac(n *network) string {
	return fmt.Sprintf("02:6c:61:62:%02x:%02x", n.idx, h.idx)
}

// Start runs argv inside the host's namespace in a process group of its
// own, with stdout and stderr appended to logPath ("" discards them) and
// env added to this process's environment. It fails on a host that is
// powered off or frozen.
//
// Children are not killed when the test process dies (Pdeathsig follows
// the forking OS thread, which Go may retire); the next New with the same
// tag sweeps them instead.
func (h *Host) Start(name string, argv []string, env []string, logPath string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("start %s on %s: empty command", name, h.name)
	}
	// ip would report a missing program only in the log, after Start had
	// succeeded.
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, h.name, err)
	}
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, fmt.Errorf("start %s on %s: lab is closed", name, h.name)
	case h.off:
		return nil, fmt.Errorf("start %s on %s: host is powered off (PowerOn first)", name, h.name)
	case h.frozen:
		return nil, fmt.Errorf("start %s on %s: host is frozen (Thaw first)", name, h.name)
	}
	if logPath == "" {
		logPath = os.DevNull
	} else if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("start %s on %s: log dir: %w", name, h.name, err)
	}
	// Append, so that the log of a process restarted after a crash keeps
	// what its previous life wrote.
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: open log: %w", name, h.name, err)
	}
	defer logf.Close()
	// ip execs argv in place, so the pid we get is argv's own.
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.netns}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, h.name, err)
	}
	p := &Proc{name: name, host: h, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go p.reap()
	h.procs = append(h.procs, p)
	return p, nil
}

// Run runs argv inside the host's namespace and returns its combined
// output. Cancelling ctx kills the command's whole process group. It works
// on frozen and powered-off hosts too, to inspect their state.
func (h *Host) Run(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("run on %s: empty command", h.name)
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.netns}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("run %q on %s: %w", argv, h.name, err)
	}
	return out, nil
}

// Do runs fn on an OS thread that has entered the host's namespace.
// Sockets fn creates belong to the host for good and can be used from any
// goroutine afterwards; goroutines fn starts do not run in the namespace.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("do on %s: open own netns: %w", h.name, err)
			return
		}
		defer orig.Close()
		target, err := os.Open(netnsPath(h.netns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("do on %s: open netns %s: %w", h.name, h.netns, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("do on %s: enter netns %s: %w", h.name, h.netns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime then retires this thread with the
			// goroutine instead of reusing a thread stuck in the lab.
			errc <- errors.Join(ferr, fmt.Errorf("do on %s: leave netns %s: %w", h.name, h.netns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Dial connects from inside the host's namespace. Use literal IP
// addresses: name resolution would run outside the namespace. It fits
// http.Transport.DialContext, to talk to the lab from a client host.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s: %w", network, address, h.name, err)
	}
	return c, nil
}

// Listen listens inside the host's namespace.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s on %s: %w", network, address, h.name, err)
	}
	return ln, nil
}

// ListenPacket opens a packet socket (e.g. UDP) inside the host's
// namespace.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s on %s: %w", network, address, h.name, err)
	}
	return pc, nil
}

// PowerOff makes the host lose power: its links go down first, so that
// the FINs and RSTs the kernel sends for killed processes' sockets reach
// nobody, as with a real power loss; then every process in the namespace
// gets SIGKILL. The host stays dark, whatever RestoreLink or Heal do, until
// PowerOn.
func (h *Host) PowerOff() error {
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("power off %s: lab is closed", h.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	h.off = true
	h.frozen = false
	errs := l.applyLinks(ctx, h)
	if err := killNetns(ctx, h.netns); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("power off %s: %w", h.name, err)
	}
	return nil
}

// PowerOn boots a powered-off host again with fresh kernel network state,
// as after a reboot: addresses, routes and nftables rules that processes
// added (virtual IPs, lease sets) are gone, the lab's addresses, link cuts
// and partitions apply again. Files on disk are untouched. Processes must
// be started again. It does nothing on a host that is on.
func (h *Host) PowerOn() error {
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("power on %s: lab is closed", h.name)
	}
	if !h.off {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := killNetns(ctx, h.netns); err != nil {
		return fmt.Errorf("power on %s: %w", h.name, err)
	}
	for _, n := range l.nets {
		if err := ipIgnoreMissing(ctx, "link", "del", "dev", h.veth(n)); err != nil {
			return fmt.Errorf("power on %s: delete veth %s: %w", h.name, h.veth(n), err)
		}
	}
	if err := ip(ctx, "netns", "del", h.netns); err != nil {
		return fmt.Errorf("power on %s: delete netns %s: %w", h.name, h.netns, err)
	}
	h.off = false
	h.ruled = false
	if err := l.boot(ctx, h); err != nil {
		return fmt.Errorf("power on %s: %w", h.name, err)
	}
	if err := l.applyRules(ctx, h); err != nil {
		return fmt.Errorf("power on %s: %w", h.name, err)
	}
	return nil
}

// Freeze pauses the host like a suspended VM: every process in the
// namespace gets SIGSTOP, then its links go down. Processes are stopped
// first so that none of them can react to the lost carrier, which a
// paused VM would not see either.
func (h *Host) Freeze() error {
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return fmt.Errorf("freeze %s: lab is closed", h.name)
	case h.off:
		return fmt.Errorf("freeze %s: host is powered off", h.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	h.frozen = true
	var errs []error
	if err := stopNetns(ctx, h.netns); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, l.applyLinks(ctx, h)...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("freeze %s: %w", h.name, err)
	}
	return nil
}

// Thaw resumes a frozen host: links come back (except those cut with
// CutLink), then every process in the namespace gets SIGCONT. It does
// nothing on a host that is not frozen.
func (h *Host) Thaw() error {
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("thaw %s: lab is closed", h.name)
	}
	if !h.frozen {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	h.frozen = false
	errs := l.applyLinks(ctx, h)
	if err := contNetns(ctx, h.netns); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("thaw %s: %w", h.name, err)
	}
	return nil
}
