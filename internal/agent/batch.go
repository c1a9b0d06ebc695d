package agent

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vigil-ha/vigil/internal/httpapi"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// maxBatches bounds the batch commands running at once: each is a process the
// request makes this node start, and health checkers are tempted to hammer.
const maxBatches = 8

// batchSlots is a counting semaphore shared by every agent of the process; tests
// run several agents, which only makes the bound stricter.
var batchSlots = make(chan struct{}, maxBatches)

// RunBatch runs a configured batch command (httpapi.WorkflowBackend). The argv is
// the config's; the request only supplies values for the parameters the config
// lists, each matched whole against its pattern.
func (a *Agent) RunBatch(ctx context.Context, name string, params map[string]string) (model.BatchResult, error) {
	if !a.cfg.Batch.Enabled {
		return model.BatchResult{}, &httpapi.Error{Code: http.StatusNotFound, Message: "remote batch is disabled on node " + a.self.Name + " (batch.enabled)"}
	}
	cmd, ok := a.cfg.BatchCommand(name)
	if !ok {
		return model.BatchResult{}, &httpapi.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("no batch command %q", name)}
	}
	bad := func(field, format string, args ...any) error {
		return &httpapi.Error{Code: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Field: field}
	}
	if len(params) > 0 && !cmd.AllowParams {
		return model.BatchResult{}, bad("params", "batch command %s accepts no parameters (allow_params is false)", name)
	}
	// Report an unknown parameter before a bad value: sorted, so the answer is stable.
	given := make([]string, 0, len(params))
	for k := range params {
		given = append(given, k)
	}
	sort.Strings(given)
	for _, k := range given {
		known := false
		for _, p := range cmd.Params {
			known = known || p.Name == k
		}
		if !known {
			return model.BatchResult{}, bad("params."+k, "batch command %s has no parameter %q", name, k)
		}
	}
	argv := append([]string(nil), cmd.Command...)
	if strings.Contains(argv[0], "/") && !filepath.IsAbs(argv[0]) {
		argv[0] = filepath.Join(a.cfg.Dir(), argv[0])
	}
	env := []string{"VIGIL_NODE=" + a.self.Name, "VIGIL_BATCH=" + name}
	for _, p := range cmd.Params {
		v, ok := params[p.Name]
		if !ok {
			continue
		}
		if !p.Match(v) {
			return model.BatchResult{}, bad("params."+p.Name, "value of %s does not match its pattern %s", p.Name, p.Pattern)
		}
		argv = append(argv, v)
		env = append(env, "VIGIL_PARAM_"+strings.ToUpper(p.Name)+"="+v)
	}
	select {
	case batchSlots <- struct{}{}:
		defer func() { <-batchSlots }()
	default:
		return model.BatchResult{}, &httpapi.Error{Code: http.StatusServiceUnavailable, Message: fmt.Sprintf("%d batch commands are already running; try again", maxBatches)}
	}
	// The request's context ends the command too: a client that gave up gets no
	// process left running on its behalf.
	ctx, cancel := context.WithTimeout(ctx, cmd.EffectiveTimeout())
	defer cancel()
	res, err := runexec.Run(ctx, runexec.Cmd{Argv: argv, Env: env, Dir: a.cfg.Dir()})
	out := model.BatchResult{Name: name}
	if err != nil {
		out.ExitCode, out.Error = -1, err.Error()
		a.log.Warn("batch command could not start", "batch", name, "err", err)
		return out, nil
	}
	out.ExitCode, out.Output, out.Truncated, out.TimedOut = res.ExitCode, string(res.Output), res.Truncated, res.TimedOut
	out.DurationMS = res.Duration.Milliseconds()
	if rerr := res.Err(); rerr != nil {
		out.Error = rerr.Error()
		if res.TimedOut {
			out.ExitCode = -1
		}
	}
	a.log.Info("batch command ran", "batch", name, "exit", out.ExitCode, "duration", res.Duration)
	return out, nil
}
