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
	// Elections after this point (a loaded machine) allow a repeat by the new coordinator.
	var before uint64
	if pre, err := c.Client(leader).Events(context.Background(), 0, 10000); err == nil && len(pre) > 0 {
		before = pre[len(pre)-1].Index
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
	var coordinators []string // index:node of each coordinator_changed, for the log
	electionsAfter := 0
	readDeaths := func() bool {
		electionsAfter = 0
		evs, err := cl.Events(context.Background(), 0, 10000)
		if err != nil {
			return false
		}
		deaths, coordinators = deaths[:0], coordinators[:0]
		for _, ev := range evs {
			if ev.Kind == model.EventNodeDead && ev.Index > 0 {
				deaths = append(deaths, ev)
			}
			if ev.Kind == model.EventCoordinatorChange {
				coordinators = append(coordinators, fmt.Sprintf("%d:%s", ev.Index, ev.Node))
				if ev.Index > before {
					electionsAfter++
				}
			}
		}
		return true
	}
	c.WaitFor("node_dead in the log and delivered", 15*time.Second, func() bool {
		if !readDeaths() {
			return false
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
	// Give the other nodes every chance to send duplicates, and the survivors'
	// later reports of the same death time to be committed and delivered.
	time.Sleep(2 * time.Second)
	c.WaitFor("the log", 5*time.Second, readDeaths)

	mu.Lock()
	defer mu.Unlock()
	if badSig > 0 {
		t.Errorf("%d deliveries with a bad signature", badSig)
	}
	// At-least-once: a coordinator change may repeat an event (from the new
	// coordinator), but no node ever sends one twice. The death of a node that
	// does not coordinate involves no election, so it is delivered exactly once.
	aboutVictim := 0
	for _, ev := range deaths {
		ps := got[ev.Index]
		if len(ps) == 0 {
			t.Errorf("event %d (node_dead about %s from %s) not delivered", ev.Index, ev.Node, ev.Reporter)
			continue
		}
		senders := map[string]bool{}
		for _, p := range ps {
			if senders[p.Sender] {
				t.Errorf("event %d delivered twice by %s", ev.Index, p.Sender)
			}
			senders[p.Sender] = true
			if p.ID != fmt.Sprintf("test/%d", ev.Index) || p.Event.Node != ev.Node || p.Event.Reporter != ev.Reporter {
				t.Errorf("payload %+v for event %+v", p, ev)
			}
		}
		if ev.Node != victim {
			continue // earlier flaps (a slow start under the race detector)
		}
		aboutVictim++
		switch {
		case senders[victim]:
			t.Errorf("event %d about %s delivered by %s itself", ev.Index, victim, victim)
		case !stopLeader && electionsAfter == 0 && (len(ps) != 1 || ps[0].Sender != leader):
			t.Errorf("event %d (node_dead about %s from %s) delivered %d times, by %v; want once, by %s",
				ev.Index, ev.Node, ev.Reporter, len(ps), senders, leader)
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
	t.Logf("leader %s, %s stopped: %d node_dead events (%d about %s), %d deliveries; coordinators %v",
		leader, victim, len(deaths), aboutVictim, victim, deliveries(got), coordinators)
}

func deliveries(got map[uint64][]notify.Payload) int {
	n := 0
	for _, ps := range got {
		n += len(ps)
	}
	return n
}
