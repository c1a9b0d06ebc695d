package agent

import (
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/resource/lsb"
	"github.com/vigil-ha/vigil/internal/resource/mount"
	"github.com/vigil-ha/vigil/internal/resource/ocf"
)

func init() {
	resourceTypes["ocf"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		// Pacemaker names instances after the resource; the group keeps them unique here.
		return ocf.New(r, ocf.Options{Instance: g.Name + "-" + r.Name, Logger: a.log.With("group", g.Name, "resource", r.Name)})
	}
	resourceTypes["lsb"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		return lsb.New(r, lsb.Options{Logger: a.log.With("group", g.Name, "resource", r.Name)})
	}
	resourceTypes["mount"] = func(a *Agent, g config.Group, r config.Resource) (resource.Agent, error) {
		return mount.New(r, mount.Options{Logger: a.log.With("group", g.Name, "resource", r.Name)})
	}
}
