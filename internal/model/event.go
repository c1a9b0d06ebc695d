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
}
