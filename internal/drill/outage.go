package drill

import (
	"sort"
	"time"
)

// Sample is one probe of the service: when it started and whether it answered.
type Sample struct {
	At time.Time
	OK bool
}

// LongestOutage is the longest stretch within [from, to] in which the probe
// got no answer: from the last answer before a run of failures (or from, if
// none) to the first answer after it (or to, if none). Measured that way it is
// an upper bound, too long by at most one probe interval, which is the honest
// side for a number shown to a customer. ok is false when no sample falls in
// the window, i.e. nothing was measured.
func LongestOutage(samples []Sample, from, to time.Time) (d time.Duration, ok bool) {
	in := make([]Sample, 0, len(samples))
	for _, s := range samples {
		if !s.At.Before(from) && !s.At.After(to) {
			in = append(in, s)
		}
	}
	if len(in) == 0 {
		return 0, false
	}
	sort.SliceStable(in, func(i, j int) bool { return in[i].At.Before(in[j].At) })
	lastOK := from
	failing := false
	for _, s := range in {
		switch {
		case !s.OK:
			failing = true
		case failing:
			d = max(d, s.At.Sub(lastOK))
			failing = false
			lastOK = s.At
		default:
			lastOK = s.At
		}
	}
	if failing {
		d = max(d, to.Sub(lastOK))
	}
	return d, true
}
