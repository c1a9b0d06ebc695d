package availability

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	sec = time.Second
	min = time.Minute
)

// Event builders for group "web" unless said otherwise.
func assigned(d time.Duration, node string) model.Event {
	return model.Event{Time: at(d), Kind: model.EventGroupAssigned, Reporter: "q", Node: node, Group: "web"}
}

func report(d time.Duration, kind model.EventKind, node string) model.Event {
	return model.Event{Time: at(d), Kind: kind, Reporter: node, Node: node, Group: "web", Reason: "test"}
}

func started(d time.Duration, node string) model.Event {
	return report(d, model.EventGroupStarted, node)
}

func dead(d time.Duration, node, by string) model.Event {
	return model.Event{Time: at(d), Kind: model.EventNodeDead, Reporter: by, Node: node, Reason: "silent"}
}

func leaseLost(d time.Duration, node string) model.Event {
	return model.Event{Time: at(d), Kind: model.EventLeaseLost, Reporter: node, Node: node, Reason: "no quorum"}
}

func maint(d time.Duration, on bool, group string) model.Event {
	k := model.EventMaintenanceOn
	if !on {
		k = model.EventMaintenanceOff
	}
	return model.Event{Time: at(d), Kind: k, Reporter: "a", Group: group, By: "operator", Reason: "patching"}
}

func declared(from, to time.Duration, group string) model.Event {
	s, e := at(from), at(to)
	return model.Event{Time: at(0), Kind: model.EventMaintenanceWindow, Reporter: "a", Group: group, WindowStart: &s, WindowEnd: &e, Reason: "planned"}
}

// running is the common prologue: web assigned to a and up from minute 1.
func running(more ...model.Event) []model.Event {
	return append([]model.Event{assigned(0, "a"), report(30*sec, model.EventGroupStarting, "a"), started(1*min, "a")}, more...)
}

type want struct {
	downtime    time.Duration
	maintenance time.Duration
	period      time.Duration
	incidents   int
	openEnd     bool // the last incident is still going on
	firstStart  time.Duration
	cause       string // substring of the first incident's cause
	noData      bool
}

func TestCompute(t *testing.T) {
	cases := []struct {
		name         string
		events       []model.Event
		since, until time.Duration
		want         want
	}{
		{
			name:   "no events in the period: fully available",
			events: running(),
			since:  10 * min, until: 120 * min,
			want: want{period: 110 * min},
		},
		{
			name:   "failover gap: node_dead to the new node's group_started",
			events: running(dead(60*min, "a", "b"), assigned(60*min+sec, "b"), report(60*min+2*sec, model.EventGroupStarting, "b"), started(61*min, "b")),
			since:  10 * min, until: 120 * min,
			want: want{downtime: 1 * min, period: 110 * min, incidents: 1, firstStart: 60 * min, cause: "node_dead: b reported a"},
		},
		{
			name:   "the first start after the group appears counts when the period begins before it",
			events: running(),
			since:  0, until: 100 * min,
			want: want{downtime: 1 * min, period: 100 * min, incidents: 1, firstStart: 0, cause: "not started yet"},
		},
		{
			name: "overlapping node_dead and lease_lost: the earliest wins, even committed last",
			events: running(dead(30*min, "a", "b"), dead(30*min+5*sec, "a", "c"), assigned(30*min+6*sec, "b"),
				started(31*min, "b"), leaseLost(29*min+50*sec, "a")),
			since: 10 * min, until: 60 * min,
			want: want{downtime: 70 * sec, period: 50 * min, incidents: 1, firstStart: 29*min + 50*sec, cause: "lease_lost on a"},
		},
		{
			name:   "lease_lost first, node_dead later: one incident from the lease loss",
			events: running(leaseLost(30*min, "a"), dead(30*min+3*sec, "a", "b"), assigned(30*min+4*sec, "b"), started(30*min+10*sec, "b")),
			since:  10 * min, until: 60 * min,
			want: want{downtime: 10 * sec, period: 50 * min, incidents: 1, firstStart: 30 * min},
		},
		{
			name:   "an observer's stale node_dead from before the tenure is ignored",
			events: running(dead(30*sec, "a", "b")),
			since:  10 * min, until: 60 * min,
			want: want{period: 50 * min},
		},
		{
			name:   "lease_lost of a node that does not hold the group changes nothing",
			events: running(leaseLost(30*min, "b"), dead(31*min, "b", "a")),
			since:  10 * min, until: 60 * min,
			want: want{period: 50 * min},
		},
		{
			name:   "group_started by a node the group is not assigned to does not count",
			events: running(report(20*min, model.EventGroupStopping, "a"), started(21*min, "b"), assigned(25*min, "b"), started(26*min, "b")),
			since:  10 * min, until: 60 * min,
			want: want{downtime: 6 * min, period: 50 * min, incidents: 1, firstStart: 20 * min, cause: "group_stopping on a"},
		},
		{
			name: "operator move: stop on a, start on b",
			events: running(report(20*min, model.EventGroupStopping, "a"), report(20*min+2*sec, model.EventGroupStopped, "a"),
				assigned(20*min+3*sec, "b"), started(20*min+8*sec, "b")),
			since: 10 * min, until: 60 * min,
			want: want{downtime: 8 * sec, period: 50 * min, incidents: 1, firstStart: 20 * min},
		},
		{
			name: "local restart after a monitor failure",
			events: running(report(20*min, model.EventGroupRestarting, "a"), report(20*min+1*sec, model.EventGroupStopping, "a"),
				report(20*min+2*sec, model.EventGroupStopped, "a"), report(20*min+3*sec, model.EventGroupStarting, "a"), started(20*min+5*sec, "a")),
			since: 10 * min, until: 60 * min,
			want: want{downtime: 5 * sec, period: 50 * min, incidents: 1, firstStart: 20 * min, cause: "group_restarting"},
		},
		{
			name:   "starting again without a stop report (agent restart) ends the tenure",
			events: running(report(20*min, model.EventGroupStarting, "a"), started(20*min+4*sec, "a")),
			since:  10 * min, until: 60 * min,
			want: want{downtime: 4 * sec, period: 50 * min, incidents: 1, firstStart: 20 * min},
		},
		{
			name:   "group maintenance overlapping downtime: only the part outside it counts",
			events: running(maint(20*min, true, "web"), report(25*min, model.EventGroupStopped, "a"), maint(35*min, false, "web"), started(40*min, "a")),
			since:  10 * min, until: 120 * min,
			want: want{downtime: 5 * min, maintenance: 15 * min, period: 95 * min, incidents: 1, firstStart: 25 * min},
		},
		{
			name:   "cluster-wide maintenance covering an outage entirely: no incident",
			events: running(maint(20*min, true, ""), report(25*min, model.EventGroupFailed, "a"), started(30*min, "a"), maint(35*min, false, "")),
			since:  10 * min, until: 120 * min,
			want: want{maintenance: 15 * min, period: 95 * min},
		},
		{
			name: "declared windows (group and cluster, overlapping) excluded once",
			events: running(declared(50*min, 70*min, "web"), declared(60*min, 80*min, ""), declared(90*min, 100*min, "mail"),
				report(75*min, model.EventGroupFailed, "a"), started(85*min, "a")),
			since: 10 * min, until: 120 * min,
			want: want{downtime: 5 * min, maintenance: 30 * min, period: 80 * min, incidents: 1, firstStart: 75 * min},
		},
		{
			name:   "maintenance still on at the end runs to the end",
			events: running(maint(100*min, true, "web")),
			since:  10 * min, until: 120 * min,
			want: want{maintenance: 20 * min, period: 90 * min},
		},
		{
			name:   "downtime that started before --since counts from --since",
			events: running(report(5*min, model.EventGroupStopping, "a"), started(15*min, "a")),
			since:  10 * min, until: 60 * min,
			want: want{downtime: 5 * min, period: 50 * min, incidents: 1, firstStart: 5 * min},
		},
		{
			name:   "still down at the end of the period",
			events: running(report(100*min, model.EventGroupFailed, "a")),
			since:  10 * min, until: 120 * min,
			want: want{downtime: 20 * min, period: 110 * min, incidents: 1, openEnd: true, firstStart: 100 * min, cause: "group_failed on a"},
		},
		{
			name:   "down at --until but up again later in the log: the incident has an end",
			events: running(report(100*min, model.EventGroupFailed, "a"), started(130*min, "a")),
			since:  10 * min, until: 120 * min,
			want: want{downtime: 20 * min, period: 110 * min, incidents: 1, firstStart: 100 * min},
		},
		{
			name:   "assigned but never started in the period: 100 % down",
			events: []model.Event{assigned(0, "a"), report(30*sec, model.EventGroupStartFailed, "a")},
			since:  10 * min, until: 70 * min,
			want: want{downtime: 60 * min, period: 60 * min, incidents: 1, openEnd: true, firstStart: 0},
		},
		{
			name:   "group first named after --since: accounted from its first event",
			events: []model.Event{dead(0, "x", "a"), assigned(30*min, "a"), started(31*min, "a")},
			since:  10 * min, until: 60 * min,
			want: want{downtime: 1 * min, period: 30 * min, incidents: 1, firstStart: 30 * min},
		},
		{
			name:   "group only named after --until: no data",
			events: []model.Event{dead(0, "x", "a"), assigned(90*min, "a")},
			since:  10 * min, until: 60 * min,
			want: want{noData: true},
		},
		{
			name: "two overlapping outages of two holders: one gap",
			events: running(assigned(20*min, "b"), started(21*min, "b"), report(30*min, model.EventGroupStopping, "a"),
				dead(40*min, "b", "a"), assigned(40*min, "a"), started(42*min, "a")),
			since: 10 * min, until: 60 * min,
			want: want{downtime: 2 * min, period: 50 * min, incidents: 1, firstStart: 40 * min},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Compute(tc.events, Options{Since: at(tc.since), Until: at(tc.until), Groups: []Target{{Group: "web"}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Groups) != 1 {
				t.Fatalf("groups: %+v", rep.Groups)
			}
			g := rep.Groups[0]
			if g.NoData != tc.want.noData {
				t.Fatalf("no data %v, want %v", g.NoData, tc.want.noData)
			}
			if tc.want.noData {
				return
			}
			if g.Downtime != tc.want.downtime || g.Maintenance != tc.want.maintenance || g.Period != tc.want.period {
				t.Errorf("downtime %v maintenance %v period %v; want %v %v %v", g.Downtime, g.Maintenance, g.Period,
					tc.want.downtime, tc.want.maintenance, tc.want.period)
			}
			if len(g.Incidents) != tc.want.incidents {
				t.Fatalf("incidents %+v, want %d", g.Incidents, tc.want.incidents)
			}
			if wantAv := float64(tc.want.period-tc.want.downtime) / float64(tc.want.period) * 100; math.Abs(g.Availability-wantAv) > 1e-9 {
				t.Errorf("availability %v, want %v", g.Availability, wantAv)
			}
			if g.SLA != DefaultSLA || g.Allowed != time.Duration(float64(g.Period)*0.005) || g.BudgetLeft != g.Allowed-g.Downtime ||
				g.Met != (g.Downtime <= g.Allowed) {
				t.Errorf("SLA %v allowed %v left %v met %v", g.SLA, g.Allowed, g.BudgetLeft, g.Met)
			}
			if tc.want.incidents == 0 {
				return
			}
			first, last := g.Incidents[0], g.Incidents[len(g.Incidents)-1]
			if !first.Start.Equal(at(tc.want.firstStart)) {
				t.Errorf("first incident starts at %v, want +%v", first.Start.Sub(t0), tc.want.firstStart)
			}
			if (last.End == nil) != tc.want.openEnd {
				t.Errorf("last incident end %v, want open %v", last.End, tc.want.openEnd)
			}
			if !strings.Contains(first.Cause, tc.want.cause) {
				t.Errorf("cause %q, want it to contain %q", first.Cause, tc.want.cause)
			}
		})
	}
}

func TestSLABudget(t *testing.T) {
	// 100 minutes at 99.5 % allow 30 s; a 45 s outage breaks the SLA by 15 s.
	evs := running(report(20*min, model.EventGroupFailed, "a"), started(20*min+45*sec, "a"))
	rep, err := Compute(evs, Options{Since: at(10 * min), Until: at(110 * min), Groups: []Target{{Group: "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	g := rep.Groups[0]
	if g.Allowed != 30*sec || g.BudgetLeft != -15*sec || g.Met {
		t.Fatalf("allowed %v left %v met %v", g.Allowed, g.BudgetLeft, g.Met)
	}
	rep, _ = Compute(evs, Options{Since: at(10 * min), Until: at(110 * min), Groups: []Target{{Group: "web", SLA: 99}}})
	if g := rep.Groups[0]; g.Allowed != time.Minute || g.BudgetLeft != 15*sec || !g.Met || g.SLA != 99 {
		t.Fatalf("SLA 99: allowed %v left %v met %v", g.Allowed, g.BudgetLeft, g.Met)
	}
}

func TestGroupsNeverNamedAndEmptyLog(t *testing.T) {
	rep, err := Compute(running(), Options{Since: at(10 * min), Until: at(20 * min), Groups: []Target{{Group: "web"}, {Group: "mail"}}})
	if err != nil {
		t.Fatal(err)
	}
	mail := rep.Groups[1]
	if mail.Name != "mail" || mail.Downtime != 10*min || mail.Availability != 0 || len(mail.Incidents) != 1 ||
		!strings.Contains(mail.Incidents[0].Cause, "never placed") {
		t.Fatalf("never-placed group: %+v", mail)
	}
	rep, err = Compute(nil, Options{Since: at(0), Until: at(time.Hour), Groups: []Target{{Group: "web"}}})
	if err != nil || !rep.Groups[0].NoData || rep.Groups[0].Availability != 100 {
		t.Fatalf("empty log: %+v %v", rep, err)
	}
	// Without targets, every group the log names is reported, in name order.
	evs := append(running(), model.Event{Time: at(0), Kind: model.EventGroupAssigned, Node: "b", Group: "db"})
	rep, _ = Compute(evs, Options{Since: at(0), Until: at(time.Hour)})
	if len(rep.Groups) != 2 || rep.Groups[0].Name != "db" || rep.Groups[1].Name != "web" {
		t.Fatalf("groups from the log: %+v", rep.Groups)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Compute(nil, Options{Since: at(time.Hour), Until: at(0)}); err == nil {
		t.Error("until before since accepted")
	}
	if _, err := Compute(nil, Options{Since: at(0), Until: at(time.Hour), Groups: []Target{{Group: "web", SLA: 150}}}); err == nil {
		t.Error("SLA 150 % accepted")
	}
	// Malformed windows and events with odd fields are ignored, not fatal.
	s := at(10 * min)
	evs := running(model.Event{Kind: model.EventMaintenanceWindow, WindowStart: &s}, model.Event{Kind: model.EventGroupStopped},
		model.Event{Kind: model.EventMaintenanceOff, Group: "web"}, model.Event{Kind: model.EventNodeDead})
	if _, err := Compute(evs, Options{Since: at(0), Until: at(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func TestJSONUsesSeconds(t *testing.T) {
	evs := running(report(20*min, model.EventGroupFailed, "a"), started(20*min+45*sec, "a"), declared(30*min, 40*min, ""))
	rep, err := Compute(evs, Options{Since: at(10 * min), Until: at(110 * min), Groups: []Target{{Group: "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Groups []struct {
			Group       string  `json:"group"`
			Downtime    float64 `json:"downtime_s"`
			Maintenance float64 `json:"maintenance_s"`
			Budget      float64 `json:"budget_left_s"`
			Incidents   []struct {
				Downtime float64 `json:"downtime_s"`
				Cause    string  `json:"cause"`
			} `json:"incidents"`
			Windows []struct {
				Excluded float64 `json:"excluded_s"`
				Declared bool    `json:"declared"`
			} `json:"maintenance_windows"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	g := back.Groups[0]
	if g.Group != "web" || g.Downtime != 45 || g.Maintenance != 600 || len(g.Incidents) != 1 || g.Incidents[0].Downtime != 45 ||
		len(g.Windows) != 1 || g.Windows[0].Excluded != 600 || !g.Windows[0].Declared {
		t.Fatalf("JSON: %s", data)
	}
}

func TestRepeatedDeclarationListedOnce(t *testing.T) {
	evs := running(declared(30*min, 40*min, "web"), declared(30*min, 40*min, "web"), declared(30*min, 40*min, ""))
	rep, err := Compute(evs, Options{Since: at(10 * min), Until: at(60 * min), Groups: []Target{{Group: "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	if g := rep.Groups[0]; len(g.Windows) != 2 || g.Maintenance != 10*min {
		t.Fatalf("windows %+v maintenance %v", g.Windows, g.Maintenance)
	}
}
