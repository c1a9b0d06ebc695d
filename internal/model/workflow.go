package model

// Workflow run life cycle, reported by the node whose engine ran the workflow. By
// says who started the run (operator, a node's remote step, a group's resource);
// Reason names the workflow, the run and where it finished.
const (
	EventWorkflowStarted     EventKind = "workflow_started"
	EventWorkflowEnded       EventKind = "workflow_ended"
	EventWorkflowAbended     EventKind = "workflow_abended"
	EventWorkflowStopped     EventKind = "workflow_stopped"
	EventWorkflowInterrupted EventKind = "workflow_interrupted"
)

// WorkflowRunRequest is the body of POST /v1/workflows/{name}/run; every field is optional.
type WorkflowRunRequest struct {
	From       string `json:"from,omitempty"`
	OnlyStep   string `json:"only_step,omitempty"`
	StepByStep bool   `json:"step_by_step,omitempty"`
	// Origin adds context to who started the run, e.g. the workflow, run and step of
	// a remote step; kept in the run's started_by.
	Origin string `json:"origin,omitempty"`
}

// WorkflowRunStarted answers a run request.
type WorkflowRunStarted struct {
	ID       string `json:"id"`
	Workflow string `json:"workflow"`
	Node     string `json:"node"`
}

// WorkflowRunStopped answers a stop request.
type WorkflowRunStopped struct {
	ID       string `json:"id"`
	Workflow string `json:"workflow"`
	Node     string `json:"node"`
}

// BatchRequest is the optional body of POST /v1/batch/{name}.
type BatchRequest struct {
	Params map[string]string `json:"params,omitempty"`
}

// BatchResult is the answer of POST /v1/batch/{name}: HTTP 200 when ExitCode is 0,
// 500 otherwise (the seed's contract), with the same body.
type BatchResult struct {
	Name string `json:"name"`
	// ExitCode is -1 when there is none: timed out, killed, could not start.
	ExitCode   int    `json:"exit_code"`
	Output     string `json:"output"`
	Truncated  bool   `json:"truncated,omitempty"`
	TimedOut   bool   `json:"timed_out,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}
