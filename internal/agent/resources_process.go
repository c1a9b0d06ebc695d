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
		// The service learns where it runs, as OCF agents do through their environment.
		env := map[string]string{"VIGIL_NODE": a.self.Name, "VIGIL_GROUP": g.Name, "VIGIL_RESOURCE": r.Name}
		for k, v := range r.Env {
			env[k] = v
		}
		r.Env = env
		// One state directory per group: resource names are unique only within a group.
		return process.New(r, process.Options{Logger: a.log.With("group", g.Name, "resource", r.Name),
			StateDir: filepath.Join(a.opt.DataDir, "process", g.Name)})
	}
	resourceTypes["systemd"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		return systemd.New(r, systemd.Options{Logger: a.log.With("group", g.Name, "resource", r.Name)})
	}
}
