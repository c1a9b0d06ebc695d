package availability

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// DefaultSLA is seed 004's contractual target in percent; config.DefaultSLA has the
// same value, repeated so that this package depends on the event model only.
const DefaultSLA = 99.5

// Target names a group to report and the availability it promises.
type Target struct {
	Group string
	// SLA in percent; zero means DefaultSLA.
	SLA float64
}

// Options select the reporting period and the groups.
type Options struct {
	Since, Until time.Time
	// Groups to report, in this order; nil reports every group the log names, at DefaultSLA.
	Groups []Target
}

// Report is the availability of each group over one period.
type Report struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Groups []Group   `json:"groups"`
}

// Group is one group's account. Durations are time.Duration in Go and seconds in JSON.
type Group struct {
	Name string `json:"group"`
	// From is where this group's account starts: Since, or later when the log first
	// names the group after Since (a group is not blamed for time it did not exist).
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// NoData: the account is empty (the group appears only after Until, or the log is empty).
	NoData bool `json:"no_data,omitempty"`
	// Period is Until − From less Maintenance: the time the SLA applies to.
	Period      time.Duration `json:"-"`
	Maintenance time.Duration `json:"-"`
	Downtime    time.Duration `json:"-"`
	// Availability = (Period − Downtime) / Period, in percent; 100 when Period is zero.
	Availability float64 `json:"availability_percent"`
	SLA          float64 `json:"sla_percent"`
	// Allowed is the downtime the SLA permits over Period; BudgetLeft = Allowed − Downtime (negative when broken).
	Allowed    time.Duration `json:"-"`
	BudgetLeft time.Duration `json:"-"`
	Met        bool          `json:"sla_met"`
	Incidents  []Incident    `json:"incidents"`
	Windows    []Window      `json:"maintenance_windows"`
}

// Incident is one stretch of time when the group served nowhere.
type Incident struct {
	Start time.Time `json:"start"`
	// End is nil while the group is still down at the end of the log.
	End *time.Time `json:"end,omitempty"`
	// Downtime is the part inside the period and outside maintenance.
	Downtime time.Duration `json:"-"`
	Cause    string        `json:"cause"`
}

// Window is maintenance that the account excludes.
type Window struct {
	Start time.Time `json:"start"`
	// End is nil while maintenance is still on at the end of the log.
	End *time.Time `json:"end,omitempty"`
	// Scope is "group" or "cluster".
	Scope string `json:"scope"`
	// Declared: planned ahead with `vigil maintenance --window`, rather than maintenance on/off.
	Declared bool   `json:"declared"`
	Reason   string `json:"reason,omitempty"`
	By       string `json:"by,omitempty"`
	// Excluded is the window's overlap with the period (overlapping windows are counted once in Group.Maintenance).
	Excluded time.Duration `json:"-"`
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// MarshalJSON writes durations as seconds.
func (g Group) MarshalJSON() ([]byte, error) {
	type plain Group
	return json.Marshal(struct {
		plain
		Period      float64 `json:"period_s"`
		Maintenance float64 `json:"maintenance_s"`
		Downtime    float64 `json:"downtime_s"`
		Allowed     float64 `json:"allowed_downtime_s"`
		BudgetLeft  float64 `json:"budget_left_s"`
	}{plain(g), seconds(g.Period), seconds(g.Maintenance), seconds(g.Downtime), seconds(g.Allowed), seconds(g.BudgetLeft)})
}

// MarshalJSON writes the downtime as seconds.
func (i Incident) MarshalJSON() ([]byte, error) {
	type plain Incident
	return json.Marshal(struct {
		plain
		Downtime float64 `json:"downtime_s"`
	}{plain(i), seconds(i.Downtime)})
}

// MarshalJSON writes the excluded time as seconds.
func (w Window) MarshalJSON() ([]byte, error) {
	type plain Window
	return json.Marshal(struct {
		plain
		Excluded float64 `json:"excluded_s"`
	}{plain(w), seconds(w.Excluded)})
}

// tenure is one node serving the group, from its group_started report until the
// first sign that it stopped.
type tenure struct {
	node       string
	start, end time.Time
	open       bool
	cause      string
}

type window struct {
	Window
	open bool
}

type tracker struct {
	seen     bool
	first    time.Time
	assigned string
	latest   map[string]*tenure // node -> its newest tenure
	tenures  []*tenure
	maintOn  *window // group maintenance switched on and not yet off
	windows  []*window
}

// Compute builds the report from the event log, in log (index) order. Times are
// the reporters' clocks; the order decides which node holds a group.
func Compute(events []model.Event, opt Options) (Report, error) {
	if !opt.Until.After(opt.Since) {
		return Report{}, fmt.Errorf("the period is empty: until (%s) must be after since (%s)", opt.Until.Format(time.RFC3339), opt.Since.Format(time.RFC3339))
	}
	for _, t := range opt.Groups {
		if t.SLA < 0 || t.SLA > 100 {
			return Report{}, fmt.Errorf("group %s: SLA %v%% is not a percentage", t.Group, t.SLA)
		}
	}
	s := newScan()
	for _, ev := range events {
		s.apply(ev)
	}
	horizon := later(opt.Until, s.lastTime)
	rep := Report{Since: opt.Since, Until: opt.Until}
	targets := opt.Groups
	if targets == nil {
		for name := range s.groups {
			targets = append(targets, Target{Group: name})
		}
		sort.Slice(targets, func(i, j int) bool { return targets[i].Group < targets[j].Group })
	}
	for _, t := range targets {
		rep.Groups = append(rep.Groups, s.account(t, opt, horizon))
	}
	return rep, nil
}

type scan struct {
	groups    map[string]*tracker
	clusterOn *window
	cluster   []*window
	logStart  time.Time
	lastTime  time.Time
	any       bool
}

func newScan() *scan { return &scan{groups: map[string]*tracker{}} }

func (s *scan) group(name string) *tracker {
	t, ok := s.groups[name]
	if !ok {
		t = &tracker{latest: map[string]*tenure{}}
		s.groups[name] = t
	}
	return t
}

func (s *scan) apply(ev model.Event) {
	if !s.any || ev.Time.Before(s.logStart) {
		s.logStart = ev.Time
	}
	if !s.any || ev.Time.After(s.lastTime) {
		s.lastTime = ev.Time
	}
	s.any = true
	switch ev.Kind {
	case model.EventMaintenanceWindow:
		s.declared(ev)
		return
	case model.EventMaintenanceOn, model.EventMaintenanceOff:
		if ev.Group == "" {
			s.clusterOn = switchMaintenance(ev, s.clusterOn, &s.cluster, "cluster")
			return
		}
	case model.EventNodeDead, model.EventNodeFenced:
		if ev.Node != "" && ev.Node != ev.Reporter {
			s.nodeDown(ev.Node, ev, false, fmt.Sprintf("%s: %s reported %s: %s", ev.Kind, ev.Reporter, ev.Node, ev.Reason))
		}
		return
	case model.EventLeaseLost, model.EventLeaseRegained:
		// Only a node's own word about its own lease: a holder that regains a lease
		// it was never seen losing (an agent restart) stopped serving in between.
		if node := ev.Reporter; ev.Node == "" || ev.Node == node {
			s.nodeDown(node, ev, true, fmt.Sprintf("%s on %s: %s", ev.Kind, node, ev.Reason))
		}
		return
	}
	if ev.Group == "" {
		return
	}
	t := s.group(ev.Group)
	if !t.seen {
		t.seen, t.first = true, ev.Time
	}
	switch ev.Kind {
	case model.EventGroupAssigned:
		t.assigned = ev.Node
	case model.EventGroupStarted:
		if ev.Reporter == t.assigned {
			if cur := t.latest[ev.Reporter]; cur == nil || !cur.open {
				nt := &tenure{node: ev.Reporter, start: ev.Time, open: true}
				t.latest[ev.Reporter] = nt
				t.tenures = append(t.tenures, nt)
			}
		}
	case model.EventGroupStarting, model.EventGroupStopping, model.EventGroupStopped, model.EventGroupStopFailed,
		model.EventGroupFailed, model.EventGroupStartFailed, model.EventGroupRestarting:
		// group_starting while serving means the node started over without a stop report.
		t.down(ev.Reporter, ev.Time, true, fmt.Sprintf("%s on %s: %s", ev.Kind, ev.Reporter, ev.Reason))
	case model.EventMaintenanceOn, model.EventMaintenanceOff:
		t.maintOn = switchMaintenance(ev, t.maintOn, &t.windows, "group")
	}
}

func (s *scan) nodeDown(node string, ev model.Event, self bool, cause string) {
	for _, t := range s.groups {
		t.down(node, ev.Time, self, cause)
	}
}

// down ends node's tenure at the given time. Several events may report the same
// end (the holder's lease_lost, each observer's node_dead): the earliest wins,
// even when it commits after the tenure was closed by a later-timed one.
func (t *tracker) down(node string, at time.Time, self bool, cause string) {
	cur := t.latest[node]
	if cur == nil {
		return
	}
	if cur.open {
		if at.Before(cur.start) {
			if !self {
				return // an observer's stale news from before this tenure began
			}
			at = cur.start // the node's own later report with a skewed clock
		}
		cur.end, cur.open, cur.cause = at, false, cause
		return
	}
	if !at.Before(cur.start) && at.Before(cur.end) {
		cur.end, cur.cause = at, cause
	}
}

func switchMaintenance(ev model.Event, on *window, list *[]*window, scope string) *window {
	if ev.Kind == model.EventMaintenanceOn {
		if on != nil {
			return on // already on: the first switch-on starts the window
		}
		w := &window{Window: Window{Start: ev.Time, Scope: scope, Reason: ev.Reason, By: ev.By}, open: true}
		*list = append(*list, w)
		return w
	}
	if on != nil {
		end := later(ev.Time, on.Start)
		on.End, on.open = &end, false
	}
	return nil
}

func (s *scan) declared(ev model.Event) {
	if ev.WindowStart == nil || ev.WindowEnd == nil || !ev.WindowEnd.After(*ev.WindowStart) {
		return // malformed: the API refuses these, so only a foreign writer could add one
	}
	end := *ev.WindowEnd
	w := &window{Window: Window{Start: *ev.WindowStart, End: &end, Declared: true, Reason: ev.Reason, By: ev.By, Scope: "cluster"}}
	if ev.Group == "" {
		s.cluster = appendWindow(s.cluster, w)
		return
	}
	w.Scope = "group"
	t := s.group(ev.Group)
	t.windows = appendWindow(t.windows, w)
}

// appendWindow adds w unless the same window was already declared: an operator
// (or a client) retrying after an ambiguous failure must not list it twice.
func appendWindow(list []*window, w *window) []*window {
	for _, o := range list {
		if o.Declared && o.Start.Equal(w.Start) && o.End.Equal(*w.End) && o.Reason == w.Reason {
			return list
		}
	}
	return append(list, w)
}

func (w *window) span(horizon time.Time) span {
	if w.open || w.End == nil {
		return span{start: w.Start, end: later(horizon, w.Start)}
	}
	return span{start: w.Start, end: *w.End}
}

// account turns one group's tenures and windows into its report line.
func (s *scan) account(target Target, opt Options, horizon time.Time) Group {
	sla := target.SLA
	if sla == 0 {
		sla = DefaultSLA
	}
	g := Group{Name: target.Group, Until: opt.Until, SLA: sla, Availability: 100, Met: true,
		Incidents: []Incident{}, Windows: []Window{}}
	t := s.groups[target.Group]
	if t == nil {
		t = &tracker{}
	}
	// A configured group the log never names was never placed: down since the log began.
	first, neverPlaced := t.first, !t.seen
	if neverPlaced {
		if !s.any {
			g.From, g.NoData = opt.Since, true
			return g
		}
		first = s.logStart
	}
	g.From = later(opt.Since, first)
	if !g.From.Before(opt.Until) {
		g.NoData = true
		return g
	}
	period := span{start: g.From, end: opt.Until}

	var maint []span
	for _, w := range append(append([]*window{}, t.windows...), s.cluster...) {
		sp := w.span(horizon)
		maint = append(maint, sp)
		if in := clip([]span{sp}, period); len(in) > 0 {
			out := w.Window
			if w.open {
				out.End = nil
			}
			out.Excluded = total(in)
			g.Windows = append(g.Windows, out)
		}
	}
	sort.SliceStable(g.Windows, func(i, j int) bool { return g.Windows[i].Start.Before(g.Windows[j].Start) })
	maint = clip(union(maint), period)
	g.Maintenance = total(maint)
	g.Period = period.len() - g.Maintenance

	var up []span
	for _, tn := range t.tenures {
		end := tn.end
		if tn.open {
			end = horizon
		}
		up = append(up, span{start: tn.start, end: end})
	}
	life := span{start: first, end: horizon}
	for _, d := range minus(life, union(up)) {
		in := clip([]span{d}, period)
		if len(in) == 0 {
			continue
		}
		lost := total(minus(in[0], maint))
		if lost <= 0 {
			continue
		}
		inc := Incident{Start: d.start, Downtime: lost, Cause: causeOf(t, d.start, first, neverPlaced)}
		if restarted(t, d.end) {
			end := d.end
			inc.End = &end
		}
		g.Incidents = append(g.Incidents, inc)
		g.Downtime += lost
	}
	if g.Period > 0 {
		g.Availability = float64(g.Period-g.Downtime) / float64(g.Period) * 100
	}
	g.Allowed = time.Duration(float64(g.Period) * (100 - sla) / 100)
	g.BudgetLeft = g.Allowed - g.Downtime
	g.Met = g.Downtime <= g.Allowed
	return g
}

// restarted says whether a tenure began at the given time (the end of an outage,
// rather than the end of the log).
func restarted(t *tracker, at time.Time) bool {
	for _, tn := range t.tenures {
		if tn.start.Equal(at) {
			return true
		}
	}
	return false
}

func causeOf(t *tracker, start, first time.Time, neverPlaced bool) string {
	var found *tenure
	for _, tn := range t.tenures {
		if !tn.open && tn.end.Equal(start) {
			found = tn
		}
	}
	switch {
	case found != nil:
		return found.cause
	case neverPlaced:
		return "never placed: no event in the log names this group"
	case start.Equal(first):
		return "not started yet"
	}
	return "unknown"
}
