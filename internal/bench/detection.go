package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/model"
)

// DetectionOptions configure the detection benchmark.
type DetectionOptions struct {
	Cluster ClusterOptions
	Trials  int
}

// Trial is one kill -9 of a voter.
type Trial struct {
	N               int       `json:"n"`
	Victim          string    `json:"victim"`
	VictimWasLeader bool      `json:"victim_was_leader"`
	KilledAt        time.Time `json:"killed_at"`
	// DetectedMS is from the kill to the earliest survivor's node_dead event,
	// as stamped by that survivor; DetectedBy names it. Zero when Missed.
	DetectedMS float64 `json:"detected_ms"`
	DetectedBy string  `json:"detected_by"`
	// ObserversMS is every survivor's own node_dead time after the kill.
	ObserversMS map[string]float64 `json:"observers_ms"`
	// LoggedMS is from the kill until the benchmark first read a node_dead
	// event in the replicated log (committed; polled every 50 ms), which is
	// what `vigil events` shows. It includes a raft election when the victim
	// was the leader.
	LoggedMS float64 `json:"logged_ms"`
	Missed   bool    `json:"missed,omitempty"`
	// StaleEvents counts node_dead events about the victim stamped before the
	// kill that were committed after it; they are ignored.
	StaleEvents int `json:"stale_events,omitempty"`
	// RejoinMS is from the restart of the victim until the cluster was fully
	// formed again.
	RejoinMS float64 `json:"rejoin_ms"`
}

// DetectionResult is the outcome of the detection benchmark.
type DetectionResult struct {
	Benchmark string     `json:"benchmark"`
	StartedAt time.Time  `json:"started_at"`
	Host      Host       `json:"host"`
	Timing    TimingInfo `json:"timing"`
	Method    string     `json:"method"`
	Trials    int        `json:"trials"`
	Missed    int        `json:"missed"`
	// Detection summarises DetectedMS over the trials that were not missed.
	Detection Summary `json:"detection"`
	// Logged summarises LoggedMS.
	Logged  Summary `json:"logged"`
	Results []Trial `json:"results"`
}

const detectionMethod = "kill -9 of a voter's agent process group (alternating between the two voters; " +
	"the witness is never killed, as its death moves no group); detection = earliest survivor's node_dead " +
	"event time (stamped by that agent on the same machine) minus the time just before the kill; " +
	"the victim restarts on its data dir and the cluster is fully formed again before the next trial"

// eventPoll is how often the benchmark reads the replicated log while waiting
// for a death; it bounds only LoggedMS's resolution, not DetectedMS's.
const eventPoll = 50 * time.Millisecond

// Detection runs the detection benchmark on a fresh cluster.
func Detection(ctx context.Context, opt DetectionOptions) (res *DetectionResult, err error) {
	if opt.Trials < 1 {
		return nil, fmt.Errorf("trials %d: want at least 1", opt.Trials)
	}
	c, err := startCluster(ctx, opt.Cluster)
	if c != nil {
		defer func() {
			if cerr := c.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
			}
		}()
	}
	if err != nil {
		return nil, err
	}
	res = &DetectionResult{Benchmark: "detection", StartedAt: time.Now().UTC(), Host: hostInfo(c.fsType),
		Timing: c.timingInfo(opt.Cluster.Timing), Method: detectionMethod, Trials: opt.Trials}
	begin := time.Now()
	leader, err := c.waitFormed(ctx, c.formTimeout())
	if err != nil {
		return nil, err
	}
	c.logf("cluster formed in %v, leader %s", time.Since(begin).Round(time.Millisecond), leader)
	deadtime := c.cfg.Cluster.Timing.Deadtime.D()
	var cursor uint64
	var detected, logged []time.Duration
	for i := range opt.Trials {
		victim := c.voters[i%len(c.voters)]
		survivors := c.others(victim)
		events := c.clients["others-of-"+victim]
		if cursor, err = lastIndex(ctx, events, cursor); err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		tr := Trial{N: i + 1, Victim: victim, VictimWasLeader: victim == leader, ObserversMS: map[string]float64{}}
		if tr.KilledAt, err = c.kill(victim); err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		w := deathWatch{victim: victim, survivors: survivors, killed: tr.KilledAt, after: cursor}
		if err := w.wait(ctx, events, deadtime+20*time.Second); err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		cursor = w.after
		tr.StaleEvents = w.early
		var first time.Duration
		for _, s := range survivors {
			if at, ok := w.seen[s]; ok {
				d := at.Sub(tr.KilledAt)
				tr.ObserversMS[s] = ms(d)
				if tr.DetectedBy == "" || d < first {
					first, tr.DetectedBy = d, s
				}
			}
		}
		tr.Missed = tr.DetectedBy == ""
		if tr.Missed {
			res.Missed++
		} else {
			tr.DetectedMS = ms(first)
			detected = append(detected, first)
			tr.LoggedMS = ms(w.logged.Sub(tr.KilledAt))
			logged = append(logged, w.logged.Sub(tr.KilledAt))
		}
		restart := time.Now()
		if err := c.start(victim); err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		if leader, err = c.waitFormed(ctx, c.formTimeout()); err != nil {
			return nil, fmt.Errorf("trial %d: after restarting %s: %w", i+1, victim, err)
		}
		tr.RejoinMS = ms(time.Since(restart))
		c.logf("%s", tr.line(opt.Trials, survivors))
		res.Results = append(res.Results, tr)
	}
	res.Detection, res.Logged = Summarize(detected), Summarize(logged)
	if res.Missed == opt.Trials {
		return res, fmt.Errorf("no survivor reported any of the %d deaths", opt.Trials)
	}
	return res, nil
}

func (tr Trial) line(trials int, survivors []string) string {
	role := "voter"
	if tr.VictimWasLeader {
		role = "leader"
	}
	if tr.Missed {
		return fmt.Sprintf("trial %2d/%d: kill -9 %s (%s): NO node_dead from %v; rejoined in %.1f s",
			tr.N, trials, tr.Victim, role, survivors, tr.RejoinMS/1000)
	}
	s := fmt.Sprintf("trial %2d/%d: kill -9 %s (%s): dead after %7.1f ms (%s", tr.N, trials, tr.Victim, role, tr.DetectedMS, tr.DetectedBy)
	for _, o := range survivors {
		if o == tr.DetectedBy {
			continue
		}
		if v, ok := tr.ObserversMS[o]; ok {
			s += fmt.Sprintf("; %s %.1f", o, v)
		} else {
			s += fmt.Sprintf("; %s none", o)
		}
	}
	return s + fmt.Sprintf("), in the log after %7.1f ms; rejoined in %.1f s", tr.LoggedMS, tr.RejoinMS/1000)
}

// lastIndex pages through the replicated log from after and returns the
// index of its last committed event.
func lastIndex(ctx context.Context, cl *apiclient.Client, after uint64) (uint64, error) {
	const page = 1000
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		evs, err := cl.Events(rctx, after, page)
		cancel()
		if err != nil {
			return after, fmt.Errorf("read the event log: %w", err)
		}
		for _, ev := range evs {
			after = max(after, ev.Index)
		}
		if len(evs) < page {
			return after, nil
		}
	}
}

// deathWatch collects the survivors' node_dead events about the victim from
// the replicated log.
type deathWatch struct {
	victim    string
	survivors []string
	killed    time.Time
	after     uint64               // last index read
	seen      map[string]time.Time // survivor → its event's time
	logged    time.Time            // when the first one was read
	early     int                  // node_dead events stamped before the kill
}

// wait polls the log until every survivor reported the death or timeout
// passes. Read errors are retried: a survivor's API may be slow while raft
// elects a new leader.
func (w *deathWatch) wait(ctx context.Context, cl *apiclient.Client, timeout time.Duration) error {
	w.seen = map[string]time.Time{}
	deadline := w.killed.Add(timeout)
	var lastErr error
	for len(w.seen) < len(w.survivors) && time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		evs, err := cl.Events(rctx, w.after, 1000)
		cancel()
		if err != nil {
			lastErr = err
		}
		now := time.Now()
		for _, ev := range evs {
			w.after = max(w.after, ev.Index)
			w.observe(ev, now)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(eventPoll):
		}
	}
	if len(w.seen) == 0 && lastErr != nil {
		return fmt.Errorf("no death of %s read from the log: %w", w.victim, lastErr)
	}
	return nil
}

func (w *deathWatch) observe(ev model.Event, now time.Time) {
	if ev.Kind != model.EventNodeDead || ev.Node != w.victim || !slices.Contains(w.survivors, ev.Reporter) {
		return
	}
	if ev.Time.Before(w.killed) {
		// Left over from the previous trial's formation; not this kill.
		w.early++
		return
	}
	if _, ok := w.seen[ev.Reporter]; ok {
		return
	}
	w.seen[ev.Reporter] = ev.Time
	if w.logged.IsZero() {
		w.logged = now
	}
}
