package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/vigil-ha/vigil/internal/heartbeat"
	"github.com/vigil-ha/vigil/internal/model"
)

func TestLinkLossMetrics(t *testing.T) {
	c := newLinkCollector(&Agent{})
	c.stats = func() []heartbeat.LinkStats {
		return []heartbeat.LinkStats{{From: "b", Link: 0, Received: 100, Lost: 3}, {From: "b", Link: 1, Received: 90}, {From: "q", Link: 0, Received: 7, Lost: 1}}
	}
	c.rtts = func() []heartbeat.LinkRTT {
		return []heartbeat.LinkRTT{{Peer: "b", Link: 1, RTT: 1500 * time.Microsecond}, {Peer: "b", Link: 0, RTT: time.Second}, {Peer: "q", Link: 0, RTT: time.Second}}
	}
	c.status = func() model.Status {
		return model.Status{Nodes: []model.NodeStatus{{Name: "b", Links: []model.LinkStatus{{Address: "10.0.0.2", State: model.LinkDown}, {Address: "10.1.0.2", State: model.LinkUp}}}}}
	}
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
	for _, want := range []string{
		`vigil_heartbeat_link_received_total{link="10.0.0.2",node="b"} 100`,
		`vigil_heartbeat_link_lost_total{link="10.0.0.2",node="b"} 3`,
		`vigil_heartbeat_link_lost_total{link="10.1.0.2",node="b"} 0`,
		`vigil_heartbeat_link_lost_total{link="0",node="q"} 1`, // no address known: the link index
		`vigil_heartbeat_link_rtt_seconds{link="10.1.0.2",node="b"} 0.0015`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %s in\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), `vigil_heartbeat_link_rtt_seconds{link="10.0.0.2"`) || strings.Contains(out.String(), `rtt_seconds{link="0"`) {
		t.Errorf("round trip reported for a down or unknown link:\n%s", out.String())
	}
	// Without a transport (not running): nothing, no panic.
	reg = prometheus.NewRegistry()
	reg.MustRegister(newLinkCollector(&Agent{}))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
