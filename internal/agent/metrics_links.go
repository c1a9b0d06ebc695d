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
	status func() model.Status

	received, lost *prometheus.Desc
}

func newLinkCollector(a *Agent) *linkCollector {
	return &linkCollector{a: a,
		received: prometheus.NewDesc("vigil_heartbeat_link_received_total",
			"Heartbeats accepted from the peer on the link (named by the peer's address on it).", []string{"node", "link"}, nil),
		lost: prometheus.NewDesc("vigil_heartbeat_link_lost_total",
			"Heartbeats the peer sent on the link that never arrived (sequence gaps within one incarnation).", []string{"node", "link"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *linkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.received
	ch <- c.lost
}

// Collect implements prometheus.Collector.
func (c *linkCollector) Collect(ch chan<- prometheus.Metric) {
	stats, status := c.stats, c.status
	if stats == nil {
		if c.a.transport == nil {
			return
		}
		stats, status = c.a.transport.LinkStats, c.a.Status
	}
	addr := map[string][]string{} // node -> address per link, as vigil_link_up names them
	for _, n := range status().Nodes {
		for _, l := range n.Links {
			addr[n.Name] = append(addr[n.Name], l.Address)
		}
	}
	for _, s := range stats() {
		link := strconv.Itoa(s.Link)
		if as := addr[s.From]; s.Link < len(as) {
			link = as[s.Link]
		}
		for d, v := range map[*prometheus.Desc]uint64{c.received: s.Received, c.lost: s.Lost} {
			mt, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), s.From, link)
			if err != nil {
				mt = prometheus.NewInvalidMetric(d, err)
			}
			ch <- mt
		}
	}
}
