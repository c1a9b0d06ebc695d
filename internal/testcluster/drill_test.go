package testcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/grouprun"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
)

// portService is a real TCP service on one shared loopback address: the
// group's holder listens there, so a client probe sees exactly what a user
// would (nothing while the group moves, then the new holder). A second
// holder could not bind, which the test would see as a failed start.
type portService struct {
	h          *holders
	node, addr string
	warmup     time.Duration // a start takes this long, like a real service

	mu sync.Mutex
	ln net.Listener
}

func (s *portService) Start(ctx context.Context) (resource.Output, error) {
	time.Sleep(s.warmup)
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return resource.Output{}, fmt.Errorf("listen %s: %w", s.addr, err)
	}
	go func() { // accept-and-close until Stop closes the listener
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.h.set("web", s.node, true)
	return resource.Output{}, nil
}

func (s *portService) Stop(context.Context) (resource.Output, error) {
	s.h.set("web", s.node, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	return resource.Output{}, nil
}

func (s *portService) Monitor(context.Context) (resource.State, resource.Output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return resource.Running, resource.Output{}, nil
	}
	return resource.Stopped, resource.Output{}, nil
}

func portServices(h *holders, addr string) func(node string) grouprun.Factory {
	return func(node string) grouprun.Factory {
		return func(config.Group, config.Resource) (resource.Agent, error) {
			return &portService{h: h, node: node, addr: addr, warmup: 300 * time.Millisecond}, nil
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func drillGroup(addr, extra string) string {
	return fmt.Sprintf(`  - name: web
    nodes: [a, b]
    failback: manual
    resources:
      - {name: www, type: process, command: [/bin/true]}
    drill:
      probe: {type: tcp, address: "%s", timeout: 100ms}
      interval: 50ms
      settle: 500ms
      timeout: 20s
%s`, addr, extra)
}

func TestDrillThereAndBack(t *testing.T) {
	addr := freeAddr(t)
	h := &holders{t: t, running: map[string]map[string]bool{}}
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: drillGroup(addr, ""), Factory: portServices(h, addr)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	runsOn := func(node string) func() bool {
		return func() bool { on := h.on("web"); return len(on) == 1 && on[0] == node }
	}
	c.WaitFor("web on a", 20*time.Second, runsOn("a"))
	cl := c.Client("q-w") // the witness runs the drill and probes as a client
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.WaitFor("a running report in the log", 10*time.Second, func() bool {
		gs, err := cl.Groups(ctx)
		return err == nil && len(gs) == 1 && gs[0].Node == "a" && gs[0].State == "running"
	})

	var apiErr *apiclient.APIError
	for _, bad := range []struct {
		req   model.DrillRequest
		code  int
		field string
	}{
		{model.DrillRequest{Group: "nope"}, http.StatusNotFound, "group"},
		{model.DrillRequest{Group: "web", To: "q-w"}, http.StatusBadRequest, "to"},
		{model.DrillRequest{Group: "web", To: "a"}, http.StatusBadRequest, "to"},
	} {
		if _, err := cl.StartDrill(ctx, bad.req); !errors.As(err, &apiErr) || apiErr.Status != bad.code || apiErr.Field != bad.field {
			t.Errorf("drill %+v: %v, want %d on %s", bad.req, err, bad.code, bad.field)
		}
	}

	d, err := cl.StartDrill(ctx, model.DrillRequest{Group: "web", Back: true, Reason: "quarterly test"})
	if err != nil {
		t.Fatal(err)
	}
	if d.From != "a" || d.To != "b" || d.Runner != "q-w" || d.Outcome != model.DrillRunning || !strings.Contains(d.Probe, addr) {
		t.Fatalf("started %+v", d)
	}
	if _, err := cl.StartDrill(ctx, model.DrillRequest{Group: "web"}); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Errorf("second drill while one runs: %v, want 409", err)
	}
	var res model.Drill
	c.WaitFor("drill finished", 60*time.Second, func() bool {
		res, err = cl.Drill(ctx, d.ID)
		return err == nil && res.Outcome != model.DrillRunning
	})
	t.Logf("drill: %+v", res)
	if res.Outcome != model.DrillPassed || len(res.Steps) != 3 {
		t.Fatalf("outcome %s (%s), steps %+v", res.Outcome, res.Error, res.Steps)
	}
	for _, st := range res.Steps[1:] {
		// The service really was down: the old holder stopped, the new one took 300ms to start.
		if st.OutageMS == nil || *st.OutageMS < 300 || *st.OutageMS > 15000 || !st.OK {
			t.Errorf("%s: outage %v ok %v (%s)", st.Name, st.OutageMS, st.OK, st.Detail)
		}
	}
	if res.ProbesFailed == 0 || res.ProbesSent <= res.ProbesFailed {
		t.Errorf("probes %d failed of %d", res.ProbesFailed, res.ProbesSent)
	}
	if !runsOn("a")() {
		t.Errorf("web not back on a: %v", h.on("web"))
	}
	if h.dual != "" {
		t.Fatal("split brain: " + h.dual)
	}

	// Stored in the replicated log: another node lists it, with the moves it made.
	ca := c.Client("a")
	defer ca.Close()
	c.WaitFor("a lists the drill", 10*time.Second, func() bool {
		ds, err := ca.Drills(ctx, "web")
		return err == nil && len(ds) == 1 && ds[0].ID == d.ID && ds[0].Outcome == model.DrillPassed
	})
	evs, err := ca.AllEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	moves := 0
	for _, ev := range evs {
		if ev.Kind == model.EventMoveRequested && strings.Contains(ev.Reason, d.ID) && ev.By == res.By {
			moves++
		}
	}
	if moves != 2 {
		t.Errorf("%d move requests carry the drill's id and author %q, want 2", moves, res.By)
	}
}

func TestScheduledDrill(t *testing.T) {
	addr := freeAddr(t)
	h := &holders{t: t, running: map[string]map[string]bool{}}
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Factory: portServices(h, addr),
		Groups: drillGroup(addr, "      schedule: \"@every 4s\"\n      back: false\n")})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	cl := c.Client("b")
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ds []model.Drill
	c.WaitFor("a scheduled drill passed", 45*time.Second, func() bool {
		var err error
		ds, err = cl.Drills(ctx, "web")
		for _, d := range ds {
			if d.Scheduled && d.Outcome == model.DrillPassed {
				return err == nil
			}
		}
		return false
	})
	for _, d := range ds {
		if !d.Scheduled || d.By != "schedule" {
			t.Errorf("unexpected drill %+v", d)
		}
	}
	if h.dual != "" {
		t.Fatal("split brain: " + h.dual)
	}
}
