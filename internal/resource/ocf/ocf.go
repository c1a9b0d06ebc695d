package ocf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// DefaultOCFRoot is where Debian's resource-agents package installs agents.
const DefaultOCFRoot = "/usr/lib/ocf"

// validateAllTimeout is used when an agent advertises validate-all without a
// timeout; 20s is the value most agents give.
const validateAllTimeout = 20 * time.Second

// metaDataMaxOutput is larger than runexec's default because a few agents
// describe dozens of parameters at length; a truncated document cannot be parsed.
const metaDataMaxOutput = 1 << 20

// Options tune how an agent is run.
type Options struct {
	// OCFRoot holds resource.d/PROVIDER/TYPE and lib/heartbeat; "" means DefaultOCFRoot.
	OCFRoot string
	// Instance is OCF_RESOURCE_INSTANCE, e.g. "web:www". Agents derive state
	// file names from it, so it must be unique on the node; "" means the
	// resource's name.
	Instance string
	Logger   *slog.Logger
	// Wrapper is put before every command, e.g. {"ip", "netns", "exec", "ns1"},
	// so that lab tests can run an agent inside a network namespace.
	Wrapper []string
	// Env adds NAME=VALUE variables to every action, e.g. HA_VARRUN and
	// HA_RSCTMP, where agents keep their state files: several nodes sharing one
	// machine (tests, the demo) need a directory each.
	Env []string
	// CloneMax is how many nodes may run an instance of a promotable resource
	// (the group's nodes): Pacemaker passes it as clone-max, and some agents
	// check it (linbit/drbd: at most 2 with DRBD 8.4). 0 means 1.
	CloneMax int
}

// Agent runs one OCF resource agent with one set of parameters.
type Agent struct {
	name     string // provider/type, for messages
	provider string
	typ      string
	root     string
	path     string
	instance string
	params   map[string]string
	timeouts config.Timeouts
	interval time.Duration
	wrapper  []string
	extraEnv []string
	// promotable: the resource is managed with promote/demote (Validate
	// requires the actions; env passes Pacemaker's promotable-clone meta).
	promotable bool
	cloneMax   int
	log        *slog.Logger

	mu   sync.Mutex
	meta *Meta // set by Validate; supplies default timeouts
}

var (
	_ resource.Agent     = (*Agent)(nil)
	_ resource.Validator = (*Agent)(nil)
	_ resource.Promoter  = (*Agent)(nil)
)

// paramRE is what a shell can read back as OCF_RESKEY_<name>.
var paramRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// New prepares an agent for spec (type ocf). It checks the form of the
// configuration only; Validate asks the agent itself.
func New(spec config.Resource, opts Options) (*Agent, error) {
	if spec.Type != "" && spec.Type != "ocf" {
		return nil, fmt.Errorf("ocf: resource %q has type %q, not ocf", spec.Name, spec.Type)
	}
	a, err := newAgentPath(opts.OCFRoot, spec.Agent)
	if err != nil {
		return nil, fmt.Errorf("resource %q: %w", spec.Name, err)
	}
	for k, v := range spec.Params {
		if !paramRE.MatchString(k) {
			return nil, fmt.Errorf("resource %q: ocf %s: parameter name %q: use letters, digits and '_' (it becomes the variable OCF_RESKEY_%s)", spec.Name, a.name, k, k)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("resource %q: ocf %s: parameter %q contains a NUL byte", spec.Name, a.name, k)
		}
	}
	a.params = make(map[string]string, len(spec.Params))
	for k, v := range spec.Params {
		a.params[k] = v
	}
	a.instance = opts.Instance
	if a.instance == "" {
		a.instance = spec.Name
	}
	if a.instance == "" {
		a.instance = a.typ
	}
	a.timeouts = spec.Timeouts
	a.interval = spec.MonitorInterval.D()
	a.wrapper = append([]string(nil), opts.Wrapper...)
	for _, kv := range opts.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !paramRE.MatchString(k) || strings.ContainsRune(kv, 0) {
			return nil, fmt.Errorf("resource %q: ocf %s: environment entry %q: want NAME=VALUE", spec.Name, a.name, kv)
		}
	}
	a.extraEnv = append([]string(nil), opts.Env...)
	a.promotable = spec.Promotable
	a.cloneMax = max(opts.CloneMax, 1)
	if opts.Logger != nil {
		a.log = opts.Logger
	}
	a.log = a.log.With("resource", spec.Name, "ocf", a.name)
	return a, nil
}

func newAgentPath(root, agent string) (*Agent, error) {
	if root == "" {
		root = DefaultOCFRoot
	}
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("ocf root %q: use an absolute path", root)
	}
	provider, typ, ok := strings.Cut(agent, "/")
	bad := func(s string) bool { return s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") }
	if !ok || bad(provider) || bad(typ) {
		return nil, fmt.Errorf("ocf agent %q: want provider/type, e.g. heartbeat/IPaddr2", agent)
	}
	root = filepath.Clean(root)
	return &Agent{
		name:     agent,
		provider: provider,
		typ:      typ,
		root:     root,
		path:     filepath.Join(root, "resource.d", provider, typ),
		instance: typ,
		log:      slog.New(slog.DiscardHandler),
	}, nil
}

// Path is the agent's executable.
func (a *Agent) Path() string { return a.path }

// Meta is the meta-data read by the last successful Validate, or nil.
func (a *Agent) Meta() *Meta {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.meta
}

// Timeouts are the per-action timeouts the caller should give Start, Stop and
// Monitor: the configured ones, else the agent's advertised defaults (known
// after Validate), else Vigil's defaults.
func (a *Agent) Timeouts() (start, stop, monitor time.Duration) {
	return a.timeout("start"), a.timeout("stop"), a.timeout("monitor")
}

func (a *Agent) timeout(action string) time.Duration {
	var set config.Duration
	def := config.DefaultMonitorTimeout
	switch action {
	case "start":
		set, def = a.timeouts.Start, config.DefaultStartTimeout
	case "stop":
		set, def = a.timeouts.Stop, config.DefaultStopTimeout
	case "monitor":
		set = a.timeouts.Monitor
	}
	if set > 0 {
		return set.D()
	}
	if m := a.Meta(); m != nil {
		if act, ok := m.Action(action); ok && act.Timeout > 0 {
			return act.Timeout
		}
	}
	return def
}

// PromoteTimeouts are the timeouts the caller should give Promote and Demote:
// the agent's advertised ones (known after Validate), else the start and stop
// timeouts, since promotion is the last part of starting the resource where the
// group runs, and demotion the first part of stopping it.
func (a *Agent) PromoteTimeouts() (promote, demote time.Duration) {
	promote, demote = a.timeout("start"), a.timeout("stop")
	if m := a.Meta(); m != nil {
		if act, ok := m.Action("promote"); ok && act.Timeout > 0 {
			promote = act.Timeout
		}
		if act, ok := m.Action("demote"); ok && act.Timeout > 0 {
			demote = act.Timeout
		}
	}
	return promote, demote
}

// Start runs the agent's start action; only OCF_SUCCESS counts.
func (a *Agent) Start(ctx context.Context) (resource.Output, error) {
	res, budget, err := a.run(ctx, "start", a.timeout("start"), 0)
	if err != nil {
		return output(res), err
	}
	return output(res), a.check("start", res, budget, Success)
}

// Stop runs the agent's stop action. OCF_NOT_RUNNING is accepted as well as
// OCF_SUCCESS: some agents answer it when asked to stop a resource that is
// not running, and the goal, a stopped resource, is met either way.
func (a *Agent) Stop(ctx context.Context) (resource.Output, error) {
	res, budget, err := a.run(ctx, "stop", a.timeout("stop"), 0)
	if err != nil {
		return output(res), err
	}
	return output(res), a.check("stop", res, budget, Success, NotRunning)
}

// Promote runs the agent's promote action; only OCF_SUCCESS counts.
func (a *Agent) Promote(ctx context.Context) (resource.Output, error) {
	to, _ := a.PromoteTimeouts()
	res, budget, err := a.run(ctx, "promote", to, 0)
	if err != nil {
		return output(res), err
	}
	return output(res), a.check("promote", res, budget, Success)
}

// Demote runs the agent's demote action. OCF_NOT_RUNNING is accepted as well
// as OCF_SUCCESS (Stateful answers it for an instance that is not running): an
// instance that does not run is not promoted either.
func (a *Agent) Demote(ctx context.Context) (resource.Output, error) {
	_, to := a.PromoteTimeouts()
	res, budget, err := a.run(ctx, "demote", to, 0)
	if err != nil {
		return output(res), err
	}
	return output(res), a.check("demote", res, budget, Success, NotRunning)
}

// MonitorRole runs the monitor action of a promotable agent: OCF_SUCCESS is a
// running unpromoted instance, OCF_RUNNING_MASTER a running promoted one,
// OCF_NOT_RUNNING a stopped one, OCF_FAILED_MASTER a failed promoted one, and
// anything else a failed instance of unknown role (reported as Unpromoted; the
// caller must not take it as proof of a demotion).
func (a *Agent) MonitorRole(ctx context.Context) (resource.State, resource.Role, resource.Output, error) {
	res, budget, err := a.run(ctx, "monitor", a.timeout("monitor"), 0)
	if err != nil {
		return resource.Failed, resource.Unpromoted, output(res), err
	}
	if err := a.check("monitor", res, budget, Success, NotRunning, RunningMaster); err != nil {
		role := resource.Unpromoted
		if res.ExitCode == FailedMaster && !res.TimedOut && res.Signal == "" {
			role = resource.Promoted
		}
		return resource.Failed, role, output(res), err
	}
	switch res.ExitCode {
	case NotRunning:
		return resource.Stopped, resource.Unpromoted, output(res), nil
	case RunningMaster:
		return resource.Running, resource.Promoted, output(res), nil
	}
	return resource.Running, resource.Unpromoted, output(res), nil
}

// Monitor maps OCF_SUCCESS to Running, OCF_NOT_RUNNING to Stopped and
// anything else (other codes, a timeout, a missing agent) to Failed with an
// error naming the code. For a promotable resource OCF_RUNNING_MASTER is
// Running too (MonitorRole tells the role).
func (a *Agent) Monitor(ctx context.Context) (resource.State, resource.Output, error) {
	if a.promotable {
		st, _, out, err := a.MonitorRole(ctx)
		return st, out, err
	}
	res, budget, err := a.run(ctx, "monitor", a.timeout("monitor"), 0)
	if err != nil {
		return resource.Failed, output(res), err
	}
	if err := a.check("monitor", res, budget, Success, NotRunning); err != nil {
		return resource.Failed, output(res), err
	}
	if res.ExitCode == NotRunning {
		return resource.Stopped, output(res), nil
	}
	return resource.Running, output(res), nil
}

// Validate reads the agent's meta-data, rejects unknown and missing required
// parameters, learns the agent's default timeouts, and then runs validate-all
// if the agent has it.
func (a *Agent) Validate(ctx context.Context) error {
	m, err := a.metaData(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.meta = m
	a.mu.Unlock()
	if err := checkParams(a.name, m, a.params); err != nil {
		return err
	}
	if a.promotable {
		var missing []string
		for _, act := range []string{"promote", "demote"} {
			if _, ok := m.Action(act); !ok {
				missing = append(missing, act)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("ocf %s: promotable, but the agent's meta-data lists no %s action: it has no promoted role to manage (remove promotable: true)",
				a.name, strings.Join(missing, " or "))
		}
	}
	act, ok := m.Action("validate-all")
	if !ok {
		return nil
	}
	to := act.Timeout
	if to <= 0 {
		to = validateAllTimeout
	}
	res, budget, err := a.run(ctx, "validate-all", to, 0)
	if err != nil {
		return err
	}
	return a.check("validate-all", res, budget, Success)
}

func (a *Agent) metaData(ctx context.Context) (*Meta, error) {
	res, budget, err := a.run(ctx, "meta-data", metaDataTimeout, metaDataMaxOutput)
	if err != nil {
		return nil, err
	}
	if err := a.check("meta-data", res, budget, Success); err != nil {
		return nil, err
	}
	m, err := ParseMetaData(res.Output)
	if err != nil {
		return nil, fmt.Errorf("ocf %s: %w", a.name, err)
	}
	return m, nil
}

// checkParams compares the configured parameters with the agent's own list,
// so that a typo is reported at validation instead of silently ignored by
// the agent at start.
func checkParams(agent string, m *Meta, params map[string]string) error {
	var problems []string
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := m.Param(k); ok {
			continue
		}
		msg := fmt.Sprintf("unknown parameter %q", k)
		if s := suggest(k, m.Parameters); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		problems = append(problems, msg)
	}
	for _, p := range m.Parameters {
		if p.Required && params[p.Name] == "" {
			msg := fmt.Sprintf("missing required parameter %q", p.Name)
			if p.ShortDesc != "" {
				msg += " (" + p.ShortDesc + ")"
			}
			problems = append(problems, msg)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	var list []string
	for _, p := range m.Parameters {
		s := p.Name
		if p.Required {
			s += " (required)"
		}
		list = append(list, s)
	}
	return fmt.Errorf("ocf %s: %s; the agent's parameters are: %s", agent, strings.Join(problems, "; "), strings.Join(list, ", "))
}

// suggest returns the agent parameter closest to a misspelt name, if any is close.
func suggest(name string, ps []Parameter) string {
	best, bestD := "", 3
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return p.Name
		}
		if d := distance(strings.ToLower(name), strings.ToLower(p.Name)); d < bestD {
			best, bestD = p.Name, d
		}
	}
	return best
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// run executes one action. A ctx without a deadline gets timeout, so that a
// hung agent cannot block its caller for ever; the budget left is passed to
// the agent as OCF_RESKEY_CRM_meta_timeout, as Pacemaker does.
func (a *Agent) run(ctx context.Context, action string, timeout time.Duration, maxOutput int) (runexec.Result, time.Duration, error) {
	if _, ok := ctx.Deadline(); !ok && timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	budget := timeout
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	if err := a.installed(); err != nil {
		return runexec.Result{ExitCode: ErrInstalled}, budget, &ActionError{Agent: a.name, Action: action, Code: ErrInstalled, Reason: err.Error()}
	}
	argv := append(append([]string(nil), a.wrapper...), a.path, action)
	res, err := runexec.Run(ctx, runexec.Cmd{Argv: argv, Env: a.env(action, budget), MaxOutput: maxOutput,
		KeepChildren: action == "start" || action == "promote"})
	if err != nil {
		return res, budget, fmt.Errorf("ocf %s %s: %w", a.name, action, err)
	}
	a.log.Debug("ocf action", "action", action, "exit", res.ExitCode, "code", CodeName(res.ExitCode),
		"timed_out", res.TimedOut, "duration", res.Duration)
	return res, budget, nil
}

func (a *Agent) installed() error {
	fi, err := os.Stat(a.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s is not installed (Debian: apt-get install resource-agents)", a.path)
	case err != nil:
		return err
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not an executable file", a.path)
	}
	return nil
}

// env is the agent's whole environment besides PATH: the OCF API variables,
// one OCF_RESKEY_ per parameter, and Pacemaker's meta timeout and interval,
// which some agents read to size their own waits.
func (a *Agent) env(action string, budget time.Duration) []string {
	env := []string{
		"OCF_ROOT=" + a.root,
		"OCF_RA_VERSION_MAJOR=1",
		"OCF_RA_VERSION_MINOR=0",
		"OCF_RESOURCE_INSTANCE=" + a.instance,
		"OCF_RESOURCE_TYPE=" + a.typ,
		"OCF_RESOURCE_PROVIDER=" + a.provider,
	}
	keys := make([]string, 0, len(a.params))
	for k := range a.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, "OCF_RESKEY_"+k+"="+a.params[k])
	}
	if budget > 0 {
		env = append(env, "OCF_RESKEY_CRM_meta_timeout="+strconv.FormatInt(budget.Milliseconds(), 10))
	}
	if a.promotable {
		// What Pacemaker passes to a promotable clone with one promoted
		// instance and one instance per node, under old and new names; agents
		// check them (linbit/drbd refuses to start without clone-node-max=1).
		n := strconv.Itoa(a.cloneMax)
		env = append(env,
			"OCF_RESKEY_CRM_meta_promotable=true",
			"OCF_RESKEY_CRM_meta_globally_unique=false",
			"OCF_RESKEY_CRM_meta_clone_max="+n,
			"OCF_RESKEY_CRM_meta_clone_node_max=1",
			"OCF_RESKEY_CRM_meta_promoted_max=1",
			"OCF_RESKEY_CRM_meta_promoted_node_max=1",
			"OCF_RESKEY_CRM_meta_master_max=1",
			"OCF_RESKEY_CRM_meta_master_node_max=1")
	}
	env = append(env, a.extraEnv...)
	// A recurring monitor carries its interval; agents treat interval 0 as a
	// one-off probe, which Vigil's monitors are not.
	if action == "monitor" && a.interval > 0 {
		env = append(env, "OCF_RESKEY_CRM_meta_interval="+strconv.FormatInt(a.interval.Milliseconds(), 10))
	}
	return env
}

// check turns a result into nil when its exit code is one of ok, and into an
// *ActionError otherwise.
func (a *Agent) check(action string, res runexec.Result, budget time.Duration, ok ...int) error {
	if !res.TimedOut && res.Signal == "" {
		for _, c := range ok {
			if res.ExitCode == c {
				return nil
			}
		}
	}
	return &ActionError{
		Agent:    a.name,
		Action:   action,
		Code:     res.ExitCode,
		TimedOut: res.TimedOut,
		Timeout:  budget,
		Signal:   res.Signal,
		Reason:   exitReason(res.Output),
	}
}

func output(res runexec.Result) resource.Output {
	text := string(res.Output)
	if res.Truncated {
		text += "\n[output truncated]"
	}
	return resource.Output{Text: text, ExitCode: res.ExitCode, Duration: res.Duration}
}
