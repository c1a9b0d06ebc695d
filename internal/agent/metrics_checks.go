package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/runner"
)

// checkCollector serves the results of the group checks this node observes,
// read from its check runner at each scrape (public targets are not included:
// vigil_link_up and the node's isolation events cover them).
type checkCollector struct {
	a *Agent
	// statuses and groups override the agent's check runner (tests).
	statuses func() []runner.Status
	groups   map[string]groupCheck
	observer string

	state, probes, failures, duration *prometheus.Desc
}

func newCheckCollector(a *Agent) *checkCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vigil_"+name, help, labels, nil)
	}
	c := &checkCollector{a: a, observer: a.self.Name,
		state: d("check_state", "1 for the debounced state (up, down, unknown) of each group check this node observes, 0 for the others.",
			"group", "check", "observer", "state"),
		probes:   d("check_probes_total", "Probes run by this node for the group check.", "group", "check", "observer"),
		failures: d("check_failures_total", "Probes run by this node for the group check that failed.", "group", "check", "observer"),
		duration: d("check_last_duration_seconds", "How long the latest probe of the group check took on this node.", "group", "check", "observer"),
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *checkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.probes, c.failures, c.duration} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *checkCollector) Collect(ch chan<- prometheus.Metric) {
	statuses, groups := c.statuses, c.groups
	if statuses == nil {
		// Set by Run before the API servers start serving, so no scrape races it.
		cs := c.a.checks
		if cs == nil || cs.r == nil {
			return
		}
		statuses, groups = cs.r.Statuses, cs.groups
	}
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		mt, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			mt = prometheus.NewInvalidMetric(d, err)
		}
		ch <- mt
	}
	for _, s := range statuses() {
		gc, ok := groups[s.Check]
		if !ok {
			continue // a public target
		}
		for _, st := range []check.State{check.Up, check.Down, check.Unknown} {
			v := 0.0
			if s.State == st {
				v = 1
			}
			send(c.state, prometheus.GaugeValue, v, gc.group, gc.check, c.observer, st.String())
		}
		send(c.probes, prometheus.CounterValue, float64(s.Probes), gc.group, gc.check, c.observer)
		send(c.failures, prometheus.CounterValue, float64(s.Failures), gc.group, gc.check, c.observer)
		if !s.LastAt.IsZero() {
			send(c.duration, prometheus.GaugeValue, s.Last.Duration.Seconds(), gc.group, gc.check, c.observer)
		}
	}
}
