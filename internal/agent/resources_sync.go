package agent

import (
	"fmt"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	rsync "github.com/vigil-ha/vigil/internal/resource/sync"
)

func init() {
	resourceTypes["sync"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		// The targets are the nodes that could take the group over: they are the
		// ones that need the data.
		targets := r.To
		if len(targets) == 0 {
			targets = g.Nodes
		}
		var peers []rsync.Peer
		for _, name := range targets {
			if name == a.self.Name {
				continue
			}
			n, ok := a.cfg.Node(name)
			if !ok || len(n.Addresses) == 0 {
				return nil, fmt.Errorf("sync %s/%s: node %q has no address", g.Name, r.Name, name)
			}
			// The last address: by convention the heartbeat network (docs/config.md),
			// which keeps bulk copies off the public one.
			peers = append(peers, rsync.Peer{Name: name, Addr: n.Addresses[len(n.Addresses)-1]})
		}
		return rsync.New(r, rsync.Options{Logger: a.log.With("group", g.Name, "resource", r.Name), Self: a.self.Name, Peers: peers})
	}
}
