package sim

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const examples = "../../examples/scenarios"

func play(t *testing.T, name string) ([]Line, *Sim) {
	t.Helper()
	cfg, err := config.Load(filepath.Join(examples, "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := LoadScenario(filepath.Join(examples, name), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s.Run(sc), s
}

// TestScenarioGolden: the nine scenarios of brief.md give the decisions recorded in
// testdata (regenerate with -update, and read the diff before committing).
func TestScenarioGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(examples, "s*.yaml"))
	if len(files) != 9 {
		t.Fatalf("want the nine scenarios of brief.md, found %d", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			lines, s := play(t, name)
			if v := s.Violations(); len(v) > 0 {
				t.Fatalf("two holders at once: %v", v)
			}
			var b strings.Builder
			for _, l := range lines {
				b.WriteString(l.String() + "\n")
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".yaml")+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("decisions differ from %s (run with -update and review the diff):\n%s", golden, b.String())
			}
		})
	}
}

func assignments(lines []Line, group string) []string {
	var out []string
	for _, l := range lines {
		if l.Event.Kind == model.EventGroupAssigned && l.Event.Group == group {
			out = append(out, l.Event.Node)
		}
	}
	return out
}

// The golden files pin every line; these say what matters in each scenario.
func TestScenarioOutcomes(t *testing.T) {
	cases := map[string]func(t *testing.T, lines []Line){
		"s1-power-loss.yaml": func(t *testing.T, l []Line) {
			if got := assignments(l, "web"); strings.Join(got, ",") != "alessandro,federica" {
				t.Errorf("web assignments %v", got)
			}
		},
		"s3-standby-loses-public.yaml": func(t *testing.T, l []Line) {
			if got := assignments(l, "web"); strings.Join(got, ",") != "alessandro" {
				t.Errorf("web must not move when a standby loses its public network: %v", got)
			}
		},
		"s4-heartbeat-cut.yaml": func(t *testing.T, l []Line) {
			if got := assignments(l, "web"); len(got) != 1 {
				t.Errorf("a cut heartbeat link moved web: %v", got)
			}
		},
		"s5-all-power-loss.yaml": func(t *testing.T, l []Line) {
			got := assignments(l, "web")
			if got[len(got)-1] != "alessandro" {
				t.Errorf("after a cold start web must return to its preferred node: %v", got)
			}
		},
		"s7-service-fails.yaml": func(t *testing.T, l []Line) {
			restarts := 0
			for _, x := range l {
				if x.Event.Kind == model.EventGroupRestarting {
					restarts++
				}
			}
			if got := assignments(l, "web"); restarts != 2 || got[len(got)-1] != "federica" {
				t.Errorf("want 2 restarts then a move: %d restarts, assignments %v", restarts, got)
			}
		},
		"s8-failback.yaml": func(t *testing.T, l []Line) {
			if got := assignments(l, "web"); strings.Join(got, ",") != "alessandro,federica,alessandro" {
				t.Errorf("web failback: %v", got)
			}
		},
		"s9-split-brain.yaml": func(t *testing.T, l []Line) {
			found := false
			for _, x := range l {
				found = found || x.Event.Kind == model.EventSplitBrain && x.Event.Node == "federica"
			}
			if !found {
				t.Error("no SPLIT BRAIN alarm")
			}
		},
	}
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			lines, _ := play(t, name)
			check(t, lines)
		})
	}
}
