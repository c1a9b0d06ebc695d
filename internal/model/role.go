package model

// Roles of one node's instance of a promotable resource, as resource_role events
// report them and GroupStatus.Roles shows them.
const (
	RolePromoted   = "promoted"
	RoleUnpromoted = "unpromoted"
	RoleStopped    = "stopped"
	RoleFailed     = "failed"
)
