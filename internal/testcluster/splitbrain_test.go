package testcluster

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/grouprun"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
)

// TestSplitBrainFoundAndIntruderStopped (S9): the service is started by hand on
// the node that does not own the group; the coordinator's per-node probe finds it,
// raises a SPLIT BRAIN alarm, and the intruder stops its copy.
func TestSplitBrainFoundAndIntruderStopped(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	h := &holders{t: t, running: map[string]map[string]bool{}}
	var mu sync.Mutex
	svcs := map[string]*listenerSvc{}
	var c *Cluster
	factory := func(node string) grouprun.Factory {
		return func(config.Group, config.Resource) (resource.Agent, error) {
			n, _ := c.Config.Node(node)
			mu.Lock()
			defer mu.Unlock()
			s := &listenerSvc{node: node, addr: fmt.Sprintf("%s:%d", n.Addresses[0], port), h: h}
			svcs[node] = s
			return s, nil
		}
	}
	groups := fmt.Sprintf(`  - name: web
    nodes: [a, b]
    resources:
      - {name: www, type: process, command: [/bin/true]}
    split_brain:
      probe: {type: tcp, address: "{node}:%d", interval: 200ms, timeout: 150ms}
`, port)
	c = New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: groups, Factory: factory})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	c.WaitFor("web on a", 20*time.Second, func() bool { on := h.on("web"); return len(on) == 1 && on[0] == "a" })
	time.Sleep(time.Second) // several probe rounds: no alarm on a healthy cluster
	cl := c.Client("a")
	defer cl.Close()
	find := func(kind model.EventKind) (model.Event, bool) {
		evs, _ := cl.Events(context.Background(), 0, 10000)
		for _, ev := range evs {
			if ev.Kind == kind {
				return ev, true
			}
		}
		return model.Event{}, false
	}
	if ev, ok := find(model.EventSplitBrain); ok {
		t.Fatalf("false alarm: %+v", ev)
	}
	mu.Lock()
	b := svcs["b"]
	mu.Unlock()
	if _, err := b.Start(context.Background()); err != nil { // someone starts it by hand on b
		t.Fatal(err)
	}
	c.WaitFor("SPLIT BRAIN alarm", 10*time.Second, func() bool { _, ok := find(model.EventSplitBrain); return ok })
	ev, _ := find(model.EventSplitBrain)
	if ev.Node != "b" || ev.Severity != model.SeverityCritical {
		t.Fatalf("alarm: %+v", ev)
	}
	c.WaitFor("intruder stopped", 10*time.Second, func() bool { on := h.on("web"); return len(on) == 1 && on[0] == "a" })
	if _, ok := find(model.EventIntruderStop); !ok {
		t.Fatal("no stop request recorded")
	}
}
