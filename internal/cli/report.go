package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/availability"
	"github.com/vigil-ha/vigil/internal/model"
)

func reportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "report", Short: "Reports computed from the replicated event log"}
	cmd.AddCommand(availabilityCmd(g))
	return cmd
}

// availabilityCmd computes the report on the client from the whole event log: the
// log is the source of truth every node has, and the computation is pure, so a
// server endpoint would add an API to maintain without adding information.
func availabilityCmd(g *globals) *cobra.Command {
	var since, until, group, node string
	var asJSON, asCSV bool
	cmd := &cobra.Command{
		Use:   "availability --since 30d [--until T] [--group G] [--json|--csv]",
		Short: "Per group: when it served nowhere, availability = (period − downtime) / period, against its SLA",
		Long: `Availability per group over a period, from the replicated event log (seed 004).

A group serves from its group_started report (on the node it is assigned to) until
that node reports it stopping, stopped, failed or restarting, is declared dead, or
loses its lease: the earliest report wins. Maintenance (on/off, and windows declared
with 'vigil maintenance --window') is excluded from the period and listed.
The period starts at --since, or when the log first names the group if later.

--since and --until take a duration back from now (30d, 12h, 90m) or a time
(2026-03-01, 2026-03-01T22:00, RFC 3339).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON && asCSV {
				return usagef("choose one of --json and --csv")
			}
			now := time.Now()
			from, err := parseWhen(since, now)
			if err != nil {
				return usagef("--since: %v", err)
			}
			to := now
			if until != "" {
				if to, err = parseWhen(until, now); err != nil {
					return usagef("--until: %v", err)
				}
			}
			if !to.After(from) {
				return usagef("--until (%s) must be after --since (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
			}
			c, cfg, err := g.connect(node)
			if err != nil {
				return err
			}
			defer c.Close()
			var targets []availability.Target
			for _, cg := range cfg.Groups {
				if group == "" || cg.Name == group {
					targets = append(targets, availability.Target{Group: cg.Name, SLA: cg.SLA})
				}
			}
			if group != "" && len(targets) == 0 {
				return usagef("--group %q is not a group of %s", group, cfg.Path)
			}
			if len(targets) == 0 {
				targets = []availability.Target{} // no groups configured: an empty report, not every group in the log
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			evs, err := c.AllEvents(ctx)
			if err != nil {
				return err
			}
			rep, err := availability.Compute(evs, availability.Options{Since: from, Until: to, Groups: targets})
			if err != nil {
				return usagef("%v", err)
			}
			switch {
			case asJSON:
				return g.printJSON(rep)
			case asCSV:
				return writeAvailabilityCSV(g.stdout, rep)
			}
			return writeAvailabilityTable(g.stdout, rep)
		},
	}
	cmd.Flags().StringVar(&since, "since", "30d", "start of the period: a duration back from now (30d) or a time")
	cmd.Flags().StringVar(&until, "until", "", "end of the period (default now)")
	cmd.Flags().StringVar(&group, "group", "", "only this group")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (durations in seconds)")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "print CSV, one line per group (durations in seconds)")
	cmd.Flags().StringVar(&node, "node", "", "ask this node")
	return cmd
}

func writeAvailabilityTable(w io.Writer, rep availability.Report) error {
	fmt.Fprintf(w, "period %s to %s\n", rep.Since.Local().Format("2006-01-02 15:04"), rep.Until.Local().Format("2006-01-02 15:04"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tPERIOD\tDOWNTIME\tAVAILABILITY\tSLA\tBUDGET LEFT\tINCIDENTS\tMAINTENANCE")
	for _, g := range rep.Groups {
		if g.NoData {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s%%\t-\t-\t-\n", g.Name, pct(g.SLA))
			continue
		}
		budget := humanDuration(g.BudgetLeft)
		if !g.Met {
			budget += " (SLA missed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s%%\t%s%%\t%s\t%d\t%s\n", g.Name, humanDuration(g.Period), humanDuration(g.Downtime),
			pct(g.Availability), pct(g.SLA), budget, len(g.Incidents), humanDuration(g.Maintenance))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, g := range rep.Groups {
		for _, in := range g.Incidents {
			span := "since " + in.Start.Local().Format("2006-01-02 15:04:05") + ", still down"
			if in.End != nil {
				span = in.Start.Local().Format("2006-01-02 15:04:05") + " to " + in.End.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(w, "  %s: down %s (%s counted): %s\n", g.Name, span, humanDuration(in.Downtime), in.Cause)
		}
		for _, win := range g.Windows {
			end := "still on"
			if win.End != nil {
				end = win.End.Local().Format("2006-01-02 15:04:05")
			}
			kind := "maintenance"
			if win.Declared {
				kind = "declared window"
			}
			fmt.Fprintf(w, "  %s: %s (%s) %s to %s (%s excluded): %s\n", g.Name, kind, win.Scope, win.Start.Local().Format("2006-01-02 15:04:05"),
				end, humanDuration(win.Excluded), win.Reason)
		}
	}
	return nil
}

func writeAvailabilityCSV(w io.Writer, rep availability.Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"group", "from", "until", "period_s", "downtime_s", "availability_percent", "sla_percent",
		"allowed_downtime_s", "budget_left_s", "sla_met", "incidents", "maintenance_s"})
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }
	for _, g := range rep.Groups {
		_ = cw.Write([]string{g.Name, g.From.UTC().Format(time.RFC3339), g.Until.UTC().Format(time.RFC3339), secs(g.Period),
			secs(g.Downtime), strconv.FormatFloat(g.Availability, 'f', 4, 64), strconv.FormatFloat(g.SLA, 'f', -1, 64),
			secs(g.Allowed), secs(g.BudgetLeft), strconv.FormatBool(g.Met), strconv.Itoa(len(g.Incidents)), secs(g.Maintenance)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// pct prints a percentage with the precision an SLA needs (99.995 is not 100).
func pct(v float64) string {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// humanDuration prints at most three units: 29d23h5m, 1m10s, 450ms.
func humanDuration(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	if d < time.Second {
		s = d.Round(time.Millisecond).String()
	} else {
		d = d.Round(time.Second)
		units := []struct {
			n    time.Duration
			name string
		}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
		type part struct {
			q    time.Duration
			name string
		}
		var parts []part
		for _, u := range units {
			q := d / u.n
			d -= q * u.n
			if (q > 0 || len(parts) > 0) && len(parts) < 3 {
				parts = append(parts, part{q, u.name})
			}
		}
		for len(parts) > 1 && parts[len(parts)-1].q == 0 {
			parts = parts[:len(parts)-1]
		}
		var b strings.Builder
		for _, p := range parts {
			fmt.Fprintf(&b, "%d%s", p.q, p.name)
		}
		s = b.String()
	}
	if neg {
		return "-" + s
	}
	return s
}

// parseWhen reads a duration back from now (with a d unit for days) or a time.
func parseWhen(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, fmt.Errorf("empty")
	}
	if v == "now" {
		return now, nil
	}
	if d, ok := parseDays(v); ok {
		return now.Add(-d), nil
	}
	return parseTime(v)
}

// parseDays accepts Go durations plus a day unit: 30d, 1d12h, 90m.
func parseDays(v string) (time.Duration, bool) {
	var days int
	rest := v
	if i := strings.IndexByte(v, 'd'); i > 0 {
		n, err := strconv.Atoi(v[:i])
		if err != nil || n < 0 || n > 100*366 {
			return 0, false
		}
		days, rest = n, v[i+1:]
	}
	d := time.Duration(days) * 24 * time.Hour
	if rest == "" {
		return d, days > 0
	}
	extra, err := time.ParseDuration(rest)
	if err != nil || extra < 0 {
		return 0, false
	}
	return d + extra, true
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: use a duration (30d, 12h) or a time (2026-03-01, 2026-03-01T22:00, RFC 3339)", v)
}

// parseWindow reads START/END, where END may also be a duration after START
// (2026-03-01T22:00/2h) and START may be "now".
func parseWindow(v string, now time.Time) (time.Time, time.Time, error) {
	a, b, ok := strings.Cut(v, "/")
	if !ok {
		return time.Time{}, time.Time{}, fmt.Errorf("%q: write START/END, e.g. 2026-03-01T22:00/2026-03-02T02:00 or 2026-03-01T22:00/4h", v)
	}
	start := now
	if strings.TrimSpace(a) != "now" {
		var err error
		if start, err = parseTime(strings.TrimSpace(a)); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("start: %w", err)
		}
	}
	if d, ok := parseDays(strings.TrimSpace(b)); ok {
		return start, start.Add(d), nil
	}
	end, err := parseTime(strings.TrimSpace(b))
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("end: %w", err)
	}
	return start, end, nil
}

// withWindow teaches the maintenance verb its planned form,
// `vigil maintenance --window START/END [GROUP] --reason R`, keeping on|off as is.
func withWindow(g *globals, maint *cobra.Command) *cobra.Command {
	var window string
	onOff, onOffArgs := maint.RunE, maint.Args
	maint.Use = "maintenance on|off [GROUP] | maintenance --window START/END [GROUP] --reason R"
	maint.Flags().StringVar(&window, "window", "", "declare planned maintenance START/END (excluded from availability reports; switches nothing off)")
	maint.Args = func(cmd *cobra.Command, args []string) error {
		if window != "" {
			return cobra.MaximumNArgs(1)(cmd, args)
		}
		return onOffArgs(cmd, args)
	}
	maint.RunE = func(cmd *cobra.Command, args []string) error {
		if window == "" {
			return onOff(cmd, args)
		}
		start, end, err := parseWindow(window, time.Now())
		if err != nil {
			return usagef("--window: %v", err)
		}
		reason, _ := cmd.Flags().GetString("reason")
		via, _ := cmd.Flags().GetString("via")
		w := model.MaintenanceWindow{Start: start, End: end, Reason: reason}
		if len(args) == 1 {
			w.Group = args[0]
		}
		c, _, err := g.connect(via)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
		defer cancel()
		ev, err := c.DeclareWindow(ctx, w)
		if err != nil {
			return err
		}
		scope := "the whole cluster"
		if ev.Group != "" {
			scope = "group " + ev.Group
		}
		fmt.Fprintf(g.stdout, "recorded %s for %s: %s to %s: %s\n", ev.Kind, scope, start.Local().Format("2006-01-02 15:04"),
			end.Local().Format("2006-01-02 15:04"), ev.Reason)
		return nil
	}
	return maint
}
