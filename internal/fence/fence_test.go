package fence

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
)

// agent writes a fence agent script that records its input and keeps a power state file.
func agent(t *testing.T, offWorks bool) (config.FenceDevice, string) {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "power")
	if err := os.WriteFile(state, []byte("on\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	off := "echo off > " + state
	if !offWorks {
		off = ":"
	}
	script := "#!/bin/sh\ninput=$(cat)\necho \"$input\" >> " + filepath.Join(dir, "input") + "\n" +
		"action=$(echo \"$input\" | sed -n 's/^action=//p')\n" +
		"case $action in\n  off) " + off + "; exit 0 ;;\n  on) echo on > " + state + "; exit 0 ;;\n" +
		"  status) [ \"$(cat " + state + ")\" = off ] && exit 2; exit 0 ;;\nesac\nexit 1\n"
	path := filepath.Join(dir, "fence_test")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	dev := config.FenceDevice{Name: "pdu", Agent: path, Params: map[string]string{"ip": "127.0.0.1", "username": "admin"},
		Nodes: []string{"a"}, Plugs: map[string]string{"a": "3"}, Timeout: config.Duration(5 * time.Second)}
	return dev, dir
}

func TestOffIsConfirmedByStatus(t *testing.T) {
	dev, dir := agent(t, true)
	res, err := Off(context.Background(), dev, "a")
	if err != nil {
		t.Fatalf("Off: %v (%+v)", err, res)
	}
	if len(res) != 2 || res[1].ExitCode != statusOff {
		t.Fatalf("results %+v", res)
	}
	input, _ := os.ReadFile(filepath.Join(dir, "input"))
	for _, want := range []string{"action=off\n", "nodename=a\n", "plug=3\n", "ip=127.0.0.1\n", "username=admin\n", "action=status\n"} {
		if !strings.Contains(string(input), want) {
			t.Errorf("agent input lacks %q:\n%s", want, input)
		}
	}
}

func TestOffNotConfirmedIsAnError(t *testing.T) {
	dev, _ := agent(t, false)
	if _, err := Off(context.Background(), dev, "a"); err == nil || !strings.Contains(err.Error(), "still on") {
		t.Fatalf("want 'still on', got %v", err)
	}
}

func TestMissingAgent(t *testing.T) {
	dev := config.FenceDevice{Name: "x", Agent: "/nonexistent/fence_x", Timeout: config.Duration(time.Second)}
	if _, err := Off(context.Background(), dev, "a"); err == nil {
		t.Fatal("want an error")
	}
}
