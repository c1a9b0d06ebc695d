package console

import (
	"fmt"
	"slices"
	"sort"

	"github.com/vigil-ha/vigil/internal/model"
)

// level is seed 002's colour of a status panel: red is a failure, yellow an
// anomaly that leaves the cluster able to decide, green all well.
type level int

const (
	green level = iota
	yellow
	red
)

func (l level) String() string { return [...]string{"green", "yellow", "red"}[l] }

// Label is what the colour means, for people who do not see it.
func (l level) Label() string {
	return [...]string{"All well", "Degraded: decisions still possible", "Failure"}[l]
}

// health is a colour with the reasons for it, worst first.
type health struct {
	Level   level
	Reasons []reason
}

type reason struct {
	Level level
	Text  string
}

func (h *health) add(l level, format string, args ...any) {
	h.Reasons = append(h.Reasons, reason{Level: l, Text: fmt.Sprintf(format, args...)})
	h.Level = max(h.Level, l)
}

// assess colours the cluster as the answering node sees it. Red: no quorum or
// no coordinator (nothing can be decided), or a group that is not served (failed,
// a stop that failed, placed nowhere). Yellow: something is wrong but decisions
// go on: a node or link down while quorum holds, a group moving, a failure flag
// still set, maintenance (decisions suspended on purpose), a failing check.
func assess(st model.Status, groups []model.GroupStatus) health {
	var h health
	if !st.Quorum {
		h.add(red, "%s has no quorum: the cluster cannot decide anything", st.Node)
	}
	if st.Leader == "" {
		h.add(red, "no coordinator is elected")
	}
	for _, n := range st.Nodes {
		switch n.State {
		case model.NodeDead:
			h.add(yellow, "node %s is dead", n.Name)
		case model.NodeSuspect:
			h.add(yellow, "node %s is silent (suspect)", n.Name)
		}
		if n.State != model.NodeDead {
			for _, l := range n.Links {
				if l.State == model.LinkDown {
					h.add(yellow, "link %s of node %s is down", l.Address, n.Name)
				}
			}
		}
	}
	for _, g := range groups {
		gl := groupLevel(g)
		switch {
		case g.State == "failed" || g.State == "stop_failed":
			h.add(red, "group %s: %s on %s", g.Name, stateText(g.State), g.Node)
		case g.Node == "" && !g.Maintenance:
			h.add(red, "group %s runs nowhere", g.Name)
		case g.Releasing:
			h.add(yellow, "group %s is moving from %s to %s", g.Name, g.Node, dash(g.Target))
		case gl == yellow && !g.Maintenance:
			h.add(yellow, "group %s is %s on %s", g.Name, stateText(g.State), g.Node)
		}
		if g.Maintenance {
			h.add(yellow, "group %s is in maintenance: no decisions are taken for it", g.Name)
		}
		for _, n := range sortedKeys(g.Flags) {
			h.add(yellow, "group %s is flagged failed on %s (%s): clear the flag once repaired", g.Name, n, g.Flags[n])
		}
		for _, c := range sortedKeys(g.Checks) {
			for _, n := range sortedKeys(g.Checks[c]) {
				if s := g.Checks[c][n]; s != "up" {
					h.add(yellow, "check %s of group %s is %s as %s sees it", c, g.Name, s, n)
				}
			}
		}
	}
	sort.SliceStable(h.Reasons, func(i, j int) bool { return h.Reasons[i].Level > h.Reasons[j].Level })
	return h
}

// groupLevel colours one group's state.
func groupLevel(g model.GroupStatus) level {
	switch g.State {
	case "running":
		if g.Releasing || len(g.Flags) > 0 || g.Maintenance {
			return yellow
		}
		return green
	case "starting", "stopping", "stopped":
		return yellow
	}
	if g.Maintenance && g.Node == "" {
		return yellow
	}
	return red
}

func nodeLevel(n model.NodeStatus) level {
	switch n.State {
	case model.NodeAlive:
		for _, l := range n.Links {
			if l.State == model.LinkDown {
				return yellow
			}
		}
		return green
	case model.NodeSuspect:
		return yellow
	}
	return red
}

func linkLevel(l model.LinkStatus) level {
	if l.State == model.LinkUp {
		return green
	}
	return red
}

func stateText(s string) string {
	switch s {
	case "stop_failed":
		return "stop failed"
	case "":
		return "unknown"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
