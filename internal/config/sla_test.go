package config

import (
	"errors"
	"strings"
	"testing"
)

func TestGroupSLA(t *testing.T) {
	cfg, err := Parse("v.yaml", []byte(strings.Replace(withGroups, "    failback: auto\n", "    failback: auto\n    sla: 99.9\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := cfg.Group("web")
	mail, _ := cfg.Group("mail")
	if web.SLA != DefaultSLA || mail.SLA != 99.9 {
		t.Fatalf("sla: web %v mail %v", web.SLA, mail.SLA)
	}
	_, err = Parse("v.yaml", []byte(strings.Replace(withGroups, "    failback: auto\n", "    failback: auto\n    sla: 150\n", 1)))
	var ps Problems
	if !errors.As(err, &ps) || !strings.Contains(ps.Error(), "groups[1].sla") {
		t.Fatalf("sla 150 accepted: %v", err)
	}
}
