package labcluster

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/resource/ip"
)

// The no-split-brain checker.
//
// Every CheckerOptions.Interval (10 ms) it takes a snapshot of every lab host
// that is not powered off and decides, for each watched group:
//
//   - whether the host effectively holds the group's VIP: the address is on
//     one of its interfaces AND the kernel lets the VIP's IPv4 traffic in,
//     that is, the VIP is in the `ip vigil leased` set with time left, or it
//     is not in `ip vigil vips` at all (an address nothing gates answers
//     unconditionally). A frozen host whose lease element has expired does
//     not hold the VIP (that is what the kernel lease is for); a frozen host
//     whose element has not expired yet does.
//   - whether the host runs the group's service: a process whose argv
//     matches Watch.Service, alive and not stopped (SIGSTOP), in the host's
//     network namespace.
//
// It fails the test if two hosts held one VIP at the same moment, or if two
// hosts ran one service at the same moment. One kind of copy of the service
// is exempt from the service rule: a copy running on a host whose agent is
// not running (killed, SIGSTOPped, the whole host frozen), or one that was
// already there while the agent was not running, until the agent has run
// again for ResumeGrace (3 s). Nobody can stop such a copy before then, and
// the safety model relies on the kernel lease, checked exactly by the VIP
// rule, to keep it from serving (brief.md, safety model point 3; scenario
// S6). A copy that a running agent starts is never exempt.
// Powered-off hosts count for nothing: their links are down and their
// processes dead.
//
// How a snapshot is taken, and why it is cheap enough for 10 ms:
//   - addresses and nftables sets through one rtnetlink handle
//     (netlink.NewHandleAt) and one nftables connection
//     (nftables.New(WithNetNSFd)) per namespace, opened once and reopened
//     only when the namespace is replaced (PowerOn makes a new one); the sets
//     are read only on hosts that have the address;
//   - processes by one pass over /proc: readlink /proc/PID/ns/net gives each
//     process's namespace inode, compared with the lab namespaces' inodes
//     (stat /run/netns/NAME); only processes in a lab namespace have their
//     argv and state read, and processes outside the lab are looked at again
//     only every 100 ms (see procScanner). `ip netns pids` would fork a
//     process per host per poll.
//
// A host is sampled a moment after the previous one, so two hosts seen
// holding in one snapshot may be a hand-over that happened between the two
// samples. Before it counts an overlap, the checker takes a second snapshot
// at once: the overlap is confirmed if both hosts still hold in it (host A
// held at t1 and t3, host B at t2 and t4, t1 < t2 < t3 < t4: both held at
// t3). An overlap the second snapshot does not confirm is logged as
// unconfirmed, not failed.

// Watch is one group the checker watches.
type Watch struct {
	Group string
	VIP   netip.Addr
	// Service says whether a process's argv is the group's service; nil
	// skips the process rule.
	Service func(argv []string) bool
}

// DemoWeb matches `vigil demo-web ... --listen LISTEN ...`.
func DemoWeb(listen string) func(argv []string) bool {
	return func(argv []string) bool {
		if len(argv) < 2 || filepath.Base(argv[0]) != "vigil" || argv[1] != "demo-web" {
			return false
		}
		for i, a := range argv {
			if a == "--listen="+listen || a == "--listen" && i+1 < len(argv) && argv[i+1] == listen {
				return true
			}
		}
		return false
	}
}

// CheckerOptions tune a Checker; zero fields take the defaults.
type CheckerOptions struct {
	// Interval between snapshots; default 10ms.
	Interval time.Duration
	// ResumeGrace is how long after its agent runs again a host's service
	// copy stays exempt from the service rule; default 3s.
	ResumeGrace time.Duration
}

// Violation is one interval during which two or more hosts held a VIP or
// ran a service.
type Violation struct {
	Group string
	Kind  string // "vip" or "service"
	Hosts []string
	// From and To are the first and last snapshot that saw it.
	From, To time.Time
	Polls    int
	Detail   string // the hosts' states when it was first seen
}

// Mark is one change of a host's state, for the timeline.
type Mark struct {
	At    time.Time
	Host  string
	Group string // "" for the host's own state (power, agent)
	What  string
}

// Checker is the no-split-brain checker; see the comment above Watch.
type Checker struct {
	watches []Watch
	opt     CheckerOptions
	probes  []*probe
	procs   procScanner
	started time.Time

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}

	mu          sync.Mutex
	marks       []Mark
	violations  []*Violation
	open        map[string]*Violation // kind/group -> the violation still going on
	unconfirmed []string
	polls       int
	lastPoll    time.Time
	maxGap      time.Duration
	busy        time.Duration                       // total time spent taking snapshots
	held        map[string]map[string]time.Duration // group -> host -> time holding the VIP
	served      map[string]map[string]time.Duration // group -> host -> time running the service (counted)
	exempted    map[string]map[string]time.Duration // group -> host -> time a copy ran exempt
	blind       map[string]time.Duration            // host -> longest time it could not be observed
	last        map[string]hostSnap                 // host -> last snapshot
}

// probe holds the open handles of one host's namespace.
type probe struct {
	h      *lab.Host
	nsPath string
	ino    uint64
	nl     *netlink.Handle
	nft    *nftables.Conn

	// off and frozen are the lab's last answer: while a lab operation holds
	// its lock (PowerOff is one), the state before it stands, so a host
	// being powered off still counts until it is off.
	off, frozen bool

	failingSince time.Time
	lastErr      string
	agentDownAt  time.Time    // last snapshot where its agent was not running
	orphans      map[int]bool // pids seen while the agent was not running
	marks        map[string]string
}

// hostSnap is one host in one snapshot.
type hostSnap struct {
	at     time.Time
	off    bool
	err    error
	frozen bool
	agent  string // running, stopped, absent
	groups map[string]groupSnap
}

type groupSnap struct {
	addr      bool
	gated     bool
	leased    bool
	leaseLeft time.Duration
	held      bool
	copies    []proc // the service's processes, alive
	// active: some copy that is not exempt runs (neither stopped nor a
	// zombie); exemptActive: some exempt copy runs.
	active, exemptActive bool
}

type proc struct {
	pid    int
	argv   []string
	state  byte
	exempt bool
}

// NewChecker starts checking hosts (every host of the lab if none are
// given). The caller must call Stop, before the lab closes; most tests want
// CheckSplitBrain instead.
func NewChecker(l *lab.Lab, hosts []string, watches []Watch, opt CheckerOptions) (*Checker, error) {
	if opt.Interval <= 0 {
		opt.Interval = 10 * time.Millisecond
	}
	if opt.ResumeGrace <= 0 {
		opt.ResumeGrace = 3 * time.Second
	}
	c := &Checker{watches: watches, opt: opt, procs: procScanner{self: os.Getpid()}, started: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{}), open: map[string]*Violation{},
		held: map[string]map[string]time.Duration{}, served: map[string]map[string]time.Duration{},
		exempted: map[string]map[string]time.Duration{}, blind: map[string]time.Duration{}, last: map[string]hostSnap{}}
	for _, w := range watches {
		if !w.VIP.Is4() {
			return nil, fmt.Errorf("checker: group %s: VIP %v: only IPv4 VIPs are checked", w.Group, w.VIP)
		}
		c.held[w.Group] = map[string]time.Duration{}
		c.served[w.Group] = map[string]time.Duration{}
		c.exempted[w.Group] = map[string]time.Duration{}
	}
	var hs []*lab.Host
	if len(hosts) == 0 {
		hs = l.Hosts()
	}
	for _, name := range hosts {
		h := l.Host(name)
		if h == nil {
			return nil, fmt.Errorf("checker: no host %q", name)
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		c.probes = append(c.probes, &probe{h: h, nsPath: "/run/netns/" + h.Netns(), marks: map[string]string{}})
	}
	go c.run()
	return c, nil
}

// CheckSplitBrain starts a checker of the cluster's lab hosts for the
// watches; when the test ends it stops it, fails the test for each
// violation (with the timeline around it) and logs what it observed.
func (c *Cluster) CheckSplitBrain(watches ...Watch) *Checker {
	c.t.Helper()
	chk, err := NewChecker(c.Lab, c.Names(), watches, CheckerOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	t := c.t
	t.Cleanup(func() {
		chk.Stop()
		for _, v := range chk.Violations() {
			t.Errorf("%s", chk.Report(v))
		}
		for _, e := range chk.Blind(500 * time.Millisecond) {
			t.Errorf("split-brain checker: %s", e)
		}
		t.Logf("%s", chk.Summary())
		if os.Getenv("VIGIL_LAB_TIMELINE") != "" {
			t.Logf("split-brain checker timeline:\n%s", chk.Timeline(time.Time{}, time.Now()))
		}
	})
	return chk
}

// Stop stops checking and closes the handles; it is idempotent.
func (c *Checker) Stop() {
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		for _, p := range c.probes {
			p.close()
		}
	})
}

// Violations returns the violations seen so far.
func (c *Checker) Violations() []Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Violation, 0, len(c.violations))
	for _, v := range c.violations {
		out = append(out, *v)
	}
	return out
}

// Blind lists hosts that could not be observed, while powered on, for
// longer than limit.
func (c *Checker) Blind(limit time.Duration) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.probes {
		if d := c.blind[p.h.Name()]; d > limit {
			out = append(out, fmt.Sprintf("host %s could not be observed for %v (last error: %s)", p.h.Name(), d.Round(time.Millisecond), p.lastErr))
		}
	}
	return out
}

// Now returns the last snapshot's view of host and group: whether the host
// effectively holds the VIP, whether the address is on it, and the pids of
// the service's live processes there.
func (c *Checker) Now(host, group string) (held, addr bool, pids []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.last[host].groups[group]
	for _, p := range g.copies {
		pids = append(pids, p.pid)
	}
	return g.held, g.addr, pids
}

// HeldFor returns how long host has been seen holding group's VIP, and
// running its service, in total.
func (c *Checker) HeldFor(host, group string) (vip, service time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[group][host], c.served[group][host]
}

// ExemptFor returns how long a copy of group's service was seen running on
// host while exempt (its agent stopped or just resumed).
func (c *Checker) ExemptFor(host, group string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exempted[group][host]
}

// Since formats t relative to the checker's start.
func (c *Checker) Since(t time.Time) string {
	return fmt.Sprintf("+%.3fs", t.Sub(c.started).Seconds())
}

// Timeline returns the marks between from and to, formatted one a line.
func (c *Checker) Timeline(from, to time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.marks {
		if m.At.Before(from) || m.At.After(to) {
			continue
		}
		where := m.Host
		if m.Group != "" {
			where += "/" + m.Group
		}
		fmt.Fprintf(&b, "  %s %s  %-8s %s\n", c.Since(m.At), m.At.Format("15:04:05.000"), where, m.What)
	}
	return b.String()
}

// Report describes a violation with the timeline around it.
func (c *Checker) Report(v Violation) string {
	what := "VIP"
	if v.Kind == "service" {
		what = "service"
	}
	return fmt.Sprintf("SPLIT BRAIN: group %s's %s held by %s at once, from %s to %s (%d snapshots, %v)\nfirst seen: %s\ntimeline:\n%s",
		v.Group, what, strings.Join(v.Hosts, " and "), c.Since(v.From), c.Since(v.To), v.Polls, v.To.Sub(v.From).Round(time.Millisecond),
		v.Detail, c.Timeline(v.From.Add(-3*time.Second), v.To.Add(time.Second)))
}

// Summary says what the checker observed: how often it looked and who held
// what for how long.
func (c *Checker) Summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	el := c.lastPoll.Sub(c.started)
	mean := time.Duration(0)
	if c.polls > 0 {
		mean = el / time.Duration(c.polls)
	}
	fmt.Fprintf(&b, "split-brain checker: %d snapshots over %v (every %v on average, longest gap %v, %v per snapshot), %d violations",
		c.polls, el.Round(time.Millisecond), mean.Round(100*time.Microsecond), c.maxGap.Round(time.Millisecond),
		(c.busy / time.Duration(max(c.polls, 1))).Round(10*time.Microsecond), len(c.violations))
	for _, w := range c.watches {
		fmt.Fprintf(&b, "\n  group %s (VIP %s):", w.Group, w.VIP)
		for _, p := range c.probes {
			n := p.h.Name()
			if d := c.held[w.Group][n]; d > 0 {
				fmt.Fprintf(&b, " %s held the VIP %v;", n, d.Round(time.Millisecond))
			}
			if d := c.served[w.Group][n]; d > 0 {
				fmt.Fprintf(&b, " %s ran the service %v;", n, d.Round(time.Millisecond))
			}
			if d := c.exempted[w.Group][n]; d > 0 {
				fmt.Fprintf(&b, " %s ran an exempt copy %v;", n, d.Round(time.Millisecond))
			}
		}
	}
	for _, u := range c.unconfirmed {
		fmt.Fprintf(&b, "\n  unconfirmed overlap (within one snapshot's sampling skew): %s", u)
	}
	return b.String()
}

func (c *Checker) run() {
	defer close(c.done)
	tick := time.NewTicker(c.opt.Interval)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			c.poll()
		}
	}
}

// candidate is an overlap seen in one snapshot.
type candidate struct {
	kind, group string
	hosts       []string
}

func (k candidate) key() string { return k.kind + "/" + k.group }

func (c *Checker) poll() {
	t0 := time.Now()
	snap := c.snapshot()
	cands := c.overlaps(snap)
	var confirmed []candidate
	if len(cands) > 0 {
		again := c.snapshot()
		still := map[string]candidate{}
		for _, k := range c.overlaps(again) {
			still[k.key()] = k
		}
		for _, k := range cands {
			k2, ok := still[k.key()]
			common := intersect(k.hosts, k2.hosts)
			if ok && len(common) >= 2 {
				k.hosts = common
				confirmed = append(confirmed, k)
			} else {
				c.mu.Lock()
				if len(c.unconfirmed) < 20 {
					c.unconfirmed = append(c.unconfirmed, fmt.Sprintf("%s of %s by %v at %s: %s", k.kind, k.group, k.hosts, c.Since(t0), describe(snap, k)))
				}
				c.mu.Unlock()
			}
		}
		snap = again
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lastPoll.IsZero() {
		gap := t0.Sub(c.lastPoll)
		c.maxGap = max(c.maxGap, gap)
		c.account(snap, gap)
	}
	c.polls++
	c.lastPoll = t0
	c.busy += now.Sub(t0)
	c.record(snap)
	seen := map[string]bool{}
	for _, k := range confirmed {
		seen[k.key()] = true
		if v := c.open[k.key()]; v != nil {
			v.To = t0
			v.Polls++
			for _, h := range k.hosts {
				if !contains(v.Hosts, h) {
					v.Hosts = append(v.Hosts, h)
				}
			}
			continue
		}
		v := &Violation{Group: k.group, Kind: k.kind, Hosts: k.hosts, From: t0, To: t0, Polls: 1, Detail: describe(snap, k)}
		c.open[k.key()] = v
		c.violations = append(c.violations, v)
	}
	for key := range c.open {
		if !seen[key] {
			delete(c.open, key)
		}
	}
}

// account adds the time since the previous snapshot to whoever held what in
// this one. Called with c.mu held.
func (c *Checker) account(snap map[string]hostSnap, gap time.Duration) {
	for host, hs := range snap {
		if hs.err != nil && !hs.off {
			continue
		}
		for g, gs := range hs.groups {
			if gs.held {
				c.held[g][host] += gap
			}
			if gs.active {
				c.served[g][host] += gap
			}
			if gs.exemptActive {
				c.exempted[g][host] += gap
			}
		}
	}
}

// overlaps lists the groups whose VIP or service two hosts hold in snap.
func (c *Checker) overlaps(snap map[string]hostSnap) []candidate {
	var out []candidate
	for _, w := range c.watches {
		var vip, svc []string
		for _, p := range c.probes {
			hs := snap[p.h.Name()]
			gs := hs.groups[w.Group]
			if gs.held {
				vip = append(vip, p.h.Name())
			}
			if gs.active {
				svc = append(svc, p.h.Name())
			}
		}
		if len(vip) >= 2 {
			out = append(out, candidate{"vip", w.Group, vip})
		}
		if len(svc) >= 2 {
			out = append(out, candidate{"service", w.Group, svc})
		}
	}
	return out
}

func describe(snap map[string]hostSnap, k candidate) string {
	var parts []string
	for _, h := range k.hosts {
		parts = append(parts, h+": "+snap[h].groups[k.group].String()+" (agent "+snap[h].agent+")")
	}
	return strings.Join(parts, "; ")
}

func (g groupSnap) String() string {
	var parts []string
	switch {
	case !g.addr:
		parts = append(parts, "VIP: no address")
	case g.held && !g.gated:
		parts = append(parts, "VIP: address UNGATED (not in @vips)")
	case g.held:
		parts = append(parts, fmt.Sprintf("VIP: held (lease %dms left)", g.leaseLeft.Milliseconds()))
	default:
		parts = append(parts, "VIP: address present, no lease (gated)")
	}
	if len(g.copies) == 0 {
		parts = append(parts, "service: none")
	} else {
		var ps []string
		for _, p := range g.copies {
			s := fmt.Sprintf("pid %d (%c)", p.pid, p.state)
			if p.exempt {
				s += " [exempt: its agent is not running, or resumed less than the grace ago]"
			}
			ps = append(ps, s)
		}
		parts = append(parts, "service: "+strings.Join(ps, ", "))
	}
	return strings.Join(parts, ", ")
}

// key is the state without the lease's remaining time, to detect changes.
func (g groupSnap) key() string {
	g.leaseLeft = 0
	return g.String()
}

// record appends a mark for every state that changed. Called with c.mu held.
func (c *Checker) record(snap map[string]hostSnap) {
	for _, p := range c.probes {
		n := p.h.Name()
		hs := snap[n]
		c.last[n] = hs
		var host string
		switch {
		case hs.off:
			host = "powered off"
		case hs.err != nil:
			host = "cannot observe: " + hs.err.Error()
		case hs.frozen:
			host = "frozen, agent " + hs.agent
		default:
			host = "agent " + hs.agent
		}
		c.mark(p, hs.at, "", host, host)
		if hs.off || hs.err != nil {
			continue
		}
		for _, w := range c.watches {
			gs := hs.groups[w.Group]
			c.mark(p, hs.at, w.Group, gs.key(), gs.String())
		}
	}
}

func (c *Checker) mark(p *probe, at time.Time, group, key, text string) {
	if p.marks[group] == key {
		return
	}
	p.marks[group] = key
	c.marks = append(c.marks, Mark{At: at, Host: p.h.Name(), Group: group, What: text})
}

// snapshot observes every host once.
func (c *Checker) snapshot() map[string]hostSnap {
	out := make(map[string]hostSnap, len(c.probes))
	inos := map[uint64]*probe{}
	for _, p := range c.probes {
		hs := hostSnap{at: time.Now()}
		if off, frozen, ok := p.h.PowerState(); ok {
			p.off, p.frozen = off, frozen
		}
		if p.off {
			hs.off = true
			p.close()
			p.failingSince = time.Time{}
			out[p.h.Name()] = hs
			continue
		}
		hs.frozen = p.frozen
		if err := p.ensure(); err != nil {
			hs.err = err
		} else {
			inos[p.ino] = p
		}
		out[p.h.Name()] = hs
	}
	procs := c.procs.scan(inos)
	for _, p := range c.probes {
		n := p.h.Name()
		hs := out[n]
		if hs.off {
			continue
		}
		if hs.err == nil {
			hs.at = time.Now()
			hs.groups, hs.err = c.observe(p, procs[p.ino], &hs)
		}
		if hs.err != nil {
			p.lastErr = hs.err.Error()
			if p.failingSince.IsZero() {
				p.failingSince = hs.at
			}
			c.mu.Lock()
			c.blind[n] = max(c.blind[n], hs.at.Sub(p.failingSince))
			c.mu.Unlock()
			// A namespace replaced under us (PowerOn) fails once; look again
			// with fresh handles next time.
			p.close()
		} else {
			p.failingSince = time.Time{}
		}
		out[n] = hs
	}
	return out
}

func (c *Checker) observe(p *probe, procs []proc, hs *hostSnap) (map[string]groupSnap, error) {
	hs.agent = "absent"
	for _, pr := range procs {
		if len(pr.argv) >= 2 && filepath.Base(pr.argv[0]) == "vigil" && pr.argv[1] == "agent" {
			switch pr.state {
			case 'T', 't':
				if hs.agent != "running" {
					hs.agent = "stopped"
				}
			case 'Z', 'X', 'x':
			default:
				hs.agent = "running"
			}
		}
	}
	running := hs.agent == "running"
	if !running {
		p.agentDownAt = hs.at
	}
	// Copies seen while the agent was not running are orphans: exempt
	// until the agent has run again for ResumeGrace.
	orphans := map[int]bool{}
	for _, pr := range procs {
		if p.orphans[pr.pid] || !running {
			orphans[pr.pid] = true
		}
	}
	p.orphans = orphans
	graceOver := hs.at.Sub(p.agentDownAt) > c.opt.ResumeGrace

	addrs, err := addrList(p.nl)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make(map[string]groupSnap, len(c.watches))
	for _, w := range c.watches {
		var gs groupSnap
		gs.addr = addrs[w.VIP]
		if gs.addr {
			gs.gated, _, err = element(p.nft, ip.SetVIPs, w.VIP)
			if err != nil {
				return nil, err
			}
			gs.leased, gs.leaseLeft, err = element(p.nft, ip.SetLeased, w.VIP)
			if err != nil {
				return nil, err
			}
			gs.held = !gs.gated || gs.leased
		}
		if w.Service != nil {
			for _, pr := range procs {
				if pr.state == 'Z' || pr.state == 'X' || pr.state == 'x' || !w.Service(pr.argv) {
					continue
				}
				exempt := !running || orphans[pr.pid] && !graceOver
				pr.exempt = exempt
				gs.copies = append(gs.copies, pr)
				if pr.state == 'T' || pr.state == 't' {
					continue
				}
				if exempt {
					gs.exemptActive = true
				} else {
					gs.active = true
				}
			}
		}
		out[w.Group] = gs
	}
	return out, nil
}

// ensure opens the namespace's handles, again if the namespace was replaced.
func (p *probe) ensure() error {
	var st syscall.Stat_t
	if err := syscall.Stat(p.nsPath, &st); err != nil {
		p.close()
		return fmt.Errorf("stat %s: %w", p.nsPath, err)
	}
	if p.nl != nil && p.ino == st.Ino {
		return nil
	}
	p.close()
	f, err := os.Open(p.nsPath)
	if err != nil {
		return fmt.Errorf("open %s: %w", p.nsPath, err)
	}
	defer f.Close()
	var fst syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &fst); err != nil {
		return fmt.Errorf("stat %s: %w", p.nsPath, err)
	}
	nl, err := netlink.NewHandleAt(netns.NsHandle(int(f.Fd())), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", p.nsPath, err)
	}
	if err := nl.SetSocketTimeout(2 * time.Second); err != nil {
		nl.Close()
		return fmt.Errorf("netlink timeout: %w", err)
	}
	nft, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())), nftables.AsLasting())
	if err != nil {
		nl.Close()
		return fmt.Errorf("nftables connection in %s: %w", p.nsPath, err)
	}
	p.nl, p.nft, p.ino = nl, nft, fst.Ino
	return nil
}

func (p *probe) close() {
	if p.nl != nil {
		p.nl.Close()
		p.nl = nil
	}
	if p.nft != nil {
		_ = p.nft.CloseLasting()
		p.nft = nil
	}
	p.ino = 0
}

func addrList(h *netlink.Handle) (map[netip.Addr]bool, error) {
	var addrs []netlink.Addr
	var err error
	for i := 0; i < 5; i++ {
		addrs, err = h.AddrList(nil, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	out := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out[ip.Unmap()] = true
		}
	}
	return out, nil
}

// element says whether vip is in the named set of the `ip vigil` table and,
// for a set with timeouts, how long it has left. An expired element, or a
// missing table or set, is not there.
func element(c *nftables.Conn, set string, vip netip.Addr) (bool, time.Duration, error) {
	s := &nftables.Set{Table: &nftables.Table{Name: ip.TableName, Family: nftables.TableFamilyIPv4}, Name: set}
	els, err := c.GetSetElements(s)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || strings.HasSuffix(err.Error(), unix.ENOENT.Error()) {
			return false, 0, nil
		}
		return false, 0, fmt.Errorf("list ip %s %s: %w", ip.TableName, set, err)
	}
	key := vip.AsSlice()
	for _, e := range els {
		if !bytes.Equal(e.Key, key) {
			continue
		}
		if e.Timeout > 0 && e.Expires <= 0 {
			return false, 0, nil
		}
		return true, e.Expires, nil
	}
	return false, 0, nil
}

// procScanner finds the processes of the lab namespaces in /proc.
type procScanner struct {
	self int
	// seen caches, for processes outside the lab, their namespace inode and
	// when it was read: a process changes namespace only by setns(2) (`ip
	// netns exec` does, just before it execs the agent or a command run by
	// hand), so rereading each of them every recheck rather than every
	// snapshot is enough, and it divides the cost of a scan by ten (0.8 ms
	// for 150 processes on a small VM otherwise). A process forked
	// inside a lab namespace (a service an agent starts) is seen in its
	// first snapshot, since new pids are always read.
	seen map[int]seenProc
}

type seenProc struct {
	ino uint64
	at  time.Time
}

// recheck is how often a process outside the lab is looked at again.
const recheck = 100 * time.Millisecond

// scan returns, per lab namespace inode, the processes in it.
func (s *procScanner) scan(inos map[uint64]*probe) map[uint64][]proc {
	out := map[uint64][]proc{}
	d, err := os.Open("/proc")
	if err != nil {
		return out
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	if s.seen == nil {
		s.seen = map[int]seenProc{}
	}
	now := time.Now()
	alive := make(map[int]bool, len(names))
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil || pid == s.self {
			continue
		}
		alive[pid] = true
		if sp, ok := s.seen[pid]; ok && inos[sp.ino] == nil && now.Sub(sp.at) < recheck {
			continue
		}
		base := "/proc/" + name
		link, err := os.Readlink(base + "/ns/net")
		if err != nil {
			continue
		}
		ino, ok := nsInode(link)
		if !ok {
			continue
		}
		s.seen[pid] = seenProc{ino: ino, at: now}
		if inos[ino] == nil {
			continue
		}
		cmd, err := os.ReadFile(base + "/cmdline")
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(base + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		out[ino] = append(out[ino], proc{pid: pid, argv: argv, state: stat[i+2]})
	}
	for pid := range s.seen {
		if !alive[pid] {
			delete(s.seen, pid)
		}
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].pid < ps[j].pid })
	}
	return out
}

// nsInode parses "net:[4026532265]".
func nsInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "net:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
