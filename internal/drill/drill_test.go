package drill

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestLongestOutage(t *testing.T) {
	ok, bad := true, false
	s := func(ms int, up bool) Sample { return Sample{At: at(ms), OK: up} }
	cases := []struct {
		name     string
		samples  []Sample
		from, to int
		want     int
		measured bool
	}{
		{"no samples", nil, 0, 1000, 0, false},
		{"samples outside the window", []Sample{s(-10, bad), s(2000, bad)}, 0, 1000, 0, false},
		{"always answered", []Sample{s(0, ok), s(100, ok), s(200, ok)}, 0, 300, 0, true},
		{"one gap: last answer to first answer", []Sample{s(0, ok), s(100, bad), s(200, bad), s(300, ok)}, 0, 400, 300, true},
		{"longest of two gaps", []Sample{s(0, ok), s(100, bad), s(200, ok), s(300, bad), s(400, bad), s(500, bad), s(600, ok)}, 0, 700, 400, true},
		{"failing from the window's start", []Sample{s(100, bad), s(200, ok)}, 0, 300, 200, true},
		{"still failing at the end", []Sample{s(0, ok), s(100, bad)}, 0, 500, 500, true},
		{"out of order", []Sample{s(300, ok), s(100, bad), s(0, ok)}, 0, 400, 300, true},
	}
	for _, c := range cases {
		got, measured := LongestOutage(c.samples, at(c.from), at(c.to))
		if measured != c.measured || got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("%s: %v %v, want %dms %v", c.name, got, measured, c.want, c.measured)
		}
	}
}

func TestScheduleNextDue(t *testing.T) {
	s, err := ParseSchedule("0 3 * * 0") // Sundays 03:00
	if err != nil {
		t.Fatal(err)
	}
	sat := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	sun3 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	// Never drilled, coordinating since Saturday: Sunday 03:00.
	if got := s.NextDue(time.Time{}, sat); !got.Equal(sun3) {
		t.Errorf("first: %v, want %v", got, sun3)
	}
	// Drilled at Sunday 03:00 and the coordinator changed right after: next week, not again.
	if got := s.NextDue(sun3.Add(time.Second), sun3.Add(-time.Hour)); !got.Equal(sun3.AddDate(0, 0, 7)) {
		t.Errorf("after a drill: %v", got)
	}
	// A coordinator that took over after the slot does not replay it.
	if got := s.NextDue(time.Time{}, sun3.Add(time.Minute)); !got.Equal(sun3.AddDate(0, 0, 7)) {
		t.Errorf("after takeover: %v", got)
	}
	if _, err := ParseSchedule("every sunday"); err == nil || !strings.Contains(err.Error(), "every sunday") {
		t.Errorf("bad spec: %v", err)
	}
}

// fakeCluster moves a group after moveDelay; the service is unreachable for
// the outage that follows each move request.
type fakeCluster struct {
	mu        sync.Mutex
	node      string
	state     string
	moveDelay time.Duration
	down      time.Duration // service unreachable from the request for this long
	downUntil time.Time
	stuck     bool // moves are accepted but never happen
	moves     []string
}

func (c *fakeCluster) Move(_ context.Context, group, to, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moves = append(c.moves, to)
	if c.stuck {
		return nil
	}
	c.state = "stopping"
	c.downUntil = time.Now().Add(c.down)
	time.AfterFunc(c.moveDelay, func() {
		c.mu.Lock()
		c.node, c.state = to, "running"
		c.mu.Unlock()
	})
	return nil
}

func (c *fakeCluster) Where(string) (string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.node, c.state
}

func (c *fakeCluster) probe(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Now().Before(c.downUntil) {
		return errors.New("connection refused")
	}
	return nil
}

func plan(c *fakeCluster, back bool) Plan {
	return Plan{Drill: model.Drill{ID: "d1", Group: "web", From: "a", To: "b", Back: back, By: "alice", Runner: "q", Probe: "http http://10.0.0.100/"},
		Probe: c.probe, Interval: 10 * time.Millisecond, Settle: 60 * time.Millisecond, Timeout: 2 * time.Second, Poll: 5 * time.Millisecond}
}

func TestRunThereAndBack(t *testing.T) {
	c := &fakeCluster{node: "a", state: "running", moveDelay: 100 * time.Millisecond, down: 250 * time.Millisecond}
	d := Run(context.Background(), c, plan(c, true))
	if d.Outcome != model.DrillPassed || d.Error != "" {
		t.Fatalf("outcome %s: %s", d.Outcome, d.Error)
	}
	if strings.Join(c.moves, ",") != "b,a" {
		t.Errorf("moves %v", c.moves)
	}
	if len(d.Steps) != 3 || d.Steps[1].Name != "move to b" || d.Steps[2].Name != "move back to a" {
		t.Fatalf("steps %+v", d.Steps)
	}
	for _, st := range d.Steps[1:] {
		// The service was down 250ms from the request; the probe sees it within one interval (plus a busy machine's slack).
		if st.OutageMS == nil || *st.OutageMS < 240 || *st.OutageMS > 250+150 {
			t.Errorf("%s: outage %v, want about 250ms", st.Name, st.OutageMS)
		}
		if !st.OK || st.Ended.Sub(st.Started) < 250*time.Millisecond {
			t.Errorf("%s ended before clients got answers again: %+v", st.Name, st)
		}
	}
	// The baseline answered (a probe that started just before the first move
	// but ran after it may still count there on a busy machine).
	if !d.Steps[0].OK || d.ProbesFailed == 0 || d.ProbesSent <= d.ProbesFailed {
		t.Errorf("baseline %+v, probes %d/%d", d.Steps[0], d.ProbesFailed, d.ProbesSent)
	}
	var b strings.Builder
	if err := WriteReport(&b, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"group web, a -> b -> a", "PASSED", "move back to a", "longest outage"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRunFailsWhenTheGroupNeverArrives(t *testing.T) {
	c := &fakeCluster{node: "a", state: "running", stuck: true}
	p := plan(c, true)
	p.Timeout = 200 * time.Millisecond
	d := Run(context.Background(), c, p)
	if d.Outcome != model.DrillFailed || !strings.Contains(d.Error, `on "a"`) || len(d.Steps) != 2 || d.Steps[1].OK {
		t.Fatalf("%s %q %+v", d.Outcome, d.Error, d.Steps)
	}
	if len(c.moves) != 1 {
		t.Errorf("moved back after a failed move: %v", c.moves)
	}
}

func TestRunFailsWhenClientsGetNoAnswer(t *testing.T) {
	c := &fakeCluster{node: "a", state: "running", moveDelay: 20 * time.Millisecond, down: time.Hour}
	p := plan(c, false)
	p.Timeout = 300 * time.Millisecond
	d := Run(context.Background(), c, p)
	if d.Outcome != model.DrillFailed || !strings.Contains(d.Error, "no answer") || !strings.Contains(d.Error, "connection refused") {
		t.Fatalf("%s %q", d.Outcome, d.Error)
	}
}

func TestRunRefusesADeadService(t *testing.T) {
	c := &fakeCluster{node: "a", state: "running", downUntil: time.Now().Add(time.Hour)}
	d := Run(context.Background(), c, plan(c, true))
	if d.Outcome != model.DrillFailed || !strings.Contains(d.Error, "nothing was moved") || len(c.moves) != 0 {
		t.Fatalf("%s %q moves %v", d.Outcome, d.Error, c.moves)
	}
}

func TestRunWithoutProbe(t *testing.T) {
	c := &fakeCluster{node: "a", state: "running", moveDelay: 30 * time.Millisecond}
	p := plan(c, false)
	p.Probe = nil
	d := Run(context.Background(), c, p)
	if d.Outcome != model.DrillPassed || d.OutageMS() != nil || d.ProbesSent != 0 {
		t.Fatalf("%+v", d)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	c := &fakeCluster{node: "a", state: "running", stuck: true}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	d := Run(ctx, c, plan(c, false))
	if d.Outcome != model.DrillFailed {
		t.Fatalf("outcome %s", d.Outcome)
	}
}
