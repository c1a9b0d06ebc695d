package model

// Role says whether a voter may run groups.
type Role string

const (
	RoleVoter   Role = "voter"
	RoleWitness Role = "witness"
)

// NodeState is one node's view of a peer's liveness, in Heartbeat's vocabulary.
type NodeState string

const (
	NodeAlive   NodeState = "alive"
	NodeSuspect NodeState = "suspect" // silent for longer than warntime
	NodeDead    NodeState = "dead"    // silent for longer than deadtime
)

// LinkState is the state of one heartbeat path to a peer.
type LinkState string

const (
	LinkUp   LinkState = "up"
	LinkDown LinkState = "down"
)
