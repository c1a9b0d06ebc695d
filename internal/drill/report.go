package drill

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// WriteReport prints a drill as a report an operator can hand on: what moved
// where, each step's timing, what a client saw and what failed.
func WriteReport(w io.Writer, d model.Drill) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Failover drill %s: group %s, %s -> %s", d.ID, d.Group, d.From, d.To)
	if d.Back {
		fmt.Fprintf(&b, " -> %s", d.From)
	}
	fmt.Fprintf(&b, "\n  outcome:  %s\n", strings.ToUpper(d.Outcome))
	by := d.By
	if d.Scheduled {
		by += " (scheduled)"
	}
	fmt.Fprintf(&b, "  started:  %s by %s, run from %s\n", d.Started.Format(time.RFC3339), by, d.Runner)
	if !d.Ended.IsZero() {
		fmt.Fprintf(&b, "  ended:    %s (%s)\n", d.Ended.Format(time.RFC3339), ms(d.Ended.Sub(d.Started)))
	}
	if d.Reason != "" {
		fmt.Fprintf(&b, "  reason:   %s\n", d.Reason)
	}
	switch out := d.OutageMS(); {
	case d.Probe == "":
		b.WriteString("  client view: not measured (the group has no drill probe or check to use)\n")
	case out == nil:
		fmt.Fprintf(&b, "  client view: %s, no probe finished\n", d.Probe)
	default:
		fmt.Fprintf(&b, "  client view: %s, %d probes, %d unanswered; longest outage %s\n",
			d.Probe, d.ProbesSent, d.ProbesFailed, ms(time.Duration(*out)*time.Millisecond))
	}
	b.WriteString("  steps:\n")
	for _, s := range d.Steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "    %s %-36s %9s", mark, s.Name, ms(s.Ended.Sub(s.Started)))
		if s.OutageMS != nil {
			fmt.Fprintf(&b, "  outage %s", ms(time.Duration(*s.OutageMS)*time.Millisecond))
		}
		if s.Detail != "" {
			fmt.Fprintf(&b, "\n         %s", s.Detail)
		}
		b.WriteString("\n")
	}
	if d.Error != "" {
		fmt.Fprintf(&b, "  failed: %s\n", d.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
