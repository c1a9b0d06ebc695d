package model

import "time"

// Drill events. A drill is a planned move of a group to another node (and
// optionally back) while a client-side probe measures what users see: the
// Heartbeat-era "pull the plug on Sunday" redundancy test, made routine.
const (
	EventDrillStarted  EventKind = "drill_started"
	EventDrillFinished EventKind = "drill_finished"
)

// Drill outcomes.
const (
	DrillRunning = "running"
	DrillPassed  = "passed"
	DrillFailed  = "failed"
)

// DrillRequest asks for a drill (POST /v1/drills).
type DrillRequest struct {
	Group  string `json:"group"`
	To     string `json:"to,omitempty"`   // default: another node of the group that is alive
	Back   bool   `json:"back,omitempty"` // move it back to where it ran afterwards
	Reason string `json:"reason,omitempty"`
}

// Drill is one drill and, once finished, its result; drill_started and
// drill_finished events carry it, so the replicated log is its storage.
type Drill struct {
	ID        string    `json:"id"`
	Group     string    `json:"group"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Back      bool      `json:"back,omitempty"`
	By        string    `json:"by"`
	Reason    string    `json:"reason,omitempty"`
	Scheduled bool      `json:"scheduled,omitempty"`
	Runner    string    `json:"runner"` // the node that ran the drill and its probe
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended,omitzero"`
	Outcome   string    `json:"outcome"` // running, passed, failed
	Error     string    `json:"error,omitempty"`
	// Probe names what the client-side probe checked ("" when the group has
	// none, and then no client view was measured).
	Probe        string      `json:"probe,omitempty"`
	ProbesSent   int         `json:"probes_sent"`
	ProbesFailed int         `json:"probes_failed"`
	Steps        []DrillStep `json:"steps"`
}

// DrillStep is one step's timing; OutageMS is the longest stretch the probe
// saw no answer during the step (upper bound, within one probe interval), nil
// when there was no probe.
type DrillStep struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	OK       bool      `json:"ok"`
	Detail   string    `json:"detail,omitempty"`
	OutageMS *int64    `json:"outage_ms,omitempty"`
}

// OutageMS is the longest client-visible outage over all steps (nil: not measured).
func (d *Drill) OutageMS() *int64 {
	var worst *int64
	for _, s := range d.Steps {
		if s.OutageMS != nil && (worst == nil || *s.OutageMS > *worst) {
			v := *s.OutageMS
			worst = &v
		}
	}
	return worst
}
