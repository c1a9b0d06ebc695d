package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	rsync "github.com/vigil-ha/vigil/internal/resource/sync"
)

func init() {
	resourceTypes["sync"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		// The targets are the nodes that could take the group over: they are the
		// ones that need the data.
		targets := r.To
		if len(targets) == 0 {
			targets = g.Nodes
		}
		var peers []rsync.Peer
		for _, name := range targets {
			if name == a.self.Name {
				continue
			}
			n, ok := a.cfg.Node(name)
			if !ok || len(n.Addresses) == 0 {
				return nil, fmt.Errorf("sync %s/%s: node %q has no address", g.Name, r.Name, name)
			}
			// The last address: by convention the heartbeat network (docs/config.md),
			// which keeps bulk copies off the public one.
			peers = append(peers, rsync.Peer{Name: name, Addr: n.Addresses[len(n.Addresses)-1]})
		}
		s, err := rsync.New(r, rsync.Options{Logger: a.log.With("group", g.Name, "resource", r.Name), Self: a.self.Name, Peers: peers})
		if err != nil {
			return nil, err
		}
		a.syncs.put(g.Name, r.Name, s)
		return s, nil
	}
}

// syncRegistry holds the node's sync resources so that /metrics can read their
// lag; the zero value is ready. A resource built again replaces the old entry.
type syncRegistry struct {
	mu sync.Mutex
	m  map[[2]string]*rsync.Syncer
}

func (r *syncRegistry) put(group, res string, s *rsync.Syncer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[[2]string]*rsync.Syncer{}
	}
	r.m[[2]string{group, res}] = s
}

func (r *syncRegistry) each(fn func(group, res string, s *rsync.Syncer)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.m {
		fn(k[0], k[1], s)
	}
}

var syncLagDesc = prometheus.NewDesc("vigil_sync_lag_seconds",
	"Seconds since the start of the last sync pass that reached every target, for the sync resources running on this node: writes since then exist only here.",
	[]string{"group", "resource"}, nil)

// syncLagCollector serves the lag of the sync resources that run here; a standby
// reports none, since its copy's age is only known from the stamp at takeover.
type syncLagCollector struct{ a *Agent }

// Describe implements prometheus.Collector.
func (c syncLagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- syncLagDesc }

// Collect implements prometheus.Collector.
func (c syncLagCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.a.syncs.each(func(group, res string, s *rsync.Syncer) {
		if s.Active() {
			ch <- prometheus.MustNewConstMetric(syncLagDesc, prometheus.GaugeValue, s.Lag(now).Seconds(), group, res)
		}
	})
}
