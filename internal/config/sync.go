package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Sync resource defaults, documented in docs/config.md.
const (
	// DefaultSyncInterval is seed 001's cron period: a full pass every five minutes.
	DefaultSyncInterval = 5 * time.Minute
	DefaultSyncModule   = "vigil"
)

func (r Resource) syncSetFields() []string {
	var set []string
	add := func(name string, ok bool) {
		if ok {
			set = append(set, name)
		}
	}
	add("paths", len(r.Paths) > 0)
	add("to", len(r.To) > 0)
	add("transport", r.Transport != "")
	add("interval", r.Interval != 0)
	add("key_file", r.KeyFile != "")
	add("known_hosts", r.KnownHosts != "")
	add("secrets_file", r.SecretsFile != "")
	add("module", r.Module != "")
	add("bwlimit", r.BWLimit != "")
	return set
}

// bwLimitRE is what rsync's --bwlimit accepts that an operator means: a
// positive rate with an optional unit.
var bwLimitRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[KMGkmg]?$`)

// validateSync checks a sync resource against its group: its targets must be
// nodes that may run the group, since only they need the data at takeover.
func validateSync(l locator, f string, r Resource, g Group) []Problem {
	var ps []Problem
	if len(r.Paths) == 0 {
		ps = append(ps, l.problem(f+".paths", "required for type sync: the directories to replicate, e.g. [/srv/www]"))
	}
	seen := map[string]bool{}
	for i, p := range r.Paths {
		pf := fmt.Sprintf("%s.paths[%d]", f, i)
		switch {
		case !filepath.IsAbs(p):
			ps = append(ps, l.problem(pf, "%q: use an absolute path", p))
		case filepath.Clean(p) == "/":
			ps = append(ps, l.problem(pf, "replicating / would overwrite the other nodes' systems"))
		case seen[filepath.Clean(p)]:
			ps = append(ps, l.problem(pf, "%q is listed twice", p))
		}
		seen[filepath.Clean(p)] = true
	}
	for i, n := range r.To {
		if !contains(g.Nodes, n) {
			ps = append(ps, l.problem(fmt.Sprintf("%s.to[%d]", f, i), "%q is not one of the group's nodes %v", n, g.Nodes))
		}
	}
	switch r.Transport {
	case "", "ssh":
		for _, fl := range []struct{ name, v string }{{"key_file", r.KeyFile}, {"known_hosts", r.KnownHosts}} {
			// rsync splits its -e command at blanks.
			if strings.ContainsAny(fl.v, " \t") {
				ps = append(ps, l.problem(f+"."+fl.name, "%q: a path without blanks, please (it goes into ssh's command line)", fl.v))
			}
		}
		if r.SecretsFile != "" {
			ps = append(ps, l.problem(f+".secrets_file", "only for transport rsyncd (ssh authenticates with key_file)"))
		}
		if r.Module != "" {
			ps = append(ps, l.problem(f+".module", "only for transport rsyncd"))
		}
	case "rsyncd":
		if r.SecretsFile == "" {
			ps = append(ps, l.problem(f+".secrets_file", "required for transport rsyncd: a file (mode 600) holding the daemon user's password"))
		}
		if r.KeyFile != "" {
			ps = append(ps, l.problem(f+".key_file", "only for transport ssh"))
		}
		if r.KnownHosts != "" {
			ps = append(ps, l.problem(f+".known_hosts", "only for transport ssh"))
		}
	default:
		ps = append(ps, l.problem(f+".transport", "%q: use ssh or rsyncd", r.Transport))
	}
	if r.BWLimit != "" && !bwLimitRE.MatchString(r.BWLimit) {
		ps = append(ps, l.problem(f+".bwlimit", "%q: a rate as rsync's --bwlimit takes it, e.g. 20M or 512K (bytes per second; a bare number is KiB)", r.BWLimit))
	}
	if r.Interval < 0 || (r.Interval > 0 && time.Duration(r.Interval) < time.Second) {
		ps = append(ps, l.problem(f+".interval", "at least 1s"))
	}
	return ps
}
