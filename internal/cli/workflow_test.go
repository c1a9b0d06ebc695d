package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateLocatesWorkflowProblems(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	bad := `cluster:
  name: x
nodes:
  - {name: a, addresses: [10.0.0.1]}
  - {name: b, addresses: [10.0.0.2]}
workflows:
  - name: takeControl
    steps:
      - name: flush
        command: [./flushDisk.sh]
        on: {0: next, 3: repair}
      - name: site-b
        remote: {node: c, workflow: takeControl, action: restart}
batch:
  enabled: true
  commands:
    - {name: startBatch, command: [/opt/vai.sh], params: [{name: n, pattern: "[0-9]+"}]}
`
	if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, "config", "validate", p)
	if code != ExitUsage {
		t.Fatalf("exit %d, want 2: %s", code, errs)
	}
	for _, want := range []string{
		p + `:11: workflows[0].steps[0].on.3: "repair" is not a step`,
		p + `:13: workflows[0].steps[1].remote.action: "restart": use run or stop`,
		p + `:13: workflows[0].steps[1].remote.node: "c" is not a node`,
		p + `:17: batch.commands[0].params: listed, but allow_params is false`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
}

func TestValidateWarnsAboutWorkflowsWithTheirLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	src := `cluster:
  name: x
nodes:
  - {name: a, addresses: [10.0.0.1]}
  - {name: b, addresses: [10.0.0.2]}
  - {name: w, addresses: [10.0.0.3], witness: true}
workflows:
  - name: spin
    steps:
      - {name: check, command: ["false"], on: {1: repair}}
      - {name: repair, command: ["true"], on: {0: check}}
`
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "config", "validate", p)
	if code != ExitOK || !strings.Contains(out, "ok") {
		t.Fatalf("exit %d: %q %q", code, out, errs)
	}
	if want := "warning: " + p + ":10: workflows[0].steps[0]: steps check, repair form a loop"; !strings.Contains(errs, want) {
		t.Fatalf("missing %q in %q", want, errs)
	}
}

func TestWorkflowVerbsAreRegistered(t *testing.T) {
	for _, args := range [][]string{
		{"workflow", "--help"}, {"workflow", "run", "--help"}, {"workflow", "logs", "--help"}, {"batch", "run", "--help"},
	} {
		if code, out, errs := run(t, args...); code != ExitOK || out == "" {
			t.Errorf("%v: %d %q %q", args, code, out, errs)
		}
	}
	if code, _, _ := run(t, "workflow", "run"); code != ExitUsage {
		t.Errorf("workflow run without a name: exit %d, want 2", code)
	}
	if code, _, errs := run(t, "batch", "run", "x", "--param", "novalue", "--config", "/nonexistent"); code != ExitUsage || !strings.Contains(errs, "name=value") {
		t.Errorf("bad --param: %d %q", code, errs)
	}
}

func TestPerNodeVerbsNeedANode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	src := "cluster:\n  name: x\nnodes:\n  - {name: a, addresses: [198.51.100.201]}\n  - {name: b, addresses: [198.51.100.202]}\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"workflow", "list"}, {"batch", "run", "x"}} {
		code, _, errs := run(t, append(args, "--config", p)...)
		if code != ExitUsage || !strings.Contains(errs, "--node") {
			t.Errorf("%v without --node on no node: %d %q", args, code, errs)
		}
	}
}
