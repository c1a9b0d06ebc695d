package agent

import (
	"path/filepath"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/resource/process"
	"github.com/vigil-ha/vigil/internal/resource/systemd"
)

func init() {
	resourceTypes["process"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		// One state directory per group: resource names are unique only within a group.
		return process.New(r, process.Options{Logger: a.log.With("group", g.Name, "resource", r.Name),
			StateDir: filepath.Join(a.opt.DataDir, "process", g.Name)})
	}
	resourceTypes["systemd"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		return systemd.New(r, systemd.Options{Logger: a.log.With("group", g.Name, "resource", r.Name)})
	}
}
