package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Node returns the node called name.
func (c *Config) Node(name string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// NodeNames lists every node, witnesses included, in file order.
func (c *Config) NodeNames() []string {
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.Name
	}
	return names
}

// HeartbeatAddr is the UDP address of node n on link i.
func (c *Config) HeartbeatAddr(n Node, link int) string {
	return net.JoinHostPort(n.Addresses[link], strconv.Itoa(c.Cluster.Ports.Heartbeat))
}

// RaftAddr is where node n's raft transport listens: its first address.
func (c *Config) RaftAddr(n Node) string {
	return net.JoinHostPort(n.Addresses[0], strconv.Itoa(c.Cluster.Ports.Raft))
}

// RaftAddrs lists where node n's raft transport listens, one per address: the
// first is RaftAddr, the others let consensus go on over another link when
// that one is cut.
func (c *Config) RaftAddrs(n Node) []string {
	out := make([]string, len(n.Addresses))
	for i, a := range n.Addresses {
		out[i] = net.JoinHostPort(a, strconv.Itoa(c.Cluster.Ports.Raft))
	}
	return out
}

// APIAddrs lists where node n serves the HTTPS API, one per address.
func (c *Config) APIAddrs(n Node) []string {
	out := make([]string, len(n.Addresses))
	for i, a := range n.Addresses {
		out[i] = net.JoinHostPort(a, strconv.Itoa(c.Cluster.Ports.API))
	}
	return out
}

// LeaseDuration is how long one round of quorum acknowledgements keeps a node's lease.
// It leaves deadtime room for two missed heartbeats plus the clock-drift margin, so that
// a peer that declares a node dead at deadtime knows its grant has already run out
// (docs/safety.md has the argument).
func (t Timing) LeaseDuration() time.Duration {
	d := t.Deadtime.D() - 2*t.Keepalive.D()
	// Once for the holder's clock running slow, once for the observer's running fast.
	return time.Duration(float64(d) / ((1 + t.ClockDrift) * (1 + t.ClockDrift)))
}

// Warnings are legal but risky settings that `vigil config validate` reports without failing.
func (c *Config) Warnings() []string {
	var ws []string
	// Every node votes, witnesses included: two in all is the dangerous pair.
	if len(c.Nodes) == 2 {
		ws = append(ws, fmt.Sprintf("%s: nodes: two voters have no safe majority: either node alone cannot tell a dead peer from a cut link; add a witness (or configure a fence device) for automatic failover", c.Path))
	}
	return append(ws, c.warnings...)
}
