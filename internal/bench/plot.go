package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// PlotSeries is one row of a failover plot: every trial's figure and the
// summary drawn over them.
type PlotSeries struct {
	Label  string // e.g. "Vigil · power-off"
	System string // picks the colour: "vigil", anything else is the comparison
	Values []float64
	Sum    Summary
	Missed int
}

// PlotPanel is one timing preset: series sharing one axis.
type PlotPanel struct {
	Title  string
	Note   string // under the title; "\n" starts a new line
	Series []PlotSeries
}

// Plot geometry, in SVG user units.
const (
	plotWidth   = 900
	plotLabelW  = 190 // left margin for the series labels
	plotRight   = 30
	plotRowH    = 34
	plotTitleH  = 44
	plotAxisH   = 34
	plotPanelGp = 16
)

var plotColours = map[bool]string{true: "#1f5fae", false: "#d9661f"}

// FailoverSVG draws the panels as strip plots: one dot per trial, a bar at
// the median and a tick at p99, each panel on its own linear axis from 0
// to just past its slowest trial. It is deterministic: the same input
// gives the same bytes, so a committed plot only changes with the figures.
func FailoverSVG(title string, panels []PlotPanel) []byte {
	height := 40
	for _, p := range panels {
		height += plotTitleH + noteH(p) + len(p.Series)*plotRowH + plotAxisH + plotPanelGp
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotWidth, height, plotWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", 10, html.EscapeString(title))
	y := 40
	for _, p := range panels {
		y = plotPanel(&b, p, y)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func plotPanel(b *strings.Builder, p PlotPanel, y int) int {
	fmt.Fprintf(b, `<text x="10" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", y+16, html.EscapeString(p.Title))
	if p.Note != "" {
		for i, line := range strings.Split(p.Note, "\n") {
			fmt.Fprintf(b, `<text x="10" y="%d" fill="#555" font-size="11">%s</text>`+"\n", y+33+i*14, html.EscapeString(line))
		}
	}
	y += plotTitleH + noteH(p)
	maxV := 0.0
	for _, s := range p.Series {
		for _, v := range s.Values {
			maxV = math.Max(maxV, v)
		}
	}
	step := niceStep(maxV)
	top := math.Max(step, math.Ceil(maxV/step)*step)
	x0, x1 := float64(plotLabelW), float64(plotWidth-plotRight)
	xOf := func(v float64) float64 { return x0 + (x1-x0)*v/top }
	rowsH := len(p.Series) * plotRowH
	// Grid and axis.
	for v := 0.0; v <= top+step/2; v += step {
		x := xOf(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e3e3"/>`+"\n", x, y, x, y+rowsH)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#333">%s</text>`+"\n", x, y+rowsH+14, axisLabel(v, step))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%d" fill="#333">client-observed failover (fault → first answer from the survivor)</text>`+"\n",
		x0, y+rowsH+29)
	for i, s := range p.Series {
		cy := float64(y + i*plotRowH + plotRowH/2)
		colour := plotColours[s.System == "vigil"]
		if i%2 == 0 {
			fmt.Fprintf(b, `<rect x="0" y="%d" width="%d" height="%d" fill="#f6f6f6" fill-opacity="0.6"/>`+"\n", y+i*plotRowH, plotWidth, plotRowH)
		}
		label := s.Label
		if s.Missed > 0 {
			label += fmt.Sprintf(" (%d missed)", s.Missed)
		}
		fmt.Fprintf(b, `<text x="10" y="%.1f" fill="%s">%s</text>`+"\n", cy-2, colour, html.EscapeString(label))
		if s.Sum.N > 0 {
			fmt.Fprintf(b, `<text x="10" y="%.1f" fill="#555" font-size="10">p50 %s · p99 %s · n %d</text>`+"\n", cy+11,
				msLabel(s.Sum.P50MS), msLabel(s.Sum.P99MS), s.Sum.N)
		}
		for j, v := range s.Values {
			// A fixed jitter pattern spreads equal values without randomness.
			jit := float64((j*7)%11-5) * 1.6
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s" fill-opacity="0.45"/>`+"\n", xOf(v), cy+jit, colour)
		}
		if s.Sum.N > 0 {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="2.5"/>`+"\n",
				xOf(s.Sum.P50MS), cy-12, xOf(s.Sum.P50MS), cy+12)
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="1" stroke-dasharray="3,2"/>`+"\n",
				xOf(s.Sum.P99MS), cy-12, xOf(s.Sum.P99MS), cy+12)
		}
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" fill="#555" font-size="10" text-anchor="end">dots: trials · solid bar: p50 · dashed: p99</text>`+"\n",
		plotWidth-plotRight, y+rowsH+29)
	return y + rowsH + plotAxisH + plotPanelGp
}

// noteH is the height the note's lines take beyond the first.
func noteH(p PlotPanel) int {
	if p.Note == "" {
		return 0
	}
	return 14 * strings.Count(p.Note, "\n")
}

// niceStep picks a grid step of 1, 2 or 5 × 10^k giving 4 to 10 lines.
func niceStep(maxV float64) float64 {
	if maxV <= 0 {
		return 100
	}
	raw := maxV / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func axisLabel(v, step float64) string {
	if step >= 1000 || v >= 1000 && math.Mod(v, 1000) == 0 {
		return trimZero(fmt.Sprintf("%.1f", v/1000)) + " s"
	}
	return fmt.Sprintf("%.0f ms", v)
}

func msLabel(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }
