package check

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// DefaultLostAfter is how long a majority of eligible observers must agree that a
// group check is down before the group is declared lost (the seed's
// applicationLostTime).
//
// The seed uses 30s and calls it the minimum against false positives, but its
// checks were single probes between geographic sites. Here every observer has
// already filtered noise through its fall count (3 failures, 4 to 6 seconds at the
// default interval), the observers sit on one network, and a lost group is first
// restarted in place, which is cheap next to a move. 10s adds five more probe
// rounds on top of the fall count: long enough for a service restart, a switch
// reconverging or a VM live-migration pause to clear, short enough that a dead
// service is acted on about 15 seconds after its first failed probe.
const DefaultLostAfter = 10 * time.Second

// Observation is one observer's latest view of a group check.
type Observation struct {
	State State
	// Since is when State began on that observer, on the caller's clock. A Down
	// observation with a zero Since never counts as down for long enough.
	Since time.Time
	// SeesPublic: the observer can itself reach the public network, so its view of
	// a service is worth counting (see Isolated).
	SeesPublic bool
}

// Lost says whether a group is lost: a majority of the observers that see the
// public network have seen its check down for at least lostAfter. Observers that
// cannot see the public network are left out of both sides of the vote: a cut
// network is not a dead service. With a single observer (observers: local, or one
// listed node) that observer's view decides alone, whatever its public network.
//
// The caller passes only the observers it currently hears from: a stale Up from a
// dead node would hold the decision back for ever. lostAfter <= 0 means
// DefaultLostAfter. The reason is written for an event and names the observers.
func Lost(observations map[string]Observation, now time.Time, lostAfter time.Duration) (lost bool, reason string) {
	v := evaluate(observations, lostAfter)
	if !v.possible {
		return false, v.reason
	}
	if now.Before(v.at) {
		return false, fmt.Sprintf("%s; lost at %s unless one recovers",
			v.downPhrase(now), v.at.Format(timeLayout))
	}
	return true, v.lostPhrase()
}

// LostAt is when Lost will turn true if no observation changes; ok is false when
// the current observations cannot reach a verdict at any time. A pure core uses it
// to schedule its next look instead of polling.
func LostAt(observations map[string]Observation, lostAfter time.Duration) (at time.Time, ok bool) {
	v := evaluate(observations, lostAfter)
	return v.at, v.possible
}

const timeLayout = "15:04:05.000"

type downObs struct {
	name  string
	since time.Time
}

type verdict struct {
	lostAfter  time.Duration
	single     bool
	eligible   int
	need       int
	down       []downObs // eligible and down, earliest first
	ineligible []string
	unknown    []string
	possible   bool
	at         time.Time
	reason     string // set when !possible
}

func evaluate(obs map[string]Observation, lostAfter time.Duration) verdict {
	if lostAfter <= 0 {
		lostAfter = DefaultLostAfter
	}
	v := verdict{lostAfter: lostAfter, single: len(obs) == 1}
	if len(obs) == 0 {
		v.reason = "no observer reports this check"
		return v
	}
	names := make([]string, 0, len(obs))
	for n := range obs {
		names = append(names, n)
	}
	sort.Strings(names)
	var stale []string // down without a start time
	for _, n := range names {
		o := obs[n]
		if !v.single && !o.SeesPublic {
			v.ineligible = append(v.ineligible, n)
			continue
		}
		v.eligible++
		switch {
		case o.State == Down && o.Since.IsZero():
			stale = append(stale, n)
		case o.State == Down:
			v.down = append(v.down, downObs{n, o.Since})
		case o.State == Unknown:
			v.unknown = append(v.unknown, n)
		}
	}
	if v.eligible == 0 {
		v.reason = fmt.Sprintf("no observer can see the public network (%s): a cut network cannot be told from a dead service",
			strings.Join(v.ineligible, ", "))
		return v
	}
	sort.SliceStable(v.down, func(i, j int) bool { return v.down[i].since.Before(v.down[j].since) })
	v.need = v.eligible/2 + 1
	if len(v.down) < v.need {
		n := len(v.down) + len(stale)
		v.reason = fmt.Sprintf("%d of %d %s down%s; %d needed%s",
			n, v.eligible, v.observersWord(), v.namesOf(stale), v.need, v.tail())
		return v
	}
	v.possible = true
	v.at = v.down[v.need-1].since.Add(lostAfter)
	return v
}

func (v verdict) observersWord() string {
	if v.single {
		return "observer sees it"
	}
	if v.eligible == 1 {
		return "eligible observer sees it"
	}
	return "eligible observers see it"
}

// namesOf lists the down observers (and any extra) in parentheses.
func (v verdict) namesOf(extra []string) string {
	var ns []string
	for _, d := range v.down {
		ns = append(ns, d.name)
	}
	ns = append(ns, extra...)
	if len(ns) == 0 {
		return ""
	}
	return " (" + strings.Join(ns, ", ") + ")"
}

// tail names the observers that did not vote, so an event explains a slow verdict.
func (v verdict) tail() string {
	var parts []string
	if len(v.unknown) > 0 {
		parts = append(parts, "no verdict yet from "+strings.Join(v.unknown, ", "))
	}
	if len(v.ineligible) > 0 {
		parts = append(parts, "not counted, no public network: "+strings.Join(v.ineligible, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

func (v verdict) downPhrase(now time.Time) string {
	elapsed := now.Sub(v.down[v.need-1].since)
	if elapsed < 0 {
		elapsed = 0
	}
	if v.single {
		return fmt.Sprintf("the only observer, %s, sees it down, for %s of %s",
			v.down[0].name, elapsed.Round(time.Millisecond), v.lostAfter)
	}
	return fmt.Sprintf("%d of %d %s down%s, a majority of %d for %s of %s%s",
		len(v.down), v.eligible, v.observersWord(), v.namesOf(nil),
		v.need, elapsed.Round(time.Millisecond), v.lostAfter, v.tail())
}

func (v verdict) lostPhrase() string {
	if v.single {
		return fmt.Sprintf("the only observer, %s, has seen it down for %s or more (since %s)",
			v.down[0].name, v.lostAfter, v.down[0].since.Format(timeLayout))
	}
	return fmt.Sprintf("%d of %d %s down%s, a majority of %d for %s or more (since %s)%s",
		len(v.down), v.eligible, v.observersWord(), v.namesOf(nil),
		v.need, v.lostAfter, v.down[v.need-1].since.Format(timeLayout), v.tail())
}
