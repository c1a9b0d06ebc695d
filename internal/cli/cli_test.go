package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "vigil ") || !strings.Contains(out, "commit") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestUnknownCommandIsUsage(t *testing.T) {
	if code, _, _ := run(t, "frobnicate"); code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
}

func TestInitThenValidate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	code, out, errs := run(t, "init", "--dir", dir, "--cluster", "cityhall",
		"--node", "alessandro=10.0.0.1,192.168.100.1", "--node", "federica=10.0.0.2,192.168.100.2", "--witness", "quorum=10.0.0.3")
	if code != ExitOK {
		t.Fatalf("init: %d %s %s", code, out, errs)
	}
	for _, f := range []string{"vigil.yaml", "ca.crt", "heartbeat.key", "operator.token", "nodes/federica.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not write %s", f)
		}
	}
	code, out, errs = run(t, "config", "validate", filepath.Join(dir, "vigil.yaml"))
	if code != ExitOK || !strings.Contains(out, "ok") || errs != "" {
		t.Fatalf("validate: %d %q %q", code, out, errs)
	}
	// A second init must not overwrite the keys.
	before, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	code, _, errs = run(t, "init", "--dir", dir, "--cluster", "cityhall", "--node", "a=10.0.0.1", "--node", "b=10.0.0.2")
	after, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	if code == ExitOK || !strings.Contains(errs, "--force") || !bytes.Equal(before, after) {
		t.Fatalf("second init: exit %d, %q, key changed: %v", code, errs, !bytes.Equal(before, after))
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	bad := "cluster:\n  name: x\n  timing: {keepalive: 1s, warntime: 500ms}\nnodes:\n  - {name: a, addresses: [10.0.0.1]}\n  - {name: B, addresses: [10.0.0.300]}\n"
	if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, "config", "validate", p)
	if code != ExitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{
		p + ":3: cluster.timing.warntime:",
		p + ":6: nodes[1].name:",
		p + ":6: nodes[1].addresses[0]:",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
}

func TestTwoNodesWithoutWitnessWarn(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "init", "--dir", dir, "--cluster", "pair", "--node", "a=10.0.0.1", "--node", "b=10.0.0.2"); code != 0 {
		t.Fatal(errs)
	}
	code, _, errs := run(t, "config", "validate", filepath.Join(dir, "vigil.yaml"))
	if code != ExitOK || !strings.Contains(errs, "witness") || !strings.Contains(errs, "fence") {
		t.Fatalf("want a warning about the missing witness, got %d %q", code, errs)
	}
}

func TestAgentRefusesBadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(p, []byte("cluster: {name: x, colour: red}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, "agent", "--config", p, "--node", "a")
	if code != ExitUsage || !strings.Contains(errs, p+":1:") {
		t.Fatalf("agent on a bad config: exit %d %q", code, errs)
	}
}

func TestSimulateANodeDeath(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "init", "--dir", dir, "--cluster", "c", "--node", "a=10.0.0.1", "--node", "b=10.0.0.2", "--witness", "w=10.0.0.3"); code != 0 {
		t.Fatal(errs)
	}
	cfg := filepath.Join(dir, "vigil.yaml")
	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("groups:\n  - name: web\n    nodes: [a, b]\n    resources: [{name: p, type: process, command: [/bin/true]}]\n")
	f.Close()
	code, out, errs := run(t, "simulate", "--config", cfg, "--down", "a")
	if code != 0 || !strings.Contains(out, "web    a       b") || !strings.Contains(out, "surely over") {
		t.Fatalf("simulate: %d %q %q", code, out, errs)
	}
	if code, _, _ := run(t, "simulate", "--config", cfg, "--down", "nobody"); code != ExitUsage {
		t.Fatalf("unknown node: exit %d, want 2", code)
	}
}
