package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// DefaultMaxOutput bounds the output kept per attempt: enough to see why a script
// failed, small enough that a day of repair loops does not bloat the history.
const DefaultMaxOutput = 16 << 10

// Errors callers test with errors.Is.
var (
	// ErrAlreadyRunning: the workflow has a run in progress on this node.
	ErrAlreadyRunning = errors.New("workflow is already running")
	// ErrExclusive: an exclusive workflow is running, or an exclusive one cannot start
	// because others are.
	ErrExclusive = errors.New("exclusive workflow conflict")
	// ErrUnknownWorkflow: no workflow of that name is configured.
	ErrUnknownWorkflow = errors.New("no such workflow")
	// ErrNotRunning: the run is not in progress on this engine.
	ErrNotRunning = errors.New("run is not running")
	// ErrClosed: the engine is shut down.
	ErrClosed = errors.New("workflow engine is closed")
)

// Options configure an Engine. Path and Workflows are required.
type Options struct {
	// Path is the bbolt file holding the run history.
	Path      string
	Workflows []workflow.Workflow
	// BaseDir is the working directory of steps without dir, and what a relative dir
	// resolves against (the config file's directory, where the scripts live).
	BaseDir string
	// Env is added to every step's environment (before the step's own env).
	Env []string
	// MaxOutput per attempt; 0 means DefaultMaxOutput.
	MaxOutput int
	// Grace between SIGTERM and SIGKILL when a step is timed out or stopped; 0 means runexec's default.
	Grace time.Duration
	// KeepRuns and KeepAttempts bound the history (see history.Options).
	KeepRuns     int
	KeepAttempts int
	Logger       *slog.Logger
	// StepExecutor carries out the steps that run no command of their own (remote
	// steps); without one such steps fail with no exit code.
	StepExecutor StepExecutor
}

// StepExecutor carries out a step that is not a command (today: a remote step). The
// engine stays ignorant of the network; the agent, which has the peers' TLS, does it.
// ctx carries the step's timeout and ends when the run is stopped or the engine
// closes: the executor must then return promptly (undoing what it can).
type StepExecutor func(ctx context.Context, req StepRequest) StepResult

// StepRequest is what a StepExecutor is asked to do.
type StepRequest struct {
	RunID     string
	Workflow  string
	StartedBy string
	Step      workflow.Step // a copy
	Attempt   int
}

// StepResult is a StepExecutor's answer, recorded like a command's.
type StepResult struct {
	// ExitCode picks the transition; -1 means none (a failure).
	ExitCode int
	Output   string
	// Error explains a result without exit code.
	Error string
}

// Engine runs workflows on this node. It owns one goroutine per run in progress;
// Close stops them all (their steps are killed and the runs recorded as interrupted)
// and waits for them.
type Engine struct {
	store *history.Store
	opts  Options
	log   *slog.Logger

	ctx    context.Context // cancelled by Close: ends every run
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool                         // guarded by mu
	workflows map[string]workflow.Workflow // guarded by mu
	active    map[string]*active           // by run id; guarded by mu
	byName    map[string]*active           // by workflow; guarded by mu

	recovered []string // runs Open found cut off by a previous agent's end

	subsMu     sync.Mutex
	subs       map[*subscriber]struct{} // guarded by subsMu
	subsClosed bool                     // guarded by subsMu: Close has closed them all
}

// Open validates the workflows, opens the history, marks runs left running by a
// previous agent as interrupted, and returns an engine ready to start runs.
func Open(opts Options) (*Engine, error) {
	if opts.Path == "" {
		return nil, errors.New("workflow engine: no history path")
	}
	wfs, err := index(opts.Workflows)
	if err != nil {
		return nil, err
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	store, err := history.Open(opts.Path, history.Options{KeepRuns: opts.KeepRuns, KeepAttempts: opts.KeepAttempts})
	if err != nil {
		return nil, err
	}
	ids, err := store.Recover(time.Now(), "the agent stopped while this run was in progress")
	if err != nil {
		store.Close()
		return nil, err
	}
	for _, id := range ids {
		opts.Logger.Warn("workflow run interrupted by an agent stop", "run", id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{
		store: store, opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel,
		workflows: wfs, active: map[string]*active{}, byName: map[string]*active{},
		subs: map[*subscriber]struct{}{}, recovered: ids,
	}, nil
}

func index(ws []workflow.Workflow) (map[string]workflow.Workflow, error) {
	if errs := workflow.Errors(workflow.ValidateAll(ws)); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("invalid workflows: %s", strings.Join(msgs, "; "))
	}
	m := make(map[string]workflow.Workflow, len(ws))
	for _, w := range ws {
		m[w.Name] = w.Clone()
	}
	return m, nil
}

// Recovered lists the runs Open marked interrupted: a previous agent ended (or
// crashed) while they were in progress. The agent reports them.
func (e *Engine) Recovered() []string { return append([]string(nil), e.recovered...) }

// SetWorkflows replaces the definitions (a config reload). Runs in progress keep the
// definition they started with.
func (e *Engine) SetWorkflows(ws []workflow.Workflow) error {
	m, err := index(ws)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.workflows = m
	return nil
}

// Workflows lists the definitions, sorted by name.
func (e *Engine) Workflows() []workflow.Workflow {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]workflow.Workflow, 0, len(e.workflows))
	for _, w := range e.workflows {
		out = append(out, w.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Start begins a run of the named workflow and returns its id once the run is
// durably recorded. startedBy is free text (operator, decision engine, a node name).
func (e *Engine) Start(name string, opts workflow.RunOptions, startedBy string) (string, error) {
	a, err := e.reserve(name, opts)
	if err != nil {
		return "", err
	}
	now := time.Now()
	a.hdr = history.Run{
		ID: e.store.NewID(now), Workflow: name, StartedBy: startedBy, Options: opts,
		Started: now, Result: workflow.ResultRunning, Phase: "starting", Step: a.run.State().Step,
	}
	e.mu.Lock()
	a.id = a.hdr.ID
	e.active[a.id] = a
	e.mu.Unlock()
	if err := e.store.Put(a.hdr); err != nil {
		e.release(a)
		close(a.done)
		e.wg.Done()
		return "", fmt.Errorf("start %s: %w", name, err)
	}
	e.publish(a.hdr, nil)
	go e.loop(a)
	return a.id, nil
}

// reserve checks the coexistence rules and claims the workflow's slot; the caller
// owns one count of e.wg on success.
func (e *Engine) reserve(name string, opts workflow.RunOptions) (*active, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	w, ok := e.workflows[name]
	if !ok {
		return nil, fmt.Errorf("start %s: %w", name, ErrUnknownWorkflow)
	}
	if a, busy := e.byName[name]; busy {
		return nil, fmt.Errorf("start %s: %w (run %s)", name, ErrAlreadyRunning, runID(a))
	}
	for other, a := range e.byName {
		if a.exclusive {
			return nil, fmt.Errorf("start %s: %w: exclusive workflow %s is running (run %s)", name, ErrExclusive, other, runID(a))
		}
		if w.Exclusive {
			return nil, fmt.Errorf("start %s: %w: it is exclusive and %s is running (run %s)", name, ErrExclusive, other, runID(a))
		}
	}
	run, err := workflow.NewRun(w, opts)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	a := &active{name: name, exclusive: w.Exclusive, run: run, wake: make(chan struct{}, 1), done: make(chan struct{})}
	e.byName[name] = a
	e.wg.Add(1) // under mu and !closed, so Close's Wait cannot have begun
	return a, nil
}

// runID reads a reserved run's id, which Start sets after the reservation (empty
// for an instant). Called with e.mu held; a.id is written with e.mu held too.
func runID(a *active) string {
	if a.id == "" {
		return "starting"
	}
	return a.id
}

func (e *Engine) release(a *active) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byName[a.name] == a {
		delete(e.byName, a.name)
	}
	delete(e.active, a.id)
}

func (e *Engine) lookup(id string) (*active, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.active[id]
	if !ok {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotRunning)
	}
	return a, nil
}

// Stop stops a run: a step in progress has its process group killed. It returns once
// the run is recorded as stopped, or when ctx ends.
func (e *Engine) Stop(ctx context.Context, id string) error {
	a, err := e.lookup(id)
	if err != nil {
		return err
	}
	a.requestStop()
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop run %s: %w", id, ctx.Err())
	}
}

// StopWorkflow stops the named workflow's run in progress and returns its id.
func (e *Engine) StopWorkflow(ctx context.Context, name string) (string, error) {
	e.mu.Lock()
	a, ok := e.byName[name]
	id := ""
	if ok {
		id = a.id
	}
	e.mu.Unlock()
	if !ok || id == "" {
		return "", fmt.Errorf("stop %s: %w", name, ErrNotRunning)
	}
	return id, e.Stop(ctx, id)
}

// Continue runs the next step of a step-by-step run paused between steps.
func (e *Engine) Continue(id string) error {
	a, err := e.lookup(id)
	if err != nil {
		return err
	}
	if err := a.requestContinue(); err != nil {
		return fmt.Errorf("continue run %s: %w", id, err)
	}
	return nil
}

// Wait blocks until the run is over (or ctx ends) and returns its record.
func (e *Engine) Wait(ctx context.Context, id string) (history.Run, error) {
	if a, err := e.lookup(id); err == nil {
		select {
		case <-a.done:
		case <-ctx.Done():
			return history.Run{}, fmt.Errorf("wait for run %s: %w", id, ctx.Err())
		}
	}
	return e.store.Run(id)
}

// Run returns a run with its attempts.
func (e *Engine) Run(id string) (history.Run, error) { return e.store.Run(id) }

// Runs lists runs, newest first.
func (e *Engine) Runs(f history.Filter, limit int) ([]history.Run, error) {
	return e.store.Runs(f, limit)
}

// Close ends every run in progress (steps killed, runs recorded as interrupted),
// waits for their goroutines, closes subscriptions and the history.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	e.subsMu.Lock()
	e.subsClosed = true
	for s := range e.subs {
		s.closeLocked()
		delete(e.subs, s)
	}
	e.subsMu.Unlock()
	return e.store.Close()
}
