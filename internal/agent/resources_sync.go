package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/grouprun"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
	rsync "github.com/vigil-ha/vigil/internal/resource/sync"
)

func init() {
	resourceTypes["sync"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		// The targets are the nodes that could take the group over: they are the
		// ones that need the data.
		targets := r.To
		if len(targets) == 0 {
			targets = g.Nodes
		}
		var peers []rsync.Peer
		for _, name := range targets {
			if name == a.self.Name {
				continue
			}
			n, ok := a.cfg.Node(name)
			if !ok || len(n.Addresses) == 0 {
				return nil, fmt.Errorf("sync %s/%s: node %q has no address", g.Name, r.Name, name)
			}
			// The last address: by convention the heartbeat network (docs/config.md),
			// which keeps bulk copies off the public one.
			peers = append(peers, rsync.Peer{Name: name, Addr: n.Addresses[len(n.Addresses)-1]})
		}
		s, err := rsync.New(r, rsync.Options{Logger: a.log.With("group", g.Name, "resource", r.Name), Self: a.self.Name, Peers: peers})
		if err != nil {
			return nil, err
		}
		a.syncs.put(g.Name, r.Name, s)
		return &syncResource{Syncer: s, a: a, group: g.Name, name: r.Name}, nil
	}
}

// syncResource is the sync resource as the group runner sees it: the syncer,
// plus the record of the data-loss window when it starts on a takeover.
type syncResource struct {
	*rsync.Syncer
	a     *Agent
	group string
	name  string
}

// Start starts replicating from here. On a takeover (the group failed on another
// node) it first records how old this node's copy is: what the failed node wrote
// after the copy's stamp is lost, and the event says up to how much.
func (r *syncResource) Start(ctx context.Context) (resource.Output, error) {
	now := time.Now()
	copies := r.Copies()
	out, err := r.Syncer.Start(ctx)
	if err != nil || !r.a.isTakeover(r.group) {
		return out, err
	}
	ev := dataLossEvent(r.group, r.name, r.a.self.Name, copies, r.a.lastHeard(), now)
	r.a.emit(ev)
	return out, nil
}

// Stop ends replication from here with a final pass when the group moves away
// cleanly: the services before it in the group have stopped (resources stop in
// reverse order), so the pass carries their last writes to the targets before
// the group starts on one of them, whose passes would otherwise delete them.
// The final pass runs only while this node holds its lease, and is cut when the
// lease goes: without it, the group may start elsewhere and a pass from here
// would copy backwards over the new active node's writes. It gets at most three
// quarters of the stop timeout, and its failure (a dead target) does not fail
// the stop: the group must be able to leave a node whose peer is down.
func (r *syncResource) Stop(ctx context.Context) (resource.Output, error) {
	running := r.Active()
	out, err := r.Syncer.Stop(ctx)
	if err != nil || !running {
		return out, err
	}
	start := time.Now()
	out.Text += "; " + r.finalPass(ctx)
	out.Duration += time.Since(start)
	return out, nil
}

// leaseCheck is how often the final pass looks at the lease.
const leaseCheck = 100 * time.Millisecond

func (r *syncResource) finalPass(ctx context.Context) string {
	if !r.a.leaseHeld() {
		return "no final pass: this node's lease is lost, the group may start elsewhere"
	}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)*3/4))
		defer cancel()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lost := errors.New("lease lost")
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // cuts the pass when the lease goes; ends with it
		defer wg.Done()
		t := time.NewTicker(leaseCheck)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if !r.a.leaseHeld() {
					cancel(lost)
					return
				}
			}
		}
	}()
	err := r.Pass(ctx)
	close(done)
	wg.Wait()
	switch {
	case errors.Is(context.Cause(ctx), lost):
		return "final pass cut: this node's lease was lost during it"
	case err != nil:
		r.a.log.Warn("sync: final pass failed", "group", r.group, "resource", r.name, "err", err)
		return "final pass failed: " + err.Error()
	}
	return "final pass done: the targets have every write made here"
}

// leaseHeld says whether this node holds its lease now, as its membership view says.
func (a *Agent) leaseHeld() bool {
	v := a.view.Load()
	return v != nil && v.LeaseHeld && v.LeaseLeft > 0
}

// lastHeard is when each peer's last heartbeat arrived, as far as this node's
// membership view knows (to within one tick).
func (a *Agent) lastHeard() map[string]time.Time {
	v := a.view.Load()
	if v == nil {
		return nil
	}
	now := time.Now()
	heard := map[string]time.Time{}
	for _, p := range v.Peers {
		if p.SilentFor >= 0 {
			heard[p.Name] = now.Add(-p.SilentFor)
		}
	}
	return heard
}

// dataLossEvent describes, for a takeover at now, the copy of each path this
// node has: sent by which node, as of when, and so how much of that node's
// writes may be missing here. The window of a path runs from its stamp (the
// start of the last pass that reached this node) to the moment the sender was
// last heard from, or to now when that is unknown; the event reports the widest.
func dataLossEvent(group, res, self string, copies []rsync.Copy, heard map[string]time.Time, now time.Time) model.Event {
	ev := model.Event{Time: now, Kind: model.EventDataLossWindow, Severity: model.SeverityWarning,
		Reporter: self, Group: group, Resource: res}
	var lines []string
	var worst time.Duration
	worstText, missing := "", 0
	for _, c := range copies {
		if c.Err != nil {
			missing++
			if errors.Is(c.Err, os.ErrNotExist) {
				lines = append(lines, fmt.Sprintf("%s: no sync stamp: this copy was never written by a pass from another node; whatever the previous node had is not here", c.Path))
			} else {
				lines = append(lines, fmt.Sprintf("%s: %v", c.Path, c.Err))
			}
			continue
		}
		st := c.Stamp
		end, how := now, "now"
		if h, ok := heard[st.From]; ok {
			end, how = h, st.From+" was last heard"
		}
		window := max(end.Sub(st.Time), 0)
		line := fmt.Sprintf("%s: copy from %s as of %s, %s old at the takeover; %s at %s: up to %s of writes on %s are not here",
			c.Path, st.From, st.Time.UTC().Format("15:04:05.000Z"), now.Sub(st.Time).Round(time.Millisecond),
			how, end.UTC().Format("15:04:05.000Z"), window.Round(time.Millisecond), st.From)
		lines = append(lines, line)
		if worstText == "" || window > worst {
			worst, worstText, ev.Node = window, line, st.From
		}
	}
	switch {
	case worstText == "" && missing > 0:
		ev.Reason = fmt.Sprintf("takeover of %s on %s: %s has no replicated copy here (%d paths without a sync stamp)", group, self, res, missing)
	case missing > 0:
		ev.Reason = fmt.Sprintf("takeover of %s on %s: data-loss window up to %s (%s); %d more paths have no copy here",
			group, self, worst.Round(time.Millisecond), worstText, missing)
	default:
		ev.Reason = fmt.Sprintf("takeover of %s on %s: data-loss window up to %s (%s)", group, self, worst.Round(time.Millisecond), worstText)
	}
	ev.Output = strings.Join(lines, "\n")
	return ev
}

// syncRegistry holds the node's sync resources so that /metrics and the API can
// read their lag; the zero value is ready. A resource built again replaces the
// old entry.
type syncRegistry struct {
	mu sync.Mutex
	m  map[[2]string]*rsync.Syncer // guarded by mu
}

func (r *syncRegistry) put(group, res string, s *rsync.Syncer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[[2]string]*rsync.Syncer{}
	}
	r.m[[2]string{group, res}] = s
}

// each calls fn for every resource, sorted by group and resource.
func (r *syncRegistry) each(fn func(group, res string, s *rsync.Syncer)) {
	r.mu.Lock()
	keys := make([][2]string, 0, len(r.m))
	for k := range r.m {
		keys = append(keys, k)
	}
	ss := make([]*rsync.Syncer, 0, len(keys))
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		ss = append(ss, r.m[k])
	}
	r.mu.Unlock()
	for i, k := range keys {
		fn(k[0], k[1], ss[i])
	}
}

// LocalSync is the replication of the sync resources running here, per target
// (httpapi.Backend).
func (a *Agent) LocalSync() []model.SyncStatus {
	now := time.Now()
	out := []model.SyncStatus{}
	a.syncs.each(func(group, res string, s *rsync.Syncer) {
		for _, t := range s.Targets(now) {
			st := model.SyncStatus{Group: group, Resource: res, Source: a.self.Name, Target: t.Target,
				LagSeconds: t.Lag.Seconds(), Error: t.Err}
			if !t.LastPass.IsZero() {
				lp := t.LastPass.UTC()
				st.LastPass = &lp
			}
			out = append(out, st)
		}
	})
	return out
}

// syncAskTimeout bounds asking another node for its sync lag: `vigil groups`
// must answer even when that node is slow or just died.
const syncAskTimeout = 2 * time.Second

// addSync fills the sync lag of the groups that have sync resources, from this
// node's syncers or from the node running the group (one request per node, in
// parallel); a node that cannot be asked is named in SyncUnknown.
func (a *Agent) addSync(ctx context.Context, gs []model.GroupStatus) {
	withSync := map[string]bool{}
	for _, g := range a.cfg.Groups {
		for _, r := range g.Resources {
			if r.Type == "sync" {
				withSync[g.Name] = true
			}
		}
	}
	ask := map[string]bool{}
	for _, g := range gs {
		if withSync[g.Name] && g.Node != "" && g.Node != a.self.Name {
			ask[g.Node] = true
		}
	}
	type answer struct {
		ss  []model.SyncStatus
		err error
	}
	answers := map[string]answer{a.self.Name: {ss: a.LocalSync()}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(ctx, syncAskTimeout)
	defer cancel()
	for node := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ans answer
			c, err := a.peerClient(node)
			if err == nil {
				ans.ss, err = c.LocalSync(ctx)
			}
			ans.err = err
			mu.Lock()
			answers[node] = ans
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := range gs {
		g := &gs[i]
		if !withSync[g.Name] || g.Node == "" {
			continue
		}
		ans := answers[g.Node]
		if ans.err != nil {
			g.SyncUnknown = fmt.Sprintf("could not ask %s for its sync lag: %v", g.Node, ans.err)
			continue
		}
		for _, s := range ans.ss {
			if s.Group == g.Name {
				g.Sync = append(g.Sync, s)
			}
		}
		if len(g.Sync) == 0 {
			g.SyncUnknown = fmt.Sprintf("%s does not replicate this group now (starting, stopping, or no other node to copy to)", g.Node)
		}
	}
}

var syncLagDesc = prometheus.NewDesc("vigil_sync_lag_seconds",
	"Seconds since the start of the last sync pass that reached the target, for the sync resources running on this node: writes since then exist only here.",
	[]string{"group", "resource", "target"}, nil)

// syncLagCollector serves the lag of the sync resources that run here, per
// target; a standby reports none, since its copy's age is only known from the
// stamp at takeover.
type syncLagCollector struct{ a *Agent }

// Describe implements prometheus.Collector.
func (c syncLagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- syncLagDesc }

// Collect implements prometheus.Collector.
func (c syncLagCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.a.syncs.each(func(group, res string, s *rsync.Syncer) {
		for _, t := range s.Targets(now) {
			ch <- prometheus.MustNewConstMetric(syncLagDesc, prometheus.GaugeValue, t.Lag.Seconds(), group, res, t.Target)
		}
	})
}

// syncGuardKillWait bounds the wait for the killed receivers to be gone.
const syncGuardKillWait = 5 * time.Second

// installSyncGuard makes the runner hold each group's sync paths while the group
// runs here (rsync.Guard): before its first resource starts, the node refuses
// incoming copies into them and kills the receivers already writing there (an
// old active node's pass that outlived its lease, its agent frozen); after the
// group has stopped, copies from the node now running it are accepted again.
// Holds left by a previous run are dropped: a starting agent runs no group.
func (a *Agent) installSyncGuard(r *grouprun.Runner) error {
	paths := map[string][]string{}
	for _, g := range a.cfg.Groups {
		for _, res := range g.Resources {
			if res.Type == "sync" {
				paths[g.Name] = append(paths[g.Name], res.Paths...)
			}
		}
	}
	g := a.syncGuard()
	if err := g.ReleaseAll(); err != nil {
		return err
	}
	if len(paths) == 0 {
		return nil
	}
	r.SetHooks(grouprun.Hooks{
		Starting: func(ctx context.Context, group string) error {
			ps := paths[group]
			if len(ps) == 0 {
				return nil
			}
			if err := g.Hold(group, ps); err != nil {
				return err
			}
			killed, err := g.KillReceivers(ps, syncGuardKillWait)
			for _, k := range killed {
				a.log.Warn("sync guard: killed an incoming copy into a group starting here", "group", group,
					"pid", k.PID, "dest", k.Dest, "found", k.Why)
			}
			return err
		},
		Stopped: func(group string) {
			if len(paths[group]) == 0 {
				return
			}
			if err := g.Release(group); err != nil {
				a.log.Error("sync guard: incoming copies stay refused", "group", group, "err", err)
			}
		},
	})
	return nil
}

// unguardedCheck is how often a node looks for copies that reached it
// without the sync guard.
const unguardedCheck = time.Minute

// watchUnguarded warns, once per path and run, when copies reach this node
// without `vigil sync-guard` having checked them (docs/config.md shows the
// rsyncd.conf and authorized_keys lines): the agent cannot configure the
// receiving rsyncd or sshd itself, but it can see that they skip the check.
func (a *Agent) watchUnguarded(ctx context.Context) error {
	has := false
	a.syncs.each(func(string, string, *rsync.Syncer) { has = true })
	if !has {
		return nil
	}
	warned := map[string]bool{}
	t := time.NewTicker(unguardedCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, ev := range a.unguardedEvents(warned) {
			a.emit(ev)
		}
	}
}

// unguardedEvents returns a warning for each path of a sync resource that
// does not run here (so this node receives its copies) whose latest copy
// came in unchecked, skipping those in warned, which it updates.
func (a *Agent) unguardedEvents(warned map[string]bool) []model.Event {
	g := a.syncGuard()
	var evs []model.Event
	a.syncs.each(func(group, res string, s *rsync.Syncer) {
		if s.Active() {
			return // this node sends the copies; it does not receive them
		}
		for _, p := range g.Unguarded(s.Paths()) {
			key := group + "\x00" + res + "\x00" + p
			if warned[key] {
				continue
			}
			warned[key] = true
			evs = append(evs, model.Event{Kind: model.EventSyncUnguarded, Severity: model.SeverityWarning,
				Reporter: a.self.Name, Group: group, Resource: res,
				Reason: fmt.Sprintf("%s: a copy arrived here without vigil sync-guard checking it; while this node runs %s, "+
					"copies into it must be refused: add the guard to this node's rsyncd.conf (pre-xfer exec) or to the "+
					"agents' key in authorized_keys (command=), see docs/config.md", p, group)})
		}
	})
	return evs
}

// syncGuard is this node's guard, under its data directory (`vigil sync-guard
// --data-dir` reads the same).
func (a *Agent) syncGuard() rsync.Guard {
	return rsync.Guard{Dir: filepath.Join(a.opt.DataDir, rsync.GuardSubdir)}
}
