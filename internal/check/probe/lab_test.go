package probe_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/check/runner"
	"github.com/vigil-ha/vigil/internal/duration"
	"github.com/vigil-ha/vigil/internal/lab"
)

// inHost runs a probe from inside a lab host's network namespace: sockets the
// probe opens on the calling goroutine (icmp, tcp) belong to the host.
type inHost struct {
	h *lab.Host
	p check.Prober
}

func (x inHost) Probe(ctx context.Context) check.Result {
	var r check.Result
	if err := x.h.Do(func() error { r = x.p.Probe(ctx); return nil }); err != nil {
		return check.Result{Detail: err.Error()}
	}
	return r
}

// A node whose public cable is pulled sees all its public targets go down and
// finds itself isolated; plugged back in, it is not. Real probes, run by the
// runner from inside the node's namespace, against three other lab hosts.
func TestPublicIsolationInLab(t *testing.T) {
	l := lab.NewForTest(t, lab.Options{
		Name:     "chk1",
		Networks: []lab.Network{{Name: "pub", Subnet: "10.82.1.0/24"}},
		Hosts:    []string{"node", "t1", "t2", "t3"},
	})
	node, t3 := l.Host("node"), l.Host("t3")
	ln, err := t3.Listen("tcp", t3.Addr("pub")+":7000")
	if err != nil {
		t.Fatal(err)
	}
	peers := make(chan string, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case peers <- c.RemoteAddr().(*net.TCPAddr).IP.String():
			default:
			}
			c.Close()
		}
	}()
	defer func() { ln.Close(); wg.Wait() }()

	targets := []check.PublicTarget{
		{ICMP: l.Host("t1").Addr("pub")},
		{ICMP: l.Host("t2").Addr("pub")},
		{TCP: t3.Addr("pub") + ":7000"},
	}
	if ps := check.ValidatePublicTargets("cluster.public_targets", targets); len(ps) > 0 {
		t.Fatal(ps)
	}
	const interval = 200 * time.Millisecond
	var checks []runner.Check
	for _, pt := range targets {
		pt.Interval, pt.Timeout = 0, 0
		c := pt.Check(node.Addr("pub"))
		c.Interval, c.Timeout = duration.Duration(interval), duration.Duration(150*time.Millisecond)
		p, err := probe.New(c)
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, runner.Of(c, inHost{node, p}))
	}
	r, err := runner.New(checks, runner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); r.Wait() }()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}

	states := map[string]check.TargetState{}
	for _, c := range checks {
		states[c.Name] = check.TargetState{Name: c.Name}
	}
	view := func() []check.TargetState {
		var out []check.TargetState
		for _, c := range checks {
			out = append(out, states[c.Name])
		}
		return out
	}
	// until applies changes until cond holds for the isolation verdict.
	until := func(what string, cond func(isolated bool, ts []check.TargetState) bool) string {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			iso, reason := check.Isolated(view())
			if cond(iso, view()) {
				return reason
			}
			select {
			case ch := <-r.Changes():
				states[ch.Check] = check.TargetState{Name: ch.Check, State: ch.State, Since: ch.Since}
				t.Logf("%s", ch)
			case <-deadline:
				t.Fatalf("%s: not reached; %s", what, reason)
			}
		}
	}
	allUp := func(_ bool, ts []check.TargetState) bool {
		for _, s := range ts {
			if s.State != check.Up {
				return false
			}
		}
		return true
	}
	t.Log(until("all targets up", allUp))
	if peer := <-peers; peer != node.Addr("pub") {
		t.Errorf("tcp probe came from %s, want the node's public address %s", peer, node.Addr("pub"))
	}

	cut := time.Now()
	if err := l.CutLink("node", "pub"); err != nil {
		t.Fatal(err)
	}
	reason := until("isolated", func(iso bool, _ []check.TargetState) bool { return iso })
	took := time.Since(cut)
	t.Logf("isolated after %s: %s", took.Round(time.Millisecond), reason)
	if !strings.HasPrefix(reason, "all 3 public targets down") {
		t.Errorf("reason %q", reason)
	}
	// Fall 3: never before the second failed round.
	if took < 2*interval*9/10 {
		t.Errorf("isolated after %s, faster than three probes allow", took)
	}

	if err := l.RestoreLink("node", "pub"); err != nil {
		t.Fatal(err)
	}
	t.Log(until("back", allUp))
	if iso, reason := check.Isolated(view()); iso {
		t.Errorf("still isolated: %s", reason)
	}
}
