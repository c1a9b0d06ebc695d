package agent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/config"
)

// TestSyncLagMetric: a running sync resource's lag is served, a stopped one's is not.
func TestSyncLagMetric(t *testing.T) {
	cfg := &config.Config{Nodes: []config.Node{{Name: "a", Addresses: []string{"10.0.0.1", "192.168.1.1"}}}}
	a := &Agent{cfg: cfg, self: cfg.Nodes[0], log: slog.New(slog.DiscardHandler)}
	g := config.Group{Name: "web", Nodes: []string{"a"}}
	r := config.Resource{Name: "data", Type: "sync", Paths: []string{t.TempDir()}, Interval: config.Duration(time.Hour)}
	res, err := resourceTypes["sync"](a, g, r)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(syncLagCollector{a})
	series := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
		}
		return n
	}
	if n := series(); n != 0 {
		t.Fatalf("%d lag series before start", n)
	}
	if _, err := res.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := "vigil_sync_lag_seconds{group=\"web\",resource=\"data\"}"
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "vigil_sync_lag_seconds" || !strings.Contains(mfs[0].String(), `value:"web"`) || !strings.Contains(mfs[0].String(), `value:"data"`) {
		t.Fatalf("gathered %v, want %s", mfs, want)
	}
	if _, err := res.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := series(); n != 0 {
		t.Fatalf("%d lag series after stop", n)
	}
}
