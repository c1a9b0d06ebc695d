package model

// GroupStatus is one group as served at /v1/groups.
type GroupStatus struct {
	Name     string   `json:"name"`
	Nodes    []string `json:"nodes"` // preference order
	Failback string   `json:"failback"`
	// Node runs (or is assigned) the group; empty when nowhere.
	Node  string `json:"node"`
	Epoch string `json:"epoch,omitempty"`
	// State is what Node last reported: starting, running, stopping, stopped, failed; "unassigned".
	State       string            `json:"state"`
	Releasing   bool              `json:"releasing,omitempty"`
	Target      string            `json:"target,omitempty"`
	Flags       map[string]string `json:"flags,omitempty"` // node -> reason
	Maintenance bool              `json:"maintenance"`
	MoveTarget  string            `json:"move_target,omitempty"`
	// FailbackPending: a more preferred node is back and waits for an operator.
	FailbackAuthorised bool `json:"failback_authorised,omitempty"`
	// Checks: check name -> observing node -> its latest state (up, down, unknown).
	Checks map[string]map[string]string `json:"checks,omitempty"`
}

// OperatorAction is the body of the operator endpoints.
type OperatorAction struct {
	Group  string `json:"group,omitempty"`
	Node   string `json:"node,omitempty"`
	On     *bool  `json:"on,omitempty"`
	Reason string `json:"reason,omitempty"`
}
