package notify

import (
	"path"

	"github.com/vigil-ha/vigil/internal/model"
)

// Delivery is one target an event goes to, with the routes that chose it.
type Delivery struct {
	Target string
	Routes []string
}

// Match lists the targets ev is sent to, each once however many routes chose it
// (a receiver wants one message per event), in the order the routes name them.
func (c Config) Match(ev model.Event) []Delivery {
	var out []Delivery
	at := map[string]int{}
	for _, r := range c.Routes {
		if !r.matches(ev) {
			continue
		}
		for _, t := range r.Targets {
			i, seen := at[t]
			if !seen {
				i = len(out)
				at[t] = i
				out = append(out, Delivery{Target: t})
			}
			if n := len(out[i].Routes); n == 0 || out[i].Routes[n-1] != r.Name {
				out[i].Routes = append(out[i].Routes, r.Name)
			}
		}
	}
	return out
}

func (r Route) matches(ev model.Event) bool {
	min, ok := severityRank(r.MinSeverity)
	if !ok {
		return false // refused by Validate; a route that cannot be read sends nothing
	}
	// An unknown severity from a newer agent is treated as the most severe rather than dropped.
	sev, ok := severityRank(string(ev.Severity))
	if !ok {
		sev = 2
	}
	if sev < min {
		return false
	}
	if len(r.Kinds) == 0 {
		return true
	}
	for _, pat := range r.Kinds {
		if ok, err := path.Match(pat, string(ev.Kind)); err == nil && ok {
			return true
		}
	}
	return false
}
