package workflow

import (
	"strconv"
	"time"

	"github.com/vigil-ha/vigil/internal/duration"
)

// Reserved transition targets. They are not steps, so no step may take these names.
const (
	// TargetNext is the step listed after the current one, or TargetEnd after the last.
	TargetNext = "next"
	// TargetEnd finishes the run successfully (the seed's normalEnd).
	TargetEnd = "end"
	// TargetAbend finishes the run as failed (the seed's abEnd).
	TargetAbend = "abend"
	// OnDefault is the `on` key for exit codes not listed (0 excepted, see Step.On).
	OnDefault = "default"
)

// DefaultTimeout bounds a step that sets no timeout: a hung script must not hold its
// workflow (which can never run twice at once) forever. Long steps such as fsck set their own.
const DefaultTimeout = 10 * time.Minute

// Workflow is a named procedure of small steps whose exit codes choose the next step.
//
//	workflows:
//	  - name: takeControl
//	    description: take the database over from the failed primary
//	    exclusive: true
//	    steps:
//	      - name: break-replication
//	        command: [./scripts/break-replication.sh]
//	        timeout: 2m
//	        on: {0: next, 3: repair, default: abend}
//	      - name: fsck
//	        shell: "fsck -y /dev/vg0/data && mount /data"
//	        retries: 2
//	        retry_delay: 10s
//	      - name: start-db
//	        command: [systemctl, start, postgresql]
//	        commit: true
//	      - name: health
//	        command: [curl, -fsS, http://127.0.0.1:8080/health]
//	        watch: {interval: 30s}
//	        timeout: 10s
//	        retries: 2
//	        on: {default: repair}
//	      - name: repair
//	        command: [./scripts/restart-app.sh]
//	        wait_before: 5s
//	        on: {0: health}
type Workflow struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	// First is the step a run starts at; empty means the first step listed.
	First string `yaml:"first" json:"first,omitempty"`
	// Exclusive: while this workflow runs nothing else runs on the node, and it only
	// starts when nothing else runs (the seed's exclusiveRunWorkFlow).
	Exclusive bool   `yaml:"exclusive" json:"exclusive,omitempty"`
	Steps     []Step `yaml:"steps" json:"steps,omitempty"`
}

// Step is one small command whose exit code picks what happens next.
//
// A step runs either Command (an argv, executed directly: no quoting surprises) or
// Shell (a string given to /bin/sh -c, for pipes and &&), never both. A step with
// neither but with WaitBefore is a pure pause that "exits 0" after the wait: the
// seed's long wait in the last step of a restart workflow, which keeps the workflow
// running, and so not startable again, for that long.
type Step struct {
	Name    string            `yaml:"name" json:"name"`
	Command []string          `yaml:"command" json:"command,omitempty"`
	Shell   string            `yaml:"shell" json:"shell,omitempty"`
	Env     map[string]string `yaml:"env" json:"env,omitempty"`
	// Dir is the working directory; relative to the engine's base directory.
	Dir string `yaml:"dir" json:"dir,omitempty"`
	// Timeout bounds one attempt (one check for a watch step); 0 means DefaultTimeout.
	// On timeout the step's whole process group is killed and the attempt has no exit
	// code, so it takes the `default` transition (abend when there is none).
	Timeout duration.Duration `yaml:"timeout" json:"timeout,omitempty"`
	// WaitBefore delays the step each time the run enters it (the seed's waitBeforeExecute).
	WaitBefore duration.Duration `yaml:"wait_before" json:"wait_before,omitempty"`
	// Retries is how many more times the step runs, RetryDelay apart, when an attempt
	// fails (exit code not 0, timeout, could not start; for a watch step, a code that
	// would leave the watch). The transition follows the last attempt's exit code.
	Retries    int               `yaml:"retries" json:"retries,omitempty"`
	RetryDelay duration.Duration `yaml:"retry_delay" json:"retry_delay,omitempty"`
	// On maps exit codes ("0", "3") or "default" to a step name or to next, end, abend.
	// Codes not listed go to `default` if present, except 0, which goes to the next
	// step unless "0" is listed: a `default` written for failures never swallows success.
	// Without an entry, 0 goes to the next step (end after the last) and anything else
	// (including a timeout) to abend.
	On map[string]string `yaml:"on" json:"on,omitempty"`
	// Commit marks a consistency point (the seed's commitWorkFlow): when the step
	// completes with a transition other than abend, the run records that it got here.
	Commit bool `yaml:"commit" json:"commit,omitempty"`
	// Watch makes the step a loop: see Watch.
	Watch *Watch `yaml:"watch" json:"watch,omitempty"`
	// KillChildren kills whatever the step leaves running when it exits. By default
	// those processes survive, because steps start services ("start the database")
	// and startup scripts commonly launch them with a plain '&'. A timeout or a stop
	// kills the step's whole process group either way.
	KillChildren bool `yaml:"kill_children" json:"kill_children,omitempty"`
	// Remote makes the step act on another node's workflow engine (the seed's @RWC)
	// instead of running a command: see Remote.
	Remote *Remote `yaml:"remote" json:"remote,omitempty"`
}

// Remote actions.
const (
	RemoteRun  = "run"
	RemoteStop = "stop"
)

// Exit codes of a remote step, for its `on` transitions. Without wait, a run action
// succeeds once the remote run has started: as in the seed, the remote procedure
// must be self-consistent, and only failing to start it is this step's failure.
const (
	RemoteExitOK          = 0 // started (with wait: ended); stop: stopped or was not running
	RemoteExitAbended     = 1 // wait: the remote run ended in abend
	RemoteExitRefused     = 2 // the remote node refused: unknown workflow or step, already running, exclusive
	RemoteExitUnreachable = 3 // no answer from the node, or it failed (HTTP 5xx)
	RemoteExitStopped     = 4 // wait: the remote run was stopped or interrupted
)

// Remote starts or stops a workflow on another node over the cluster's mutual-TLS
// API (the seed's "@RWC hostName=… workFlow=… step=… frhd=… command=…").
//
//	steps:
//	  - name: start-db-site-b
//	    remote: {node: b, workflow: startDatabase, wait: true}
//	    timeout: 5m
//	    on: {0: next, default: abend}
type Remote struct {
	Node     string `yaml:"node" json:"node,omitempty"`
	Workflow string `yaml:"workflow" json:"workflow,omitempty"`
	// Step starts the remote run at this step (the seed's step=); with OnlyStep, runs
	// only this step (the seed's frhd=true).
	Step     string `yaml:"step" json:"step,omitempty"`
	OnlyStep bool   `yaml:"only_step" json:"only_step,omitempty"`
	// Action is run (default) or stop.
	Action string `yaml:"action" json:"action,omitempty"`
	// Wait: a run action waits for the remote run to finish and takes its outcome
	// (ended 0, abended 1, stopped or interrupted 4), within the step's timeout; a
	// timeout or a stop of this run stops the remote run too.
	Wait bool `yaml:"wait" json:"wait,omitempty"`
}

// EffectiveAction is Action with its default.
func (r *Remote) EffectiveAction() string {
	if r.Action == "" {
		return RemoteRun
	}
	return r.Action
}

// Describe is the remote command as the run history shows it, in the seed's words.
func (r *Remote) Describe() []string {
	out := []string{"@remote", "node=" + r.Node, "workflow=" + r.Workflow, "action=" + r.EffectiveAction()}
	if r.Step != "" {
		out = append(out, "step="+r.Step)
	}
	if r.OnlyStep {
		out = append(out, "only_step=true")
	}
	if r.Wait {
		out = append(out, "wait=true")
	}
	return out
}

// Watch turns a step into the seed's health-check loop: the step's command runs every
// Interval; while its exit code is in While the run stays in the step, and the first
// other code leaves through the step's `on` (after the step's retries, which absorb a
// single bad check). Passing checks after the first are counted, not logged one by one.
type Watch struct {
	Interval duration.Duration `yaml:"interval" json:"interval,omitempty"`
	// While lists the exit codes that keep watching; empty means [0].
	While []int `yaml:"while" json:"while,omitempty"`
}

// FirstStep is the step a run starts at when no other is asked for.
func (w *Workflow) FirstStep() string {
	if w.First != "" {
		return w.First
	}
	if len(w.Steps) > 0 {
		return w.Steps[0].Name
	}
	return ""
}

// Step returns the step called name.
func (w *Workflow) Step(name string) (*Step, bool) {
	for i := range w.Steps {
		if w.Steps[i].Name == name {
			return &w.Steps[i], true
		}
	}
	return nil, false
}

// Argv is the command line the step runs; nil for a pure wait step.
func (s *Step) Argv() []string {
	switch {
	case len(s.Command) > 0:
		return s.Command
	case s.Shell != "":
		return []string{"/bin/sh", "-c", s.Shell}
	}
	return nil
}

// IsPause reports whether the step is a pure wait: no command, no remote action.
func (s *Step) IsPause() bool { return s.Argv() == nil && s.Remote == nil }

// EffectiveTimeout is the bound on one attempt.
func (s *Step) EffectiveTimeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout.D()
	}
	return DefaultTimeout
}

// passes reports whether code keeps a watch step watching.
func (wt *Watch) passes(code int) bool {
	if len(wt.While) == 0 {
		return code == 0
	}
	for _, c := range wt.While {
		if c == code {
			return true
		}
	}
	return false
}

// failed reports whether an attempt with this code is a failure that retries may repeat.
func (s *Step) failed(code int) bool {
	if s.Watch != nil {
		return !s.Watch.passes(code)
	}
	return code != 0
}

// target resolves the transition for an exit code (negative: no exit code) to a step
// name or to end/abend; index is the step's position, for `next`.
func (w *Workflow) target(index int, code int) string {
	s := &w.Steps[index]
	t, ok := "", false
	if code >= 0 {
		t, ok = s.On[strconv.Itoa(code)]
	}
	if !ok && code != 0 {
		t, ok = s.On[OnDefault]
	}
	if !ok {
		if code == 0 {
			t = TargetNext
		} else {
			t = TargetAbend
		}
	}
	if t == TargetNext {
		if index+1 < len(w.Steps) {
			return w.Steps[index+1].Name
		}
		return TargetEnd
	}
	return t
}

// Clone returns a deep copy: a run keeps the definition it started with even if the
// caller edits or reloads its own.
func (w Workflow) Clone() Workflow {
	steps := make([]Step, len(w.Steps))
	for i, s := range w.Steps {
		s.Command = append([]string(nil), s.Command...)
		s.Env = cloneMap(s.Env)
		s.On = cloneMap(s.On)
		if s.Remote != nil {
			rm := *s.Remote
			s.Remote = &rm
		}
		if s.Watch != nil {
			wt := *s.Watch
			wt.While = append([]int(nil), wt.While...)
			s.Watch = &wt
		}
		steps[i] = s
	}
	w.Steps = steps
	return w
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
