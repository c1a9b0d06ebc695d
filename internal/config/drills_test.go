package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const drillGroup = `groups:
  - name: web
    nodes: [alessandro, federica]
    resources:
      - {name: vip, type: ip, address: 10.0.0.100/24, interface: eth0}
    checks:
      - {type: script, command: [/usr/local/bin/app-healthy]}
      - {type: http, url: "http://10.0.0.100/"}
`

func TestDrillDefaultsAndProbe(t *testing.T) {
	cfg, err := Parse("v.yaml", []byte(good+drillGroup))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := cfg.Group("web")
	// No drill section: the first check a client could make is the probe.
	if p := g.DrillProbe(); p == nil || p.URL != "http://10.0.0.100/" {
		t.Fatalf("probe %+v", p)
	}
	d := g.DrillSettings()
	if d.Interval.D() != DefaultDrillInterval || d.Settle.D() != DefaultDrillSettle || d.Timeout.D() != DefaultDrillTimeout || !*d.Back {
		t.Errorf("defaults %+v", d)
	}

	cfg, err = Parse("v.yaml", []byte(good+drillGroup+`    drill:
      probe: {type: tcp, address: "10.0.0.100:80"}
      interval: 100ms
      schedule: "0 3 * * 0"
      to: federica
      back: false
`))
	if err != nil {
		t.Fatal(err)
	}
	g, _ = cfg.Group("web")
	d = g.DrillSettings()
	if p := g.DrillProbe(); p.Address != "10.0.0.100:80" || p.Timeout.D() == 0 {
		t.Errorf("explicit probe %+v (defaults applied?)", p)
	}
	if d.Interval.D() != 100*time.Millisecond || d.Schedule != "0 3 * * 0" || d.To != "federica" || *d.Back {
		t.Errorf("settings %+v", d)
	}
}

func TestDrillProblems(t *testing.T) {
	bad := good + drillGroup + `    drill:
      probe: {type: script, command: [/bin/true]}
      interval: 1ms
      schedule: "sundays at three"
      to: quorum
`
	_, err := Parse("v.yaml", []byte(bad))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{
		"v.yaml:17: groups[0].drill.probe.type: use tcp, http, https or icmp",
		"v.yaml:18: groups[0].drill.interval: 1ms is below the minimum 20ms",
		"v.yaml:19: groups[0].drill.schedule:",
		`v.yaml:20: groups[0].drill.to: "quorum" is not one of the group's nodes`,
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems:\n%v", len(ps), ps)
	}
	for i, w := range want {
		if !strings.Contains(ps[i].String(), w) {
			t.Errorf("problem %d = %q, want %q", i, ps[i], w)
		}
	}
}
