package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const withWorkflows = good + `groups:
  - name: tomcat
    nodes: [alessandro, federica]
    resources:
      - name: app
        type: workflow
        start: normalPrimer
        stop: gracefulShutdown
        takeover: takeControl
        check: [/usr/bin/curl, -fsS, http://127.0.0.1:8080/]
workflows:
  - name: normalPrimer
    steps:
      - name: startupTomcat
        command: [./tomcatStartup.sh]
        on: {0: end, 1: end, default: abend}
  - name: gracefulShutdown
    steps:
      - {name: shutdownTomcat, command: [./tomcatShutdown.sh]}
  - name: takeControl
    steps:
      - name: stopOnPrimary
        remote: {node: alessandro, workflow: gracefulShutdown, wait: true}
        on: {default: next}
      - {name: start, command: [./tomcatStartup.sh]}
batch:
  enabled: true
  commands:
    - name: startBatch
      command: [/opt/checks/vai.sh, "11"]
      allow_params: true
      params:
        - {name: level, pattern: "[0-9]{1,4}"}
`

func TestWorkflowsAndBatchLoad(t *testing.T) {
	cfg, err := Parse("vigil.yaml", []byte(withWorkflows))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Workflows) != 3 || cfg.Workflows[2].Steps[0].Remote.Node != "alessandro" {
		t.Fatalf("workflows %+v", cfg.Workflows)
	}
	r := cfg.Groups[0].Resources[0]
	if r.Start != "normalPrimer" || r.Takeover != "takeControl" || len(r.Check) != 3 {
		t.Fatalf("workflow resource %+v", r)
	}
	b, ok := cfg.BatchCommand("startBatch")
	if !cfg.Batch.Enabled || !ok || b.EffectiveTimeout() != 10*time.Second {
		t.Fatalf("batch %+v", cfg.Batch)
	}
	p := b.Params[0]
	for v, want := range map[string]bool{"42": true, "9999": true, "42; reboot": false, "12345": false, "": false} {
		if p.Match(v) != want {
			t.Errorf("pattern %q on %q: %v, want %v", p.Pattern, v, !want, want)
		}
	}
}

func TestWorkflowProblemsAreLocated(t *testing.T) {
	bad := good + `groups:
  - name: web
    nodes: [alessandro]
    resources:
      - {name: app, type: workflow, start: nope, stop: w}
workflows:
  - name: w
    steps:
      - name: a
        command: [x]
        on: {3: missing}
      - name: r
        remote: {node: ghost, workflow: w, step: zz}
batch:
  commands:
    - name: b
      command: [x]
      params:
        - {name: Level, pattern: "("}
`
	_, err := Parse("vigil.yaml", []byte(bad))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	text := ps.Error()
	for _, want := range []string{
		"vigil.yaml:18: workflows[0].steps[0].on.3: \"missing\" is not a step",
		"vigil.yaml:20: workflows[0].steps[1].remote.node: \"ghost\" is not a node",
		"vigil.yaml:20: workflows[0].steps[1].remote.step: \"zz\" is not a step of workflow w",
		"vigil.yaml:12: groups[0].resources[0].start: \"nope\" is not a workflow",
		"batch.commands[0].params: listed, but allow_params is false",
		"batch.commands[0].params[0].name: \"Level\"",
		"batch.commands[0].params[0].pattern: not a regular expression",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestWorkflowWarningsCarryTheirLine(t *testing.T) {
	src := good + `workflows:
  - name: w
    steps:
      - {name: a, command: [x], on: {0: end}}
      - {name: b, command: [x]}
`
	cfg, err := Parse("vigil.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range cfg.Warnings() {
		if strings.HasPrefix(w, "vigil.yaml:12: workflows[0].steps[1]: ") && strings.Contains(w, "cannot be reached") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no located warning in %q", cfg.Warnings())
	}
}

func TestWorkflowResourceFieldsBelongToTheirType(t *testing.T) {
	src := good + `groups:
  - name: web
    nodes: [alessandro]
    resources:
      - {name: p, type: process, command: [/bin/true], start: w}
      - {name: q, type: workflow, stop: w}
workflows:
  - {name: w, steps: [{name: a, command: [x]}]}
`
	_, err := Parse("vigil.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "groups[0].resources[0].start: does not apply to type process") ||
		!strings.Contains(err.Error(), "groups[0].resources[1].start: required for type workflow") {
		t.Fatalf("got %v", err)
	}
}
