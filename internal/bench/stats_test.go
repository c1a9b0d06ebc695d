package bench

import (
	"testing"
	"time"
)

func msd(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	s := msd(10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{1, 10 * time.Millisecond},
		{10, 10 * time.Millisecond},
		{11, 20 * time.Millisecond},
		{50, 50 * time.Millisecond},
		{51, 60 * time.Millisecond},
		{99, 100 * time.Millisecond},
		{100, 100 * time.Millisecond},
	} {
		if got := Percentile(s, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestPercentileOfTwentyIsTheWorstForP99(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 20; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	if got := Percentile(s, 99); got != 20*time.Millisecond {
		t.Fatalf("p99 of 20 = %v, want the maximum", got)
	}
	if got := Percentile(s, 50); got != 10*time.Millisecond {
		t.Fatalf("p50 of 20 = %v, want the 10th", got)
	}
}

func TestSummarizeUnsorted(t *testing.T) {
	got := Summarize(msd(500, 450, 475, 460))
	want := Summary{N: 4, MinMS: 450, P50MS: 460, P99MS: 500, MaxMS: 500, MeanMS: 471.3}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Fatal("empty summary not zero")
	}
}
