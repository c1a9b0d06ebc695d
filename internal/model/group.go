package model

import "time"

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
	// Roles: promotable resource -> node -> the role its instance there last
	// reported (promoted, unpromoted, stopped, failed).
	Roles map[string]map[string]string `json:"roles,omitempty"`
	// Sync is the replication of the group's sync resources, one entry per
	// resource and target, as Node measures it.
	Sync []SyncStatus `json:"sync,omitempty"`
	// SyncUnknown says why Sync is missing for a group with sync resources
	// (Node could not be asked, or it does not run them yet).
	SyncUnknown string `json:"sync_unknown,omitempty"`
}

// SyncStatus is one sync resource's replication to one target node, as the
// node running the group (the source: copies only go outwards from it) sees it.
type SyncStatus struct {
	Group    string `json:"group"`
	Resource string `json:"resource"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	// LastPass is the start of the last pass that reached Target: its copy has
	// every write made on Source before then. Absent when none has since the
	// resource started on Source.
	LastPass *time.Time `json:"last_pass,omitempty"`
	// LagSeconds is the time since LastPass (since the start, without one) when
	// Source answered: writes made during it exist only on Source.
	LagSeconds float64 `json:"lag_seconds"`
	// Error is why the last pass to Target failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// OperatorAction is the body of the operator endpoints.
type OperatorAction struct {
	Group  string `json:"group,omitempty"`
	Node   string `json:"node,omitempty"`
	On     *bool  `json:"on,omitempty"`
	Reason string `json:"reason,omitempty"`
}
