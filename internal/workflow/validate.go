package workflow

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/finding"
)

// nameRE admits the seed's camelCase names (normalPrimer, takeControl) as well as
// kebab-case; names appear in CLI arguments, URLs and run ids, so no spaces or slashes.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// MaxRetries keeps a typo (retries: 1000000) from turning a failing step into a siege.
const MaxRetries = 100

// Problem is one thing wrong (or, with Warning, suspicious) in a workflow definition.
type Problem = finding.Problem

// Errors keeps the problems that are not warnings.
func Errors(ps []Problem) []Problem { return finding.Errors(ps) }

// ValidateAll checks the workflows section: each workflow, and that names are unique.
// Fields start with workflows[i].
func ValidateAll(ws []Workflow) []Problem {
	var ps []Problem
	names := map[string]int{}
	for i, w := range ws {
		prefix := fmt.Sprintf("workflows[%d].", i)
		if j, dup := names[w.Name]; dup && w.Name != "" {
			ps = append(ps, Problem{Field: prefix + "name", Message: fmt.Sprintf("%q is already the name of workflows[%d]", w.Name, j)})
		} else {
			names[w.Name] = i
		}
		for _, p := range Validate(w) {
			p.Field = prefix + p.Field
			ps = append(ps, p)
		}
	}
	return ps
}

// Validate checks one workflow. Fields are relative to it (name, steps[2].on.3).
func Validate(w Workflow) []Problem {
	v := &validator{w: &w, index: map[string]int{}}
	v.names()
	for i := range w.Steps {
		v.step(i)
	}
	if len(v.errs()) == 0 {
		// The graph checks assume every target resolves.
		v.reachability()
		v.loops()
	}
	return v.ps
}

type validator struct {
	w     *Workflow
	index map[string]int // step name -> position
	ps    []Problem
}

func (v *validator) add(field, format string, args ...any) {
	v.ps = append(v.ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) warn(field, format string, args ...any) {
	v.ps = append(v.ps, Problem{Field: field, Message: fmt.Sprintf(format, args...), Warning: true})
}

func (v *validator) errs() []Problem { return Errors(v.ps) }

func (v *validator) names() {
	w := v.w
	switch {
	case w.Name == "":
		v.add("name", "required")
	case !nameRE.MatchString(w.Name):
		v.add("name", "%q: use letters, digits, '.', '_' and '-' (at most 63)", w.Name)
	}
	if len(w.Steps) == 0 {
		v.add("steps", "a workflow needs at least one step")
	}
	for i, s := range w.Steps {
		f := fmt.Sprintf("steps[%d].name", i)
		switch {
		case s.Name == "":
			v.add(f, "required")
		case isReserved(s.Name):
			v.add(f, "%q is a reserved transition target; choose another name", s.Name)
		case !nameRE.MatchString(s.Name):
			v.add(f, "%q: use letters, digits, '.', '_' and '-' (at most 63)", s.Name)
		default:
			if j, dup := v.index[s.Name]; dup {
				v.add(f, "%q is already the name of steps[%d]", s.Name, j)
				continue
			}
			v.index[s.Name] = i
		}
	}
	if w.First != "" {
		if _, ok := v.index[w.First]; !ok {
			v.add("first", "%q is not a step of this workflow", w.First)
		}
	}
}

func isReserved(name string) bool {
	switch name {
	case TargetNext, TargetEnd, TargetAbend, OnDefault:
		return true
	}
	return false
}

func (v *validator) step(i int) {
	s := &v.w.Steps[i]
	f := fmt.Sprintf("steps[%d]", i)
	switch {
	case s.Remote != nil:
		v.remote(f, s)
	case len(s.Command) > 0 && s.Shell != "":
		v.add(f+".shell", "set command (an argv) or shell (a /bin/sh -c string), not both")
	case len(s.Command) > 0 && s.Command[0] == "":
		v.add(f+".command[0]", "the program is empty")
	case len(s.Command) == 0 && s.Shell == "" && s.Watch != nil:
		v.add(f+".command", "a watch step needs a command or shell to check with")
	case len(s.Command) == 0 && s.Shell == "" && s.WaitBefore <= 0:
		v.add(f+".command", "required (command: [argv], shell: string or remote: {...}); only a wait_before pause may have none")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			v.add(f+".env", "%q is not a valid variable name", k)
		}
	}
	for _, d := range []struct {
		field string
		neg   bool
	}{{"timeout", s.Timeout < 0}, {"wait_before", s.WaitBefore < 0}, {"retry_delay", s.RetryDelay < 0}} {
		if d.neg {
			v.add(f+"."+d.field, "must not be negative")
		}
	}
	switch {
	case s.Retries < 0:
		v.add(f+".retries", "must be 0 or more")
	case s.Retries > MaxRetries:
		v.add(f+".retries", "at most %d", MaxRetries)
	case s.Retries == 0 && s.RetryDelay > 0:
		v.warn(f+".retry_delay", "has no effect without retries")
	}
	for _, k := range sortedKeys(s.On) {
		kf := f + ".on." + k
		if k != OnDefault {
			if c, err := strconv.Atoi(k); err != nil || c < 0 || c > 255 || strconv.Itoa(c) != k {
				v.add(kf, "%q: keys are exit codes 0-255 or default", k)
			}
		}
		t := s.On[k]
		switch {
		case t == TargetNext || t == TargetEnd || t == TargetAbend:
		case t == "":
			v.add(kf, "empty target: name a step or next, end, abend")
		default:
			if _, ok := v.index[t]; !ok {
				v.add(kf, "%q is not a step of this workflow (nor next, end, abend)", t)
			}
		}
	}
	if s.Watch != nil {
		if s.Watch.Interval <= 0 {
			v.add(f+".watch.interval", "required and positive")
		}
		for j, c := range s.Watch.While {
			if c < 0 || c > 255 {
				v.add(fmt.Sprintf("%s.watch.while[%d]", f, j), "%d: exit codes are 0-255", c)
			}
		}
	}
}

// remote checks a remote step. The node is checked by the config loader, which
// knows the nodes; the remote workflow and step live in the same cluster-wide
// config and are checked there too.
func (v *validator) remote(f string, s *Step) {
	r := s.Remote
	rf := f + ".remote"
	switch {
	case len(s.Command) > 0:
		v.add(f+".command", "a remote step runs no command: remove command or remote")
	case s.Shell != "":
		v.add(f+".shell", "a remote step runs no command: remove shell or remote")
	case s.Watch != nil:
		v.add(f+".watch", "a remote step cannot be a watch")
	}
	if len(s.Env) > 0 {
		v.add(f+".env", "does not apply to a remote step")
	}
	if s.Dir != "" {
		v.add(f+".dir", "does not apply to a remote step")
	}
	if r.Node == "" {
		v.add(rf+".node", "required: the node whose workflow to run or stop")
	}
	switch {
	case r.Workflow == "":
		v.add(rf+".workflow", "required")
	case !nameRE.MatchString(r.Workflow):
		v.add(rf+".workflow", "%q is not a workflow name", r.Workflow)
	}
	switch r.EffectiveAction() {
	case RemoteRun:
		if r.Step != "" && !nameRE.MatchString(r.Step) {
			v.add(rf+".step", "%q is not a step name", r.Step)
		}
		if r.OnlyStep && r.Step == "" {
			v.add(rf+".only_step", "needs step: the one step to run")
		}
	case RemoteStop:
		for _, bad := range []struct {
			field string
			set   bool
		}{{"step", r.Step != ""}, {"only_step", r.OnlyStep}, {"wait", r.Wait}} {
			if bad.set {
				v.add(rf+"."+bad.field, "does not apply to action stop")
			}
		}
	default:
		v.add(rf+".action", "%q: use run or stop", r.Action)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// successors lists the steps a step can lead to (terminals left out). A watch step's
// stay-in-place is left out too: its interval paces it.
func (v *validator) successors(i int) []int {
	s := &v.w.Steps[i]
	seen := map[int]bool{}
	var out []int
	addTarget := func(t string) {
		if t == TargetNext {
			if i+1 < len(v.w.Steps) {
				t = v.w.Steps[i+1].Name
			} else {
				return
			}
		}
		if j, ok := v.index[t]; ok && !seen[j] {
			seen[j] = true
			out = append(out, j)
		}
	}
	for _, t := range s.On {
		addTarget(t)
	}
	// Exit 0 goes to the next step unless listed.
	if _, ok := s.On["0"]; !ok && (s.Watch == nil || !s.Watch.passes(0)) {
		addTarget(TargetNext)
	}
	sort.Ints(out)
	return out
}

func (v *validator) reachability() {
	start, ok := v.index[v.w.FirstStep()]
	if !ok {
		return
	}
	reached := map[int]bool{start: true}
	queue := []int{start}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range v.successors(i) {
			if !reached[j] {
				reached[j] = true
				queue = append(queue, j)
			}
		}
	}
	for i, s := range v.w.Steps {
		if !reached[i] {
			v.warn(fmt.Sprintf("steps[%d]", i), "step %q cannot be reached from %q (only with --from or --only-step)", s.Name, v.w.FirstStep())
		}
	}
}

// loops warns about cycles in which no step pauses: a repair loop is legitimate
// (the seed's health check → restart → health check), but one without a wait, a
// watch interval or a retry delay re-runs its commands as fast as they exit.
func (v *validator) loops() {
	for _, comp := range v.cycles() {
		paced := false
		names := make([]string, len(comp))
		for k, i := range comp {
			s := &v.w.Steps[i]
			names[k] = s.Name
			if s.WaitBefore > 0 || s.Watch != nil || (s.Retries > 0 && s.RetryDelay > 0) {
				paced = true
			}
		}
		if !paced {
			v.warn(fmt.Sprintf("steps[%d]", comp[0]), "steps %s form a loop with no wait_before, watch or retry_delay: it would spin as fast as the commands exit", strings.Join(names, ", "))
		}
	}
}

// cycles returns the strongly connected components that contain a cycle (Tarjan),
// each sorted by step position.
func (v *validator) cycles() [][]int {
	n := len(v.w.Steps)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	var visit func(i int)
	visit = func(i int) {
		index[i], low[i] = next, next
		next++
		stack = append(stack, i)
		onStack[i] = true
		self := false
		for _, j := range v.successors(i) {
			if j == i {
				self = true
			}
			if index[j] < 0 {
				visit(j)
				low[i] = min(low[i], low[j])
			} else if onStack[j] {
				low[i] = min(low[i], index[j])
			}
		}
		if low[i] != index[i] {
			return
		}
		var comp []int
		for {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[j] = false
			comp = append(comp, j)
			if j == i {
				break
			}
		}
		if len(comp) > 1 || self {
			sort.Ints(comp)
			out = append(out, comp)
		}
	}
	for i := 0; i < n; i++ {
		if index[i] < 0 {
			visit(i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out
}
