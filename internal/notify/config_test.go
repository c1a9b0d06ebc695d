package notify

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

const example = `
routes:
  - name: pager
    kinds: [node_dead, node_fenced, fence_failed, "group_*"]
    min_severity: warning
    targets: [ops-hook, ops-mail]
  - name: everything
    targets: [audit]
targets:
  - name: ops-hook
    type: webhook
    url: https://hooks.example.com/vigil
    secret_file: secrets/webhook.key
    headers: {Authorization: Bearer abc}
    timeout: 5s
  - name: ops-mail
    type: email
    smtp: mail.example.com:587
    username: vigil
    password_file: secrets/smtp.pass
    from: Vigil <vigil@example.com>
    to: [ops@example.com]
    subject_prefix: "[prod]"
  - name: audit
    type: file
    dir: /var/log/vigil
  - name: pager-script
    type: script
    command: [/usr/local/bin/page, --urgent]
  - name: local-syslog
    type: syslog
    tag: vigil
queue_size: 500
max_age: 30m
`

func TestExampleDecodesStrictlyAndValidates(t *testing.T) {
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(example), &c, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	if ps := c.Validate("notifications"); len(ps) > 0 {
		t.Fatalf("unexpected problems: %v", ps)
	}
	if c.MaxAge.D().Minutes() != 30 || c.QueueSize != 500 || len(c.Targets) != 5 || c.Targets[1].startTLS() != true {
		t.Fatalf("decoded %+v", c)
	}
	var bad Config
	if err := yaml.UnmarshalWithOptions([]byte("targets: [{name: x, type: file, dirr: /tmp}]"), &bad, yaml.Strict()); err == nil {
		t.Fatal("a misspelt field was accepted")
	}
}

func TestValidateNamesTheField(t *testing.T) {
	no := false
	c := Config{
		QueueSize: -1,
		Routes: []Route{
			{Name: "r", Kinds: []string{"group_[", ""}, MinSeverity: "urgent", Targets: []string{"hook", "nope"}},
			{Name: "r"},
		},
		Targets: []Target{
			{Name: "hook", Type: TypeWebhook, URL: "ftp://x", Secret: "s", SecretFile: "f", Command: []string{"/bin/true"},
				Headers: map[string]string{"X-Vigil-Signature": "forged", "bad name": "v"}},
			{Name: "mail", Type: TypeEmail, SMTP: "mail.example.com", From: "not an address", Username: "u", Password: "p", StartTLS: &no},
			{Name: "Hook", Type: "pager"},
			{Name: "s", Type: TypeScript, Command: []string{"page"}},
			{Name: "sl", Type: TypeSyslog, Network: "udp", Address: "nowhere"},
			{Name: "f", Type: TypeFile},
			{Name: "hook", Type: TypeSyslog},
		},
	}
	got := map[string]string{}
	for _, p := range c.Validate("notifications") {
		got[p.Field] += p.Message + "; "
	}
	want := map[string]string{
		"notifications.queue_size":             "0",
		"notifications.routes[0].kinds[0]":     "glob",
		"notifications.routes[0].kinds[1]":     "glob",
		"notifications.routes[0].min_severity": "info, warning or critical",
		"notifications.routes[0].targets[1]":   `"nope" is not a target`,
		"notifications.routes[1].name":         "already",
		"notifications.routes[1].targets":      "list the targets",
		"notifications.targets[0].url":         "http:// or https://",
		"notifications.targets[0].secret_file": "not both",
		"notifications.targets[0].command":     "does not apply to type webhook",
		"notifications.targets[0].headers":     "set by vigil",
		"notifications.targets[1].smtp":        "host:port",
		"notifications.targets[1].from":        "not an e-mail address",
		"notifications.targets[1].to":          "at least one recipient",
		"notifications.targets[1].starttls":    "in clear",
		"notifications.targets[2].name":        "lower-case",
		"notifications.targets[2].type":        "webhook, email, script, syslog, file",
		"notifications.targets[3].command":     "absolute path",
		"notifications.targets[4].address":     "host:port",
		"notifications.targets[5].dir":         "required",
		"notifications.targets[6].name":        "already the name of targets[0]",
	}
	for f, w := range want {
		if !strings.Contains(got[f], w) {
			t.Errorf("%s: got %q, want a message containing %q", f, got[f], w)
		}
	}
	for f := range got {
		if _, ok := want[f]; !ok {
			t.Errorf("unexpected problem %s: %s", f, got[f])
		}
	}
}

func TestEmptySectionIsValid(t *testing.T) {
	if ps := (Config{}).Validate("notifications"); len(ps) != 0 {
		t.Fatal(ps)
	}
}
