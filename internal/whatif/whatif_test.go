package whatif

import (
	"testing"

	"github.com/vigil-ha/vigil/internal/config"
)

const cfgText = `cluster: {name: t}
nodes:
  - {name: a, addresses: [10.0.0.1]}
  - {name: b, addresses: [10.0.0.2]}
  - {name: w, addresses: [10.0.0.3], witness: true}
groups:
  - name: web
    nodes: [a, b]
    resources: [{name: p, type: process, command: [/bin/true]}]
  - name: mail
    nodes: [b, a]
    resources: [{name: p, type: process, command: [/bin/true]}]
`

func load(t *testing.T) *config.Config {
	cfg, err := config.Parse("t.yaml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func where(ps []Placement, g string) string {
	for _, p := range ps {
		if p.Group == g {
			return p.Node
		}
	}
	return "?"
}

func TestNodeDeathMovesItsGroups(t *testing.T) {
	res, err := Run(load(t), nil, Scenario{Down: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if where(res.Before, "web") != "a" || where(res.Before, "mail") != "b" {
		t.Fatalf("before: %+v", res.Before)
	}
	if where(res.After, "web") != "b" || where(res.After, "mail") != "b" {
		t.Fatalf("after: %+v", res.After)
	}
	if len(res.Decisions) != 1 || res.Decisions[0].Reason == "" {
		t.Fatalf("decisions: %+v", res.Decisions)
	}
}

func TestFailureFlagMovesTheGroup(t *testing.T) {
	res, err := Run(load(t), nil, Scenario{Fail: map[string][]string{"mail": {"b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if where(res.After, "mail") != "a" {
		t.Fatalf("after: %+v", res.After)
	}
}

func TestNoQuorumRunsNothing(t *testing.T) {
	res, err := Run(load(t), nil, Scenario{Down: []string{"a", "w"}})
	if err != nil {
		t.Fatal(err)
	}
	if where(res.After, "web") != "" || where(res.After, "mail") != "" || len(res.Warnings) == 0 {
		t.Fatalf("after: %+v %v", res.After, res.Warnings)
	}
}

func TestUnknownNode(t *testing.T) {
	if _, err := Run(load(t), nil, Scenario{Down: []string{"zz"}}); err == nil {
		t.Fatal("want an error")
	}
}
