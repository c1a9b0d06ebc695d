package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/labcluster"
	"github.com/vigil-ha/vigil/internal/model"
)

// Config describes one lab run: a cluster of real agents in network
// namespaces (internal/labcluster), a client in a namespace of its own,
// the 10 ms split-brain poll, and the nemesis.
type Config struct {
	// Tag names the lab's kernel objects; PublicSubnet and HeartbeatSubnet
	// are its two /24 networks.
	Tag                           string
	PublicSubnet, HeartbeatSubnet string
	// Size is 3 (a, b and witness w) or 5 (a, b, c, d and witness w).
	Size int
	Seed uint64
	// Duration is how long faults are injected, from the first one; at
	// least MinTrials are run whatever it says, at most MaxTrials (0: no
	// limit).
	Duration             time.Duration
	MinTrials, MaxTrials int
	Timing               labcluster.Timing
	// HealBound is how long after healing every group must have exactly
	// one holder again; default 30s.
	HealBound time.Duration
	// ClientWindow, see CheckOptions; default 200ms.
	ClientWindow time.Duration
	// Kinds to inject; AllKinds if empty.
	Kinds []Kind
	// Tolerate lists violation kinds that Report logs instead of failing
	// the test (the CI run tolerates ServiceOverlap, a documented limit
	// that the long runs count).
	Tolerate []string
	// OutDir receives chaos-<size>n-<seed>.json and .svg (and the whole
	// history as -history.json when something was found); "" writes
	// nothing.
	OutDir string
}

// Outcome is what a run found.
type Outcome struct {
	History    *History
	Violations []Violation
	Result     Result
	Files      []string
}

const (
	clientHost = "client"
	// tmpfsSize is each node's state directory: room for the raft log
	// (8 MiB segments) and snapshots of a lab cluster, small enough to fill
	// in a moment.
	tmpfsSize = "64m"
	fillName  = "chaos-fill"
)

type runner struct {
	t       testing.TB
	cfg     Config
	c       *labcluster.Cluster
	chk     *labcluster.Checker
	groups  []labcluster.WebGroup
	clients map[string]*labcluster.Client
	t0      time.Time
	rng     *rand.Rand // for choices that do not change the faults (which node to read)
	hist    *History
	opSeq   int

	seen    map[uint64]Event
	seenMax uint64

	hmu  sync.Mutex // guards open and hist.Holding while the sampler runs
	open map[[2]string]time.Duration
}

func (r *runner) since() time.Duration { return time.Since(r.t0) }

// Run runs the chaos harness and returns what it recorded and found. It
// fails the test only when the lab cannot be built or driven; the caller
// decides what to do with the violations (see Report).
func Run(t testing.TB, cfg Config) Outcome {
	t.Helper()
	if cfg.HealBound <= 0 {
		cfg.HealBound = 30 * time.Second
	}
	if cfg.ClientWindow <= 0 {
		// A long run (seed 5511, 5 nodes) saw mail go d -> c -> d, each
		// handover clean, in 0.6 s: two handovers and a short tenure can
		// fit in a second, not in 200 ms.
		cfg.ClientWindow = 200 * time.Millisecond
	}
	r := &runner{t: t, cfg: cfg, clients: map[string]*labcluster.Client{}, seen: map[uint64]Event{},
		open: map[[2]string]time.Duration{}, rng: rand.New(rand.NewPCG(cfg.Seed, 1))}
	specs, runners := clusterNodes(cfg.Size)
	if specs == nil {
		t.Fatalf("chaos: size %d: want 3 or 5", cfg.Size)
	}
	r.c = labcluster.New(t, labcluster.Options{Tag: cfg.Tag, PublicSubnet: cfg.PublicSubnet, HeartbeatSubnet: cfg.HeartbeatSubnet,
		Nodes: specs, Timing: cfg.Timing, Clients: []string{clientHost}})
	r.mountStateDirs()
	vipBase := strings.TrimSuffix(strings.Split(cfg.PublicSubnet, "/")[0], ".0")
	r.groups = []labcluster.WebGroup{{Name: "web", Nodes: runners, VIP: vipBase + ".100/24", Port: 8080}}
	if cfg.Size >= 5 {
		other := append(slices.Clone(runners[2:]), runners[:2]...)
		r.groups = append(r.groups, labcluster.WebGroup{Name: "mail", Nodes: other, VIP: vipBase + ".101/24", Port: 8081})
	}
	r.c.AddGroups(r.groups...)
	var watches []labcluster.Watch
	groups := map[string][]string{}
	for _, g := range r.groups {
		watches = append(watches, g.Watch())
		groups[g.Name] = g.Nodes
	}
	chk, err := labcluster.NewChecker(r.c.Lab, r.c.Names(), watches, labcluster.CheckerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.chk = chk
	t.Cleanup(chk.Stop) // before the lab closes: cleanups run last first
	r.c.StartAll()
	r.c.WaitHealthy(90 * time.Second)
	if _, err := r.settle(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatalf("chaos: the groups never started: %v", err)
	}
	r.t0 = time.Now()
	r.hist = &History{Seed: cfg.Seed, Nodes: r.c.Names(), Groups: groups, Deadtime: r.c.Timing.Deadtime}
	for _, g := range r.groups {
		r.clients[g.Name] = r.c.StartClient(clientHost, g.Addr())
	}
	ctx, stopSampler := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		r.sample(ctx)
	}()
	defer func() {
		stopSampler()
		<-sampled
	}()

	sched, err := NewSchedule(Plan{Seed: cfg.Seed, Nodes: r.c.Names(), Runners: runners, Groups: groups,
		Networks: []string{labcluster.Public, labcluster.Heartbeat}, Kinds: cfg.Kinds, Deadtime: r.c.Timing.Deadtime, OpChance: 60})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos: seed %d, %d nodes %v, groups %v, timing %+v; faults for %v (at least %d trials)",
		cfg.Seed, cfg.Size, r.c.Names(), groups, r.c.Timing, cfg.Duration, cfg.MinTrials)
	for n := 0; ; n++ {
		if cfg.MaxTrials > 0 && n >= cfg.MaxTrials || n >= cfg.MinTrials && r.since() >= cfg.Duration {
			break
		}
		r.trial(sched.Next())
	}
	r.readEvents(r.c.Names()[0])
	r.final()
	for _, cl := range r.clients {
		cl.Stop()
	}
	stopSampler()
	<-sampled
	chk.Stop()
	r.hist.End = r.since()
	r.collect()
	out := Outcome{History: r.hist}
	out.Violations = Check(r.hist, CheckOptions{ClientWindow: cfg.ClientWindow, HealBound: cfg.HealBound})
	out.Result = Summarise(r.hist, out.Violations)
	out.Files = r.write(out)
	t.Logf("chaos: %s", chk.Summary())
	return out
}

// clusterNodes returns the node specs and the nodes that run groups.
func clusterNodes(size int) ([]labcluster.NodeSpec, []string) {
	var runners []string
	switch size {
	case 3:
		runners = []string{"a", "b"}
	case 5:
		runners = []string{"a", "b", "c", "d"}
	default:
		return nil, nil
	}
	var specs []labcluster.NodeSpec
	for _, n := range runners {
		specs = append(specs, labcluster.NodeSpec{Name: n})
	}
	return append(specs, labcluster.NodeSpec{Name: "w", Witness: true}), runners
}

// mountStateDirs gives every node a small tmpfs as its data dir, from the
// start, so that DiskFull can fill it.
func (r *runner) mountStateDirs() {
	for _, name := range r.c.Names() {
		dir := r.c.Node(name).DataDir
		if err := os.MkdirAll(dir, 0o700); err != nil {
			r.t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+tmpfsSize+",mode=0700", "vigil-chaos-"+r.cfg.Tag, dir).CombinedOutput(); err != nil {
			r.t.Fatalf("chaos: mount a tmpfs on %s's data dir %s: %v: %s", name, dir, err, bytes.TrimSpace(out))
		}
		r.t.Cleanup(func() {
			// Lazy: the agent may still have files open; the tmpfs goes
			// when it exits.
			if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
				r.t.Errorf("chaos: umount %s: %v: %s", dir, err, bytes.TrimSpace(out))
			}
		})
	}
}

// sample records who holds which VIP, as the checker's last snapshot
// shows, every 20 ms, as spans for the picture and the history.
func (r *runner) sample(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.hmu.Lock()
			for k, from := range r.open {
				r.hist.Holding = append(r.hist.Holding, Span{Group: k[0], Node: k[1], From: from, To: r.since()})
			}
			clear(r.open)
			r.hmu.Unlock()
			return
		case <-tick.C:
		}
		now := r.since()
		r.hmu.Lock()
		for _, g := range r.groups {
			for _, n := range r.c.Names() {
				held, _, _ := r.chk.Now(n, g.Name)
				k := [2]string{g.Name, n}
				from, open := r.open[k]
				switch {
				case held && !open:
					r.open[k] = now
				case !held && open:
					r.hist.Holding = append(r.hist.Holding, Span{Group: g.Name, Node: n, From: from, To: now})
					delete(r.open, k)
				}
			}
		}
		r.hmu.Unlock()
	}
}

// holder is the node the checker last saw holding the group's VIP, or "".
func (r *runner) holder(group string) string {
	for _, n := range r.c.Names() {
		if held, _, _ := r.chk.Now(n, group); held {
			return n
		}
	}
	return ""
}

func (r *runner) trial(f Fault) {
	r.t.Helper()
	if f.OnHolder {
		f = f.AimAt(r.holder(f.Group))
	}
	tr := Trial{Fault: f, Start: r.since()}
	r.t.Logf("chaos %s: %s", stamp(tr.Start), f)
	var opWG sync.WaitGroup
	var ops []Op
	if f.Op != nil {
		opWG.Add(1)
		go func() {
			defer opWG.Done()
			time.Sleep(f.Op.After)
			ops = r.operate(f.Trial, *f.Op)
		}()
	}
	undo, err := r.inject(f)
	if err != nil {
		tr.Notes = append(tr.Notes, "inject: "+err.Error())
	}
	time.Sleep(f.Hold)
	if undo != nil {
		if err := undo(); err != nil {
			tr.Notes = append(tr.Notes, "heal: "+err.Error())
		}
	}
	if err := r.c.Lab.Heal(); err != nil {
		r.t.Fatalf("chaos: heal: %v", err)
	}
	tr.Healed = r.since()
	opWG.Wait()
	r.hist.Ops = append(r.hist.Ops, ops...)
	for _, op := range ops {
		if !op.Acked {
			tr.Notes = append(tr.Notes, fmt.Sprintf("op %s via %s at %s not acknowledged: %s", op.Kind, op.Via, stamp(op.At), op.Err))
		}
	}
	for _, name := range r.c.Names() {
		if !r.c.Running(name) {
			if tr.Exited == nil {
				tr.Exited = map[string]string{}
			}
			tr.Exited[name] = tail(r.c.Log(name), 12)
			r.c.Restart(name)
		}
	}
	// Failure flags keep a group off a node until an operator clears them
	// (a cut public cable fails the VIP's monitor and flags its holder), so
	// after a few trials every node of a group may be flagged and the group
	// rightly has no holder. The runner clears them after healing, as the
	// operator would after the repair.
	for _, g := range r.groups {
		ops = r.operate(f.Trial, OpPlan{Kind: OpFlagsClear + "_after_heal", Group: g.Name, Via: r.c.Names()[r.rng.IntN(len(r.c.Names()))]})
		r.hist.Ops = append(r.hist.Ops, ops...)
	}
	holders, err := r.settle(r.t0.Add(tr.Healed + r.cfg.HealBound))
	if err != nil {
		tr.SettleErr = err.Error()
		r.t.Logf("chaos %s: trial %d did not settle: %v", stamp(r.since()), f.Trial, err)
	} else {
		tr.Settled = r.since()
		tr.Holders = holders
	}
	healthWait := 90 * time.Second
	if len(tr.Exited) > 0 {
		healthWait = 10 * time.Second // a crashing agent will not make it healthy
	}
	if _, err := labcluster.Poll(healthWait, r.healthy); err != nil {
		tr.Notes = append(tr.Notes, "cluster not healthy 90s after healing: "+err.Error())
	}
	r.readEvents(r.c.Names()[r.rng.IntN(len(r.c.Names()))])
	for _, n := range tr.Notes {
		r.t.Logf("chaos: trial %d: %s", f.Trial, n)
	}
	r.hist.Trials = append(r.hist.Trials, tr)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// inject starts the fault and returns what undoes it beyond Lab.Heal.
func (r *runner) inject(f Fault) (func() error, error) {
	node := f.Nodes[0]
	lab := r.c.Lab
	switch f.Kind {
	case Kill:
		r.c.Kill(node)
		return func() error { r.c.Restart(node); return nil }, nil
	case Stop:
		if !r.c.Running(node) {
			return nil, fmt.Errorf("%s's agent is not running", node)
		}
		r.c.StopAgent(node)
		return func() error {
			if !r.c.Running(node) {
				return fmt.Errorf("%s's agent exited while stopped", node)
			}
			r.c.ContAgent(node)
			return nil
		}, nil
	case Freeze:
		h := r.c.Node(node).Host
		return h.Thaw, h.Freeze()
	case CutHeartbeat:
		return nil, lab.CutLink(node, labcluster.Heartbeat)
	case CutPublic:
		return nil, lab.CutLink(node, labcluster.Public)
	case Partition, OneWay:
		return nil, lab.Partition(f.Nodes, f.Others, f.Kind == OneWay)
	case Loss:
		return nil, lab.Degrade(node, f.Network, f.Percent)
	case Delay:
		return nil, lab.Delay(node, f.Network, f.Latency)
	case DiskFull:
		path := filepath.Join(r.c.Node(node).DataDir, fillName)
		return func() error { return os.Remove(path) }, fill(path)
	}
	return nil, fmt.Errorf("unknown fault kind %q", f.Kind)
}

// fill writes path until the file system is full.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return fmt.Errorf("fill %s: %w", path, err)
		}
	}
}

// operate issues the operator action and records whether the API
// acknowledged it. Maintenance is switched off again at once; the "off"
// is retried until acknowledged, so that no group stays frozen.
func (r *runner) operate(trial int, p OpPlan) []Op {
	one := func(kind, event string, args ...string) Op {
		r.opSeq++
		op := Op{Trial: trial, Kind: kind, EventKind: event, Group: p.Group, Node: p.Node, Via: p.Via,
			Reason: fmt.Sprintf("chaos seed %d trial %d op %d", r.cfg.Seed, trial, r.opSeq), At: r.since()}
		args = append(args, "--reason", op.Reason, "--via", p.Via)
		out, err := r.c.Vigil(context.Background(), p.Via, args...)
		op.Done = r.since()
		switch {
		case err != nil:
			op.Err = err.Error()
		case !bytes.Contains(out, []byte("recorded "+event)):
			op.Err = "unexpected answer: " + string(bytes.TrimSpace(out))
		default:
			op.Acked = true
		}
		return op
	}
	switch p.Kind {
	case OpMove:
		return []Op{one(p.Kind, string(model.EventMoveRequested), "move", p.Group, p.Node)}
	case OpFailback:
		return []Op{one(p.Kind, string(model.EventFailbackAuthorised), "failback", p.Group)}
	case OpFlagsClear:
		return []Op{one(p.Kind, string(model.EventFlagCleared), "flags", "clear", p.Group)}
	case OpFlagsClear + "_after_heal":
		// Retried until acknowledged: the cluster may still be re-forming.
		var ops []Op
		for deadline := time.Now().Add(r.cfg.HealBound); ; {
			op := one(p.Kind, string(model.EventFlagCleared), "flags", "clear", p.Group)
			ops = append(ops, op)
			if op.Acked || time.Now().After(deadline) {
				return ops
			}
			time.Sleep(500 * time.Millisecond)
		}
	case OpMaintenance:
		on := one(p.Kind+"_on", string(model.EventMaintenanceOn), "maintenance", "on", p.Group)
		ops := []Op{on}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			// Even an unacknowledged "on" may have been recorded.
			off := one(p.Kind+"_off", string(model.EventMaintenanceOff), "maintenance", "off", p.Group)
			ops = append(ops, off)
			if off.Acked || time.Now().After(deadline) {
				return ops
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return nil
}

// settle waits until every group has exactly one holder: one node holds
// the VIP (address and live lease) and runs the service, no other node
// holds the VIP or runs a copy, and the client got an answer from that
// node; twice in a row, 300 ms apart. It returns the holders, or why not
// by the deadline.
func (r *runner) settle(deadline time.Time) (map[string]string, error) {
	var lastErr error
	var agreed map[string]string
	var agreedAt time.Time
	from := time.Now()
	for {
		holders, err := r.holders(from)
		switch {
		case err != nil:
			agreed = nil
		case agreed == nil || !maps(agreed, holders):
			agreed, agreedAt = holders, time.Now()
		case time.Since(agreedAt) >= 300*time.Millisecond:
			return holders, nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			if lastErr == nil {
				lastErr = errors.New("holders kept changing")
			}
			return nil, lastErr
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// holders is one look at every group: its single holder, or why not.
func (r *runner) holders(clientSince time.Time) (map[string]string, error) {
	out := map[string]string{}
	var problems []string
	for _, g := range r.groups {
		var holding, copies []string
		for _, n := range r.c.Names() {
			held, addr, pids := r.chk.Now(n, g.Name)
			if held && len(pids) > 0 {
				holding = append(holding, n)
			} else if held || addr || len(pids) > 0 {
				copies = append(copies, fmt.Sprintf("%s (VIP held %v, address %v, service pids %v)", n, held, addr, pids))
			}
		}
		switch {
		case len(holding) != 1:
			problems = append(problems, fmt.Sprintf("group %s: %d nodes hold the VIP and run the service %v; partial copies: %v", g.Name, len(holding), holding, copies))
			continue
		case len(copies) > 0:
			problems = append(problems, fmt.Sprintf("group %s: held by %s, but copies left on %v", g.Name, holding[0], copies))
			continue
		}
		out[g.Name] = holding[0]
		if cl := r.clients[g.Name]; cl != nil {
			if _, ok := cl.FirstFrom(holding[0], clientSince); !ok {
				problems = append(problems, fmt.Sprintf("group %s: held by %s, but the client got no answer from it since healing (%s)", g.Name, holding[0], cl.Describe(clientSince, time.Now())))
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// healthy says why the cluster is not fully formed as every node sees it.
func (r *runner) healthy() error {
	for _, n := range r.c.Names() {
		st, err := r.c.Status(n)
		if err != nil {
			return err
		}
		if err := labcluster.Healthy(st, r.c.Names()); err != nil {
			return err
		}
	}
	return nil
}

// readEvents reads node's log past what any node served so far and keeps
// every entry as seen (committed); an index served before is kept again
// only if it differs, for LostEvents.
func (r *runner) readEvents(node string) {
	// The recent past is where a lost or rewritten entry would show; the
	// final logs are compared with everything at the end.
	after := uint64(0)
	if r.seenMax > 500 {
		after = r.seenMax - 500
	}
	evs, err := r.eventsAfter(node, after)
	if err != nil {
		r.t.Logf("chaos: read %s's events: %v", node, err)
		return
	}
	at := r.since()
	for _, ev := range evs {
		prev, ok := r.seen[ev.Index]
		if ok && prev == ev {
			continue
		}
		if !ok {
			r.seen[ev.Index] = ev
		}
		r.seenMax = max(r.seenMax, ev.Index)
		r.hist.Seen = append(r.hist.Seen, Seen{Event: ev, Observer: node, At: at})
	}
}

// eventsAfter is the node's own log after index after, digested.
func (r *runner) eventsAfter(node string, after uint64) ([]Event, error) {
	evs, err := r.c.EventsAfter(node, after)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(evs))
	for i, ev := range evs {
		out[i] = digest(ev)
	}
	return out, nil
}

func digest(ev model.Event) Event {
	return Event{Index: ev.Index, Kind: string(ev.Kind), Reporter: ev.Reporter, Node: ev.Node, Group: ev.Group, Reason: ev.Reason,
		Time: ev.Time.UTC().Format(time.RFC3339Nano)}
}

// final reads every node's whole log once it holds everything seen.
func (r *runner) final() {
	r.hist.Final = map[string][]Event{}
	for _, n := range r.c.Names() {
		if !r.c.Running(n) {
			// Crashed (an agent_exit violation already): its log cannot be
			// read through it, and an empty one would read as all lost.
			r.t.Logf("chaos: final log of %s: its agent is not running; not compared", n)
			continue
		}
		var evs []Event
		_, err := labcluster.Poll(60*time.Second, func() error {
			var err error
			evs, err = r.eventsAfter(n, 0)
			if err != nil {
				return err
			}
			if len(evs) == 0 || evs[len(evs)-1].Index < r.seenMax {
				return fmt.Errorf("%s's log ends at %d of %d events", n, len(evs), r.seenMax)
			}
			return nil
		})
		if err != nil {
			r.t.Logf("chaos: final log of %s: %v", n, err)
		}
		r.hist.Final[n] = evs
	}
}

// collect moves the clients' samples and the poll's violations into the
// history.
func (r *runner) collect() {
	for _, g := range r.groups {
		for _, s := range r.clients[g.Name].Samples() {
			r.hist.Answers = append(r.hist.Answers, Answer{Group: g.Name, Start: s.Start.Sub(r.t0), End: s.End.Sub(r.t0), Node: s.Node, Err: s.Err})
		}
	}
	for _, v := range r.chk.Violations() {
		kind := SplitBrainPoll
		if v.Kind == "service" {
			kind = ServiceOverlap
		}
		r.hist.Poll = append(r.hist.Poll, Violation{Kind: kind, Group: v.Group, At: v.From.Sub(r.t0), To: v.To.Sub(r.t0),
			Nodes: v.Hosts, Detail: r.chk.Report(v)})
	}
}

func (r *runner) write(o Outcome) []string {
	if r.cfg.OutDir == "" {
		return nil
	}
	if err := os.MkdirAll(r.cfg.OutDir, 0o755); err != nil {
		r.t.Errorf("chaos: %v", err)
		return nil
	}
	base := filepath.Join(r.cfg.OutDir, fmt.Sprintf("chaos-%dn-%d", r.cfg.Size, r.cfg.Seed))
	var files []string
	put := func(path string, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			r.t.Errorf("chaos: %v", err)
			return
		}
		files = append(files, path)
	}
	res, _ := json.MarshalIndent(o.Result, "", "  ")
	put(base+".json", append(res, '\n'))
	put(base+".svg", SVG(o.History, o.Violations))
	if len(o.Violations) > 0 {
		hist, _ := json.Marshal(o.History)
		put(base+"-history.json", hist)
	}
	return files
}

// Report fails the test once per violation, with the seed, how to replay
// it, and the history around it.
func Report(t testing.TB, cfg Config, o Outcome) {
	t.Helper()
	for _, v := range o.Violations {
		from, to := v.At-5*time.Second, max(v.To, v.At)+3*time.Second
		report := t.Errorf
		what := "chaos violation"
		if slices.Contains(cfg.Tolerate, v.Kind) {
			report = t.Logf
			what = "chaos finding (tolerated in this run: a known limit, counted in the results)"
		}
		report("%s, seed %d (replay: make chaos SEED=%d NODES=%d DURATION=%v):\n%s\nhistory around it:\n%s",
			what, cfg.Seed, cfg.Seed, cfg.Size, o.History.End.Round(time.Second), v, o.History.Around(from, to))
	}
}
