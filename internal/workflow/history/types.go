package history

import (
	"time"

	"github.com/vigil-ha/vigil/internal/workflow"
)

// Run is one run of a workflow as recorded: its header, and (from Store.Run) its attempts.
type Run struct {
	ID       string `json:"id"`
	Workflow string `json:"workflow"`
	// StartedBy is free text: "operator:alice", "decision-engine", a remote node's name.
	StartedBy string              `json:"started_by"`
	Options   workflow.RunOptions `json:"options"`
	Started   time.Time           `json:"started"`
	Ended     time.Time           `json:"ended,omitzero"`
	Result    workflow.Result     `json:"result"`
	// Phase, Step and Until say what a running run is doing: waiting (until Until),
	// executing or paused before Step. For a finished run Step is the last step.
	Phase string    `json:"phase,omitempty"`
	Step  string    `json:"step,omitempty"`
	Until time.Time `json:"until,omitzero"`
	// Commit is the last consistency point passed.
	Commit string `json:"commit,omitempty"`
	// Note explains an unusual result (interrupted by a crash, history write failed).
	Note string `json:"note,omitempty"`
	// Attempts counts the attempt records written; QuietChecks the passing watch checks
	// that were counted instead (see workflow.Transition.Quiet).
	Attempts    int       `json:"attempts"`
	QuietChecks int       `json:"quiet_checks,omitempty"`
	LastCheck   time.Time `json:"last_check,omitzero"`

	// Steps holds the attempts, oldest first; filled by Store.Run only.
	Steps []Attempt `json:"steps,omitempty"`
}

// Attempt is one execution of a step (one check of a watch step).
type Attempt struct {
	Seq     int    `json:"seq"` // 1, 2, … within the run
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
	Check   int    `json:"check,omitempty"`
	// Command is what ran, for the trace (nil for a pure wait step).
	Command  []string      `json:"command,omitempty"`
	Started  time.Time     `json:"started"`
	Ended    time.Time     `json:"ended,omitzero"` // zero while it runs
	Duration time.Duration `json:"duration_ns,omitempty"`
	// ExitCode is -1 when there is none: timed out, killed, could not start, interrupted.
	ExitCode  int    `json:"exit_code"`
	TimedOut  bool   `json:"timed_out,omitempty"`
	Signal    string `json:"signal,omitempty"`
	Error     string `json:"error,omitempty"`
	Output    string `json:"output,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Transition (leave, retry, watch, stopped) and Target record what the exit code decided.
	Transition string `json:"transition,omitempty"`
	Target     string `json:"target,omitempty"`
	Commit     bool   `json:"commit,omitempty"`
}

// Filter selects runs; zero fields match everything.
type Filter struct {
	Workflow string
	Result   workflow.Result
	// Before lists only runs with an id before this one: paging, newest first.
	Before string
}

func (f Filter) match(r *Run) bool {
	return (f.Workflow == "" || r.Workflow == f.Workflow) && (f.Result == "" || r.Result == f.Result)
}
