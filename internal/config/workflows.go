package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/workflow"
)

// DefaultBatchTimeout is the seed's remoteBatchTimeOut (10000 ms).
const DefaultBatchTimeout = 10 * time.Second

// Batch is the remote batch service (seed 002's Remote Batch): named commands that
// an operator may run on this node over the API, answered 200 when they exit 0 and
// 500 otherwise. Disabled unless enabled is true.
//
//	batch:
//	  enabled: true
//	  commands:
//	    - name: startBatch
//	      command: [/opt/checks/vai.sh, "11"]
//	      timeout: 10s
//	      allow_params: true
//	      params:
//	        - {name: level, pattern: "[0-9]{1,4}"}
type Batch struct {
	Enabled  bool           `yaml:"enabled"`
	Commands []BatchCommand `yaml:"commands"`
}

// BatchCommand is one command the batch service may run. The argv comes from here
// only, never from the request.
type BatchCommand struct {
	Name string `yaml:"name"`
	// Command is the argv, run without a shell; a relative program resolves against
	// the config file's directory, which is also the working directory.
	Command []string `yaml:"command"`
	// AllowParams admits request parameters (the seed's allowURIParams, default false);
	// each must be listed in Params and match its pattern.
	AllowParams bool         `yaml:"allow_params"`
	Params      []BatchParam `yaml:"params"`
	// Timeout kills the command's process group; default DefaultBatchTimeout.
	Timeout Duration `yaml:"timeout"`
}

// BatchParam is a parameter a request may pass. Given values are appended to the
// argv in the order the params are listed (as the seed appends its parameters) and
// set as $VIGIL_PARAM_<NAME> (upper-cased).
type BatchParam struct {
	Name string `yaml:"name"`
	// Pattern is a regular expression the whole value must match: it is anchored,
	// so "[0-9]+" admits "42" and refuses "42; reboot".
	Pattern string `yaml:"pattern"`

	re *regexp.Regexp // compiled by the validation
}

// Match reports whether v is an acceptable value.
func (p BatchParam) Match(v string) bool {
	re := p.re
	if re == nil { // a BatchParam built by hand, not loaded
		var err error
		if re, err = regexp.Compile(anchored(p.Pattern)); err != nil {
			return false
		}
	}
	return re.MatchString(v)
}

func anchored(pattern string) string { return `^(?:` + pattern + `)$` }

// EffectiveTimeout is Timeout with its default.
func (b BatchCommand) EffectiveTimeout() time.Duration {
	if b.Timeout > 0 {
		return b.Timeout.D()
	}
	return DefaultBatchTimeout
}

// BatchCommand returns the batch command called name.
func (c *Config) BatchCommand(name string) (BatchCommand, bool) {
	for _, b := range c.Batch.Commands {
		if b.Name == name {
			return b, true
		}
	}
	return BatchCommand{}, false
}

// Workflow returns the workflow called name.
func (c *Config) Workflow(name string) (workflow.Workflow, bool) {
	for _, w := range c.Workflows {
		if w.Name == name {
			return w, true
		}
	}
	return workflow.Workflow{}, false
}

var (
	batchNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	paramNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// validateWorkflows checks the workflows section, remote steps against the nodes
// and workflows, and workflow resources against the workflows. Warnings are kept for
// Warnings(), located like problems.
func (c *Config) validateWorkflows(l locator) []Problem {
	var ps []Problem
	c.warnings = nil
	for _, p := range workflow.ValidateAll(c.Workflows) {
		if p.Warning {
			c.warnings = append(c.warnings, l.problem(p.Field, "%s", p.Message).String())
			continue
		}
		ps = append(ps, l.problem(p.Field, "%s", p.Message))
	}
	for i, w := range c.Workflows {
		for j, s := range w.Steps {
			if s.Remote == nil {
				continue
			}
			f := fmt.Sprintf("workflows[%d].steps[%d].remote", i, j)
			ps = append(ps, c.validateRemote(l, f, s.Remote)...)
		}
	}
	for i, g := range c.Groups {
		for j, r := range g.Resources {
			if r.Type != "workflow" {
				continue
			}
			f := fmt.Sprintf("groups[%d].resources[%d]", i, j)
			for _, ref := range []struct{ field, name string }{
				{"start", r.Start}, {"stop", r.Stop}, {"takeover", r.Takeover}, {"restart", r.Restart}, {"monitor", r.Monitor},
			} {
				if _, ok := c.Workflow(ref.name); ref.name != "" && !ok {
					ps = append(ps, l.problem(f+"."+ref.field, "%q is not a workflow (workflows: %v)", ref.name, c.workflowNames()))
				}
			}
			// The restart is guarded against chains only while its run goes on:
			// the seed ends it with a long wait.
			if w, ok := c.Workflow(r.Restart); ok && len(w.Steps) > 0 && !w.Steps[len(w.Steps)-1].IsPause() {
				c.warnings = append(c.warnings, l.problem(f+".restart", "workflow %s does not end with a wait_before pause: a service failing again right after a restart is restarted again, without limit", w.Name).String())
			}
		}
	}
	return ps
}

func (c *Config) validateRemote(l locator, f string, r *workflow.Remote) []Problem {
	var ps []Problem
	if _, ok := c.Node(r.Node); r.Node != "" && !ok {
		ps = append(ps, l.problem(f+".node", "%q is not a node (nodes: %v)", r.Node, c.NodeNames()))
	}
	// Every node loads this same file, so the remote workflow is known here.
	w, ok := c.Workflow(r.Workflow)
	switch {
	case r.Workflow == "":
	case !ok:
		ps = append(ps, l.problem(f+".workflow", "%q is not a workflow (workflows: %v)", r.Workflow, c.workflowNames()))
	case r.Step != "":
		if _, ok := w.Step(r.Step); !ok {
			ps = append(ps, l.problem(f+".step", "%q is not a step of workflow %s", r.Step, w.Name))
		}
	}
	return ps
}

func (c *Config) workflowNames() []string {
	out := make([]string, len(c.Workflows))
	for i, w := range c.Workflows {
		out[i] = w.Name
	}
	return out
}

func (c *Config) validateBatch(l locator) []Problem {
	var ps []Problem
	b := &c.Batch
	if b.Enabled && len(b.Commands) == 0 {
		c.warnings = append(c.warnings, l.problem("batch.enabled", "the batch service is enabled but has no commands").String())
	}
	names := map[string]int{}
	for i := range b.Commands {
		cmd := &b.Commands[i]
		f := fmt.Sprintf("batch.commands[%d]", i)
		switch {
		case cmd.Name == "":
			ps = append(ps, l.problem(f+".name", "required"))
		case !batchNameRE.MatchString(cmd.Name):
			ps = append(ps, l.problem(f+".name", "%q: use letters, digits, '.', '_' and '-' (it is part of a URL)", cmd.Name))
		default:
			if j, dup := names[cmd.Name]; dup {
				ps = append(ps, l.problem(f+".name", "%q is already the name of batch.commands[%d]", cmd.Name, j))
			}
			names[cmd.Name] = i
		}
		if len(cmd.Command) == 0 || cmd.Command[0] == "" {
			ps = append(ps, l.problem(f+".command", "required: the argv to run, e.g. [/opt/checks/vai.sh, \"11\"]"))
		}
		if cmd.Timeout < 0 {
			ps = append(ps, l.problem(f+".timeout", "must not be negative"))
		}
		if len(cmd.Params) > 0 && !cmd.AllowParams {
			ps = append(ps, l.problem(f+".params", "listed, but allow_params is false: set allow_params: true to accept them"))
		}
		if cmd.AllowParams && len(cmd.Params) == 0 {
			c.warnings = append(c.warnings, l.problem(f+".allow_params", "no params are listed, so every parameter is refused").String())
		}
		pnames := map[string]bool{}
		for j := range cmd.Params {
			p := &cmd.Params[j]
			pf := fmt.Sprintf("%s.params[%d]", f, j)
			switch {
			case !paramNameRE.MatchString(p.Name):
				ps = append(ps, l.problem(pf+".name", "%q: use lower-case letters, digits and '_' (at most 32)", p.Name))
			case pnames[p.Name]:
				ps = append(ps, l.problem(pf+".name", "%q is listed twice", p.Name))
			}
			pnames[p.Name] = true
			if strings.TrimSpace(p.Pattern) == "" {
				ps = append(ps, l.problem(pf+".pattern", "required: a regular expression every value must match"))
				continue
			}
			re, err := regexp.Compile(anchored(p.Pattern))
			if err != nil {
				ps = append(ps, l.problem(pf+".pattern", "not a regular expression: %v", err))
				continue
			}
			p.re = re
		}
	}
	return ps
}
