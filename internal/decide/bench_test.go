package decide

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/clusterstate"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/model"
)

// BenchmarkPlacementAfterNodeDeath measures one decision round after one of 64
// nodes died, with 2,000 groups spread over them (brief.md target: ≤ 10 ms).
func BenchmarkPlacementAfterNodeDeath(b *testing.B) {
	const nodes, groups = 64, 2000
	in := Input{Coordinator: "n0", State: clusterstate.New(), Nodes: map[string]Node{}, Uptime: time.Hour, Initdead: time.Second}
	for i := 0; i < nodes; i++ {
		n := fmt.Sprintf("n%d", i)
		in.Nodes[n] = Node{Name: n, Eligible: true, Epoch: membership.Epoch{Incarnation: uint64(i + 1), Gen: 1}, AliveFor: time.Hour}
	}
	idx := uint64(0)
	for i := 0; i < groups; i++ {
		g := config.Group{Name: fmt.Sprintf("g%d", i), Failback: "manual",
			Nodes: []string{fmt.Sprintf("n%d", i%nodes), fmt.Sprintf("n%d", (i+1)%nodes), fmt.Sprintf("n%d", (i+2)%nodes)}}
		in.Groups = append(in.Groups, g)
		idx++
		in.State.Apply(model.Event{Index: idx, Kind: model.EventGroupAssigned, Group: g.Name, Node: g.Nodes[0], Epoch: in.Nodes[g.Nodes[0]].Epoch.String()})
	}
	dead := in.Nodes["n7"]
	dead.Eligible = false
	in.Nodes["n7"] = dead
	in.SurelyExpired = func(n string, _ membership.Epoch) bool { return n == "n7" }
	b.ResetTimer()
	var moved int
	for i := 0; i < b.N; i++ {
		moved = len(Decide(in))
	}
	if moved != 2000/64+1 {
		b.Fatalf("moved %d groups, want %d", moved, 2000/64+1)
	}
}
