package ocf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
)

// statefulAgent is Pacemaker's example promotable agent, from Debian's
// pacemaker-resource-agents package.
const statefulAgent = "pacemaker/Stateful"

func requireStateful(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(DefaultOCFRoot, "resource.d", statefulAgent)); err != nil {
		t.Fatalf("Debian's Stateful agent is missing (apt-get install pacemaker-resource-agents): %v", err)
	}
}

// TestStatefulPromoteDemote drives the real ocf:pacemaker:Stateful agent through
// its roles, with two instances kept apart by their own HA_VARRUN as two nodes
// sharing a machine are: OCF_SUCCESS is a running unpromoted instance,
// OCF_RUNNING_MASTER (8) a promoted one, and the clone meta Pacemaker would pass
// reaches the agent.
func TestStatefulPromoteDemote(t *testing.T) {
	requireStateful(t)
	dirs := []string{t.TempDir(), t.TempDir()}
	envFile := filepath.Join(t.TempDir(), "env")
	spec := config.Resource{Name: "db", Type: "ocf", Agent: statefulAgent, Promotable: true,
		MonitorInterval: config.Duration(time.Second), Params: map[string]string{"envfile": envFile}}
	var agents []*Agent
	for _, dir := range dirs {
		a, err := New(spec, Options{Instance: "g-db", Env: []string{"HA_VARRUN=" + dir}, CloneMax: 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Validate(ctxT(t, 30*time.Second)); err != nil {
			t.Fatalf("validate: %v", err)
		}
		agents = append(agents, a)
	}
	a, b := agents[0], agents[1]
	expect := func(a *Agent, st resource.State, role resource.Role) {
		t.Helper()
		gotSt, gotRole, out, err := a.MonitorRole(ctxT(t, 20*time.Second))
		if gotSt != st || gotRole != role || err != nil {
			t.Fatalf("monitor: %v %v %v, want %v %v\n%s", gotSt, gotRole, err, st, role, out.Text)
		}
		if plain, _, err := a.Monitor(ctxT(t, 20*time.Second)); plain != st || err != nil {
			t.Fatalf("plain monitor of a promotable agent: %v %v, want %v", plain, err, st)
		}
	}
	must := func(what string, out resource.Output, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out.Text)
		}
	}
	expect(a, resource.Stopped, resource.Unpromoted)
	out, err := a.Start(ctxT(t, 20*time.Second))
	must("start a", out, err)
	out, err = b.Start(ctxT(t, 20*time.Second))
	must("start b", out, err)
	expect(a, resource.Running, resource.Unpromoted)
	out, err = a.Promote(ctxT(t, 20*time.Second))
	must("promote a", out, err)
	expect(a, resource.Running, resource.Promoted)
	// Each instance has its own state file: b stays unpromoted.
	expect(b, resource.Running, resource.Unpromoted)
	if data, err := os.ReadFile(filepath.Join(dirs[0], "Stateful-g-db.state")); err != nil || strings.TrimSpace(string(data)) != "Promoted" {
		t.Fatalf("a's state file: %q %v", data, err)
	}
	// Stateful refuses to start a promoted instance (exit 8): callers look at the
	// role before they start.
	if _, err := a.Start(ctxT(t, 20*time.Second)); err == nil || !strings.Contains(err.Error(), "OCF_RUNNING_MASTER") {
		t.Fatalf("start of a promoted instance: %v", err)
	}
	for range 2 {
		out, err = a.Demote(ctxT(t, 20*time.Second))
		must("demote a", out, err)
		expect(a, resource.Running, resource.Unpromoted)
	}
	// A failed promoted instance (OCF_FAILED_MASTER) is Failed in the Promoted role.
	rc := filepath.Join(dirs[1], "Stateful-g-db.state.rc")
	if err := os.WriteFile(rc, []byte("9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, role, _, err := b.MonitorRole(ctxT(t, 20*time.Second)); st != resource.Failed || role != resource.Promoted || err == nil {
		t.Fatalf("monitor exit 9: %v %v %v", st, role, err)
	}
	if err := os.Remove(rc); err != nil {
		t.Fatal(err)
	}
	for _, x := range agents {
		out, err = x.Stop(ctxT(t, 20*time.Second))
		must("stop", out, err)
		expect(x, resource.Stopped, resource.Unpromoted)
		// Demoting a stopped instance succeeds: it is not promoted.
		out, err = x.Demote(ctxT(t, 20*time.Second))
		must("demote a stopped instance", out, err)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OCF_RESKEY_CRM_meta_clone_max=2", "OCF_RESKEY_CRM_meta_promoted_max=1", "OCF_RESKEY_CRM_meta_clone_node_max=1", "HA_VARRUN=" + dirs[1]} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("the agent's environment lacks %s", want)
		}
	}
	if pro, de := a.PromoteTimeouts(); pro != 10*time.Second || de != 10*time.Second {
		t.Errorf("promote/demote timeouts %v/%v, want Stateful's advertised 10s/10s", pro, de)
	}
}

// TestPromotableNeedsPromoteAndDemote: an agent without a promoted role cannot
// be made promotable; Validate says so before anything starts.
func TestPromotableNeedsPromoteAndDemote(t *testing.T) {
	requireResourceAgents(t)
	a, err := New(config.Resource{Name: "flag", Type: "ocf", Agent: "heartbeat/Dummy", Promotable: true,
		Params: map[string]string{"state": filepath.Join(t.TempDir(), "d.state")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Validate(ctxT(t, 30*time.Second))
	if err == nil || !strings.Contains(err.Error(), "no promote or demote action") {
		t.Fatalf("validate of a promotable Dummy: %v", err)
	}
	if _, err := New(config.Resource{Name: "x", Type: "ocf", Agent: statefulAgent}, Options{Env: []string{"NOEQUALS"}}); err == nil {
		t.Fatal("an environment entry without '=' was accepted")
	}
}
