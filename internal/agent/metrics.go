package agent

import (
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-ha/vigil/internal/availability"
	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/model"
)

// withMetrics serves Prometheus metrics at GET /metrics beside the API.
//
// /metrics needs no token: scrapers usually have none, and the only credential
// the API knows, the operator token, would also let a scraper move groups. The
// metrics carry no secret (node, link and group names, states and counters), and
// the listener is the same HTTPS one, so a scraper verifies the node against the
// cluster CA. Everything else still goes through the API's authentication.
func (a *Agent) withMetrics(api http.Handler) http.Handler {
	m := newMetrics(a)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4, // a scrape reads the whole state; bound the cost of a flood
	}))
	mux.Handle("/", api)
	return mux
}

// failoverBuckets span a fast lab failover (well under a second) to a slow
// takeover with fencing and long resource starts (minutes).
var failoverBuckets = []float64{0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600}

// metrics reads the node's state when scraped rather than keeping it up to date:
// nothing runs between scrapes, and nothing can drift from /v1/status.
type metrics struct {
	a   *Agent
	reg *prometheus.Registry

	info, nodeState, lastHeard, linkUp                     *prometheus.Desc
	hbReceived, hbRejected, hbDropped, hbSendErrors        *prometheus.Desc
	leaseHeld, leaseLeft, quorum, coordinator, lastIndex   *prometheus.Desc
	groupState, groupRunningHere, groupMaint, groupFlagged *prometheus.Desc

	// Failovers come from the committed log, the same on every node: each scrape
	// folds in the events committed since the last one. A restarted agent reads
	// the whole log again, so the counter never goes back.
	mu          sync.Mutex // one catch-up at a time
	after       uint64     // guarded by mu: last index folded in
	follow      *availability.Failovers
	failovers   *prometheus.CounterVec
	failoverDur *prometheus.HistogramVec
}

func newMetrics(a *Agent) *metrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vigil_"+name, help, labels, nil)
	}
	m := &metrics{a: a, reg: prometheus.NewRegistry(), follow: availability.NewFailovers(),
		info:      d("info", "Always 1; names the cluster and the node that answered.", "cluster", "node"),
		nodeState: d("node_state", "1 for the state this node sees each node in (alive, suspect, dead), 0 for the others.", "node", "state"),
		lastHeard: d("node_last_heard_seconds", "Seconds since this node last received a heartbeat from the peer.", "node"),
		linkUp:    d("link_up", "1 when the heartbeat link to the node's address is up, as this node sees it.", "node", "link"),

		hbReceived:   d("heartbeat_received_total", "Valid heartbeat packets received."),
		hbRejected:   d("heartbeat_rejected_total", "Heartbeat packets rejected, by reason.", "reason"),
		hbDropped:    d("heartbeat_dropped_total", "Valid heartbeat packets dropped because the membership loop was behind."),
		hbSendErrors: d("heartbeat_send_errors_total", "Heartbeat packets that could not be sent."),

		leaseHeld:   d("lease_held", "1 while this node holds its lease (it may run groups)."),
		leaseLeft:   d("lease_remaining_seconds", "Seconds left on this node's lease; 0 when not held."),
		quorum:      d("quorum", "1 while this node is in contact with a quorum of voters."),
		coordinator: d("coordinator", "1 while this node is the coordinator (the consensus leader)."),
		lastIndex:   d("log_last_index", "Index of the newest event in the replicated log on this node."),

		groupState:       d("group_state", "1 for each group's current state as the log says, with the node it is assigned to.", "group", "node", "state"),
		groupRunningHere: d("group_running_here", "1 when the group runs on this node; assigned names the node it is assigned to.", "group", "assigned"),
		groupMaint:       d("group_maintenance", "1 while the group (or the whole cluster) is in maintenance.", "group"),
		groupFlagged:     d("group_failure_flags", "Nodes on which the group is flagged as failed (an operator clears them).", "group"),

		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_failovers_total",
			Help: "Group moves after a failure (takeovers and failure releases), from the replicated log."}, []string{"group"}),
		failoverDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_failover_duration_seconds",
			Help:    "From the first failure report about the old holder to the group_started of the new one, from the replicated log.",
			Buckets: failoverBuckets}, []string{"group"}),
	}
	if a.cfg != nil {
		for _, g := range a.cfg.Groups {
			// Present from the start, so that rate() and dashboards see a zero.
			m.failovers.WithLabelValues(g.Name)
			m.failoverDur.WithLabelValues(g.Name)
		}
	}
	// Check results and workflow step durations have collectors of their own.
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m, syncLagCollector{a})
	m.reg.MustRegister(newCheckCollector(a), a.steps.vec(), newLinkCollector(a)) // metrics_checks.go, metrics_steps.go, metrics_links.go
	return m
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.info, m.nodeState, m.lastHeard, m.linkUp, m.hbReceived, m.hbRejected, m.hbDropped, m.hbSendErrors,
		m.leaseHeld, m.leaseLeft, m.quorum, m.coordinator, m.lastIndex, m.groupState, m.groupRunningHere, m.groupMaint, m.groupFlagged} {
		ch <- d
	}
	m.failovers.Describe(ch)
	m.failoverDur.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	a := m.a
	// NewConstMetric rather than MustNewConstMetric: a label value the registry
	// refuses (not UTF-8) becomes a scrape error, never a panic.
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		mt, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			mt = prometheus.NewInvalidMetric(d, err)
		}
		ch <- mt
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) { send(d, prometheus.GaugeValue, v, labels...) }
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		send(d, prometheus.CounterValue, float64(v), labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	st := a.Status()
	gauge(m.info, 1, st.Cluster, st.Node)
	for _, n := range st.Nodes {
		for _, s := range []model.NodeState{model.NodeAlive, model.NodeSuspect, model.NodeDead} {
			gauge(m.nodeState, b(n.State == s), n.Name, string(s))
		}
		if n.LastHeardMS != nil && *n.LastHeardMS >= 0 {
			gauge(m.lastHeard, float64(*n.LastHeardMS)/1000, n.Name)
		}
		for _, l := range n.Links {
			gauge(m.linkUp, b(l.State == model.LinkUp), n.Name, l.Address)
		}
		if n.Self {
			gauge(m.leaseHeld, b(n.Lease))
		}
	}
	var left float64
	if v := a.view.Load(); v != nil && v.LeaseHeld {
		left = v.LeaseLeft.Seconds()
	}
	gauge(m.leaseLeft, left)
	gauge(m.quorum, b(st.Quorum))
	gauge(m.coordinator, b(a.store.IsLeader()))
	gauge(m.lastIndex, float64(a.store.LastIndex()))

	c := a.transport.Counters()
	counter(m.hbReceived, c.Received)
	counter(m.hbDropped, c.Dropped)
	counter(m.hbSendErrors, c.SendErrors)
	for reason, v := range map[string]uint64{"malformed": c.Malformed, "bad_mac": c.BadMAC, "replayed": c.Replayed,
		"unknown_sender": c.UnknownSender, "from_self": c.FromSelf, "link_mismatch": c.LinkMismatch} {
		counter(m.hbRejected, v, reason)
	}

	for _, g := range a.groupStatuses() {
		gauge(m.groupState, 1, g.Name, g.Node, g.State)
		gauge(m.groupRunningHere, b(g.Node == a.self.Name && g.State == clusterstate.RunRunning), g.Name, g.Node)
		gauge(m.groupMaint, b(g.Maintenance), g.Name)
		gauge(m.groupFlagged, float64(len(g.Flags)), g.Name)
	}

	m.catchUp()
	m.failovers.Collect(ch)
	m.failoverDur.Collect(ch)
}

// catchUp folds the events committed since the last scrape into the failover metrics.
func (m *metrics) catchUp() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		evs := m.a.store.Events(m.after, 1000)
		for _, ev := range evs {
			counted, done := m.follow.Apply(ev)
			if counted != nil {
				if c, err := m.failovers.GetMetricWithLabelValues(counted.Group); err == nil {
					c.Inc()
				}
			}
			if done != nil {
				if h, err := m.failoverDur.GetMetricWithLabelValues(done.Group); err == nil {
					h.Observe(done.Duration().Seconds())
				}
			}
			m.after = ev.Index
		}
		if len(evs) < 1000 {
			return
		}
	}
}
