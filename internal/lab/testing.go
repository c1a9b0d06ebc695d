package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

var (
	supportOnce   sync.Once
	supportReason string
)

// unsupported says why this machine cannot run labs, or "" if it can. It
// really creates a namespace, since root alone is not enough (a container
// without CAP_SYS_ADMIN, no /run/netns).
func unsupported() string {
	supportOnce.Do(func() {
		if os.Geteuid() != 0 {
			supportReason = "not running as root"
			return
		}
		if _, err := exec.LookPath("ip"); err != nil {
			supportReason = "no ip command (apt-get install iproute2)"
			return
		}
		// Not under any tag's prefix, so no sweep ever touches it.
		probe := "vlprobe" + strconv.Itoa(os.Getpid())
		ctx := context.Background()
		if err := ip(ctx, "netns", "add", probe); err != nil {
			supportReason = fmt.Sprintf("ip netns add failed: %v", err)
			return
		}
		_ = ip(ctx, "netns", "del", probe)
	})
	return supportReason
}

// NewForTest builds a lab that is closed when the test ends, pass or fail.
// It skips the test only where namespaces cannot be made (not root, no
// ip, ip netns add refused) and fails it on any other error.
func NewForTest(t testing.TB, opt Options) *Lab {
	t.Helper()
	if reason := unsupported(); reason != "" {
		t.Skipf("lab tests need root and network namespaces: %s", reason)
	}
	l, err := New(t.Context(), opt)
	if err != nil {
		t.Fatalf("build lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab %s: %v", opt.Name, err)
		}
	})
	return l
}
