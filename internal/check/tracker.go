package check

import "time"

// Rise and fall defaults.
//
// DefaultRise is 2 because one good answer after an outage proves little: a
// crash-looping service often answers once between restarts, and declaring it up
// would make it eligible again only to lose it at the next probe. Two in a row
// cost one extra interval (2s by default) when a service really comes back.
//
// DefaultFall is 3 because going down is the expensive direction: it starts a
// restart or a failover. One lost packet, one GC pause or one slow disk flush
// must not do that, and two coincidences in a row still happen on busy hosts;
// three consecutive failures at the default 2s interval confirm a dead service
// in 4 to 6 seconds, which lost_after then extends across observers.
const (
	DefaultRise = 2
	DefaultFall = 3
)

// MaxRiseFall bounds rise and fall: a typo (fall: 3000) would otherwise make a
// check that never goes down.
const MaxRiseFall = 100

// Tracker turns a stream of probe results into Up and Down with hysteresis: Rise
// consecutive successes to go up, Fall consecutive failures to go down. It starts
// Unknown and leaves Unknown in whichever direction is confirmed first. It is a
// plain value driven by its caller; time comes in with each result.
//
// The zero Tracker uses DefaultRise and DefaultFall.
type Tracker struct {
	Rise, Fall int

	state     State
	since     time.Time
	successes int // consecutive, reset by a failure
	failures  int // consecutive, reset by a success
	last      Result
	lastAt    time.Time
	seen      bool
}

// NewTracker returns a tracker with the given counts; values below 1 take the defaults.
func NewTracker(rise, fall int) Tracker { return Tracker{Rise: rise, Fall: fall} }

func (t *Tracker) rise() int {
	if t.Rise < 1 {
		return DefaultRise
	}
	return t.Rise
}

func (t *Tracker) fall() int {
	if t.Fall < 1 {
		return DefaultFall
	}
	return t.Fall
}

// Observe records one result taken at now and returns the state after it, and
// whether the state changed.
func (t *Tracker) Observe(r Result, now time.Time) (changed bool, state State) {
	t.last, t.lastAt, t.seen = r, now, true
	if r.OK {
		t.failures = 0
		// Saturate: counting past the threshold buys nothing and a long-lived
		// tracker must not overflow.
		if t.successes < t.rise() {
			t.successes++
		}
		if t.state != Up && t.successes >= t.rise() {
			t.state, t.since = Up, now
			return true, Up
		}
		return false, t.state
	}
	t.successes = 0
	if t.failures < t.fall() {
		t.failures++
	}
	if t.state != Down && t.failures >= t.fall() {
		t.state, t.since = Down, now
		return true, Down
	}
	return false, t.state
}

// State is the current debounced state.
func (t *Tracker) State() State { return t.state }

// Since is when the current state began (zero while Unknown).
func (t *Tracker) Since() time.Time { return t.since }

// Last is the most recent result and when it was observed; ok is false before the first.
func (t *Tracker) Last() (r Result, at time.Time, ok bool) { return t.last, t.lastAt, t.seen }

// Streak is the number of consecutive successes (positive) or failures (negative)
// that ended with the last result, capped at rise or fall: "2 of 3 failures" in a
// status display.
func (t *Tracker) Streak() int {
	if t.failures > 0 {
		return -t.failures
	}
	return t.successes
}
