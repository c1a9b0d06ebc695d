package config

import (
	"errors"
	"strings"
	"testing"
)

func TestNotificationProblemsAreLocated(t *testing.T) {
	text := good + `notifications:
  routes:
    - name: pager
      kinds: [node_dead, "group_*"]
      min_severity: urgent
      targets: [hook, nobody]
  targets:
    - name: hook
      type: webhook
      url: ftp://example.com/
    - name: mail
      type: email
      smtp: mail.example.com:587
      from: vigil@example.com
      to: [ops@example.com]
      command: [/bin/true]
`
	_, err := Parse("vigil.yaml", []byte(text))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		`vigil.yaml:12: notifications.routes[0].min_severity: "urgent": use info, warning or critical`,
		`vigil.yaml:13: notifications.routes[0].targets[1]: "nobody" is not a target`,
		`vigil.yaml:17: notifications.targets[0].url: "ftp://example.com/" is not an http:// or https:// URL`,
		`vigil.yaml:23: notifications.targets[1].command: does not apply to type email`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(ps) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(ps), len(want), got)
	}

	_, err = Parse("vigil.yaml", []byte(good+"notifications:\n  max_age: 10\n"))
	if err == nil || !strings.Contains(err.Error(), "vigil.yaml:9: max_age: invalid duration") {
		t.Errorf("bad duration: %v", err)
	}
	cfg, err := Parse("vigil.yaml", []byte(good+"notifications:\n  targets: [{name: f, type: file, dir: /tmp/n}]\n  routes: [{name: all, targets: [f]}]\n"))
	if err != nil || len(cfg.Notifications.Targets) != 1 {
		t.Fatalf("valid section: %v", err)
	}
}
