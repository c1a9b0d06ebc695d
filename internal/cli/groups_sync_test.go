package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// TestPrintSync: one line per target with its lag and error, a line saying why
// when the lag is unknown, nothing at all without sync resources.
func TestPrintSync(t *testing.T) {
	var b bytes.Buffer
	if err := printSync(&b, []model.GroupStatus{{Name: "web", Node: "a"}}); err != nil || b.Len() != 0 {
		t.Fatalf("without sync: %q, %v", b.String(), err)
	}
	last := time.Date(2026, 11, 23, 1, 2, 3, 0, time.Local)
	gs := []model.GroupStatus{
		{Name: "web", Node: "a", Sync: []model.SyncStatus{
			{Group: "web", Resource: "data", Source: "a", Target: "b", LastPass: &last, LagSeconds: 2.345},
			{Group: "web", Resource: "data", Source: "a", Target: "c", LagSeconds: 61, Error: "sync /srv to c: rsync socket error"},
		}},
		{Name: "mail", Node: "b", SyncUnknown: "could not ask b for its sync lag: timeout"},
	}
	if err := printSync(&b, gs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	for i, want := range [][]string{
		{"SYNC", "LAG"},
		{"web", "data", "a", "b", "2.3s", "01:02:03"},
		{"web", "data", "a", "c", "1m1s", "never", "rsync socket error"},
		{"mail", "?", "could not ask b"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
}
