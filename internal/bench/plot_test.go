package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// The failover plot is well-formed SVG with one dot per trial, every
// series labelled with its median, and the same bytes for the same input.
func TestFailoverSVG(t *testing.T) {
	panels := []PlotPanel{
		{Title: "default timers", Note: "n trials", Series: []PlotSeries{
			{Label: "Vigil · power-off", System: "vigil", Values: []float64{2100, 2200, 2300}, Sum: Summary{N: 3, P50MS: 2200, P99MS: 2300}},
			{Label: "keepalived · power-off", System: "keepalived", Values: []float64{3600, 3700}, Sum: Summary{N: 2, P50MS: 3600, P99MS: 3700}, Missed: 1},
		}},
		{Title: "tuned <timers> & co", Series: []PlotSeries{
			{Label: "Vigil · cut link", System: "vigil", Values: []float64{640}, Sum: Summary{N: 1, P50MS: 640, P99MS: 640}},
		}},
	}
	svg := FailoverSVG("Failover", panels)
	circles, texts := 0, []string{}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "circle" {
				circles++
			}
		case xml.CharData:
			texts = append(texts, string(el))
		}
	}
	if circles != 6 {
		t.Errorf("%d dots, want one per trial (6)", circles)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"Vigil · power-off", "keepalived · power-off (1 missed)", "p50 2.20 s", "p50 640 ms", "tuned <timers> & co", "4 s"} {
		if !strings.Contains(all, want) {
			t.Errorf("plot text lacks %q:\n%s", want, all)
		}
	}
	if again := FailoverSVG("Failover", panels); !bytes.Equal(svg, again) {
		t.Error("two plots of the same input differ")
	}
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ max, want float64 }{{0, 100}, {600, 100}, {2500, 500}, {3700, 1000}, {7000, 2000}, {95, 20}} {
		if got := niceStep(c.max); got != c.want {
			t.Errorf("niceStep(%g) = %g, want %g", c.max, got, c.want)
		}
	}
}
