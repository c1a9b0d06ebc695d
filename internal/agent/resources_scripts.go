package agent

import (
	"os"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/resource/lsb"
	"github.com/vigil-ha/vigil/internal/resource/mount"
	"github.com/vigil-ha/vigil/internal/resource/ocf"
)

func init() {
	resourceTypes["ocf"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		// Pacemaker names instances after the resource; the group keeps them unique here.
		return ocf.New(r, ocf.Options{Instance: g.Name + "-" + r.Name, Logger: a.log.With("group", g.Name, "resource", r.Name),
			Env: ocfDirEnv(), CloneMax: len(g.Nodes)})
	}
	resourceTypes["lsb"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		return lsb.New(r, lsb.Options{Logger: a.log.With("group", g.Name, "resource", r.Name)})
	}
	resourceTypes["mount"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		return mount.New(r, mount.Options{Logger: a.log.With("group", g.Name, "resource", r.Name)})
	}
}

// ocfDirs are the resource-agents variables that say where agents keep their
// state (ocf-directories): HA_RSCTMP (default /run/resource-agents) and
// HA_VARRUN (/var/run, e.g. Stateful's state file). Set in the agent's own
// environment (a systemd unit's Environment=), they are passed on, so that
// several nodes sharing a machine (tests, a demo) keep their state apart.
var ocfDirs = []string{"HA_RSCTMP", "HA_VARRUN"}

func ocfDirEnv() []string {
	var env []string
	for _, k := range ocfDirs {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
