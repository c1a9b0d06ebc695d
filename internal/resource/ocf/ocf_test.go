package ocf

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// requireResourceAgents fails (not skips) without Debian's agents: they can
// be installed on any machine these tests run on.
func requireResourceAgents(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(DefaultOCFRoot, "resource.d", "heartbeat", "Dummy")); err != nil {
		t.Fatalf("Debian's OCF agents are missing (apt-get install resource-agents): %v", err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: Debian's agents write under /run, mount file systems and add addresses")
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// sh runs a command for the test's own setup, failing the test on error.
func sh(t *testing.T, argv ...string) string {
	t.Helper()
	res, err := runexec.Run(ctxT(t, time.Minute), runexec.Cmd{Argv: argv})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%v: %v: %s", argv, err, res.Output)
	}
	return strings.TrimSpace(string(res.Output))
}

func TestNewRejectsBadSpecs(t *testing.T) {
	for _, spec := range []config.Resource{
		{Name: "x", Type: "ocf", Agent: "Dummy"},
		{Name: "x", Type: "ocf", Agent: "heartbeat/../../bin/sh"},
		{Name: "x", Type: "ocf", Agent: "/Dummy"},
		{Name: "x", Type: "lsb", Agent: "heartbeat/Dummy"},
		{Name: "x", Type: "ocf", Agent: "heartbeat/Dummy", Params: map[string]string{"bad-name": "1"}},
		{Name: "x", Type: "ocf", Agent: "heartbeat/Dummy", Params: map[string]string{"state": "a\x00b"}},
	} {
		if _, err := New(spec, Options{}); err == nil {
			t.Errorf("New(%+v) succeeded", spec)
		}
	}
	if _, err := New(config.Resource{Name: "x", Type: "ocf", Agent: "heartbeat/Dummy"}, Options{OCFRoot: "relative"}); err == nil {
		t.Error("relative OCF root accepted")
	}
}

// fakeAgent writes an agent script under a temporary OCF root and returns the root.
func fakeAgent(t *testing.T, name, body string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "resource.d", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

const fakeMeta = `meta-data) cat <<'XML'
<?xml version="1.0"?>
<resource-agent name="fake">
<parameters>
<parameter name="mode" required="1"><content type="string"/></parameter>
<parameter name="dir"><content type="string"/></parameter>
</parameters>
<actions>
<action name="start" timeout="7s"/><action name="stop" timeout="8s"/><action name="monitor" timeout="9"/>
<action name="validate-all" timeout="5s"/>
</actions>
</resource-agent>
XML
exit 0;;
`

func TestEnvironmentAndExitCodes(t *testing.T) {
	root := fakeAgent(t, "fake", `
case "$1" in
`+fakeMeta+`
start) env | sort; exit 0;;
stop) exit 7;;
monitor) case "$OCF_RESKEY_mode" in
	  broken) echo "ocf-exit-reason:disk on fire" >&2; exit 1;;
	  missing) exit 5;;
	  stopped) exit 7;;
	  *) exit 0;; esac;;
validate-all) [ "$OCF_RESKEY_mode" = bad ] && { echo "ocf-exit-reason:mode must not be bad" >&2; exit 6; }; exit 0;;
*) exit 3;;
esac
`)
	spec := config.Resource{Name: "r", Type: "ocf", Agent: "test/fake", Params: map[string]string{"mode": "ok", "dir": "/x y"},
		MonitorInterval: config.Duration(10 * time.Second)}
	a, err := New(spec, Options{OCFRoot: root, Instance: "grp:r"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Start(ctxT(t, 3*time.Second))
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out.Text)
	}
	for _, want := range []string{
		"OCF_ROOT=" + root, "OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=0",
		"OCF_RESOURCE_INSTANCE=grp:r", "OCF_RESOURCE_TYPE=fake", "OCF_RESOURCE_PROVIDER=test",
		"OCF_RESKEY_mode=ok", "OCF_RESKEY_dir=/x y", "OCF_RESKEY_CRM_meta_timeout=",
	} {
		if !strings.Contains(out.Text, want+"\n") && !strings.Contains(out.Text, want) {
			t.Errorf("start environment lacks %q:\n%s", want, out.Text)
		}
	}
	// The agent gets the time it has left, in milliseconds: about 3000.
	for _, line := range strings.Split(out.Text, "\n") {
		if v, ok := strings.CutPrefix(line, "OCF_RESKEY_CRM_meta_timeout="); ok {
			ms, _ := strconv.Atoi(v)
			if ms < 2000 || ms > 3000 {
				t.Errorf("meta timeout %d ms, want about 3000", ms)
			}
		}
	}
	// stop answering OCF_NOT_RUNNING is a successful stop.
	if _, err := a.Stop(ctxT(t, 3*time.Second)); err != nil {
		t.Errorf("stop returning 7: %v", err)
	}

	for mode, want := range map[string]resource.State{"ok": resource.Running, "stopped": resource.Stopped, "broken": resource.Failed, "missing": resource.Failed} {
		spec.Params["mode"] = mode
		a, err := New(spec, Options{OCFRoot: root})
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := a.Monitor(ctxT(t, 3*time.Second))
		if st != want {
			t.Errorf("mode %s: state %v (%v), want %v", mode, st, err, want)
		}
		var ae *ActionError
		switch mode {
		case "broken":
			if !errors.As(err, &ae) || ae.Code != ErrGeneric || !strings.Contains(err.Error(), "OCF_ERR_GENERIC") || ae.Reason != "disk on fire" {
				t.Errorf("broken: %v", err)
			}
		case "missing":
			if !errors.As(err, &ae) || ae.Code != ErrInstalled || !strings.Contains(err.Error(), "OCF_ERR_INSTALLED") {
				t.Errorf("missing: %v", err)
			}
		default:
			if err != nil {
				t.Errorf("mode %s: %v", mode, err)
			}
		}
	}

	// validate-all's verdict and reason reach the caller; timeouts come from meta-data.
	spec.Params["mode"] = "bad"
	a, _ = New(spec, Options{OCFRoot: root})
	err = a.Validate(ctxT(t, 5*time.Second))
	var ae *ActionError
	if !errors.As(err, &ae) || ae.Code != ErrConfigured || ae.Action != "validate-all" || !strings.Contains(err.Error(), "mode must not be bad") {
		t.Fatalf("validate-all: %v", err)
	}
	if s, p, m := a.Timeouts(); s != 7*time.Second || p != 8*time.Second || m != 9*time.Second {
		t.Errorf("timeouts from meta-data: %v %v %v", s, p, m)
	}
	spec.Timeouts.Start = config.Duration(time.Minute)
	a, _ = New(spec, Options{OCFRoot: root})
	if s, _, m := a.Timeouts(); s != time.Minute || m != config.DefaultMonitorTimeout {
		t.Errorf("configured and default timeouts: %v %v", s, m)
	}
}

func TestAgentNotInstalled(t *testing.T) {
	a, err := New(config.Resource{Name: "r", Type: "ocf", Agent: "nobody/Nothing"}, Options{OCFRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := a.Monitor(ctxT(t, time.Second))
	var ae *ActionError
	if st != resource.Failed || !errors.As(err, &ae) || ae.Code != ErrInstalled {
		t.Fatalf("monitor of a missing agent: %v %v", st, err)
	}
	if _, err := a.Start(ctxT(t, time.Second)); err == nil {
		t.Fatal("start of a missing agent succeeded")
	}
	if err := a.Validate(ctxT(t, time.Second)); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("validate of a missing agent: %v", err)
	}
}

func TestTimeoutKillsTheAgentsProcessTree(t *testing.T) {
	dir := t.TempDir()
	root := fakeAgent(t, "slow", `
case "$1" in
start) sh -c 'echo $$ > "$OCF_RESKEY_dir/child.pid"; exec sleep 1000' &
       echo $$ > "$OCF_RESKEY_dir/agent.pid"; sleep 1000;;
*) exit 3;;
esac
`)
	a, err := New(config.Resource{Name: "r", Type: "ocf", Agent: "test/slow", Params: map[string]string{"dir": dir}}, Options{OCFRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	out, err := a.Start(ctxT(t, 500*time.Millisecond))
	var ae *ActionError
	if !errors.As(err, &ae) || !ae.TimedOut || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("start: %v (%+v)", err, out)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("start returned after %v", took)
	}
	for _, f := range []string{"agent.pid", "child.pid"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		waitGone(t, pid)
	}
}

// waitGone fails unless pid is gone or a zombie within a few seconds.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d outlived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDummy(t *testing.T) {
	requireRoot(t)
	requireResourceAgents(t)
	state := filepath.Join(t.TempDir(), "dummy.state")
	spec := config.Resource{Name: "dummy", Type: "ocf", Agent: "heartbeat/Dummy", Params: map[string]string{"state": state}}
	a, err := New(spec, Options{Instance: "g:dummy"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if s, p, m := a.Timeouts(); s != 20*time.Second || p != 20*time.Second || m != 20*time.Second {
		t.Errorf("Dummy's advertised timeouts: %v %v %v", s, p, m)
	}
	if a.Meta() == nil || a.Meta().Name != "Dummy" {
		t.Fatalf("meta: %+v", a.Meta())
	}
	expect := func(want resource.State) {
		t.Helper()
		st, out, err := a.Monitor(ctxT(t, 20*time.Second))
		if st != want || err != nil {
			t.Fatalf("monitor: %v %v, want %v\n%s", st, err, want, out.Text)
		}
	}
	expect(resource.Stopped)
	for range 2 { // the second start and stop check idempotency
		if out, err := a.Start(ctxT(t, 20*time.Second)); err != nil {
			t.Fatalf("start: %v\n%s", err, out.Text)
		}
		expect(resource.Running)
		if _, err := os.Stat(state); err != nil {
			t.Fatalf("Dummy wrote no state file: %v", err)
		}
	}
	for range 2 {
		if out, err := a.Stop(ctxT(t, 20*time.Second)); err != nil {
			t.Fatalf("stop: %v\n%s", err, out.Text)
		}
		expect(resource.Stopped)
	}
}

func TestValidateRejectsUnknownAndMissingParams(t *testing.T) {
	requireResourceAgents(t)
	a, err := New(config.Resource{Name: "d", Type: "ocf", Agent: "heartbeat/Dummy", Params: map[string]string{"stat": "/tmp/x", "colour": "red"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Validate(ctxT(t, 30*time.Second))
	for _, want := range []string{`unknown parameter "colour"`, `unknown parameter "stat" (did you mean "state"?)`, "the agent's parameters are: state, fake"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	a, err = New(config.Resource{Name: "fs", Type: "ocf", Agent: "heartbeat/Filesystem", Params: map[string]string{"directory": "/mnt/x"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Validate(ctxT(t, 30*time.Second))
	for _, want := range []string{`missing required parameter "device"`, `missing required parameter "fstype"`, "device (required)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), `parameter "directory"`) {
		t.Errorf("directory is set: %v", err)
	}
	// Defaults from meta-data are known even though validation failed.
	if s, p, m := a.Timeouts(); s != 60*time.Second || p != 60*time.Second || m != 40*time.Second {
		t.Errorf("Filesystem's advertised timeouts: %v %v %v", s, p, m)
	}
}

func TestMetaDataFunction(t *testing.T) {
	requireResourceAgents(t)
	m, err := MetaData(ctxT(t, 30*time.Second), "", "heartbeat/IPaddr2")
	if err != nil {
		t.Fatal(err)
	}
	ip, ok := m.Param("ip")
	if !ok || !ip.Required {
		t.Fatalf("IPaddr2 ip parameter: %+v", ip)
	}
	if _, ok := m.Action("validate-all"); !ok {
		t.Fatal("IPaddr2 advertises validate-all")
	}
	if _, err := MetaData(ctxT(t, 5*time.Second), "", "heartbeat/NoSuchAgent"); err == nil {
		t.Fatal("meta-data of a missing agent")
	}
}
