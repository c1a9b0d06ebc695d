package labcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// A failover drill on real agents: `vigil drill web --back`, asked of the
// witness, moves the VIP and demo-web from a to b and back while w probes
// http://VIP:8080/ as a client. The drill must pass, measure an outage at
// each move that agrees with an independent client in its own namespace,
// leave web on a, and never make two holders (10 ms checker).
func TestDrillWithVIP(t *testing.T) {
	g := WebGroup{Name: "web", Nodes: []string{"a", "b"}, VIP: "10.90.1.100/24", Port: 8080, Failback: "manual",
		Extra: "    drill:\n      probe: {type: http, url: \"http://10.90.1.100:8080/\", timeout: 300ms}\n" +
			"      interval: 100ms\n      settle: 1s\n      timeout: 30s\n"}
	c := New(t, Options{Tag: "rdr", PublicSubnet: "10.90.1.0/24", HeartbeatSubnet: "10.90.2.0/24",
		Nodes: twoPlusWitness(), Clients: []string{clientHost}})
	c.AddGroups(g)
	gl := &groupLab{Cluster: c, t: t, groups: map[string]WebGroup{"web": g}, clients: map[string]*Client{}}
	gl.chk = c.CheckSplitBrain(g.Watch())
	c.StartAll()
	c.WaitHealthy(formTimeout)
	gl.clients["web"] = c.StartClient(clientHost, g.Addr())
	gl.waitOn([]string{"a", "b", "w"}, "web", "a", convergeTimeout)

	ctx := context.Background()
	out, err := c.Vigil(ctx, "w", "drill", "web", "--back", "--reason", "lab drill", "--no-wait", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var d model.Drill
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if d.From != "a" || d.To != "b" || d.Runner != "w" {
		t.Fatalf("started %+v", d)
	}
	c.WaitFor("the drill to finish", 2*time.Minute, func() error {
		out, err := c.Vigil(ctx, "w", "drill", "report", d.ID, "--json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &d); err != nil {
			return err
		}
		if d.Outcome == model.DrillRunning {
			return fmt.Errorf("still running, %d steps done", len(d.Steps))
		}
		return nil
	})
	report, _ := c.Vigil(ctx, "a", "drill", "report", d.ID)
	t.Logf("drill report, as a's log has it:\n%s", report)
	if d.Outcome != model.DrillPassed || len(d.Steps) != 3 {
		t.Fatalf("drill %s: %s", d.Outcome, d.Error)
	}
	cl := gl.clients["web"]
	for i, st := range d.Steps[1:] {
		from, to := "a", "b"
		if i == 1 {
			from, to = "b", "a"
		}
		gap, err := cl.GapAt(from, to, st.Started)
		if err != nil {
			t.Fatalf("%s: the independent client: %v", st.Name, err)
		}
		t.Logf("%s: drill saw %dms without an answer, the client %v (%d failed requests)", st.Name, *st.OutageMS, gap.Outage.Round(time.Millisecond), gap.Failed)
		// Two probes of one real outage at 100 ms and the client's own rate:
		// they agree within a few probe intervals, and the outage is real.
		drillOut := time.Duration(*st.OutageMS) * time.Millisecond
		if drillOut <= 0 || drillOut > gap.Outage+time.Second || drillOut < gap.Outage/2-200*time.Millisecond {
			t.Errorf("%s: drill outage %v, independent client %v", st.Name, drillOut, gap.Outage)
		}
	}
	gl.waitOn([]string{"a", "b", "w"}, "web", "a", convergeTimeout)
	evs := gl.events("b")
	var moves int
	for _, ev := range GroupEvents(evs, "web", model.EventMoveRequested) {
		if ev.By == d.By {
			moves++
		}
	}
	if moves != 2 {
		t.Errorf("%d move requests by %s in b's log, want 2", moves, d.By)
	}
}
