package cli

import (
	"strings"
	"testing"
)

func TestRoleNotes(t *testing.T) {
	got := strings.Join(roleNotes(map[string]map[string]string{
		"drbd": {"c": "unpromoted", "a": "promoted", "b": "unpromoted"},
		"arb":  {"a": "stopped", "b": "failed"},
	}), "; ")
	if want := "arb: failed on b, stopped on a; drbd: promoted on a, unpromoted on b,c"; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if n := roleNotes(nil); len(n) != 0 {
		t.Fatalf("no promotable resources: %v", n)
	}
}
