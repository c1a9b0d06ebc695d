package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/notify"
)

// Every node applies every committed event; only the coordinator may notify.
// A node death must reach the webhook once per event, not once per node.
func TestNodeDeathNotifiedOncePerEvent(t *testing.T) { nodeDeathNotified(t, false) }

// When the coordinator itself dies, the new one notifies its death. No node_dead
// was committed before, so the at-least-once replay has nothing to repeat.
func TestCoordinatorDeathNotifiedByItsSuccessor(t *testing.T) { nodeDeathNotified(t, true) }

func nodeDeathNotified(t *testing.T, stopLeader bool) {
	var mu sync.Mutex
	got := map[uint64][]notify.Payload{} // by event index
	badSig := 0
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p notify.Payload
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get(notify.SignatureHeader) != notify.Sign([]byte("hook-secret"), body) || json.Unmarshal(body, &p) != nil {
			badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		got[p.Event.Index] = append(got[p.Event.Index], p)
	}))
	defer rcv.Close()

	nodes := []string{"a", "b", "q-w"}
	c := New(t, Options{Nodes: nodes, Timing: fast, Extra: fmt.Sprintf(`
notifications:
  routes:
    - name: deaths
      kinds: [node_dead]
      min_severity: warning
      targets: [hook]
  targets:
    - name: hook
      type: webhook
      url: %s/vigil
      secret: hook-secret
`, rcv.URL)})
	for _, n := range nodes {
		c.Start(n)
	}
	c.WaitFor("cluster formed", 20*time.Second, allAgree(c, nodes, formed))
	st, err := c.Status("a")
	if err != nil {
		t.Fatal(err)
	}
	leader, victim := st.Leader, "a"
	if leader == "a" {
		victim = "b"
	}
	if stopLeader {
		victim = leader
		for _, n := range nodes {
			if n != victim {
				leader = n
				break
			}
		}
	}
	c.Stop(victim)
	if stopLeader {
		c.WaitFor("a new coordinator", 15*time.Second, func() bool {
			st, err := c.Status(leader)
			if err == nil && st.Leader != "" && st.Leader != victim {
				leader = st.Leader
				return true
			}
			return false
		})
	}

	cl := c.Client(leader)
	defer cl.Close()
	var deaths []model.Event
	c.WaitFor("node_dead in the log and delivered", 15*time.Second, func() bool {
		evs, err := cl.Events(context.Background(), 0, 10000)
		if err != nil {
			return false
		}
		deaths = deaths[:0]
		for _, ev := range evs {
			if ev.Kind == model.EventNodeDead && ev.Index > 0 {
				deaths = append(deaths, ev)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range deaths {
			if len(got[ev.Index]) == 0 {
				return false
			}
		}
		return len(deaths) > 0
	})
	// Give the other nodes every chance to send duplicates.
	time.Sleep(2 * time.Second)

	mu.Lock()
	defer mu.Unlock()
	if badSig > 0 {
		t.Errorf("%d deliveries with a bad signature", badSig)
	}
	aboutVictim := 0
	for _, ev := range deaths {
		ps := got[ev.Index]
		if len(ps) != 1 {
			t.Errorf("event %d (%s about %s from %s) delivered %d times", ev.Index, ev.Kind, ev.Node, ev.Reporter, len(ps))
			continue
		}
		if ps[0].Sender != leader || ps[0].ID != fmt.Sprintf("test/%d", ev.Index) || ps[0].Event.Node != ev.Node {
			t.Errorf("payload %+v", ps[0])
		}
		if ev.Node == victim {
			aboutVictim++
		}
	}
	if aboutVictim == 0 {
		t.Errorf("no node_dead about %s delivered", victim)
	}
	for idx := range got {
		found := false
		for _, ev := range deaths {
			found = found || ev.Index == idx
		}
		if !found {
			t.Errorf("delivery for event %d, which is not a node_dead in the log", idx)
		}
	}
	t.Logf("leader %s, %s stopped: %d node_dead events, each delivered once", leader, victim, len(deaths))
}
