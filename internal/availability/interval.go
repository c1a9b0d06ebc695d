package availability

import (
	"slices"
	"time"
)

// span is a half-open time interval [start, end).
type span struct{ start, end time.Time }

func (s span) len() time.Duration { return s.end.Sub(s.start) }

func (s span) empty() bool { return !s.start.Before(s.end) }

// union sorts and merges the spans; empty ones vanish.
func union(in []span) []span {
	var out []span
	sorted := slices.Clone(in)
	slices.SortFunc(sorted, func(a, b span) int { return a.start.Compare(b.start) })
	for _, s := range sorted {
		if s.empty() {
			continue
		}
		if n := len(out); n > 0 && !s.start.After(out[n-1].end) {
			if s.end.After(out[n-1].end) {
				out[n-1].end = s.end
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// clip returns the parts of the (merged) spans inside within.
func clip(in []span, within span) []span {
	var out []span
	for _, s := range in {
		c := span{start: later(s.start, within.start), end: earlier(s.end, within.end)}
		if !c.empty() {
			out = append(out, c)
		}
	}
	return out
}

// minus returns s less the merged spans cut.
func minus(s span, cut []span) []span {
	var out []span
	cur := s.start
	for _, c := range cut {
		if !c.end.After(cur) {
			continue
		}
		if !c.start.Before(s.end) {
			break
		}
		if c.start.After(cur) {
			out = append(out, span{start: cur, end: c.start})
		}
		cur = later(cur, c.end)
	}
	if cur.Before(s.end) {
		out = append(out, span{start: cur, end: s.end})
	}
	return out
}

func total(in []span) time.Duration {
	var d time.Duration
	for _, s := range in {
		d += s.len()
	}
	return d
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
