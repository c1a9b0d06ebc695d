package history

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/workflow"
)

// BenchmarkPutTransition is the history's share of a step: one synced transaction
// holding the header, the end of one attempt and the start of the next.
func BenchmarkPutTransition(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "runs.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := Run{ID: s.NewID(time.Now()), Workflow: "w", Result: workflow.ResultRunning}
	out := string(make([]byte, 200))
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		err := s.Put(r,
			Attempt{Seq: i, Step: "a", Command: []string{"true"}, Started: time.Now(), Ended: time.Now(), Output: out, Transition: "leave", Target: "b"},
			Attempt{Seq: i + 1, Step: "b", Command: []string{"true"}, Started: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
	}
}
