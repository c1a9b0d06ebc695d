package agent

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// stepBuckets span a quick command (tens of milliseconds) to a long step (an hour).
var stepBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// stepMetrics observes the duration of each workflow step attempt as the engine
// reports it (forwardRuns). Attempts published while the subscription had fallen
// behind are not counted. The zero value is ready to use.
type stepMetrics struct {
	once sync.Once
	h    *prometheus.HistogramVec
}

func (s *stepMetrics) vec() *prometheus.HistogramVec {
	s.once.Do(func() {
		s.h = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_workflow_step_duration_seconds",
			Help:    "Duration of each finished workflow step attempt on this node; exit is the command's exit code (-1: none, such as a timeout).",
			Buckets: stepBuckets}, []string{"workflow", "step", "exit"})
	})
	return s.h
}

// observe counts the finished attempts of one engine update.
func (s *stepMetrics) observe(workflow string, atts []history.Attempt) {
	for _, at := range atts {
		if at.Ended.IsZero() {
			continue
		}
		d := at.Duration
		if d <= 0 {
			d = at.Ended.Sub(at.Started)
		}
		if h, err := s.vec().GetMetricWithLabelValues(workflow, at.Step, strconv.Itoa(at.ExitCode)); err == nil {
			h.Observe(d.Seconds())
		}
	}
}
