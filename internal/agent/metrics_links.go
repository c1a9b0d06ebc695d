package agent

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/heartbeat"
	"github.com/vigil-ha/vigil/internal/model"
)

// linkCollector serves heartbeat counts per peer and link: those accepted and
// those lost (gaps in the peer's sequence numbers, which every link carries in
// every round). Loss ratio: rate(lost) / (rate(lost) + rate(received)).
type linkCollector struct {
	a *Agent
	// stats and status override the transport and the status (tests).
	stats  func() []heartbeat.LinkStats
	rtts   func() []heartbeat.LinkRTT
	status func() model.Status

	received, lost, rtt *prometheus.Desc
}

func newLinkCollector(a *Agent) *linkCollector {
	return &linkCollector{a: a,
		received: prometheus.NewDesc("vigil_heartbeat_link_received_total",
			"Heartbeats accepted from the peer on the link (named by the peer's address on it).", []string{"node", "link"}, nil),
		lost: prometheus.NewDesc("vigil_heartbeat_link_lost_total",
			"Heartbeats the peer sent on the link that never arrived (sequence gaps within one incarnation).", []string{"node", "link"}, nil),
		rtt: prometheus.NewDesc("vigil_heartbeat_link_rtt_seconds",
			"Last heartbeat round-trip time to the peer over the link: from sending a round to hearing the peer echo it, minus the time the peer held it.", []string{"node", "link"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *linkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.received
	ch <- c.lost
	ch <- c.rtt
}

// Collect implements prometheus.Collector.
func (c *linkCollector) Collect(ch chan<- prometheus.Metric) {
	stats, rtts, status := c.stats, c.rtts, c.status
	if stats == nil {
		if c.a.transport == nil {
			return
		}
		stats, rtts, status = c.a.transport.LinkStats, c.a.linkRTTs, c.a.Status
	}
	addr := map[string][]string{} // node -> address per link, as vigil_link_up names them
	up := map[string][]bool{}
	for _, n := range status().Nodes {
		for _, l := range n.Links {
			addr[n.Name] = append(addr[n.Name], l.Address)
			up[n.Name] = append(up[n.Name], l.State == model.LinkUp)
		}
	}
	linkName := func(node string, i int) string {
		if as := addr[node]; i < len(as) {
			return as[i]
		}
		return strconv.Itoa(i)
	}
	for _, r := range rtts() {
		// A down link's last round trip is history, not a measurement.
		if u := up[r.Peer]; r.Link >= len(u) || !u[r.Link] {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, r.RTT.Seconds(), r.Peer, linkName(r.Peer, r.Link))
	}
	for _, s := range stats() {
		link := linkName(s.From, s.Link)
		for d, v := range map[*prometheus.Desc]uint64{c.received: s.Received, c.lost: s.Lost} {
			mt, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), s.From, link)
			if err != nil {
				mt = prometheus.NewInvalidMetric(d, err)
			}
			ch <- mt
		}
	}
}

// linkRTTs is the membership loop's last published RTT snapshot.
func (a *Agent) linkRTTs() []heartbeat.LinkRTT {
	if p := a.rtts.Load(); p != nil {
		return *p
	}
	return nil
}
