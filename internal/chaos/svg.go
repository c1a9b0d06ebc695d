package chaos

import (
	"fmt"
	"html"
	"slices"
	"strings"
	"time"
)

// kindColour gives each fault kind a colour of its own on the timeline.
var kindColour = map[Kind]string{
	Kill: "#000000", Stop: "#ff7f0e", Freeze: "#8c564b", CutHeartbeat: "#9467bd", CutPublic: "#e377c2",
	Partition: "#1f77b4", OneWay: "#17becf", Loss: "#bcbd22", DiskFull: "#7f7f7f", Delay: "#aec7e8",
}

// SVG draws the run on one timeline: per node, the faults it suffered and
// the groups it held (as the 10 ms poll saw them); per group, the client's
// availability in buckets (green: every request answered, amber: some,
// red: none); violations as red lines across everything.
func SVG(h *History, violations []Violation) []byte {
	const (
		left, right = 90.0, 20.0
		width       = 1400.0
		laneH       = 22.0
		top         = 40.0
	)
	end := h.End
	if end <= 0 {
		end = time.Second
	}
	// 250 ms buckets, or about 2000 over a long run.
	bucket := max(250*time.Millisecond, end/2000)
	x := func(d time.Duration) float64 { return left + (width-left-right)*float64(d)/float64(end) }
	groups := sortedKeys(h.Groups)
	rows := len(h.Nodes)*2 + len(groups)
	height := top + float64(rows)*laneH + 60 + 18*float64((len(AllKinds)+3)/4)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	sb := 0
	for _, v := range violations {
		if v.IsSplitBrain() {
			sb++
		}
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="16" font-size="13">chaos run, seed %d: %d nodes, %d trials, %d violations (%d split brain), %v</text>`+"\n",
		left, h.Seed, len(h.Nodes), len(h.Trials), len(violations), sb, end.Round(time.Second))
	y := top
	lane := func(label string) float64 {
		fmt.Fprintf(&b, `<text x="4" y="%.1f">%s</text><line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/>`+"\n",
			y+laneH*0.7, html.EscapeString(label), left, width-right, y+laneH, y+laneH)
		ly := y
		y += laneH
		return ly
	}
	rect := func(from, to time.Duration, ly, hgt float64, fill, title string) {
		w := max(x(to)-x(from), 1)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
			x(from), ly, w, hgt, fill, html.EscapeString(title))
	}
	for _, n := range h.Nodes {
		ly := lane(n + " faults")
		for _, tr := range h.Trials {
			if !slices.Contains(tr.Fault.Nodes, n) && !slices.Contains(tr.Fault.Others, n) {
				continue
			}
			fill := kindColour[tr.Fault.Kind]
			if slices.Contains(tr.Fault.Others, n) {
				fill += "80" // the other side of a partition, lighter
			}
			rect(tr.Start, tr.Healed, ly+3, laneH-6, fill, fmt.Sprintf("%s %s-%s", tr.Fault, stamp(tr.Start), stamp(tr.Healed)))
		}
		ly = lane(n + " holds")
		for gi, g := range groups {
			for _, s := range h.Holding {
				if s.Node == n && s.Group == g {
					hh := (laneH - 6) / float64(len(groups))
					rect(s.From, s.To, ly+3+float64(gi)*hh, hh, "#2ca02c", fmt.Sprintf("%s holds %s %s-%s", n, g, stamp(s.From), stamp(s.To)))
				}
			}
		}
	}
	for _, g := range groups {
		ly := lane("client " + g)
		type cnt struct{ ok, bad int }
		buckets := make([]cnt, int(end/bucket)+1)
		for _, a := range h.Answers {
			if a.Group != g || a.Start < 0 || a.Start > end {
				continue
			}
			i := int(a.Start / bucket)
			if a.OK() {
				buckets[i].ok++
			} else {
				buckets[i].bad++
			}
		}
		// Runs of buckets of one colour are drawn as one rectangle.
		fillOf := func(c cnt) string {
			switch {
			case c.ok+c.bad == 0:
				return ""
			case c.ok == 0:
				return "#d62728"
			case c.bad > 0:
				return "#ffbf00"
			}
			return "#2ca02c"
		}
		for i := 0; i < len(buckets); {
			fill := fillOf(buckets[i])
			j, sum := i, cnt{}
			for ; j < len(buckets) && fillOf(buckets[j]) == fill; j++ {
				sum.ok += buckets[j].ok
				sum.bad += buckets[j].bad
			}
			if fill != "" {
				from, to := time.Duration(i)*bucket, time.Duration(j)*bucket
				rect(from, to, ly+3, laneH-6, fill, fmt.Sprintf("%s %s-%s: %d answered, %d failed", g, stamp(from), stamp(to), sum.ok, sum.bad))
			}
			i = j
		}
	}
	// Time axis.
	step := 10 * time.Second
	for end/step > 20 {
		step *= 2
	}
	for t := time.Duration(0); t <= end; t += step {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.1f" stroke="#ccc"/><text x="%.1f" y="%.1f" text-anchor="middle">%ds</text>`+"\n",
			x(t), x(t), top, y+4, x(t), y+16, int(t.Seconds()))
	}
	for _, v := range violations {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.1f" stroke="red" stroke-width="2"><title>%s</title></line>`+"\n",
			x(v.At), x(v.At), top-6, y, html.EscapeString(v.String()))
	}
	// Legend.
	ly := y + 30
	for i, k := range AllKinds {
		lx := left + float64(i%4)*220
		yy := ly + float64(i/4)*18
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, yy, kindColour[k], lx+16, yy+10, k)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func slicesSort(ds []time.Duration) { slices.Sort(ds) }
