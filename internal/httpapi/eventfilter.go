package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/model"
)

// eventFilter narrows GET /v1/events for the console's timeline and for scripts:
// kinds (any of), a node (the one the event is about or the one that reported
// it), a group, and a minimum severity.
type eventFilter struct {
	kinds    map[model.EventKind]bool
	node     string
	group    string
	severity int
	// last keeps only the newest matches (0: the first limit matches after "after").
	last int
}

func severityRank(s model.Severity) int {
	switch s {
	case model.SeverityInfo:
		return 1
	case model.SeverityWarning:
		return 2
	case model.SeverityCritical:
		return 3
	}
	return 0
}

func parseEventFilter(q url.Values) (eventFilter, error) {
	var f eventFilter
	for _, k := range strings.Split(q.Get("kind"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			if f.kinds == nil {
				f.kinds = map[model.EventKind]bool{}
			}
			f.kinds[model.EventKind(k)] = true
		}
	}
	f.node, f.group = q.Get("node"), q.Get("group")
	if v := q.Get("severity"); v != "" {
		if f.severity = severityRank(model.Severity(v)); f.severity == 0 {
			return f, &Error{Code: http.StatusBadRequest, Message: "severity: info, warning or critical (the least severe to show)", Field: "severity"}
		}
	}
	if v := q.Get("last"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventsPage {
			return f, &Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("last must be 1..%d", maxEventsPage), Field: "last"}
		}
		f.last = n
	}
	return f, nil
}

func (f eventFilter) any() bool {
	return f.kinds != nil || f.node != "" || f.group != "" || f.severity > 0 || f.last > 0
}

func (f eventFilter) match(ev model.Event) bool {
	switch {
	case f.kinds != nil && !f.kinds[ev.Kind]:
		return false
	case f.node != "" && ev.Node != f.node && ev.Reporter != f.node:
		return false
	case f.group != "" && ev.Group != f.group:
		return false
	case f.severity > 0 && severityRank(ev.Severity) < f.severity:
		return false
	}
	return true
}

// filtered pages through the log: the first limit matches after "after", or with
// last the newest last matches (in log order). It reads the whole log for last;
// the log is in memory and the console asks for a page at a time.
func (s *server) filtered(f eventFilter, after uint64, limit int) []model.Event {
	out := []model.Event{}
	for {
		page := s.b.Events(after, maxEventsPage)
		for _, ev := range page {
			after = ev.Index
			if !f.match(ev) {
				continue
			}
			out = append(out, ev)
			if f.last > 0 && len(out) > 2*f.last {
				out = append(out[:0], out[len(out)-f.last:]...)
			}
			if f.last == 0 && len(out) == limit {
				return out
			}
		}
		if len(page) < maxEventsPage {
			break
		}
	}
	if f.last > 0 && len(out) > f.last {
		out = out[len(out)-f.last:]
	}
	return out
}
