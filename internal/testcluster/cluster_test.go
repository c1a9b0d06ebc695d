package testcluster

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const fast = "{keepalive: 50ms, warntime: 250ms, deadtime: 500ms, initdead: 3s}"

func allAgree(c *Cluster, nodes []string, check func(model.Status) bool) func() bool {
	return func() bool {
		for _, n := range nodes {
			st, err := c.Status(n)
			if err != nil || !check(st) {
				return false
			}
		}
		return true
	}
}

func formed(st model.Status) bool {
	if !st.Quorum || st.Leader == "" {
		return false
	}
	for _, n := range st.Nodes {
		if n.State != model.NodeAlive || !n.Lease {
			return false
		}
	}
	return true
}

func TestInProcessClusterFormsAndDetectsAStoppedNode(t *testing.T) {
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Links: 2, Timing: fast})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	c.WaitFor("cluster formed", 20*time.Second, allAgree(c, []string{"a", "b", "q-w"}, formed))

	st, _ := c.Status("a")
	if w, _ := NodeIn(st, "q-w"); w.Role != model.RoleWitness {
		t.Errorf("q-w role %q, want witness", w.Role)
	}
	for _, n := range st.Nodes {
		if len(n.Links) != 2 {
			t.Fatalf("%s has %d links, want 2", n.Name, len(n.Links))
		}
	}

	c.Stop("b")
	c.WaitFor("b dead on a and q-w", 10*time.Second, allAgree(c, []string{"a", "q-w"}, func(st model.Status) bool {
		b, _ := NodeIn(st, "b")
		return b.State == model.NodeDead && !b.Lease && st.Quorum
	}))
	// The replicated log has the death, observed from the survivors.
	cl := c.Client("a")
	defer cl.Close()
	c.WaitFor("node_dead event in the log", 10*time.Second, func() bool {
		evs, err := cl.Events(context.Background(), 0, 1000)
		if err != nil {
			return false
		}
		for _, ev := range evs {
			if ev.Kind == model.EventNodeDead && ev.Node == "b" && ev.Index > 0 {
				return true
			}
		}
		return false
	})
}

func TestOperatorTokenRequired(t *testing.T) {
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast})
	c.Start("a")
	cl := c.Client("a")
	defer cl.Close()
	c.WaitFor("api up", 10*time.Second, func() bool { _, err := cl.Status(context.Background()); return err == nil })
	c.token = "vgl_wrong"
	bad := c.Client("a")
	defer bad.Close()
	if _, err := bad.Status(context.Background()); err == nil {
		t.Fatal("status answered with a wrong token")
	}
}
