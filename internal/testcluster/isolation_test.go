package testcluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// TestIsolatedNodeNotifiesTheLoadBalancer: a node that hears nobody writes the
// seed's outOfOrder.<group> files and runs its isolation script; both are undone
// when peers come back.
func TestIsolatedNodeNotifiesTheLoadBalancer(t *testing.T) {
	h := &holders{t: t, running: map[string]map[string]bool{}}
	dir := t.TempDir()
	notify := filepath.Join(dir, "notify")
	marker := filepath.Join(dir, "marker")
	script := filepath.Join(dir, "lb.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$VIGIL_NODE $VIGIL_STATE\" >> "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	timing := "{keepalive: 50ms, warntime: 250ms, deadtime: 500ms, initdead: 3s}\n" +
		"  isolation: {notification_dir: " + notify + ", on_isolated: [" + script + "], on_recovered: [" + script + "]}"
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: timing, Groups: twoGroups, Factory: fakeServices(h)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	c.WaitFor("cluster formed", 20*time.Second, allAgree(c, []string{"a", "b", "q-w"}, formed))
	if exists(filepath.Join(notify, "outOfOrder.all")) {
		t.Fatal("notification written on a healthy node")
	}
	// Everyone but a goes away: a hears no peer on any link.
	c.Stop("b")
	c.Stop("q-w")
	for _, f := range []string{"outOfOrder.all", "outOfOrder.web", "outOfOrder.mail"} {
		f := f
		c.WaitFor(f+" written", 10*time.Second, func() bool { return exists(filepath.Join(notify, f)) })
	}
	if on := h.on("web"); len(on) != 0 {
		t.Fatalf("an isolated node still runs web: %v", on)
	}
	c.WaitFor("on_isolated script ran", 10*time.Second, func() bool {
		data, _ := os.ReadFile(marker)
		return strings.Contains(string(data), "a isolated")
	})
	c.Start("b")
	c.Start("q-w")
	c.WaitFor("notifications withdrawn", 20*time.Second, func() bool { return !exists(filepath.Join(notify, "outOfOrder.all")) })
	c.WaitFor("on_recovered script ran", 10*time.Second, func() bool {
		data, _ := os.ReadFile(marker)
		return strings.Contains(string(data), "a recovered")
	})
}
