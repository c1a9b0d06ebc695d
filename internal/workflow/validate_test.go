package workflow

import (
	"go/build"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

const exampleYAML = `
workflows:
  - name: normalPrimer
    description: start Tomcat and keep checking it
    first: startupTomcat
    steps:
      - name: startupTomcat
        command: [./tomcatStartup.sh, batch]
        env: {CATALINA_HOME: /opt/tomcat}
        dir: scripts
        timeout: 2m
        # tomcat's start script returns 1 on success on some platforms: say so here,
        # not in the script.
        on: {0: next, 1: next, default: abend}
      - name: checkApache
        shell: "curl -fsS http://127.0.0.1:8080/ >/dev/null"
        timeout: 10s
        retries: 3
        retry_delay: 5s
      - name: normalEnd
        shell: "curl -fsS http://127.0.0.1:8080/ >/dev/null"
        commit: true
        watch: {interval: 30s}
        timeout: 10s
        on: {default: restart}
      - name: restart
        command: [./tomcatRestart.sh]
        on: {0: normalEnd, 3: abend}
  - name: restartWorkFlow
    exclusive: true
    steps:
      - name: stop
        command: [./tomcatShutdown.sh]
      - name: start
        command: [./tomcatStartup.sh]
      - name: cooldown
        wait_before: 6h
`

type file struct {
	Workflows []Workflow `yaml:"workflows"`
}

func TestExampleDecodesStrictlyAndValidates(t *testing.T) {
	var f file
	if err := yaml.UnmarshalWithOptions([]byte(exampleYAML), &f, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	if ps := ValidateAll(f.Workflows); len(ps) > 0 {
		t.Fatalf("problems: %v", ps)
	}
	w := f.Workflows[0]
	if w.Steps[0].On["1"] != "next" || w.Steps[2].Watch.Interval.D() != 30*time.Second || !w.Steps[2].Commit {
		t.Fatalf("decoded %+v", w.Steps)
	}
	if got := w.Steps[1].Argv(); len(got) != 3 || got[0] != "/bin/sh" || got[1] != "-c" {
		t.Fatalf("shell argv %q", got)
	}
	if f.Workflows[1].Steps[2].Argv() != nil || f.Workflows[1].Steps[2].WaitBefore.D() != 6*time.Hour {
		t.Fatalf("cooldown %+v", f.Workflows[1].Steps[2])
	}
}

func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	var f file
	err := yaml.UnmarshalWithOptions([]byte("workflows:\n  - name: a\n    steps:\n      - name: s\n        comand: [x]\n"), &f, yaml.Strict())
	if err == nil {
		t.Fatal("misspelt field accepted")
	}
}

func TestValidateProblems(t *testing.T) {
	cmd := []string{"true"}
	cases := []struct {
		name    string
		w       Workflow
		field   string
		message string
		warning bool
	}{
		{"no name", Workflow{Steps: []Step{{Name: "a", Command: cmd}}}, "name", "required", false},
		{"bad name", Workflow{Name: "a b", Steps: []Step{{Name: "a", Command: cmd}}}, "name", "use letters", false},
		{"no steps", Workflow{Name: "w"}, "steps", "at least one step", false},
		{"duplicate step", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd}, {Name: "a", Command: cmd}}}, "steps[1].name", "already the name of steps[0]", false},
		{"reserved step name", Workflow{Name: "w", Steps: []Step{{Name: "end", Command: cmd}}}, "steps[0].name", "reserved", false},
		{"unknown first", Workflow{Name: "w", First: "zz", Steps: []Step{{Name: "a", Command: cmd}}}, "first", `"zz" is not a step`, false},
		{"missing command", Workflow{Name: "w", Steps: []Step{{Name: "a"}}}, "steps[0].command", "required", false},
		{"command and shell", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, Shell: "true"}}}, "steps[0].shell", "not both", false},
		{"empty program", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: []string{""}}}}, "steps[0].command[0]", "empty", false},
		{"watch without command", Workflow{Name: "w", Steps: []Step{{Name: "a", WaitBefore: sec(1), Watch: &Watch{Interval: sec(1)}}}}, "steps[0].command", "watch step needs", false},
		{"watch without interval", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, Watch: &Watch{}}}}, "steps[0].watch.interval", "required", false},
		{"watch code out of range", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, Watch: &Watch{Interval: sec(1), While: []int{0, 300}}}}}, "steps[0].watch.while[1]", "0-255", false},
		{"unknown target", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, On: map[string]string{"3": "repair"}}}}, "steps[0].on.3", `"repair" is not a step`, false},
		{"bad on key", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, On: map[string]string{"fail": "end"}}}}, "steps[0].on.fail", "exit codes 0-255 or default", false},
		{"on key out of range", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, On: map[string]string{"256": "end"}}}}, "steps[0].on.256", "exit codes", false},
		{"negative timeout", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, Timeout: -1}}}, "steps[0].timeout", "negative", false},
		{"negative retries", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, Retries: -1}}}, "steps[0].retries", "0 or more", false},
		{"bad env", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, Env: map[string]string{"A=B": "c"}}}}, "steps[0].env", "not a valid variable", false},
		{"unreachable step", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, On: map[string]string{"0": "end"}}, {Name: "b", Command: cmd}}}, "steps[1]", "cannot be reached", true},
		{"loop without pause", Workflow{Name: "w", Steps: []Step{
			{Name: "a", Command: cmd, On: map[string]string{"1": "b"}},
			{Name: "b", Command: cmd, On: map[string]string{"0": "a"}},
		}}, "steps[0]", "a, b form a loop", true},
		{"self loop without pause", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, On: map[string]string{"1": "a"}}}}, "steps[0]", "a form a loop", true},
		{"remote without node", Workflow{Name: "w", Steps: []Step{{Name: "a", Remote: &Remote{Workflow: "x"}}}}, "steps[0].remote.node", "required", false},
		{"remote without workflow", Workflow{Name: "w", Steps: []Step{{Name: "a", Remote: &Remote{Node: "b"}}}}, "steps[0].remote.workflow", "required", false},
		{"remote and command", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, Remote: &Remote{Node: "b", Workflow: "x"}}}}, "steps[0].command", "runs no command", false},
		{"remote bad action", Workflow{Name: "w", Steps: []Step{{Name: "a", Remote: &Remote{Node: "b", Workflow: "x", Action: "restart"}}}}, "steps[0].remote.action", "use run or stop", false},
		{"remote only_step without step", Workflow{Name: "w", Steps: []Step{{Name: "a", Remote: &Remote{Node: "b", Workflow: "x", OnlyStep: true}}}}, "steps[0].remote.only_step", "needs step", false},
		{"remote stop with wait", Workflow{Name: "w", Steps: []Step{{Name: "a", Remote: &Remote{Node: "b", Workflow: "x", Action: "stop", Wait: true}}}}, "steps[0].remote.wait", "does not apply", false},
		{"retry_delay without retries", Workflow{Name: "w", Steps: []Step{{Name: "a", Command: cmd, RetryDelay: sec(1)}}}, "steps[0].retry_delay", "no effect", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := Validate(tc.w)
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Message, tc.message) && p.Warning == tc.warning {
					return
				}
			}
			t.Fatalf("want %s: %s (warning %v), got %v", tc.field, tc.message, tc.warning, ps)
		})
	}
}

func TestPacedLoopsAreFine(t *testing.T) {
	cmd := []string{"true"}
	w := Workflow{Name: "w", Steps: []Step{
		{Name: "health", Command: cmd, Watch: &Watch{Interval: sec(30)}, On: map[string]string{"default": "repair"}},
		{Name: "repair", Command: cmd, On: map[string]string{"0": "health"}},
		{Name: "a", Command: cmd, On: map[string]string{"0": "b"}},
		{Name: "b", Command: cmd, WaitBefore: sec(1), On: map[string]string{"0": "a", "1": "end"}},
	}}
	for _, p := range Validate(w) {
		if strings.Contains(p.Message, "loop") {
			t.Fatalf("paced loop warned: %v", p)
		}
	}
}

func TestValidateAllPrefixesAndFindsDuplicates(t *testing.T) {
	ws := []Workflow{
		{Name: "w", Steps: []Step{{Name: "a", Command: []string{"x"}}}},
		{Name: "w", Steps: []Step{{Name: "a", Command: []string{"x"}, On: map[string]string{"3": "zz"}}}},
	}
	ps := ValidateAll(ws)
	want := map[string]bool{"workflows[1].name": false, "workflows[1].steps[0].on.3": false}
	for _, p := range ps {
		if _, ok := want[p.Field]; ok {
			want[p.Field] = true
		}
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("no problem at %s in %v", f, ps)
		}
	}
}

// The core stays pure: it decides, the runner executes. A direct import of these in
// a non-test file would let I/O creep into the decisions.
func TestCoreImportsNoIO(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		switch {
		case imp == "os" || imp == "os/exec" || imp == "net" || strings.HasPrefix(imp, "net/") ||
			imp == "syscall" || strings.Contains(imp, "bbolt") || strings.HasSuffix(imp, "/runexec"):
			t.Errorf("workflow imports %s; keep I/O in workflow/runner", imp)
		}
	}
}

func TestRemoteStepDecodesAndValidates(t *testing.T) {
	var f file
	src := "workflows:\n  - name: site\n    steps:\n      - name: db\n        remote: {node: b, workflow: startDb, step: mount, only_step: true, wait: true}\n        timeout: 5m\n"
	if err := yaml.UnmarshalWithOptions([]byte(src), &f, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	if ps := ValidateAll(f.Workflows); len(ps) > 0 {
		t.Fatalf("problems: %v", ps)
	}
	s := f.Workflows[0].Steps[0]
	if s.Remote.EffectiveAction() != RemoteRun || !s.Remote.OnlyStep || s.IsPause() || s.Argv() != nil {
		t.Fatalf("decoded %+v", s.Remote)
	}
	c := f.Workflows[0].Clone()
	c.Steps[0].Remote.Node = "zz"
	if f.Workflows[0].Steps[0].Remote.Node != "b" {
		t.Fatal("Clone shares the remote spec")
	}
}
