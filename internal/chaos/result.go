package chaos

import (
	"time"
)

// Result is a run's summary, written as JSON next to its picture.
type Result struct {
	Seed      uint64       `json:"seed"`
	Nodes     []string     `json:"nodes"`
	Groups    []string     `json:"groups"`
	Deadtime  string       `json:"deadtime"`
	Duration  string       `json:"duration"`
	Trials    int          `json:"trials"`
	ByKind    map[Kind]int `json:"trials_by_kind"`
	OpsSent   int          `json:"ops_sent"`
	OpsAcked  int          `json:"ops_acked"`
	Committed int          `json:"committed_events_checked"`
	Requests  int          `json:"client_requests"`
	Answered  int          `json:"client_answered"`
	// Availability is the share of the client's requests that got an
	// answer, faults included.
	Availability float64 `json:"availability"`
	// SettleMaxMs and SettleP50Ms: from healing to one holder per group.
	SettleP50Ms         float64     `json:"settle_p50_ms"`
	SettleMaxMs         float64     `json:"settle_max_ms"`
	SplitBrainIntervals int         `json:"split_brain_intervals"`
	ServiceOverlaps     int         `json:"service_overlaps"`
	Violations          []Violation `json:"violations"`
}

// Summarise computes the run's Result from its history and the checkers'
// findings.
func Summarise(h *History, violations []Violation) Result {
	r := Result{Seed: h.Seed, Nodes: h.Nodes, Groups: sortedKeys(h.Groups), Deadtime: h.Deadtime.String(),
		Duration: h.End.Round(time.Second).String(), Trials: len(h.Trials), ByKind: map[Kind]int{}, Violations: violations}
	if r.Violations == nil {
		r.Violations = []Violation{}
	}
	var settle []time.Duration
	for _, tr := range h.Trials {
		r.ByKind[tr.Fault.Kind]++
		if tr.Settled > 0 {
			settle = append(settle, tr.Settled-tr.Healed)
		}
	}
	for _, op := range h.Ops {
		r.OpsSent++
		if op.Acked {
			r.OpsAcked++
		}
	}
	idx := map[uint64]bool{}
	for _, s := range h.Seen {
		idx[s.Event.Index] = true
	}
	r.Committed = len(idx)
	for _, a := range h.Answers {
		r.Requests++
		if a.OK() {
			r.Answered++
		}
	}
	if r.Requests > 0 {
		r.Availability = float64(r.Answered) / float64(r.Requests)
	}
	if len(settle) > 0 {
		slicesSort(settle)
		r.SettleP50Ms = ms(settle[len(settle)/2])
		r.SettleMaxMs = ms(settle[len(settle)-1])
	}
	for _, v := range violations {
		if v.IsSplitBrain() {
			r.SplitBrainIntervals++
		}
		if v.Kind == ServiceOverlap {
			r.ServiceOverlaps++
		}
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
