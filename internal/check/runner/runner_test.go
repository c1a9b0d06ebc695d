package runner

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/check"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake answers from a script of results ('o' ok, 'x' fail), then repeats the last
// one; it can be told to hold each probe and records what it saw.
type fake struct {
	mu       sync.Mutex
	script   string
	calls    int
	hold     time.Duration // how long each probe takes, ctx permitting
	ignore   bool          // hold even past ctx (a probe that overruns its timeout)
	panicAt  int           // 1-based call that panics; 0 never
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	budgets  []time.Duration
	shared   *atomic.Int32 // in-flight count across fakes, for the concurrency bound
	sharedMx *atomic.Int32
}

func (f *fake) Probe(ctx context.Context) check.Result {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	if n > f.maxSeen.Load() {
		f.maxSeen.Store(n)
	}
	if f.shared != nil {
		s := f.shared.Add(1)
		defer f.shared.Add(-1)
		for {
			m := f.sharedMx.Load()
			if s <= m || f.sharedMx.CompareAndSwap(m, s) {
				break
			}
		}
	}
	f.mu.Lock()
	f.calls++
	call := f.calls
	r := byte('o')
	if len(f.script) > 0 {
		r = f.script[min(call, len(f.script))-1]
	}
	if dl, ok := ctx.Deadline(); ok {
		f.budgets = append(f.budgets, time.Until(dl))
	}
	hold, ignore, panicAt := f.hold, f.ignore, f.panicAt
	f.mu.Unlock()
	if call == panicAt {
		panic("fake probe bug")
	}
	if hold > 0 {
		if ignore {
			time.Sleep(hold)
		} else {
			select {
			case <-time.After(hold):
			case <-ctx.Done():
				return check.Result{Detail: "cancelled"}
			}
		}
	}
	return check.Result{OK: r == 'o', Detail: string(r) + " #" + itoa(call)}
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fake) setScript(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script, f.calls = s, 0
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func start(t *testing.T, checks []Check, opt Options) (*Runner, context.CancelFunc) {
	t.Helper()
	r, err := New(checks, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.Done():
		case <-time.After(5 * time.Second):
			t.Error("runner did not stop")
		}
	})
	return r, cancel
}

func next(t *testing.T, r *Runner, within time.Duration) Change {
	t.Helper()
	select {
	case c, ok := <-r.Changes():
		if !ok {
			t.Fatal("changes closed")
		}
		return c
	case <-time.After(within):
		t.Fatalf("no change within %s", within)
	}
	return Change{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRunnerUpThenDown(t *testing.T) {
	f := &fake{script: "oo" + "ooxxx"}
	r, cancel := start(t, []Check{{Name: "web", Probe: f, Interval: 10 * time.Millisecond, Timeout: 5 * time.Millisecond}}, Options{})
	c := next(t, r, 2*time.Second)
	if c.Check != "web" || c.Prev != check.Unknown || c.State != check.Up || c.Coalesced != 0 || c.Result.Detail != "o #2" {
		t.Fatalf("first change %v", c)
	}
	c = next(t, r, 2*time.Second)
	if c.Prev != check.Up || c.State != check.Down || c.Result.Detail != "x #7" || c.Since.IsZero() {
		t.Fatalf("second change %v", c)
	}
	st := r.Statuses()
	if len(st) != 1 || st[0].State != check.Down || st[0].Probes < 7 || st[0].Failures < 3 || st[0].Streak > -3 {
		t.Fatalf("status %+v", st)
	}
	cancel()
	r.Wait()
	if _, ok := <-r.Changes(); ok {
		t.Fatal("changes not closed after stop")
	}
}

// A receiver that does not read never stalls the runner; when it reads, it gets
// the latest state of each check, once.
func TestRunnerLatestWins(t *testing.T) {
	f := &fake{script: "oo" + "xxx" + "oo" + "xxx"} // up, down, up, down: ends down
	g := &fake{script: "oo"}                        // up
	r, _ := start(t, []Check{
		{Name: "flappy", Probe: f, Interval: 10 * time.Millisecond},
		{Name: "steady", Probe: g, Interval: 10 * time.Millisecond},
	}, Options{})
	waitFor(t, "ten probes of flappy", func() bool { return f.count() >= 12 })
	got := map[string]Change{}
	for len(got) < 2 {
		c := next(t, r, time.Second)
		if _, dup := got[c.Check]; dup {
			t.Fatalf("second change for %s before any new one: %v", c.Check, c)
		}
		got[c.Check] = c
	}
	if c := got["flappy"]; c.State != check.Down || c.Prev != check.Unknown || c.Coalesced != 3 {
		t.Errorf("flappy: %v (coalesced %d)", c, c.Coalesced)
	}
	if c := got["steady"]; c.State != check.Up || c.Coalesced != 0 {
		t.Errorf("steady: %v", c)
	}
	// Nothing more is pending.
	select {
	case c := <-r.Changes():
		t.Fatalf("unexpected change %v", c)
	case <-time.After(50 * time.Millisecond):
	}
	// A flap back to the state the receiver saw is still reported: Since moved.
	f.setScript("oo" + "xxx")
	waitFor(t, "flappy up and down again", func() bool { return f.count() >= 7 })
	c := next(t, r, time.Second)
	if c.Check != "flappy" || c.Prev != check.Down || c.State != check.Down || c.Coalesced != 1 || !c.Since.After(got["flappy"].Since) {
		t.Errorf("flap: %v since %v (was %v)", c, c.Since, got["flappy"].Since)
	}
}

func TestRunnerBoundedConcurrency(t *testing.T) {
	var shared, max atomic.Int32
	var checks []Check
	var fakes []*fake
	for i := 0; i < 10; i++ {
		f := &fake{hold: 15 * time.Millisecond, shared: &shared, sharedMx: &max}
		fakes = append(fakes, f)
		checks = append(checks, Check{Name: "c" + itoa(i), Probe: f, Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond})
	}
	r, _ := start(t, checks, Options{MaxConcurrent: 3})
	waitFor(t, "every check probed three times", func() bool {
		for _, f := range fakes {
			if f.count() < 3 {
				return false
			}
		}
		return true
	})
	if m := max.Load(); m > 3 || m < 2 {
		t.Errorf("max in flight %d, want at most 3 (and more than 1)", m)
	}
	_ = r
}

// One check's probes never overlap, even when a probe overruns its timeout.
func TestRunnerNoOverlap(t *testing.T) {
	f := &fake{hold: 30 * time.Millisecond, ignore: true}
	start(t, []Check{{Name: "slow", Probe: f, Interval: 10 * time.Millisecond}}, Options{})
	waitFor(t, "four probes", func() bool { return f.count() >= 4 })
	if m := f.maxSeen.Load(); m != 1 {
		t.Fatalf("%d probes of one check at once", m)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The timeout was capped at the interval (no timeout given: 1s default).
	for _, b := range f.budgets {
		if b > 10*time.Millisecond {
			t.Fatalf("probe got %s, more than the interval", b)
		}
	}
}

func TestRunnerTimeoutFromCtx(t *testing.T) {
	f := &fake{hold: time.Second, script: "o"}
	r, _ := start(t, []Check{{Name: "hung", Probe: f, Interval: 100 * time.Millisecond, Timeout: 20 * time.Millisecond, Fall: 1}}, Options{})
	c := next(t, r, 2*time.Second)
	if c.State != check.Down || c.Result.Detail != "cancelled" {
		t.Fatalf("%v", c)
	}
	f.mu.Lock()
	b := f.budgets[0]
	f.mu.Unlock()
	if b > 20*time.Millisecond || b <= 0 {
		t.Fatalf("probe budget %s, want about 20ms", b)
	}
}

// Stopping waits for probes in flight (they see ctx end) and leaks nothing.
func TestRunnerStopsWithProbesInFlight(t *testing.T) {
	f := &fake{hold: time.Hour}
	r, cancel := start(t, []Check{{Name: "a", Probe: f, Interval: time.Second, Timeout: time.Second}}, Options{Jitter: -1})
	waitFor(t, "a probe in flight", func() bool { return f.inFlight.Load() == 1 })
	cancel()
	select {
	case <-r.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("runner did not stop")
	}
	if f.inFlight.Load() != 0 {
		t.Fatal("probe still running after Done")
	}
}

func TestRunnerSurvivesPanickingProbe(t *testing.T) {
	f := &fake{panicAt: 1}
	r, _ := start(t, []Check{{Name: "buggy", Probe: f, Interval: 10 * time.Millisecond, Rise: 1, Fall: 1}}, Options{})
	c := next(t, r, time.Second)
	if c.State != check.Down || !strings.Contains(c.Result.Detail, "probe panicked: fake probe bug") {
		t.Fatalf("%v", c)
	}
	if c = next(t, r, time.Second); c.State != check.Up {
		t.Fatalf("after the panic: %v", c)
	}
}

func TestRunnerUsesNow(t *testing.T) {
	stamp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	r, _ := start(t, []Check{{Name: "a", Probe: &fake{}, Interval: 10 * time.Millisecond, Rise: 1}},
		Options{Now: func() time.Time { return stamp }})
	if c := next(t, r, time.Second); !c.Since.Equal(stamp) {
		t.Fatalf("since %v", c.Since)
	}
	if st := r.Statuses()[0]; !st.LastAt.Equal(stamp) {
		t.Fatalf("last at %v", st.LastAt)
	}
}

func TestNewAndStartErrors(t *testing.T) {
	for _, tc := range []struct {
		checks []Check
		want   string
	}{
		{[]Check{{Probe: &fake{}}}, "no name"},
		{[]Check{{Name: "a", Probe: &fake{}}, {Name: "a", Probe: &fake{}}}, "twice"},
		{[]Check{{Name: "a"}}, "no probe"},
	} {
		if _, err := New(tc.checks, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New: %v, want %q", err, tc.want)
		}
	}
	r, _ := start(t, nil, Options{})
	if err := r.Start(context.Background()); err == nil {
		t.Error("second Start accepted")
	}
}

func TestJitterBounds(t *testing.T) {
	r, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const iv = 2 * time.Second
	var neg, pos bool
	for i := 0; i < 10000; i++ {
		j := r.jitter(iv)
		if j < -iv/10 || j > iv/10 {
			t.Fatalf("jitter %s outside ±%s", j, iv/10)
		}
		neg, pos = neg || j < 0, pos || j > 0
		if s := r.spread(iv); s < 0 || s > iv/10 {
			t.Fatalf("spread %s", s)
		}
	}
	if !neg || !pos {
		t.Error("jitter is one-sided")
	}
	none, _ := New(nil, Options{Jitter: -1})
	if none.jitter(iv) != 0 || none.spread(iv) != 0 {
		t.Error("jitter -1 still jitters")
	}
}

func TestOf(t *testing.T) {
	c := check.Check{Type: check.TCP, Address: "10.0.0.100:5432", Rise: 4}
	c.ApplyDefaults()
	f := &fake{}
	rc := Of(c, f)
	if rc.Name != "tcp 10.0.0.100:5432" || rc.Probe != f || rc.Interval != check.DefaultInterval ||
		rc.Timeout != check.DefaultTimeout || rc.Rise != 4 || rc.Fall != check.DefaultFall {
		t.Errorf("%+v", rc)
	}
}
