package testcluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/grouprun"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/resource"
)

// holders records which node runs which group's fake service, and fails the
// test the moment two nodes run the same group.
type holders struct {
	t       *testing.T
	mu      sync.Mutex
	running map[string]map[string]bool // group -> node -> running
	dual    string
}

func (h *holders) set(group, node string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running[group] == nil {
		h.running[group] = map[string]bool{}
	}
	h.running[group][node] = on
	n := 0
	for _, v := range h.running[group] {
		if v {
			n++
		}
	}
	if n > 1 && h.dual == "" {
		h.dual = fmt.Sprintf("group %s running on %v", group, h.running[group])
	}
}

func (h *holders) on(group string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for n, v := range h.running[group] {
		if v {
			out = append(out, n)
		}
	}
	return out
}

type svc struct {
	h           *holders
	group, node string
	mu          sync.Mutex
	up          bool
}

func (s *svc) Start(context.Context) (resource.Output, error) {
	s.mu.Lock()
	s.up = true
	s.mu.Unlock()
	s.h.set(s.group, s.node, true)
	return resource.Output{Text: "started"}, nil
}

func (s *svc) Stop(context.Context) (resource.Output, error) {
	s.h.set(s.group, s.node, false)
	s.mu.Lock()
	s.up = false
	s.mu.Unlock()
	return resource.Output{}, nil
}

func (s *svc) Monitor(context.Context) (resource.State, resource.Output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		return resource.Running, resource.Output{}, nil
	}
	return resource.Stopped, resource.Output{}, nil
}

func fakeServices(h *holders) func(node string) grouprun.Factory {
	return func(node string) grouprun.Factory {
		return func(g config.Group, r config.Resource) (resource.Agent, error) {
			return &svc{h: h, group: g.Name, node: node}, nil
		}
	}
}

const twoGroups = `  - name: web
    nodes: [a, b]
    failback: manual
    resources:
      - {name: www, type: process, command: [/bin/true]}
  - name: mail
    nodes: [b, a]
    failback: auto
    failback_delay: 1s
    resources:
      - {name: mta, type: process, command: [/bin/true]}
`

func TestGroupsPlacedFailedOverAndFailedBack(t *testing.T) {
	h := &holders{t: t, running: map[string]map[string]bool{}}
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: twoGroups, Factory: fakeServices(h)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	runsOn := func(group, node string) func() bool {
		return func() bool { on := h.on(group); return len(on) == 1 && on[0] == node }
	}
	c.WaitFor("web on a, mail on b (active-active)", 20*time.Second, func() bool { return runsOn("web", "a")() && runsOn("mail", "b")() })

	c.Stop("a") // a goes away: b must take web over once a's lease is surely over
	c.WaitFor("web taken over by b", 10*time.Second, runsOn("web", "b"))

	c.Start("a") // a returns: mail stays (b preferred), web stays on b (manual failback)
	c.WaitFor("a back", 10*time.Second, func() bool {
		st, err := c.Status("b")
		n, _ := NodeIn(st, "a")
		return err == nil && n.State == model.NodeAlive && n.Lease
	})
	time.Sleep(2 * time.Second) // longer than failback_delay: nothing may move by itself
	if !runsOn("web", "b")() {
		t.Fatalf("web moved back without an operator: %v", h.on("web"))
	}
	if h.dual != "" {
		t.Fatal("split brain: " + h.dual)
	}
}

func act(t *testing.T, c *Cluster, via, path string, a model.OperatorAction) {
	t.Helper()
	cl := c.Client(via)
	defer cl.Close()
	if _, err := cl.Act(context.Background(), path, a); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestOperatorMoveFailbackAndMaintenance(t *testing.T) {
	h := &holders{t: t, running: map[string]map[string]bool{}}
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: twoGroups, Factory: fakeServices(h)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	runsOn := func(group, node string) func() bool {
		return func() bool { on := h.on(group); return len(on) == 1 && on[0] == node }
	}
	c.WaitFor("web on a", 20*time.Second, runsOn("web", "a"))

	// Sent through a follower or the coordinator alike.
	act(t, c, "b", "/v1/groups/web/move", model.OperatorAction{Node: "b", Reason: "patching a"})
	c.WaitFor("web moved to b", 10*time.Second, runsOn("web", "b"))
	act(t, c, "q-w", "/v1/groups/web/failback", model.OperatorAction{})
	c.WaitFor("web back on a after authorisation", 10*time.Second, runsOn("web", "a"))

	on := true
	act(t, c, "a", "/v1/maintenance", model.OperatorAction{Group: "web", On: &on})
	act(t, c, "a", "/v1/groups/web/move", model.OperatorAction{Node: "b"})
	time.Sleep(time.Second)
	if !runsOn("web", "a")() {
		t.Fatalf("maintenance must freeze web: %v", h.on("web"))
	}
	on = false
	act(t, c, "a", "/v1/maintenance", model.OperatorAction{Group: "web", On: &on})
	c.WaitFor("pending move carried out after maintenance", 10*time.Second, runsOn("web", "b"))

	cl := c.Client("a")
	defer cl.Close()
	if _, err := cl.Act(context.Background(), "/v1/groups/web/move", model.OperatorAction{Node: "q-w"}); err == nil || !strings.Contains(err.Error(), "node") {
		t.Fatalf("moving to a witness must be refused naming the field, got %v", err)
	}
	if _, err := cl.Act(context.Background(), "/v1/groups/nope/move", model.OperatorAction{Node: "a"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown group: want 404, got %v", err)
	}
	evs, err := cl.Events(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var moves int
	for _, ev := range evs {
		if ev.Kind == model.EventMoveRequested && ev.By == "operator" {
			moves++
		}
	}
	if moves != 2 {
		t.Errorf("want 2 move requests with who in the log, got %d", moves)
	}
	if h.dual != "" {
		t.Fatal("split brain: " + h.dual)
	}
}

func TestTakeoverWaitsForTheFenceDevice(t *testing.T) {
	h := &holders{t: t, running: map[string]map[string]bool{}}
	dir := t.TempDir()
	script := dir + "/fence_lab"
	// A stand-in power switch: "off" writes the node's state; status reads it.
	body := "#!/bin/sh\nin=$(cat)\nnode=$(echo \"$in\" | sed -n 's/^nodename=//p')\n" +
		"case $(echo \"$in\" | sed -n 's/^action=//p') in\n off) echo off > " + dir + "/$node; exit 0;;\n" +
		" status) [ \"$(cat " + dir + "/$node 2>/dev/null)\" = off ] && exit 2; exit 0;;\nesac\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	extra := "fencing:\n  - {name: pdu, agent: " + script + ", nodes: [a, b]}\n"
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: twoGroups, Extra: extra, Factory: fakeServices(h)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	runsOn := func(group, node string) func() bool {
		return func() bool { on := h.on(group); return len(on) == 1 && on[0] == node }
	}
	c.WaitFor("web on a", 20*time.Second, runsOn("web", "a"))
	c.Stop("a")
	c.WaitFor("web taken over by b", 15*time.Second, runsOn("web", "b"))
	cl := c.Client("b")
	defer cl.Close()
	evs, err := cl.Events(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	fenced, assigned := uint64(0), uint64(0)
	for _, ev := range evs {
		if ev.Kind == model.EventNodeFenced && ev.Node == "a" && fenced == 0 {
			fenced = ev.Index
		}
		if ev.Kind == model.EventGroupAssigned && ev.Group == "web" && ev.Node == "b" {
			assigned = ev.Index
		}
	}
	if fenced == 0 || assigned < fenced {
		t.Fatalf("takeover (event %d) must come after the fence confirmed a off (event %d)", assigned, fenced)
	}
	if data, _ := os.ReadFile(dir + "/a"); strings.TrimSpace(string(data)) != "off" {
		t.Fatal("the fence agent was not told to turn a off")
	}
}
