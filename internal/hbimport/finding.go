package hbimport

import (
	"fmt"
	"strings"
)

// Finding is one line of the Heartbeat configuration that the operator must look
// at: either it has no translation, or it was translated with a change.
type Finding struct {
	File      string
	Line      int // 0 when it concerns the file as a whole (e.g. a missing directive)
	Directive string
	Reason    string
	// Changed is set when the line was translated, but not literally (a value
	// adjusted to vigil's rules, a default made explicit); unset means the line
	// has no translation at all.
	Changed bool
}

// String is FILE:LINE: directive: reason, the form editors and grep understand.
func (f Finding) String() string {
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Directive, f.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", f.File, f.Directive, f.Reason)
}

// InputError is one line of the inputs that Heartbeat itself would have refused:
// a time that is not a time, a ucast without a peer address.
type InputError struct {
	File      string
	Line      int
	Directive string
	Msg       string
}

func (e InputError) String() string {
	return Finding{File: e.File, Line: e.Line, Directive: e.Directive, Reason: e.Msg}.String()
}

// InputErrors lists every such line, so that one run shows them all.
type InputErrors []InputError

func (es InputErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}
