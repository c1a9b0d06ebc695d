package sim

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/vigil-ha/vigil/internal/config"
)

// Scenario is a timed list of things that happen to a cluster.
type Scenario struct {
	Name        string          `yaml:"name"`
	Description string          `yaml:"description"`
	Duration    config.Duration `yaml:"duration"` // default: 30s after the last step
	Steps       []Step          `yaml:"steps"`
}

// Step is one timed happening. Which fields apply depends on Action.
type Step struct {
	At     config.Duration `yaml:"at"`
	Action string          `yaml:"action"`
	Node   string          `yaml:"node"`
	Nodes  []string        `yaml:"nodes"`
	From   []string        `yaml:"from"`
	OneWay bool            `yaml:"one_way"`
	Link   int             `yaml:"link"`
	Group  string          `yaml:"group"`
	Target string          `yaml:"target"`
}

// Actions a step may name, with what it needs.
var actions = map[string]string{
	"power_off":       "node",  // every process killed, links cut
	"power_on":        "node",  // boots again (new incarnation)
	"freeze":          "node",  // paused: no processing, links cut (a paused VM)
	"thaw":            "node",  // resumes where it was
	"cut_link":        "node",  // one link of the node (link: N)
	"restore_link":    "node",  //
	"partition":       "nodes", // nodes cut from `from` (default: everybody else)
	"heal":            "",      // every cut and partition removed
	"check_fail":      "group", // the group's service fails on node (checks see it)
	"check_recover":   "group", //
	"public_lost":     "node",  // the node loses its public network
	"public_regained": "node",  //
	"move":            "group", // operator: vigil move GROUP TARGET
	"failback":        "group", // operator: vigil failback GROUP
	"flags_clear":     "group", // operator: vigil flags clear GROUP [NODE]
	"maintenance_on":  "",      // operator (group optional)
	"maintenance_off": "",      //
	"start_by_hand":   "group", // someone starts the group's service on node by hand
}

// LoadScenario reads and checks a scenario file against the cluster config.
func LoadScenario(path string, cfg *config.Config) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	var sc Scenario
	if err := config.DecodeYAML(data, &sc); err != nil {
		return nil, fmt.Errorf("%s: %s", path, yaml.FormatError(err, false, false))
	}
	if err := sc.validate(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &sc, nil
}

func (sc *Scenario) validate(cfg *config.Config) error {
	var errs []error
	for i, s := range sc.Steps {
		f := fmt.Sprintf("steps[%d]", i)
		need, ok := actions[s.Action]
		if !ok {
			names := make([]string, 0, len(actions))
			for a := range actions {
				names = append(names, a)
			}
			sort.Strings(names)
			errs = append(errs, fmt.Errorf("%s.action: %q: use one of %s", f, s.Action, strings.Join(names, ", ")))
			continue
		}
		for _, n := range append(append([]string{s.Node}, s.Nodes...), s.From...) {
			if _, ok := cfg.Node(n); n != "" && !ok {
				errs = append(errs, fmt.Errorf("%s: %q is not a node", f, n))
			}
		}
		switch need {
		case "node":
			if s.Node == "" {
				errs = append(errs, fmt.Errorf("%s.node: required by %s", f, s.Action))
			}
		case "nodes":
			if len(s.Nodes) == 0 {
				errs = append(errs, fmt.Errorf("%s.nodes: required by %s", f, s.Action))
			}
		case "group":
			if _, ok := cfg.Group(s.Group); !ok {
				errs = append(errs, fmt.Errorf("%s.group: %q is not a group", f, s.Group))
			}
		}
		if i > 0 && s.At < sc.Steps[i-1].At {
			errs = append(errs, fmt.Errorf("%s.at: steps must be in time order", f))
		}
	}
	return errors.Join(errs...)
}
