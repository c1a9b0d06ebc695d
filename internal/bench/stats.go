package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a set of durations in milliseconds, the unit the targets use.
type Summary struct {
	N      int     `json:"n"`
	MinMS  float64 `json:"min_ms"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of sorted.
// Nearest rank never invents a value between two samples, so with few trials
// p99 is honestly the worst one seen rather than an interpolation below it.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize computes min, p50, p99, max and mean of ds.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		N:      len(s),
		MinMS:  ms(s[0]),
		P50MS:  ms(Percentile(s, 50)),
		P99MS:  ms(Percentile(s, 99)),
		MaxMS:  ms(s[len(s)-1]),
		MeanMS: ms(sum / time.Duration(len(s))),
	}
}

// ms rounds to 0.1 ms: finer digits would only be noise from the scheduler.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*10) / 10
}
