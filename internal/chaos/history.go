package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The history of a run. Every time is an offset from the run's start,
// measured on the monotonic clock of the process that recorded it.

// Answer is one client request to a group's VIP.
type Answer struct {
	Group string        `json:"group"`
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
	Node  string        `json:"node,omitempty"` // who answered; "" on failure
	Err   string        `json:"err,omitempty"`
}

// OK says whether the request got an answer.
func (a Answer) OK() bool { return a.Err == "" && a.Node != "" }

// Trial is one fault as it was injected.
type Trial struct {
	Fault Fault `json:"fault"` // with the nodes it was really aimed at
	// Start is when the fault began, Healed when it was undone, Settled
	// when every group had exactly one holder again (0 if never).
	Start   time.Duration     `json:"start"`
	Healed  time.Duration     `json:"healed"`
	Settled time.Duration     `json:"settled,omitempty"`
	Holders map[string]string `json:"holders,omitempty"` // group -> its holder once settled
	// SettleErr says why the groups did not settle within the bound.
	SettleErr string   `json:"settle_err,omitempty"`
	Notes     []string `json:"notes,omitempty"`
	// Exited lists the agents found gone although the nemesis had not
	// killed them, with the end of their logs.
	Exited map[string]string `json:"exited,omitempty"`
}

// Op is one operator action sent to the API.
type Op struct {
	Trial     int           `json:"trial"`
	Kind      string        `json:"kind"`       // OpMove, ...
	EventKind string        `json:"event_kind"` // the event it records
	Group     string        `json:"group"`
	Node      string        `json:"node,omitempty"`
	Via       string        `json:"via"`
	Reason    string        `json:"reason"` // unique in the run: how the op is found in the log
	At        time.Duration `json:"at"`
	Done      time.Duration `json:"done"`
	Acked     bool          `json:"acked"`
	Err       string        `json:"err,omitempty"`
}

// Event is one replicated log entry, reduced to what identifies it.
type Event struct {
	Index    uint64 `json:"index"`
	Kind     string `json:"kind"`
	Reporter string `json:"reporter"`
	Node     string `json:"node,omitempty"`
	Group    string `json:"group,omitempty"`
	Reason   string `json:"reason"`
	Time     string `json:"time"`
}

func (e Event) String() string {
	return fmt.Sprintf("#%d %s reporter=%s node=%s group=%s time=%s: %s", e.Index, e.Kind, e.Reporter, e.Node, e.Group, e.Time, e.Reason)
}

// Seen is an event read from one node's log during the run: once any node
// served it, it is committed and every node's log must keep it, at the
// same index.
type Seen struct {
	Event    Event         `json:"event"`
	Observer string        `json:"observer"`
	At       time.Duration `json:"at"`
}

// Span is a stretch of time during which Node held Group (its VIP, as the
// independent poll saw it).
type Span struct {
	Group string        `json:"group"`
	Node  string        `json:"node"`
	From  time.Duration `json:"from"`
	To    time.Duration `json:"to"`
}

// Violation kinds.
const (
	SplitBrainPoll = "split_brain_poll" // the 10 ms poll saw two nodes hold one VIP
	// ServiceOverlap: the poll saw the service run on two nodes while only
	// one held the VIP: the old holder, cut off, was still stopping its
	// copy (see docs/safety.md on resources without a kernel lease).
	ServiceOverlap   = "service_overlap"
	SplitBrainClient = "split_brain_client" // the client's answers interleave two nodes
	LostAck          = "lost_ack"           // an acknowledged operator action is missing
	LostEvent        = "lost_event"         // a committed event vanished or changed
	NoHolder         = "no_holder"          // a group had not exactly one holder in time after healing
	AgentExit        = "agent_exit"         // an agent exited by itself (a crash)
)

// Violation is one thing a checker found.
type Violation struct {
	Kind   string        `json:"kind"`
	At     time.Duration `json:"at"`
	To     time.Duration `json:"to,omitempty"`
	Group  string        `json:"group,omitempty"`
	Nodes  []string      `json:"nodes,omitempty"`
	Detail string        `json:"detail"`
}

func (v Violation) String() string {
	s := fmt.Sprintf("%s at %s", strings.ToUpper(v.Kind), stamp(v.At))
	if v.To > v.At {
		s += " to " + stamp(v.To)
	}
	if v.Group != "" {
		s += " group " + v.Group
	}
	if len(v.Nodes) > 0 {
		s += " nodes " + strings.Join(v.Nodes, ",")
	}
	return s + ": " + v.Detail
}

// IsSplitBrain says whether v is a split-brain interval.
func (v Violation) IsSplitBrain() bool { return v.Kind == SplitBrainPoll || v.Kind == SplitBrainClient }

func stamp(d time.Duration) string { return fmt.Sprintf("+%.3fs", d.Seconds()) }

// History is everything a run recorded.
type History struct {
	Seed     uint64              `json:"seed"`
	Nodes    []string            `json:"nodes"`
	Groups   map[string][]string `json:"groups"`
	Deadtime time.Duration       `json:"deadtime"`
	End      time.Duration       `json:"end"`
	Answers  []Answer            `json:"answers"`
	Trials   []Trial             `json:"trials"`
	Ops      []Op                `json:"ops"`
	Seen     []Seen              `json:"seen"`
	// Final is every node's whole log after the run healed.
	Final   map[string][]Event `json:"-"`
	Holding []Span             `json:"holding"`
	// Poll holds the violations the live 10 ms poll reported.
	Poll []Violation `json:"poll_violations,omitempty"`
}

// CheckOptions tune the checkers.
type CheckOptions struct {
	// ClientWindow: the client check flags node X answering, then Y, then
	// X again, all within this window; a legitimate move there and back
	// (two stops, two starts, two raft rounds) takes longer. It takes
	// less than a second, though: the runner uses 200 ms.
	ClientWindow time.Duration
	// HealBound is how long after healing every group must have exactly
	// one holder.
	HealBound time.Duration
}

// Check runs every checker over h and returns what they found, in time
// order.
func Check(h *History, opt CheckOptions) []Violation {
	var out []Violation
	out = append(out, h.Poll...)
	out = append(out, ClientSplitBrain(h.Answers, opt.ClientWindow)...)
	out = append(out, LostAcks(h.Ops, h.Final)...)
	out = append(out, LostEvents(h.Seen, h.Final)...)
	out = append(out, Unsettled(h.Trials, opt.HealBound)...)
	out = append(out, Exits(h.Trials)...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// ClientSplitBrain finds, per group, answers from one node X, then another
// node Y, then X again, each request ending before the next began, with
// the first and last no more than window apart: X served before and after
// Y did, so both served within that window. Requests that overlap in time
// prove nothing (either may have been answered first) and are ignored.
func ClientSplitBrain(answers []Answer, window time.Duration) []Violation {
	byGroup := map[string][]Answer{}
	for _, a := range answers {
		if a.OK() {
			byGroup[a.Group] = append(byGroup[a.Group], a)
		}
	}
	var groups []string
	for g := range byGroup {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	var out []Violation
	for _, g := range groups {
		as := byGroup[g]
		sort.Slice(as, func(i, j int) bool { return as[i].Start < as[j].Start })
		// Per node, its answers by end and by start, to find for each
		// answer b from Y, per other node X, the last answer from X that
		// ended before b began and the first that began after b ended.
		byEnd, byStart := map[string][]Answer{}, map[string][]Answer{}
		for _, a := range as {
			byEnd[a.Node] = append(byEnd[a.Node], a)
			byStart[a.Node] = append(byStart[a.Node], a)
		}
		nodes := sortedKeys(byEnd)
		for _, n := range nodes {
			e := byEnd[n]
			sort.Slice(e, func(i, j int) bool { return e[i].End < e[j].End })
		}
		var last *Violation
		for _, b := range as {
			for _, x := range nodes {
				if x == b.Node {
					continue
				}
				e := byEnd[x]
				i := sort.Search(len(e), func(i int) bool { return e[i].End >= b.Start }) - 1
				if i < 0 {
					continue
				}
				a1 := e[i]
				st := byStart[x]
				k := sort.Search(len(st), func(k int) bool { return st[k].Start > b.End })
				if k == len(st) {
					continue
				}
				a2 := st[k]
				if a2.Start-a1.End > window {
					continue
				}
				if last != nil && a1.End <= last.To && slices.Contains(last.Nodes, x) && slices.Contains(last.Nodes, b.Node) {
					last.To = max(last.To, a2.Start)
					continue
				}
				out = append(out, Violation{Kind: SplitBrainClient, Group: g, At: a1.End, To: a2.Start, Nodes: sorted(x, b.Node),
					Detail: fmt.Sprintf("the client got answers from %s (request %s-%s), then %s (%s-%s), then %s again (%s-%s)",
						x, stamp(a1.Start), stamp(a1.End), b.Node, stamp(b.Start), stamp(b.End), x, stamp(a2.Start), stamp(a2.End))})
				last = &out[len(out)-1]
			}
		}
	}
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// LostAcks finds acknowledged operator actions that some node's final log
// lacks (matched by kind and the op's unique reason).
func LostAcks(ops []Op, final map[string][]Event) []Violation {
	var out []Violation
	for _, op := range ops {
		if !op.Acked {
			continue
		}
		var missing []string
		for _, node := range sortedKeys(final) {
			found := false
			for _, ev := range final[node] {
				if ev.Kind == op.EventKind && ev.Reason == op.Reason {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, node)
			}
		}
		if len(missing) > 0 {
			out = append(out, Violation{Kind: LostAck, At: op.Done, Group: op.Group, Nodes: missing,
				Detail: fmt.Sprintf("%s (%s %q via %s, acknowledged at %s) is not in the log of %s", op.EventKind, op.Kind, op.Reason, op.Via, stamp(op.Done), strings.Join(missing, ", "))})
		}
	}
	return out
}

// LostEvents finds committed events (seen in some node's log) that a final
// log lacks at their index or holds changed, and indices served with two
// different events during the run.
func LostEvents(seen []Seen, final map[string][]Event) []Violation {
	var out []Violation
	first := map[uint64]Seen{}
	for _, s := range seen {
		f, ok := first[s.Event.Index]
		if !ok {
			first[s.Event.Index] = s
			continue
		}
		if f.Event != s.Event {
			out = append(out, Violation{Kind: LostEvent, At: s.At, Nodes: sorted(f.Observer, s.Observer),
				Detail: fmt.Sprintf("index %d served as %s by %s at %s and as %s by %s at %s", s.Event.Index, f.Event, f.Observer, stamp(f.At), s.Event, s.Observer, stamp(s.At))})
		}
	}
	for _, node := range sortedKeys(final) {
		at := map[uint64]Event{}
		for _, ev := range final[node] {
			at[ev.Index] = ev
		}
		var idx []uint64
		for i := range first {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for _, i := range idx {
			s := first[i]
			got, ok := at[i]
			switch {
			case !ok:
				out = append(out, Violation{Kind: LostEvent, At: s.At, Nodes: []string{node},
					Detail: fmt.Sprintf("%s's final log has no index %d, which %s served at %s as %s", node, i, s.Observer, stamp(s.At), s.Event)})
			case got != s.Event:
				out = append(out, Violation{Kind: LostEvent, At: s.At, Nodes: []string{node},
					Detail: fmt.Sprintf("%s's final log holds %s at index %d, which %s served at %s as %s", node, got, i, s.Observer, stamp(s.At), s.Event)})
			}
		}
	}
	return out
}

// Unsettled finds trials after which the groups did not have exactly one
// holder within bound of healing.
func Unsettled(trials []Trial, bound time.Duration) []Violation {
	var out []Violation
	for _, tr := range trials {
		switch {
		case tr.SettleErr != "":
			out = append(out, Violation{Kind: NoHolder, At: tr.Healed, To: tr.Healed + bound,
				Detail: fmt.Sprintf("after %s healed: %s", tr.Fault, tr.SettleErr)})
		case tr.Settled == 0:
			out = append(out, Violation{Kind: NoHolder, At: tr.Healed, Detail: fmt.Sprintf("after %s healed: never settled", tr.Fault)})
		case tr.Settled-tr.Healed > bound:
			out = append(out, Violation{Kind: NoHolder, At: tr.Healed, To: tr.Settled,
				Detail: fmt.Sprintf("after %s healed, one holder per group only %v later (bound %v)", tr.Fault, (tr.Settled - tr.Healed).Round(time.Millisecond), bound)})
		}
	}
	return out
}

// Exits finds agents that exited by themselves during a trial.
func Exits(trials []Trial) []Violation {
	var out []Violation
	for _, tr := range trials {
		for _, node := range sortedKeys(tr.Exited) {
			out = append(out, Violation{Kind: AgentExit, At: tr.Healed, Nodes: []string{node},
				Detail: fmt.Sprintf("%s's agent had exited by itself during or after %s; the end of its log: %s", node, tr.Fault, tr.Exited[node])})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Around renders the history from from to to: trials, operator actions,
// who held what, and the client's answers with runs from one node folded
// into one line.
func (h *History) Around(from, to time.Duration) string {
	type line struct {
		at   time.Duration
		text string
	}
	var lines []line
	for _, tr := range h.Trials {
		if tr.Start <= to && tr.Healed >= from || tr.Start >= from && tr.Start <= to {
			lines = append(lines, line{tr.Start, "FAULT   " + tr.Fault.String()})
			lines = append(lines, line{tr.Healed, fmt.Sprintf("HEAL    trial %d", tr.Fault.Trial)})
			if tr.Settled > 0 {
				lines = append(lines, line{tr.Settled, fmt.Sprintf("SETTLED trial %d: holders %v", tr.Fault.Trial, tr.Holders)})
			}
		}
	}
	for _, op := range h.Ops {
		if op.At >= from && op.At <= to {
			res := "acknowledged"
			if !op.Acked {
				res = "not acknowledged: " + op.Err
			}
			lines = append(lines, line{op.At, fmt.Sprintf("OP      %s %s %s via %s (%q): %s at %s", op.Kind, op.Group, op.Node, op.Via, op.Reason, res, stamp(op.Done))})
		}
	}
	for _, s := range h.Holding {
		if s.To >= from && s.From <= to {
			lines = append(lines, line{s.From, fmt.Sprintf("HOLD    %s holds %s's VIP until %s", s.Node, s.Group, stamp(s.To))})
		}
	}
	// Answers by start time, a run of one outcome folded.
	var as []Answer
	for _, a := range h.Answers {
		if a.Start >= from && a.Start <= to {
			as = append(as, a)
		}
	}
	sort.SliceStable(as, func(i, j int) bool { return as[i].Start < as[j].Start })
	key := func(a Answer) string {
		if a.OK() {
			return a.Group + " answered by " + a.Node
		}
		return a.Group + " failed"
	}
	for i := 0; i < len(as); {
		j := i
		for j+1 < len(as) && key(as[j+1]) == key(as[i]) {
			j++
		}
		text := fmt.Sprintf("CLIENT  %d requests %s (started %s-%s, last ended %s)", j-i+1, key(as[i]), stamp(as[i].Start), stamp(as[j].Start), stamp(as[j].End))
		if !as[j].OK() {
			text += ": " + as[j].Err
		}
		lines = append(lines, line{as[i].Start, text})
		i = j + 1
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at < lines[j].at })
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  %s %s\n", stamp(l.at), l.text)
	}
	return b.String()
}
