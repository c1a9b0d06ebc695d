package model

// Status is one node's view of the cluster, as served at /v1/status.
type Status struct {
	Cluster string `json:"cluster"`
	// Node is the node that answered.
	Node string `json:"node"`
	// Leader is the coordinator (the consensus leader), empty when none is known.
	Leader string       `json:"leader"`
	Quorum bool         `json:"quorum"`
	Nodes  []NodeStatus `json:"nodes"`
	// Heartbeat counts packets the answering node dropped, by reason.
	Heartbeat HeartbeatCounters `json:"heartbeat"`
}

// NodeStatus is one node as seen by the answering node.
type NodeStatus struct {
	Name  string       `json:"name"`
	Role  Role         `json:"role"`
	State NodeState    `json:"state"`
	Lease bool         `json:"lease"`
	Links []LinkStatus `json:"links"`
	// LeaseEpoch names the lease tenure, "incarnation.generation".
	LeaseEpoch string `json:"lease_epoch,omitempty"`
	// LastHeardMS is milliseconds since any heartbeat arrived; -1 when never, absent for self.
	LastHeardMS *int64 `json:"last_heard_ms,omitempty"`
	Self        bool   `json:"self,omitempty"`
}

// LinkStatus is one heartbeat path to a node.
type LinkStatus struct {
	Address string    `json:"address"`
	State   LinkState `json:"state"`
}

// HeartbeatCounters are the heartbeat transport's drop counters.
type HeartbeatCounters struct {
	Received      uint64 `json:"received"`
	Malformed     uint64 `json:"malformed"`
	BadMAC        uint64 `json:"bad_mac"`
	Replayed      uint64 `json:"replayed"`
	UnknownSender uint64 `json:"unknown_sender"`
	SendErrors    uint64 `json:"send_errors"`
}
