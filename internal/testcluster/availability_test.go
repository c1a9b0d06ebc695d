package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/availability"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
)

const oneGroup = `  - name: web
    nodes: [a, b]
    failback: manual
    resources:
      - {name: www, type: process, command: [/bin/true]}
`

// anonymous is a client that trusts the cluster CA but holds no token, as a
// Prometheus scraper would.
func anonymous(t *testing.T, c *Cluster, node string) *apiclient.Client {
	t.Helper()
	tlsCfg, err := pki.ClientTLS(c.caPEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return apiclient.New(c.Config.APIAddrs(mustNode(t, c, node)), tlsCfg, "")
}

func mustNode(t *testing.T, c *Cluster, name string) config.Node {
	t.Helper()
	n, ok := c.Config.Node(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	return n
}

// scrape reads one node's /metrics over HTTPS without a token and returns
// "name{labels}" -> value for every sample.
func scrape(t *testing.T, c *Cluster, node string) map[string]float64 {
	t.Helper()
	cl := anonymous(t, c, node)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := cl.Metrics(ctx)
	if err != nil {
		t.Fatalf("scrape %s: %v", node, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestAvailabilityAndMetricsAfterFailover(t *testing.T) {
	h := &holders{t: t, running: map[string]map[string]bool{}}
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: oneGroup, Factory: fakeServices(h)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	runsOn := func(node string) func() bool {
		return func() bool { on := h.on("web"); return len(on) == 1 && on[0] == node }
	}
	c.WaitFor("web on a", 20*time.Second, runsOn("a"))
	cl := c.Client("b")
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startedOn := func(node string) func() bool {
		return func() bool {
			evs, err := cl.AllEvents(ctx)
			if err != nil {
				return false
			}
			for _, ev := range evs {
				if ev.Kind == model.EventGroupStarted && ev.Reporter == node {
					return true
				}
			}
			return false
		}
	}
	c.WaitFor("group_started by a in the log", 10*time.Second, startedOn("a"))

	// Metrics of the node that runs the group, over HTTPS, without a token.
	c.WaitFor("a's metrics: quorum, lease, web running here", 10*time.Second, func() bool {
		m := scrape(t, c, "a")
		return m["vigil_quorum"] == 1 && m["vigil_lease_held"] == 1 && m["vigil_lease_remaining_seconds"] > 0 &&
			m[`vigil_group_running_here{assigned="a",group="web"}`] == 1
	})
	m := scrape(t, c, "a")
	for _, series := range []string{`vigil_node_state{node="b",state="alive"}`, `vigil_info{cluster="test",node="a"}`,
		`vigil_failovers_total{group="web"}`, `vigil_group_state{group="web",node="a",state="running"}`} {
		if _, ok := m[series]; !ok {
			t.Errorf("a's /metrics lacks %s", series)
		}
	}
	// Round trip over loopback: measured, positive, below deadtime (500ms) even on a busy machine.
	c.WaitFor("a's round trip to b measured", 10*time.Second, func() bool {
		_, ok := scrape(t, c, "a")[`vigil_heartbeat_link_rtt_seconds{link="`+mustNode(t, c, "b").Addresses[0]+`",node="b"}`]
		return ok
	})
	m = scrape(t, c, "a")
	if rtt := m[`vigil_heartbeat_link_rtt_seconds{link="`+mustNode(t, c, "b").Addresses[0]+`",node="b"}`]; rtt <= 0 || rtt >= 0.5 {
		t.Errorf("a's heartbeat round trip to b over loopback: %vs, want in (0, 0.5)", rtt)
	}
	if m["vigil_heartbeat_received_total"] <= 0 || m["go_goroutines"] <= 0 || m["process_resident_memory_bytes"] <= 0 {
		t.Errorf("a's /metrics: heartbeats %v goroutines %v rss %v", m["vigil_heartbeat_received_total"], m["go_goroutines"], m["process_resident_memory_bytes"])
	}
	// Only /metrics is open: the API still wants the token.
	anon := anonymous(t, c, "a")
	defer anon.Close()
	var apiErr *apiclient.APIError
	if _, err := anon.Status(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Errorf("status without a token: %v", err)
	}

	// A declared window is recorded; a backdated one is refused.
	winStart := time.Now().Add(time.Hour).Truncate(time.Second)
	var ev model.Event
	var err error
	c.WaitFor("a coordinator to record the window", 10*time.Second, func() bool {
		ev, err = cl.DeclareWindow(ctx, model.MaintenanceWindow{Start: winStart, End: winStart.Add(time.Hour), Reason: "kernel upgrade"})
		return !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable // 503: no coordinator yet
	})
	if err != nil || ev.Kind != model.EventMaintenanceWindow || ev.WindowStart == nil || !ev.WindowStart.Equal(winStart) {
		t.Fatalf("declare window: %+v %v", ev, err)
	}
	_, err = cl.DeclareWindow(ctx, model.MaintenanceWindow{Start: time.Now().Add(-time.Hour), End: time.Now(), Reason: "after the fact"})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Field != "start" {
		t.Fatalf("backdated window: %v", err)
	}

	since := time.Now()
	stopAt := time.Now()
	c.Stop("a")
	c.WaitFor("web on b", 20*time.Second, runsOn("b"))
	gap := time.Since(stopAt) // the outage a client saw lies within this
	c.WaitFor("group_started by b in the log", 10*time.Second, startedOn("b"))

	evs, err := cl.AllEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	until := winStart.Add(30 * time.Minute) // half the declared window is inside the period
	rep, err := availability.Compute(evs, availability.Options{Since: since, Until: until, Groups: []availability.Target{{Group: "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	g := rep.Groups[0]
	t.Logf("observed gap %v; report: downtime %v, incidents %+v", gap, g.Downtime, g.Incidents)
	if g.Downtime <= 0 || g.Downtime >= gap+time.Second {
		t.Errorf("downtime %v, want > 0 and < the observed gap %v + 1s", g.Downtime, gap)
	}
	if len(g.Incidents) != 1 || g.Incidents[0].End == nil {
		t.Errorf("incidents: %+v", g.Incidents)
	}
	if g.Maintenance != 30*time.Minute || len(g.Windows) != 1 || !g.Windows[0].Declared || g.Windows[0].Reason != "kernel upgrade" {
		t.Errorf("maintenance %v windows %+v", g.Maintenance, g.Windows)
	}

	// The survivor counts the failover and its duration from the log.
	c.WaitFor("b's metrics: one failover of web, measured", 10*time.Second, func() bool {
		m := scrape(t, c, "b")
		return m[`vigil_failovers_total{group="web"}`] == 1 && m[`vigil_failover_duration_seconds_count{group="web"}`] == 1 &&
			m[`vigil_group_running_here{assigned="b",group="web"}`] == 1 && m["vigil_quorum"] == 1 && m["vigil_lease_held"] == 1
	})
	m = scrape(t, c, "b")
	if d := m[`vigil_failover_duration_seconds_sum{group="web"}`]; d <= 0 || d >= (gap+time.Second).Seconds() {
		t.Errorf("failover duration %vs, want > 0 and < %v", d, gap+time.Second)
	}
	if m[`vigil_node_state{node="a",state="dead"}`] != 1 || m[`vigil_link_up{link="`+mustNode(t, c, "a").Addresses[0]+`",node="a"}`] != 0 {
		t.Errorf("b does not see a dead with its link down")
	}
}
