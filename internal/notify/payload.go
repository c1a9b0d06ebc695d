package notify

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// Payload is the JSON a webhook receives as its body, a script on standard input
// and a file target as one line.
type Payload struct {
	// ID identifies the event across the cluster ("<cluster>/<index>" for a committed
	// event): the same on every node, so receivers can drop the duplicates a
	// coordinator change may cause.
	ID      string      `json:"id"`
	Cluster string      `json:"cluster,omitempty"`
	Sender  string      `json:"sender"` // the node that dispatched it
	Target  string      `json:"target"`
	Routes  []string    `json:"routes"`
	Summary string      `json:"summary"`
	Event   model.Event `json:"event"`
	// Attempt counts deliveries tried for this notification, starting at 1.
	Attempt int `json:"attempt"`
}

func (d *Dispatcher) payload(it *item) Payload {
	id := d.opt.Cluster + "/" + strconv.FormatUint(it.Event.Index, 10)
	if it.Event.Index == 0 {
		// Not from the replicated log: unique to this node's spool only.
		id = fmt.Sprintf("%s/local-%s-%d", d.opt.Cluster, d.opt.Node, it.ID)
	}
	return Payload{ID: id, Cluster: d.opt.Cluster, Sender: d.opt.Node, Target: it.Target, Routes: it.Routes,
		Summary: Summary(it.Event), Event: it.Event, Attempt: it.Attempts + 1}
}

func (p Payload) encode() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode notification: %w", err)
	}
	return b, nil
}

// Summary is a one-line description for subjects and syslog:
// "CRITICAL node_dead node b: no heartbeat for 2s".
func Summary(ev model.Event) string {
	var b strings.Builder
	sev := ev.Severity
	if sev == "" {
		sev = model.SeverityInfo
	}
	b.WriteString(strings.ToUpper(string(sev)))
	b.WriteString(" ")
	b.WriteString(string(ev.Kind))
	if ev.Group != "" {
		b.WriteString(" group " + ev.Group)
	}
	if ev.Resource != "" {
		b.WriteString(" resource " + ev.Resource)
	}
	if ev.Node != "" {
		b.WriteString(" node " + ev.Node)
	}
	if ev.Reason != "" {
		b.WriteString(": " + ev.Reason)
	}
	return oneLine(b.String())
}

// oneLine folds control characters so that an event's text cannot start a new
// header in a mail or a new record in syslog.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// env is the environment a script target gets besides the event on standard input.
func (p Payload) env() []string {
	ev := p.Event
	kv := []struct{ k, v string }{
		{"VIGIL_NOTIFICATION_ID", p.ID},
		{"VIGIL_NOTIFICATION_TARGET", p.Target},
		{"VIGIL_NOTIFICATION_ROUTES", strings.Join(p.Routes, ",")},
		{"VIGIL_NOTIFICATION_ATTEMPT", strconv.Itoa(p.Attempt)},
		{"VIGIL_NODE", p.Sender},
		{"VIGIL_CLUSTER", p.Cluster},
		{"VIGIL_EVENT_INDEX", strconv.FormatUint(ev.Index, 10)},
		{"VIGIL_EVENT_TIME", ev.Time.UTC().Format(time.RFC3339Nano)},
		{"VIGIL_EVENT_KIND", string(ev.Kind)},
		{"VIGIL_EVENT_SEVERITY", string(ev.Severity)},
		{"VIGIL_EVENT_REPORTER", ev.Reporter},
		{"VIGIL_EVENT_NODE", ev.Node},
		{"VIGIL_EVENT_LINK", ev.Link},
		{"VIGIL_EVENT_GROUP", ev.Group},
		{"VIGIL_EVENT_RESOURCE", ev.Resource},
		{"VIGIL_EVENT_TARGET", ev.Target},
		{"VIGIL_EVENT_BY", ev.By},
		{"VIGIL_EVENT_REASON", ev.Reason},
		{"VIGIL_EVENT_SUMMARY", p.Summary},
	}
	out := make([]string, 0, len(kv))
	for _, e := range kv {
		// Environment strings cannot hold NUL; everything else passes as is.
		out = append(out, e.k+"="+strings.ReplaceAll(e.v, "\x00", " "))
	}
	return out
}
