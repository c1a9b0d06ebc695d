package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
)

// WorkflowStatus is a workflow definition with its engine's state (GET /v1/workflows).
type WorkflowStatus struct {
	workflow.Workflow
	Running string       `json:"running,omitempty"`
	Last    *history.Run `json:"last,omitempty"`
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("POST %s: encode: %w", path, err)
		}
	}
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("POST %s: decode: %w", path, err)
	}
	return nil
}

// Workflows lists the node's workflows.
func (c *Client) Workflows(ctx context.Context) ([]WorkflowStatus, error) {
	var ws []WorkflowStatus
	return ws, c.getJSON(ctx, "/v1/workflows", &ws)
}

// Workflow returns one workflow.
func (c *Client) Workflow(ctx context.Context, name string) (WorkflowStatus, error) {
	var w WorkflowStatus
	return w, c.getJSON(ctx, "/v1/workflows/"+url.PathEscape(name), &w)
}

// StartWorkflow starts a run and returns its id.
func (c *Client) StartWorkflow(ctx context.Context, name string, req model.WorkflowRunRequest) (model.WorkflowRunStarted, error) {
	var out model.WorkflowRunStarted
	return out, c.postJSON(ctx, "/v1/workflows/"+url.PathEscape(name)+"/run", req, &out)
}

// StopWorkflow stops the workflow's run in progress; it answers once the run is recorded stopped.
func (c *Client) StopWorkflow(ctx context.Context, name string) (model.WorkflowRunStopped, error) {
	var out model.WorkflowRunStopped
	return out, c.postJSON(ctx, "/v1/workflows/"+url.PathEscape(name)+"/stop", nil, &out)
}

// ContinueRun runs the next step of a step-by-step run.
func (c *Client) ContinueRun(ctx context.Context, id string) error {
	var out map[string]string
	return c.postJSON(ctx, "/v1/runs/"+url.PathEscape(id)+"/continue", nil, &out)
}

// Runs lists runs, newest first; workflow may be empty.
func (c *Client) Runs(ctx context.Context, workflowName string, limit int) ([]history.Run, error) {
	q := url.Values{}
	if workflowName != "" {
		q.Set("workflow", workflowName)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var runs []history.Run
	return runs, c.getJSON(ctx, "/v1/runs?"+q.Encode(), &runs)
}

// Run returns a run with its steps and their output.
func (c *Client) Run(ctx context.Context, id string) (history.Run, error) {
	var r history.Run
	return r, c.getJSON(ctx, "/v1/runs/"+url.PathEscape(id), &r)
}

// runUpdate is one line of the follow stream (httpapi.RunUpdate).
type runUpdate struct {
	Run      history.Run       `json:"run"`
	Attempts []history.Attempt `json:"attempts"`
}

// FollowRun calls fn with the run as it progresses: first the whole run, then after
// each change the run with its steps merged, and the attempts that changed. It
// returns the final run, or an error when ctx ends, fn fails or the stream breaks
// before the end (the caller may follow again: the first call repeats the whole run).
func (c *Client) FollowRun(ctx context.Context, id string, fn func(run history.Run, changed []history.Attempt) error) (history.Run, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id)+"/follow", nil)
	if err != nil {
		return history.Run{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var cur history.Run
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // keep-alive
		}
		var u runUpdate
		if err := json.Unmarshal(line, &u); err != nil {
			return cur, fmt.Errorf("follow run %s: decode: %w", id, err)
		}
		changed := u.Attempts
		if u.Run.Steps != nil || cur.ID == "" {
			cur, changed = u.Run, u.Run.Steps // a whole run: the first line, or a resend
		} else {
			steps := cur.Steps
			cur = u.Run
			cur.Steps = mergeAttempts(steps, u.Attempts)
		}
		if fn != nil {
			if err := fn(cur, changed); err != nil {
				return cur, err
			}
		}
		if cur.Result.Final() {
			return cur, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return cur, fmt.Errorf("follow run %s: %w", id, err)
	}
	if err := sc.Err(); err != nil {
		return cur, fmt.Errorf("follow run %s: %w", id, err)
	}
	return cur, fmt.Errorf("follow run %s: the node closed the stream before the run ended", id)
}

// mergeAttempts replaces attempts by sequence number and appends new ones.
func mergeAttempts(steps, changed []history.Attempt) []history.Attempt {
	for _, a := range changed {
		replaced := false
		for i := len(steps) - 1; i >= 0; i-- {
			if steps[i].Seq == a.Seq {
				steps[i], replaced = a, true
				break
			}
		}
		if !replaced {
			steps = append(steps, a)
		}
	}
	return steps
}

// BatchError is a transport failure or an answer without a batch result (HTTP 4xx,
// 503); Status is 0 when the node did not answer.
type BatchError struct {
	Status int
	Err    error
}

func (e *BatchError) Error() string { return e.Err.Error() }
func (e *BatchError) Unwrap() error { return e.Err }

// RunBatch runs a batch command. A non-zero exit code is a result (HTTP 500 with
// the result in the body), not an error; errors are *BatchError.
func (c *Client) RunBatch(ctx context.Context, name string, params map[string]string) (model.BatchResult, error) {
	path := "/v1/batch/" + url.PathEscape(name)
	body, err := json.Marshal(model.BatchRequest{Params: params})
	if err != nil {
		return model.BatchResult{}, &BatchError{Err: fmt.Errorf("encode: %w", err)}
	}
	// c.do turns every status >= 400 into an APIError and drops the body; the 500
	// of a failed batch carries the result, so the addresses are tried here.
	var errs []error
	for _, base := range c.bases {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
		if err != nil {
			return model.BatchResult{}, &BatchError{Err: fmt.Errorf("POST %s: %w", path, err)}
		}
		req.Header.Set("Content-Type", "application/json")
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return decodeBatch(resp, path)
	}
	return model.BatchResult{}, &BatchError{Err: fmt.Errorf("POST %s: %w", path, errors.Join(errs...))}
}

func decodeBatch(resp *http.Response, path string) (model.BatchResult, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return model.BatchResult{}, &BatchError{Status: resp.StatusCode, Err: fmt.Errorf("POST %s: %w", path, err)}
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusInternalServerError {
		var res model.BatchResult
		// A 500 without a result is a server failure, not a batch's exit code.
		if json.Unmarshal(data, &res) == nil && res.Name != "" {
			return res, nil
		}
	}
	apiErr := &APIError{Status: resp.StatusCode}
	if json.Unmarshal(data, apiErr) != nil || apiErr.Message == "" {
		apiErr.Message = http.StatusText(resp.StatusCode)
	}
	return model.BatchResult{}, &BatchError{Status: resp.StatusCode, Err: apiErr}
}
