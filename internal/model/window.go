package model

import "time"

// MaintenanceWindow is the body of POST /v1/maintenance/window: planned maintenance
// for Group (the whole cluster when empty), declared ahead so that availability
// reports exclude it.
type MaintenanceWindow struct {
	Group  string    `json:"group,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}
