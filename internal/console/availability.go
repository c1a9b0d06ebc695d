package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-ha/vigil/internal/availability"
	"github.com/vigil-ha/vigil/internal/model"
)

// availabilityDays is the period of the console's availability page.
const availabilityDays = 30

// eventsPage is the page size when the console reads the whole log.
const eventsPage = 10000

type availabilityData struct {
	Since, Until time.Time
	Days         int
	Groups       []availabilityGroup
}

type availabilityGroup struct {
	availability.Group
	Level     string // green: SLA met with budget left; yellow: met, budget nearly gone; red: missed
	Budget    string
	Allowed   string
	Downtime  string
	BudgetPct float64 // share of the allowed downtime still left, 0..100
	Bars      []dayBar
	Chart     chart
}

// dayBar is one day of the downtime chart (inline SVG, no script).
type dayBar struct {
	Day      string
	Downtime string
	X, Y, H  float64
}

type chart struct {
	W, H, BarW float64
	Max        string
}

// availabilityPage computes the report of the last 30 days from the replicated
// event log, read through the API like every other page.
func (c *Console) availabilityPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v := c.baseView(r, s, "Availability", "availability")
	_, gs, err := c.cluster(ctx, s, v)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	evs, err := c.allEvents(ctx, s.token)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	until := c.now()
	since := until.Add(-availabilityDays * 24 * time.Hour)
	targets := []availability.Target{}
	for _, g := range gs {
		targets = append(targets, availability.Target{Group: g.Name, SLA: c.sla[g.Name]})
	}
	rep, err := availability.Compute(evs, availability.Options{Since: since, Until: until, Groups: targets})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := availabilityData{Since: since, Until: until, Days: availabilityDays}
	for _, g := range rep.Groups {
		d.Groups = append(d.Groups, viewGroup(g, since, until))
	}
	v.Data = d
	c.render(w, r, http.StatusOK, "availability", v)
}

// allEvents reads the whole log page by page.
func (c *Console) allEvents(ctx context.Context, token string) ([]model.Event, error) {
	var all []model.Event
	var after uint64
	for {
		var page []model.Event
		if err := c.call(ctx, token, http.MethodGet, "/v1/events?limit="+strconv.Itoa(eventsPage)+"&after="+strconv.FormatUint(after, 10), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < eventsPage || page[len(page)-1].Index <= after {
			return all, nil
		}
		after = page[len(page)-1].Index
	}
}

func viewGroup(g availability.Group, since, until time.Time) availabilityGroup {
	v := availabilityGroup{Group: g, Budget: span(g.BudgetLeft), Allowed: span(g.Allowed), Downtime: span(g.Downtime)}
	if g.Allowed > 0 {
		v.BudgetPct = 100 * float64(g.BudgetLeft) / float64(g.Allowed)
	}
	switch {
	case !g.Met:
		v.Level = "red"
	case g.Allowed > 0 && g.BudgetLeft < g.Allowed/4:
		v.Level = "yellow"
	default:
		v.Level = "green"
	}
	per := downtimePerDay(g.Incidents, since, until)
	v.Chart = chart{W: 600, H: 80, BarW: 600/float64(len(per)) - 2}
	var most time.Duration
	for _, d := range per {
		most = max(most, d)
	}
	v.Chart.Max = span(most)
	day := since
	for i, d := range per {
		b := dayBar{Day: day.UTC().Format("2006-01-02"), Downtime: span(d), X: float64(i) * 600 / float64(len(per))}
		if most > 0 && d > 0 {
			b.H = max(2, v.Chart.H*float64(d)/float64(most))
		}
		b.Y = v.Chart.H - b.H
		v.Bars = append(v.Bars, b)
		day = day.Add(24 * time.Hour)
	}
	return v
}

// downtimePerDay spreads each incident over the 24-hour days from since (an
// open incident lasts until until).
func downtimePerDay(incs []availability.Incident, since, until time.Time) []time.Duration {
	days := int((until.Sub(since) + 24*time.Hour - 1) / (24 * time.Hour))
	out := make([]time.Duration, max(days, 1))
	for _, in := range incs {
		end := until
		if in.End != nil && in.End.Before(until) {
			end = *in.End
		}
		start := in.Start
		if start.Before(since) {
			start = since
		}
		for i := range out {
			ds := since.Add(time.Duration(i) * 24 * time.Hour)
			de := ds.Add(24 * time.Hour)
			if s, e := later(start, ds), earlier(end, de); e.After(s) {
				out[i] += e.Sub(s)
			}
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// span writes a duration for people: 0, 42s, 3m20s, 2h05m, 1d03h.
func span(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours()/24), int(d.Hours())%24)
}
