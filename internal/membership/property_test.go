package membership

import (
	"fmt"
	"testing"
	"time"
)

// TestNoObserverThinksALiveLeaseExpired is the safety property behind failover:
// whenever some running node believes node n's lease under epoch ep is surely over,
// n itself must not hold a valid lease under ep. It runs random partitions (both ways
// and one way), freezes, restarts, delays and clock-rate differences within the
// configured drift bound.
func TestNoObserverThinksALiveLeaseExpired(t *testing.T) {
	trials := 60
	if testing.Short() {
		trials = 10
	}
	for seed := int64(1); seed <= int64(trials); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runRandomFaults(t, seed, 5) })
	}
}

func runRandomFaults(t *testing.T, seed int64, voters int) {
	tm := tunedTiming()
	names := []string{"a", "b", "c", "d", "e"}[:voters]
	s := newSim(t, names, "", 2, tm, seed)
	s.maxLag = 20 * time.Millisecond
	for _, n := range s.nodes {
		// Relative rates stay within the 1 % drift bound the lease margin assumes.
		n.rate = 0.995 + 0.01*s.rng.Float64()
	}
	incarnation := uint64(100)
	checks := 0
	check := func() {
		for _, n := range names {
			ep, held := s.nodes[n].eng.LeaseValid(s.nodes[n].local(s.now))
			if !held {
				continue
			}
			for _, o := range names {
				obs := s.nodes[o]
				if o == n || obs.frozen {
					continue
				}
				checks++
				if obs.eng.SurelyExpired(n, ep) {
					t.Fatalf("seed %d at %v: %s believes %s's lease %v expired, but %s holds it",
						seed, s.now, o, n, ep, n)
				}
			}
		}
	}
	for step := 0; step < 40; step++ {
		victim := names[s.rng.Intn(len(names))]
		other := names[s.rng.Intn(len(names))]
		switch s.rng.Intn(7) {
		case 0:
			s.isolate(victim, true)
		case 1:
			if victim != other {
				s.setCut(victim, other, s.rng.Intn(2), true) // one way, one link
			}
		case 2:
			s.nodes[victim].frozen = !s.nodes[victim].frozen
		case 3:
			incarnation++
			s.nodes[victim].frozen = false
			s.boot(victim, incarnation)
		case 4:
			n := s.nodes[victim]
			s.apply(n, n.eng.Step(Release{Reason: "test"}, n.local(s.now)))
		default:
			for k := range s.cut {
				delete(s.cut, k)
			}
			for _, n := range s.nodes {
				n.frozen = false
			}
		}
		s.run(time.Duration(50+s.rng.Intn(900))*time.Millisecond, check)
	}
	if checks == 0 {
		t.Fatal("no lease was ever held: the property was never exercised")
	}
}
