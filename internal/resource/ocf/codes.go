package ocf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OCF exit codes, as defined by the OCF resource agent API and ocf-returncodes.
const (
	Success          = 0
	ErrGeneric       = 1
	ErrArgs          = 2
	ErrUnimplemented = 3
	ErrPerm          = 4
	ErrInstalled     = 5
	ErrConfigured    = 6
	NotRunning       = 7
	RunningMaster    = 8
	FailedMaster     = 9
)

var codeNames = map[int]string{
	Success:          "OCF_SUCCESS",
	ErrGeneric:       "OCF_ERR_GENERIC",
	ErrArgs:          "OCF_ERR_ARGS",
	ErrUnimplemented: "OCF_ERR_UNIMPLEMENTED",
	ErrPerm:          "OCF_ERR_PERM",
	ErrInstalled:     "OCF_ERR_INSTALLED",
	ErrConfigured:    "OCF_ERR_CONFIGURED",
	NotRunning:       "OCF_NOT_RUNNING",
	RunningMaster:    "OCF_RUNNING_MASTER",
	FailedMaster:     "OCF_FAILED_MASTER",
}

// CodeName is the OCF name of an exit code, e.g. "OCF_ERR_CONFIGURED", so that
// errors say what the agent meant and not only a number.
func CodeName(code int) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	return "exit " + strconv.Itoa(code)
}

// ActionError is a failed agent action. Callers can look at Code to tell a
// node-local problem (ErrInstalled, ErrPerm: try another node) from a
// configuration that fails everywhere (ErrConfigured, ErrArgs).
type ActionError struct {
	Agent    string // provider/type
	Action   string
	Code     int // -1 when the agent was killed (timeout or signal)
	TimedOut bool
	Timeout  time.Duration
	Signal   string
	// Reason is the agent's ocf-exit-reason line if it printed one, otherwise
	// the last line of its output.
	Reason string
}

func (e *ActionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ocf %s %s: ", e.Agent, e.Action)
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "timed out after %s, process group killed", e.Timeout.Round(time.Millisecond))
	case e.Signal != "":
		fmt.Fprintf(&b, "killed by %s", e.Signal)
	default:
		fmt.Fprintf(&b, "exit %d (%s)", e.Code, CodeName(e.Code))
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// exitReason picks the most useful line of an agent's output: ocf_exit_reason
// writes "ocf-exit-reason:TEXT" to stderr precisely for this.
func exitReason(out []byte) string {
	last := ""
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if r, ok := strings.CutPrefix(line, "ocf-exit-reason:"); ok {
			return clip(strings.TrimSpace(r))
		}
		if line != "" {
			last = line
		}
	}
	return clip(last)
}

func clip(s string) string {
	const max = 300
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
