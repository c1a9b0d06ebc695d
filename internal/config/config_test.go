package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `cluster:
  name: cityhall
  timing: {keepalive: 200ms, warntime: 1s, deadtime: 2s, initdead: 10s}
nodes:
  - {name: alessandro, addresses: [10.0.0.1, 192.168.100.1]}
  - {name: federica,   addresses: [10.0.0.2, 192.168.100.2]}
  - {name: quorum,     addresses: [10.0.0.3], witness: true}
`

func TestParseGood(t *testing.T) {
	cfg, err := Parse("vigil.yaml", []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Cluster.Timing.Deadtime.D() != 2*time.Second {
		t.Errorf("deadtime = %v", cfg.Cluster.Timing.Deadtime.D())
	}
	if cfg.Cluster.Ports.API != DefaultAPIPort || cfg.Cluster.Ports.Heartbeat != DefaultHeartbeatPort {
		t.Errorf("port defaults not applied: %+v", cfg.Cluster.Ports)
	}
	if n, ok := cfg.Node("quorum"); !ok || !n.Witness {
		t.Errorf("witness not found: %+v", n)
	}
	if got := cfg.HeartbeatAddr(cfg.Nodes[1], 1); got != "192.168.100.2:7482" {
		t.Errorf("HeartbeatAddr = %q", got)
	}
	lease := cfg.Cluster.Timing.LeaseDuration()
	if lease <= 0 || lease >= cfg.Cluster.Timing.Deadtime.D() {
		t.Errorf("lease %v must be inside deadtime", lease)
	}
}

func TestParseDefaultsWhenTimingOmitted(t *testing.T) {
	cfg, err := Parse("v.yaml", []byte("cluster: {name: x}\nnodes:\n - {name: a, addresses: [127.0.0.1]}\n - {name: b, addresses: [127.0.0.2]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tm := cfg.Cluster.Timing
	if tm.Keepalive.D() != DefaultKeepalive || tm.Warntime.D() != DefaultWarntime || tm.Deadtime.D() != DefaultDeadtime || tm.Initdead.D() != DefaultInitdead {
		t.Errorf("defaults: %+v", tm)
	}
	if len(cfg.Warnings()) == 0 {
		t.Error("two voters without a witness must warn")
	}
}

func TestProblemsNameFileLineField(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // substrings, one per expected problem, in order
	}{
		{"unknown field", strings.Replace(good, "warntime", "warntme", 1), []string{"v.yaml:3: warntme: unknown field"}},
		{"duplicate key", "cluster:\n  name: a\n  name: b\n", []string{"v.yaml:3:"}},
		{"bad duration", strings.Replace(good, "deadtime: 2s", "deadtime: 2", 1), []string{"v.yaml:3:"}},
		{"wrong type", strings.Replace(good, "witness: true", "witness: [x]", 1), []string{"v.yaml:7:"}},
		{"syntax", "cluster: {name: x\n", []string{"v.yaml:"}},
		{
			"semantic, every problem reported",
			`cluster:
  name: City Hall
  timing: {keepalive: 200ms, warntime: 100ms, deadtime: 2s, initdead: 1s}
nodes:
  - {name: a, addresses: [10.0.0.1]}
  - {name: a, addresses: [10.0.0.1, nope]}
`,
			[]string{
				"v.yaml:2: cluster.name:",
				"v.yaml:3: cluster.timing.warntime: 100ms must be longer than keepalive",
				"v.yaml:3: cluster.timing.initdead:",
				"v.yaml:6: nodes[1].name: \"a\" is already the name of nodes[0]",
				"v.yaml:6: nodes[1].addresses[0]: 10.0.0.1 is also an address of a",
				"v.yaml:6: nodes[1].addresses[1]: \"nope\" is not an IP address",
			},
		},
		{"no nodes", "cluster: {name: x}\n", []string{"nodes: at least two nodes"}},
		{"deadtime too short for a lease", strings.Replace(good, "deadtime: 2s", "deadtime: 1.5s", 1) + "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("v.yaml", []byte(c.yaml))
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want Problems, got %T %v", err, err)
			}
			if len(ps) != len(c.want) {
				t.Fatalf("want %d problems, got %d:\n%v", len(c.want), len(ps), ps)
			}
			for i, w := range c.want {
				if !strings.Contains(ps[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i], w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("want error naming the file, got %v", err)
	}
}

func TestSecretsPathRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(p, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SecretsPath("ca.crt"); got != filepath.Join(dir, "ca.crt") {
		t.Errorf("SecretsPath = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("cluster: {name: x}\nnodes: [{name: a, addresses: [::1]}, {name: b, addresses: [127.0.0.2]}]\n"))
	f.Add([]byte("cluster:\n  timing: {keepalive: -1s}\n"))
	f.Add([]byte("nodes: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems list: %T %v", err, err)
			}
			for _, p := range ps {
				if !strings.HasPrefix(p.String(), "f.yaml") {
					t.Fatalf("problem does not name the file: %q", p)
				}
			}
			return
		}
		if len(cfg.Nodes) < 2 || cfg.Cluster.Timing.LeaseDuration() <= 0 {
			t.Fatalf("accepted an invalid config: %+v", cfg)
		}
	})
}

// The YAML decoder panics on a tag with no value where a list belongs;
// Parse reports it as a problem in the file instead.
func TestParseSurvivesADecoderPanic(t *testing.T) {
	_, err := Parse("vigil.yaml", []byte("nodes: ! "))
	if err == nil || !strings.Contains(err.Error(), "vigil.yaml") {
		t.Fatalf("Parse of `nodes: ! ` = %v, want an error naming the file", err)
	}
}
