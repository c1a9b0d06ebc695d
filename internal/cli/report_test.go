package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/grouprun"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/testcluster"
)

// fakeService is a resource that only remembers whether it was started.
type fakeService struct{ up atomic.Bool }

func (f *fakeService) Start(context.Context) (resource.Output, error) {
	f.up.Store(true)
	return resource.Output{}, nil
}

func (f *fakeService) Stop(context.Context) (resource.Output, error) {
	f.up.Store(false)
	return resource.Output{}, nil
}

func (f *fakeService) Monitor(context.Context) (resource.State, resource.Output, error) {
	if f.up.Load() {
		return resource.Running, resource.Output{}, nil
	}
	return resource.Stopped, resource.Output{}, nil
}

func TestReportAvailabilitySmoke(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{
		Nodes:  []string{"a", "b", "q-w"},
		Timing: "{keepalive: 50ms, warntime: 250ms, deadtime: 500ms, initdead: 3s}",
		Groups: "  - name: web\n    nodes: [a, b]\n    sla: 99.9\n    resources:\n      - {name: www, type: process, command: [/bin/true]}\n",
		Factory: func(string) grouprun.Factory {
			return func(config.Group, config.Resource) (resource.Agent, error) { return &fakeService{}, nil }
		},
	})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	cfgPath := filepath.Join(c.Dir, "vigil.yaml")
	c.WaitFor("web running", 20*time.Second, func() bool {
		code, out, _ := run(t, "--config", cfgPath, "groups")
		return code == ExitOK && strings.Contains(out, "running")
	})

	var code int
	var out, errs string
	c.WaitFor("a coordinator to record the window", 10*time.Second, func() bool {
		code, out, errs = run(t, "--config", cfgPath, "maintenance", "--window", "now/2h", "web", "--reason", "disk swap")
		return !strings.Contains(errs, "HTTP 503") // no coordinator yet
	})
	if code != ExitOK || !strings.Contains(out, "maintenance_window for group web") {
		t.Fatalf("maintenance --window: %d %q %q", code, out, errs)
	}
	if code, _, errs = run(t, "--config", cfgPath, "maintenance", "--window", "2020-01-01T00:00/1h", "--reason", "late"); code != ExitFailed ||
		!strings.Contains(errs, "field start") {
		t.Fatalf("backdated window: %d %q", code, errs)
	}
	if code, _, _ = run(t, "--config", cfgPath, "maintenance", "--window", "tomorrow"); code != ExitUsage {
		t.Fatalf("bad window: exit %d", code)
	}

	var rep struct {
		Groups []struct {
			Group        string  `json:"group"`
			Availability float64 `json:"availability_percent"`
			SLA          float64 `json:"sla_percent"`
			Period       float64 `json:"period_s"`
			Windows      []struct {
				Reason string `json:"reason"`
			} `json:"maintenance_windows"`
		} `json:"groups"`
	}
	// The CLI may ask a follower that has not applied the window yet: ask until it has.
	c.WaitFor("the declared window in the report", 10*time.Second, func() bool {
		code, out, errs = run(t, "--config", cfgPath, "report", "availability", "--since", "1h", "--json")
		if code != ExitOK {
			t.Fatalf("report --json: %d %q", code, errs)
		}
		return strings.Contains(out, "disk swap")
	})
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report --json is not JSON: %v\n%s", err, out)
	}
	if len(rep.Groups) != 1 || rep.Groups[0].Group != "web" || rep.Groups[0].SLA != 99.9 || rep.Groups[0].Availability < 0 ||
		rep.Groups[0].Availability > 100 || len(rep.Groups[0].Windows) != 1 || rep.Groups[0].Windows[0].Reason != "disk swap" {
		t.Fatalf("report --json: %s", out)
	}

	code, out, errs = run(t, "--config", cfgPath, "report", "availability", "--since", "1h", "--csv", "--group", "web")
	if code != ExitOK {
		t.Fatalf("report --csv: %d %q", code, errs)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "group" || rows[1][0] != "web" || len(rows[1]) != len(rows[0]) {
		t.Fatalf("report --csv: %v\n%s", err, out)
	}

	code, out, _ = run(t, "--config", cfgPath, "report", "availability", "--since", "1h")
	if code != ExitOK || !strings.Contains(out, "AVAILABILITY") || !strings.Contains(out, "web") || !strings.Contains(out, "declared window") {
		t.Fatalf("report table: %d\n%s", code, out)
	}
	for _, bad := range [][]string{{"--since", "yesterday-ish"}, {"--json", "--csv"}, {"--group", "nope"}, {"--since", "1h", "--until", "2h"}} {
		if code, _, _ := run(t, append([]string{"--config", cfgPath, "report", "availability"}, bad...)...); code != ExitUsage {
			t.Errorf("report %v: exit %d, want %d", bad, code, ExitUsage)
		}
	}
}

func TestParseWhenAndWindow(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"30d":                  now.Add(-30 * 24 * time.Hour),
		"1d12h":                now.Add(-36 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"now":                  now,
		"2026-03-01T22:00:00Z": time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-3h", "3x", "2026-13-01"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) accepted", bad)
		}
	}
	s, e, err := parseWindow("2026-03-11T22:00:00Z/4h", now)
	if err != nil || !s.Equal(time.Date(2026, 3, 11, 22, 0, 0, 0, time.UTC)) || e.Sub(s) != 4*time.Hour {
		t.Errorf("window with a duration: %v %v %v", s, e, err)
	}
	s, e, err = parseWindow("now/2026-03-11T00:00:00Z", now)
	if err != nil || !s.Equal(now) || !e.Equal(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("window from now: %v %v %v", s, e, err)
	}
	for _, bad := range []string{"2026-03-11", "x/4h", "now/x"} {
		if _, _, err := parseWindow(bad, now); err == nil {
			t.Errorf("parseWindow(%q) accepted", bad)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * 24 * time.Hour: "30d",
		29*24*time.Hour + 23*time.Hour + 5*time.Minute + 7*time.Second: "29d23h5m",
		70 * time.Second:          "1m10s",
		-15 * time.Second:         "-15s",
		450 * time.Millisecond:    "450ms",
		0:                         "0s",
		time.Hour + 3*time.Second: "1h0m3s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
