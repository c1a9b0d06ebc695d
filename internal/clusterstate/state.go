package clusterstate

import (
	"maps"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Runtime states a node reports for a group it runs or stops.
const (
	RunStarting = "starting"
	RunRunning  = "running"
	RunStopping = "stopping"
	RunStopped  = "stopped"
	RunFailed   = "failed"
	// RunStopFailed: a stop did not complete; parts of the group may still run
	// there, so it does not count as stopped (the node gives up its lease instead).
	RunStopFailed = "stop_failed"
)

// Report is the last thing a node said about a group.
type Report struct {
	State  string    `json:"state"`
	Index  uint64    `json:"index"` // event index of the report
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"` // the reporter's clock
}

// Flag marks "group G failed on node N"; it survives restarts until an operator clears it.
type Flag struct {
	Reason string `json:"reason"`
	Index  uint64 `json:"index"`
}

// Group is everything the log says about one group.
type Group struct {
	// Node and Epoch: the group may run on Node only while Node holds this lease epoch.
	Node  string `json:"node,omitempty"`
	Epoch string `json:"epoch,omitempty"`
	// AssignedAt is the index of the assignment (or release) event.
	AssignedAt uint64 `json:"assigned_at,omitempty"`
	// Releasing: the coordinator asked Node to stop the group; Target runs it next.
	Releasing bool   `json:"releasing,omitempty"`
	Target    string `json:"target,omitempty"`
	// Ever is true once the group has been assigned at least once.
	Ever bool `json:"ever,omitempty"`
	// Takeover: the current assignment moved the group from a node that failed with
	// it (its lease ran out, or it was released because it failed there), not from a
	// clean operator move, failback or first placement. A workflow resource then runs
	// its takeover workflow (the seed's takeControl) instead of its start.
	Takeover bool `json:"takeover,omitempty"`

	Reports            map[string]Report `json:"reports,omitempty"`
	Flags              map[string]Flag   `json:"flags,omitempty"`
	MoveTarget         string            `json:"move_target,omitempty"`
	FailbackAuthorised bool              `json:"failback_authorised,omitempty"`
	Maintenance        bool              `json:"maintenance,omitempty"`
	// Checks: check name -> observer -> its latest state.
	Checks map[string]map[string]CheckReport `json:"checks,omitempty"`
	// LostAt is the index of the last group_lost verdict (0: none).
	LostAt uint64 `json:"lost_at,omitempty"`
	// Intruders: nodes asked to stop a copy they run without owning the group.
	Intruders map[string]uint64 `json:"intruders,omitempty"`
	// Roles: promotable resource -> node -> the role its instance last reported.
	Roles map[string]map[string]string `json:"roles,omitempty"`
}

// RunState is what Node reported about the current assignment: starting
// until it reports, "" when the group is assigned nowhere.
func (g Group) RunState() string {
	if g.Node == "" {
		return ""
	}
	if r, ok := g.Reports[g.Node]; ok && r.Index >= g.AssignedAt {
		return r.State
	}
	return RunStarting
}

// CheckReport is one observer's view of one group check.
type CheckReport struct {
	State string    `json:"state"`
	Since time.Time `json:"since"` // the observer's clock, when State began
	Index uint64    `json:"index"`
}

// State is the projection of the whole log. Apply must stay deterministic: every
// replica applies the same events in the same order.
type State struct {
	Groups      map[string]*Group `json:"groups"`
	Maintenance bool              `json:"maintenance"`
	LastIndex   uint64            `json:"last_index"`
	// Fenced: node -> the lease epoch it held when a fence device confirmed it off.
	Fenced map[string]string `json:"fenced,omitempty"`
	// PublicLost: nodes that reach none of their public targets.
	PublicLost map[string]bool `json:"public_lost,omitempty"`
	// Tokens: the live API tokens by name (tokens.go).
	Tokens map[string]model.TokenInfo `json:"tokens,omitempty"`
}

// New returns an empty state.
func New() *State {
	return &State{Groups: map[string]*Group{}, Fenced: map[string]string{}, PublicLost: map[string]bool{}, Tokens: map[string]model.TokenInfo{}}
}

func (s *State) group(name string) *Group {
	g, ok := s.Groups[name]
	if !ok {
		g = &Group{Reports: map[string]Report{}, Flags: map[string]Flag{},
			Checks: map[string]map[string]CheckReport{}, Intruders: map[string]uint64{}}
		s.Groups[name] = g
	}
	return g
}

// Apply folds one committed event into the state.
func (s *State) Apply(ev model.Event) {
	s.LastIndex = ev.Index
	if ev.Group == "" {
		switch ev.Kind {
		case model.EventMaintenanceOn:
			s.Maintenance = true
		case model.EventMaintenanceOff:
			s.Maintenance = false
		case model.EventNodeFenced:
			s.Fenced[ev.Node] = ev.Epoch
		case model.EventPublicLost:
			s.PublicLost[ev.Reporter] = true
		case model.EventPublicRegained:
			delete(s.PublicLost, ev.Reporter)
		case model.EventTokenCreated, model.EventTokenRevoked:
			s.applyToken(ev)
		}
		return
	}
	g := s.group(ev.Group)
	switch ev.Kind {
	case model.EventGroupAssigned:
		_, prevFailed := g.Flags[g.Node]
		g.Takeover = g.Node != "" && g.Node != ev.Node && (!g.Releasing || prevFailed)
		g.Node, g.Epoch, g.AssignedAt, g.Ever = ev.Node, ev.Epoch, ev.Index, true
		g.Releasing, g.Target = false, ""
		if g.MoveTarget == ev.Node {
			g.MoveTarget = ""
		}
		g.FailbackAuthorised = false
	case model.EventGroupReleased:
		g.Releasing, g.Target, g.AssignedAt = true, ev.Target, ev.Index
	case model.EventGroupStarting:
		g.Reports[ev.Reporter] = Report{State: RunStarting, Index: ev.Index, Reason: ev.Reason, Time: ev.Time}
	case model.EventGroupStarted:
		g.Reports[ev.Reporter] = Report{State: RunRunning, Index: ev.Index, Reason: ev.Reason, Time: ev.Time}
	case model.EventGroupStopping:
		g.Reports[ev.Reporter] = Report{State: RunStopping, Index: ev.Index, Reason: ev.Reason, Time: ev.Time}
	case model.EventGroupStopped:
		g.Reports[ev.Reporter] = Report{State: RunStopped, Index: ev.Index, Reason: ev.Reason, Time: ev.Time}
	case model.EventGroupStartFailed, model.EventGroupFailed:
		g.Reports[ev.Reporter] = Report{State: RunFailed, Index: ev.Index, Reason: ev.Reason, Time: ev.Time}
	case model.EventGroupStopFailed:
		g.Reports[ev.Reporter] = Report{State: RunStopFailed, Index: ev.Index, Reason: ev.Reason, Time: ev.Time}
	case model.EventFlagSet:
		g.Flags[ev.Node] = Flag{Reason: ev.Reason, Index: ev.Index}
	case model.EventFlagCleared:
		if ev.Node == "" {
			clear(g.Flags)
		} else {
			delete(g.Flags, ev.Node)
		}
	case model.EventMoveRequested:
		g.MoveTarget = ev.Target
	case model.EventFailbackAuthorised:
		g.FailbackAuthorised = true
	case model.EventCheckChanged:
		if g.Checks[ev.Resource] == nil {
			g.Checks[ev.Resource] = map[string]CheckReport{}
		}
		g.Checks[ev.Resource][ev.Reporter] = CheckReport{State: ev.State, Since: ev.Time, Index: ev.Index}
	case model.EventGroupLost:
		g.LostAt = ev.Index
	case model.EventIntruderStop:
		g.Intruders[ev.Node] = ev.Index
	case model.EventResourceRole:
		if g.Roles == nil {
			g.Roles = map[string]map[string]string{} // absent from older snapshots
		}
		if g.Roles[ev.Resource] == nil {
			g.Roles[ev.Resource] = map[string]string{}
		}
		g.Roles[ev.Resource][ev.Reporter] = ev.State
	case model.EventMaintenanceOn:
		g.Maintenance = true
	case model.EventMaintenanceOff:
		g.Maintenance = false
	}
}

// Clone returns a deep copy that the caller may keep.
func (s *State) Clone() *State {
	out := &State{Groups: make(map[string]*Group, len(s.Groups)), Maintenance: s.Maintenance, LastIndex: s.LastIndex,
		Fenced: maps.Clone(s.Fenced), PublicLost: maps.Clone(s.PublicLost), Tokens: maps.Clone(s.Tokens)}
	for k, g := range s.Groups {
		c := *g
		c.Reports = maps.Clone(g.Reports)
		c.Flags = maps.Clone(g.Flags)
		c.Intruders = maps.Clone(g.Intruders)
		c.Checks = make(map[string]map[string]CheckReport, len(g.Checks))
		for k, v := range g.Checks {
			c.Checks[k] = maps.Clone(v)
		}
		if g.Roles != nil {
			c.Roles = make(map[string]map[string]string, len(g.Roles))
			for k, v := range g.Roles {
				c.Roles[k] = maps.Clone(v)
			}
		}
		out.Groups[k] = &c
	}
	return out
}

// Get returns the named group's state, or an empty one.
func (s *State) Get(name string) Group {
	if g, ok := s.Groups[name]; ok {
		return *g
	}
	return Group{}
}
