package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/runner"
	"github.com/vigil-ha/vigil/internal/config"
)

func TestCheckMetrics(t *testing.T) {
	a := &Agent{self: config.Node{Name: "a"}}
	c := newCheckCollector(a)
	c.statuses = func() []runner.Status {
		return []runner.Status{
			{Check: "web/http", State: check.Down, Probes: 12, Failures: 3, LastAt: time.Now(), Last: check.Result{Duration: 250 * time.Millisecond}},
			{Check: "db/tcp", State: check.Unknown},
			{Check: publicPrefix + "gw", State: check.Up, Probes: 5},
		}
	}
	c.groups = map[string]groupCheck{"web/http": {group: "web", check: "http"}, "db/tcp": {group: "db", check: "tcp"}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&out, mf); err != nil {
			t.Fatal(err)
		}
	}
	text := out.String()
	for _, want := range []string{
		`vigil_check_state{check="http",group="web",observer="a",state="down"} 1`,
		`vigil_check_state{check="http",group="web",observer="a",state="up"} 0`,
		`vigil_check_state{check="tcp",group="db",observer="a",state="unknown"} 1`,
		`vigil_check_probes_total{check="http",group="web",observer="a"} 12`,
		`vigil_check_failures_total{check="http",group="web",observer="a"} 3`,
		`vigil_check_last_duration_seconds{check="http",group="web",observer="a"} 0.25`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %s in\n%s", want, text)
		}
	}
	if strings.Contains(text, "gw") || strings.Contains(text, `vigil_check_last_duration_seconds{check="tcp"`) {
		t.Errorf("public target or a never-probed check's duration served:\n%s", text)
	}
	// No checks: nothing, and registering beside the other metrics works.
	newMetrics(&Agent{})
}
