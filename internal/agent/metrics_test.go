package agent

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// describedNames lists every metric family the /metrics registry can serve, from
// the collectors' descriptions (collecting would need a running agent).
func describedNames(t *testing.T) map[string]bool {
	t.Helper()
	a := &Agent{}
	m := newMetrics(a)
	ch := make(chan *prometheus.Desc, 1000)
	for _, c := range []prometheus.Collector{m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCheckCollector(a), a.steps.vec(), newLinkCollector(a), syncLagCollector{a}} {
		c.Describe(ch)
	}
	close(ch)
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if mm := fq.FindStringSubmatch(d.String()); mm != nil {
			names[mm[1]] = true
		}
	}
	return names
}

func TestDashboardUsesOnlyServedMetrics(t *testing.T) {
	data, err := os.ReadFile("../../examples/grafana/vigil-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	if len(exprs) < 10 {
		t.Fatalf("only %d queries in the dashboard", len(exprs))
	}
	served := describedNames(t)
	ident := regexp.MustCompile(`\b(?:vigil|go|process)_[a-z0-9_]+\b`)
	for _, e := range exprs {
		for _, name := range ident.FindAllString(e, -1) {
			base := name
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suf); ok && served[b] {
					base = b
				}
			}
			if !served[base] {
				t.Errorf("dashboard query %q uses %s, which /metrics does not serve", e, name)
			}
		}
	}
	for _, want := range []string{"vigil_quorum", "vigil_lease_held", "vigil_failover_duration_seconds", "go_goroutines", "process_cpu_seconds_total"} {
		if !served[want] {
			t.Errorf("registry lacks %s (have %d names)", want, len(served))
		}
	}
}
