package labcluster

import (
	"strings"
)

// Bind makes Source appear at Target for the processes of one node, as if
// the node had its own disk there: the lab's hosts share the machine's file
// system, and a directory replicated between nodes (the sync resource) must
// be a different directory on each.
type Bind struct {
	Source, Target string
}

// AddBind gives the node's processes started from now on (its agent, and
// any started through Node.Wrap) Source at Target. Target must exist.
func (c *Cluster) AddBind(node, source, target string) {
	c.t.Helper()
	n := c.Node(node)
	c.mu.Lock()
	defer c.mu.Unlock()
	n.Binds = append(n.Binds, Bind{Source: source, Target: target})
}

// Wrap returns argv run in a mount namespace of its own where the node's
// binds are mounted; argv itself when there are none. The program keeps the
// pid of the wrapper (unshare and sh exec it), so it can be signalled as is.
func (n *Node) Wrap(argv []string) []string {
	if len(n.Binds) == 0 {
		return argv
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, b := range n.Binds {
		script.WriteString("mount --bind " + shellQuote(b.Source) + " " + shellQuote(b.Target) + "\n")
	}
	script.WriteString(`exec "$@"`)
	return append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script.String(), "sh"}, argv...)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
