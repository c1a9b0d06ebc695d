package model

import "time"

// EventKind names what happened. New kinds are appended; the strings are part of the API.
type EventKind string

const (
	EventNodeJoined        EventKind = "node_joined"
	EventNodeLeft          EventKind = "node_left"
	EventLinkDown          EventKind = "link_down"
	EventLinkUp            EventKind = "link_up"
	EventNodeWarning       EventKind = "node_warning"
	EventNodeDead          EventKind = "node_dead"
	EventNodeAlive         EventKind = "node_alive"
	EventLeaseLost         EventKind = "lease_lost"
	EventLeaseRegained     EventKind = "lease_regained"
	EventQuorumLost        EventKind = "quorum_lost"
	EventQuorumRegained    EventKind = "quorum_regained"
	EventCoordinatorChange EventKind = "coordinator_changed"
	EventAuthRejected      EventKind = "auth_rejected"
	EventEventsDropped     EventKind = "events_dropped"

	// Group life cycle. The coordinator writes assignments and releases; the node
	// that runs a group reports what happened to it; operators write requests.
	EventGroupAssigned      EventKind = "group_assigned"
	EventGroupReleased      EventKind = "group_released"
	EventGroupStarting      EventKind = "group_starting"
	EventGroupStarted       EventKind = "group_started"
	EventGroupStartFailed   EventKind = "group_start_failed"
	EventGroupStopping      EventKind = "group_stopping"
	EventGroupStopped       EventKind = "group_stopped"
	EventGroupStopFailed    EventKind = "group_stop_failed"
	EventGroupFailed        EventKind = "group_failed"
	EventGroupRestarting    EventKind = "group_restarting"
	EventResourceAction     EventKind = "resource_action"
	EventFlagSet            EventKind = "flag_set"
	EventFlagCleared        EventKind = "flag_cleared"
	EventMoveRequested      EventKind = "move_requested"
	EventFailbackAuthorised EventKind = "failback_authorised"
	EventMaintenanceOn      EventKind = "maintenance_on"
	EventMaintenanceOff     EventKind = "maintenance_off"
	EventNodeFenced         EventKind = "node_fenced"
	EventNodeIsolated       EventKind = "node_isolated"
	EventNodeRecovered      EventKind = "node_recovered"
	EventCheckChanged       EventKind = "check_changed"
	EventPublicLost         EventKind = "public_lost"
	EventPublicRegained     EventKind = "public_regained"
	EventGroupLost          EventKind = "group_lost"
	EventSplitBrain         EventKind = "split_brain"
	EventIntruderStop       EventKind = "intruder_stop_requested"
	EventFenceFailed        EventKind = "fence_failed"
	// EventMaintenanceWindow declares planned maintenance from WindowStart to
	// WindowEnd (for Group, or the whole cluster when Group is empty). It only
	// excludes that time from availability reports; it switches nothing off.
	EventMaintenanceWindow EventKind = "maintenance_window"
	// EventDataLossWindow: a node took a group over with a replicated copy (a
	// sync resource); Reason says how old the copy was and up to how much of
	// what Node (the previous source) wrote after it is missing.
	EventDataLossWindow EventKind = "data_loss_window"
	// EventSyncUnguarded: copies reached Reporter's copy of a sync path
	// without `vigil sync-guard` running for them (no rsyncd pre-xfer exec or
	// ssh forced command): copies into a group this node runs are not refused.
	EventSyncUnguarded EventKind = "sync_unguarded"
	// EventResourceRole: the role of Reporter's instance of a promotable
	// resource changed; State is one of the Role* values.
	EventResourceRole EventKind = "resource_role"
)

// Severity orders events for notification routing and colouring.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Event is one entry of the replicated, append-only event log.
// Index is assigned by the log when the entry is committed; zero before.
type Event struct {
	Index    uint64    `json:"index"`
	Time     time.Time `json:"time"`
	Kind     EventKind `json:"kind"`
	Severity Severity  `json:"severity"`
	// Reporter is the node that observed the event; Node is the node it is about.
	Reporter string `json:"reporter"`
	Node     string `json:"node,omitempty"`
	// Link is the link's address on Node, when the event is about one link.
	Link   string `json:"link,omitempty"`
	Reason string `json:"reason"`
	// Group, when the event is about a service group.
	Group string `json:"group,omitempty"`
	// Resource, when the event is about one resource of Group.
	Resource string `json:"resource,omitempty"`
	// Epoch is the lease epoch an assignment is bound to ("incarnation.generation").
	Epoch string `json:"epoch,omitempty"`
	// Target is where a release or a move request sends the group next.
	Target string `json:"target,omitempty"`
	// By names who asked for an operator action (token name).
	By string `json:"by,omitempty"`
	// Output is a resource action's captured output.
	Output string `json:"output,omitempty"`
	// State is a check's new state (up, down, unknown) in check_changed events.
	State string `json:"state,omitempty"`
	// WindowStart and WindowEnd bound a declared maintenance window.
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   *time.Time `json:"window_end,omitempty"`
	// Token is the token a token_created or token_revoked event is about.
	Token *TokenInfo `json:"token,omitempty"`
	// Drill is the drill a drill_started or drill_finished event is about.
	Drill *Drill `json:"drill,omitempty"`
}
