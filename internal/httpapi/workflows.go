package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
	"github.com/vigil-ha/vigil/internal/workflow/runner"
)

// WorkflowBackend is this node's workflow engine and remote batch service. Errors
// of the runner (runner.ErrAlreadyRunning, …) and of the history are mapped to
// HTTP statuses here; *Error values pass through.
type WorkflowBackend interface {
	Workflows() []workflow.Workflow
	StartWorkflow(name string, opts workflow.RunOptions, by string) (string, error)
	StopWorkflow(ctx context.Context, name string) (string, error)
	ContinueRun(id string) error
	WorkflowRuns(f history.Filter, limit int) ([]history.Run, error)
	WorkflowRun(id string) (history.Run, error)
	// SubscribeRuns streams run updates; the channel closes if the reader falls behind.
	SubscribeRuns() (<-chan runner.Update, func())
	// RunBatch runs a configured batch command; an error is an *Error (disabled,
	// unknown, bad parameter, busy), a non-zero exit is a result.
	RunBatch(ctx context.Context, name string, params map[string]string) (model.BatchResult, error)
	// NodeName names this node in answers.
	NodeName() string
}

// WorkflowStatus is a definition with what its engine is doing with it.
type WorkflowStatus struct {
	workflow.Workflow
	// Running is the id of the run in progress, if any.
	Running string `json:"running,omitempty"`
	// Last is the most recent run, finished or not.
	Last *history.Run `json:"last,omitempty"`
}

// RunUpdate is one line of GET /v1/runs/{id}/follow: the first carries the whole
// run (with its steps so far), the next ones the header after a change and the
// attempts the change started or ended. The stream ends after the final result.
type RunUpdate struct {
	Run      history.Run       `json:"run"`
	Attempts []history.Attempt `json:"attempts,omitempty"`
}

const (
	defaultRunsPage = 50
	maxRunsPage     = 1000
	maxOrigin       = 200
)

func (s *server) workflowRoutes(mux *routeMux) {
	mux.Handle("GET /v1/workflows", s.auth(roleViewer, s.listWorkflows))
	mux.Handle("GET /v1/workflows/{name}", s.auth(roleViewer, s.getWorkflow))
	mux.Handle("POST /v1/workflows/{name}/run", s.auth(roleOperator, s.runWorkflow))
	mux.Handle("POST /v1/workflows/{name}/stop", s.auth(roleOperator, s.stopWorkflow))
	mux.Handle("POST /v1/runs/{id}/continue", s.auth(roleOperator, s.continueRun))
	mux.Handle("GET /v1/runs", s.auth(roleViewer, s.listRuns))
	mux.Handle("GET /v1/runs/{id}", s.auth(roleViewer, s.getRun))
	mux.Handle("GET /v1/runs/{id}/follow", s.auth(roleViewer, s.followRun))
	mux.Handle("POST /v1/batch/{name}", s.auth(roleOperator, s.runBatch))
}

// workflowError maps engine and history errors to statuses.
func workflowError(err error) error {
	var apiErr *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		return err
	case errors.Is(err, runner.ErrUnknownWorkflow), errors.Is(err, history.ErrNotFound):
		return &Error{Code: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, runner.ErrAlreadyRunning), errors.Is(err, runner.ErrExclusive),
		errors.Is(err, runner.ErrNotRunning), errors.Is(err, workflow.ErrNotPaused), errors.Is(err, workflow.ErrFinished):
		return &Error{Code: http.StatusConflict, Message: err.Error()}
	case errors.Is(err, runner.ErrClosed):
		return &Error{Code: http.StatusServiceUnavailable, Message: err.Error()}
	}
	return err
}

func (s *server) findWorkflow(name string) (workflow.Workflow, error) {
	for _, w := range s.b.Workflows() {
		if w.Name == name {
			return w, nil
		}
	}
	return workflow.Workflow{}, &Error{Code: http.StatusNotFound, Message: fmt.Sprintf("no workflow %q on node %s", name, s.b.NodeName())}
}

func (s *server) workflowStatus(w workflow.Workflow) (WorkflowStatus, error) {
	st := WorkflowStatus{Workflow: w}
	runs, err := s.b.WorkflowRuns(history.Filter{Workflow: w.Name}, 1)
	if err != nil {
		return st, err
	}
	if len(runs) > 0 {
		st.Last = &runs[0]
		if runs[0].Result == workflow.ResultRunning {
			st.Running = runs[0].ID
		}
	}
	return st, nil
}

func (s *server) listWorkflows(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	out := []WorkflowStatus{}
	for _, wf := range s.b.Workflows() {
		st, err := s.workflowStatus(wf)
		if err != nil {
			return nil, workflowError(err)
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *server) getWorkflow(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	wf, err := s.findWorkflow(r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	st, err := s.workflowStatus(wf)
	return st, workflowError(err)
}

// decodeBody reads an optional JSON body strictly.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return &Error{Code: http.StatusBadRequest, Message: "body: " + err.Error()}
	}
	return nil
}

// startedBy says who started a run: the token's name, or "node:NAME" for a peer,
// with the origin the caller gave (a remote step names its workflow, run and step).
func startedBy(id identity, origin string) (string, error) {
	by := id.Name
	if id.Node {
		by = "node:" + id.Name
	}
	if origin == "" {
		return by, nil
	}
	if len(origin) > maxOrigin || strings.IndexFunc(origin, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", &Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("origin: at most %d printable characters", maxOrigin), Field: "origin"}
	}
	return by + " (" + origin + ")", nil
}

func (s *server) runWorkflow(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	var req model.WorkflowRunRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	wf, err := s.findWorkflow(r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	// Unknown steps are the caller's mistake, said with the field, not a 500.
	for _, f := range []struct{ field, step string }{{"from", req.From}, {"only_step", req.OnlyStep}} {
		if _, ok := wf.Step(f.step); f.step != "" && !ok {
			return nil, &Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("workflow %s has no step %q", wf.Name, f.step), Field: f.field}
		}
	}
	if req.From != "" && req.OnlyStep != "" && req.From != req.OnlyStep {
		return nil, &Error{Code: http.StatusBadRequest, Message: "from and only_step name different steps: give one", Field: "from"}
	}
	by, err := startedBy(identityOf(r), req.Origin)
	if err != nil {
		return nil, err
	}
	id, err := s.b.StartWorkflow(wf.Name, workflow.RunOptions{From: req.From, OnlyStep: req.OnlyStep, StepByStep: req.StepByStep}, by)
	if err != nil {
		return nil, workflowError(err)
	}
	return model.WorkflowRunStarted{ID: id, Workflow: wf.Name, Node: s.b.NodeName()}, nil
}

// stopWait bounds how long a stop request waits for the run to be recorded
// stopped: the step's process group gets its grace period first.
const stopWait = 30 * time.Second

func (s *server) stopWorkflow(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	wf, err := s.findWorkflow(r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), stopWait)
	defer cancel()
	id, err := s.b.StopWorkflow(ctx, wf.Name)
	if err != nil {
		return nil, workflowError(err)
	}
	return model.WorkflowRunStopped{ID: id, Workflow: wf.Name, Node: s.b.NodeName()}, nil
}

func (s *server) continueRun(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	id := r.PathValue("id")
	if err := s.b.ContinueRun(id); err != nil {
		if errors.Is(err, runner.ErrNotRunning) {
			// Tell an unknown id (404) from a finished run (409).
			if _, herr := s.b.WorkflowRun(id); herr != nil {
				return nil, workflowError(herr)
			}
		}
		return nil, workflowError(err)
	}
	return map[string]string{"id": id, "status": "continuing"}, nil
}

func (s *server) listRuns(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	q := r.URL.Query()
	limit := defaultRunsPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRunsPage {
			return nil, &Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("limit must be 1..%d", maxRunsPage), Field: "limit"}
		}
		limit = n
	}
	f := history.Filter{Workflow: q.Get("workflow"), Before: q.Get("before")}
	if v := q.Get("result"); v != "" {
		switch res := workflow.Result(v); res {
		case workflow.ResultRunning, workflow.ResultEnded, workflow.ResultAbended, workflow.ResultStopped, workflow.ResultInterrupted:
			f.Result = res
		default:
			return nil, &Error{Code: http.StatusBadRequest, Message: "result: running, ended, abended, stopped or interrupted", Field: "result"}
		}
	}
	runs, err := s.b.WorkflowRuns(f, limit)
	if err != nil {
		return nil, workflowError(err)
	}
	if runs == nil {
		runs = []history.Run{}
	}
	return runs, nil
}

func (s *server) getRun(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	run, err := s.b.WorkflowRun(r.PathValue("id"))
	if err != nil {
		return nil, workflowError(err)
	}
	return run, nil
}

// followRun streams a run as NDJSON until it is over: subscribe first, then send
// the whole run, then its updates. If the subscription is dropped (this reader was
// too slow) the whole run is sent again from the history and the stream goes on.
func (s *server) followRun(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return nil, &Error{Code: http.StatusInternalServerError, Message: "streaming unsupported"}
	}
	id := r.PathValue("id")
	ctx := r.Context()
	updates, cancel := s.b.SubscribeRuns()
	defer func() { cancel() }()
	run, err := s.b.WorkflowRun(id)
	if err != nil {
		return nil, workflowError(err)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(u RunUpdate) bool {
		if err := enc.Encode(u); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	if !send(RunUpdate{Run: run}) || run.Result.Final() {
		return nil, nil
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-keepalive.C:
			if _, err := w.Write([]byte("\n")); err != nil {
				return nil, nil
			}
			flusher.Flush()
		case u, ok := <-updates:
			if !ok {
				cancel()
				updates, cancel = s.b.SubscribeRuns()
				if run, err = s.b.WorkflowRun(id); err != nil || !send(RunUpdate{Run: run}) || run.Result.Final() {
					return nil, nil
				}
				continue
			}
			if u.Run.ID != id {
				continue
			}
			if !send(RunUpdate{Run: u.Run, Attempts: u.Attempts}) || u.Run.Result.Final() {
				return nil, nil
			}
		}
	}
}

// runBatch answers 200 when the command exited 0 and 500 otherwise, with the exit
// code and output in the body either way (seed 002's Remote Batch).
func (s *server) runBatch(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	// A token with the operator role may run batches (auth checked the role);
	// nodes, which may otherwise do what operators do, may not.
	if identityOf(r).Node {
		return nil, &Error{Code: http.StatusForbidden, Message: "remote batch needs an operator token"}
	}
	var req model.BatchRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	res, err := s.b.RunBatch(r.Context(), r.PathValue("name"), req.Params)
	if err != nil {
		return nil, err
	}
	code := http.StatusOK
	if res.ExitCode != 0 {
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, res)
	return nil, nil
}
