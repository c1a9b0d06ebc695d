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

// listenerSvc is a fake service that listens on a shared address while it runs;
// its monitor always says "running", so only the health check can see it die.
type listenerSvc struct {
	node, addr string
	h          *holders
	mu         sync.Mutex
	ln         net.Listener
}

func (s *listenerSvc) Start(context.Context) (resource.Output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return resource.Output{}, err
		}
		s.ln = ln
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	s.h.set("web", s.node, true)
	return resource.Output{}, nil
}

func (s *listenerSvc) crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

func (s *listenerSvc) Stop(context.Context) (resource.Output, error) {
	s.crash()
	s.h.set("web", s.node, false)
	return resource.Output{}, nil
}

func (s *listenerSvc) Monitor(context.Context) (resource.State, resource.Output, error) {
	return resource.Running, resource.Output{}, nil
}

func TestHealthCheckRestartThenFailover(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	h := &holders{t: t, running: map[string]map[string]bool{}}
	var mu sync.Mutex
	svcs := map[string]*listenerSvc{}
	factory := func(node string) grouprun.Factory {
		return func(config.Group, config.Resource) (resource.Agent, error) {
			mu.Lock()
			defer mu.Unlock()
			s := &listenerSvc{node: node, addr: addr, h: h}
			svcs[node] = s
			return s, nil
		}
	}
	groups := fmt.Sprintf(`  - name: web
    nodes: [a, b]
    max_restarts: 1
    start_grace: 1s
    takeover_grace: 1s
    resources:
      - {name: www, type: process, command: [/bin/true]}
    checks:
      - {type: tcp, address: "%s", interval: 200ms, timeout: 150ms, rise: 1, fall: 2, lost_after: 500ms, observers: local}
`, addr)
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: groups, Factory: factory})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	runsOn := func(node string) func() bool {
		return func() bool { on := h.on("web"); return len(on) == 1 && on[0] == node }
	}
	c.WaitFor("web on a", 20*time.Second, runsOn("a"))
	cl := c.Client("a")
	defer cl.Close()
	count := func(kind model.EventKind) int {
		evs, _ := cl.Events(context.Background(), 0, 10000)
		n := 0
		for _, ev := range evs {
			if ev.Kind == kind && ev.Group == "web" {
				n++
			}
		}
		return n
	}
	time.Sleep(1500 * time.Millisecond) // past the start grace, checks up everywhere
	mu.Lock()
	a := svcs["a"]
	mu.Unlock()
	a.crash() // the service dies; only the observers' checks can tell
	c.WaitFor("restart in place", 15*time.Second, func() bool { return count(model.EventGroupRestarting) == 1 })
	if !runsOn("a")() {
		t.Fatalf("the first failure must restart in place: %v", h.on("web"))
	}
	time.Sleep(1500 * time.Millisecond)
	a.crash()
	c.WaitFor("failover to b after the restart budget", 20*time.Second, runsOn("b"))
	gs, err := cl.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Flags["a"] == "" {
		t.Fatalf("a must be flagged for web: %+v", gs)
	}
	if count(model.EventGroupLost) < 2 {
		t.Fatalf("want two group_lost verdicts, got %d", count(model.EventGroupLost))
	}
	if h.dual != "" {
		t.Fatal("split brain: " + h.dual)
	}
}
