package hbimport

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/config"
)

// The file is written by hand rather than marshalled so that every value can
// say which Heartbeat line it came from, and every gap can be a TODO comment
// next to the field it concerns. Every scalar goes through q, so whatever the
// inputs hold, the output parses.

// q returns a YAML double-quoted scalar; strconv.Quote's escapes are a subset
// of YAML's.
func q(s string) string { return strconv.Quote(s) }

// cmt makes s safe inside a YAML comment: one line of printable characters.
func cmt(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

func (t *translator) render() []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# vigil.yaml translated from a Heartbeat configuration by `vigil import heartbeat`:\n")
	for _, in := range t.opt.HaCf {
		who := ""
		if in.Node != "" {
			who = " (node " + in.Node + "'s)"
		}
		w("#   ha.cf%s: %s\n", cmt(who), cmt(in.Name))
	}
	w("#   haresources: %s\n", cmt(t.opt.Haresources.Name))
	if t.opt.Authkeys != nil {
		w("#   authkeys: %s (its key is not reused)\n", cmt(t.opt.Authkeys.Name))
	}
	w("# TODO comments mark what vigil needs and Heartbeat did not say; `vigil config validate`\n")
	w("# fails until they are filled in. The import's report lists every Heartbeat line it did\n")
	w("# not translate as FILE:LINE: directive: reason.\n#\n")
	w("# Keys and certificates: run\n#   %s\n", cmt(t.initCommand()))
	w("# then replace DIR/vigil.yaml by this file (cluster.secrets_dir says where init put the keys).\n\n")

	w("cluster:\n")
	w("  name: %s  # %s\n", q(t.cluster), cmt(t.clusterComment))
	w("  # Where `vigil init` wrote ca.crt, heartbeat.key, operator.token and nodes/, relative to this file.\n")
	w("  secrets_dir: %s\n", q(t.opt.SecretsDir))
	w("  # Heartbeat's values. vigil's defaults are far shorter (%s, %s, %s, %s):\n",
		fmtDur(config.DefaultKeepalive), fmtDur(config.DefaultWarntime), fmtDur(config.DefaultDeadtime), fmtDur(config.DefaultInitdead))
	w("  # a failover needs about deadtime, so consider them once the cluster runs well.\n")
	w("  timing:\n")
	for _, tm := range t.timing {
		w("    %s: %s  # %s\n", tm.name, fmtDur(tm.d), cmt(tm.comment))
	}
	switch {
	case t.writeTargets:
		w("  # ha.cf's ping nodes: a node that reaches none of them is cut off from its clients and\n")
		w("  # gives its groups up (Heartbeat's ipfail did the same).\n")
		w("  public_targets:\n")
		for _, tg := range t.targets {
			w("    - {icmp: %s}  # %s:%d %s\n", q(tg.addr), cmt(tg.file), tg.d.Line, cmt(tg.d.text()))
		}
	case len(t.targets) > 0:
		w("  # TODO ha.cf's ping nodes, as public targets: a node that reaches none of them is cut off from\n")
		w("  # its clients and gives its groups up. vigil wants %d to %d (so that one router going away\n", check.MinPublicTargets, check.MaxPublicTargets)
		w("  # cannot isolate every node): complete the list (e.g. with the DNS servers) and uncomment it.\n")
		w("  # public_targets:\n")
		for _, tg := range t.targets {
			w("  #   - {icmp: %s}  # %s:%d %s\n", cmt(q(tg.addr)), cmt(tg.file), tg.d.Line, cmt(tg.d.text()))
		}
	}

	w("\n# The i-th address of every node is on link i. Links, from ha.cf's heartbeat media:\n")
	for i, l := range t.links {
		w("#   link %d: %s (%s, %s:%d)\n", i, cmt(l.iface), cmt(strings.Join(l.kinds, ", ")), cmt(l.file), l.line)
	}
	if len(t.links) == 0 {
		w("#   (ha.cf has no bcast, mcast or ucast line)\n")
	}
	w("nodes:\n")
	for _, n := range t.nodes {
		from := fmt.Sprintf("%s:%d node %s", t.primary.File, n.line, n.hb)
		if n.given {
			from += "; addresses from --address"
		}
		w("  - name: %s  # %s\n", q(n.name), cmt(from))
		addrs := make([]string, len(n.addrs))
		for i, a := range n.addrs {
			addrs[i] = q(a)
		}
		w("    addresses: [%s]\n", strings.Join(addrs, ", "))
	}
	if len(t.nodes) == 2 {
		w("# Two nodes and no witness have no safe majority (Heartbeat had the same weakness): add a\n")
		w("# witness, a small third machine that only votes ({name: ..., addresses: [...], witness: true}),\n")
		w("# or a fencing: device, before relying on automatic failover.\n")
	}

	if len(t.groups) == 0 {
		w("\n# haresources has no resource line.\ngroups: []\n")
		return []byte(b.String())
	}
	w("\ngroups:\n")
	for _, g := range t.groups {
		w("  # %s:%d: %s\n", cmt(t.opt.Haresources.Name), g.src.Line, cmt(g.src.Node+" "+specTexts(g.src.Resources)))
		w("  - name: %s\n", q(g.name))
		quoted := make([]string, len(g.nodes))
		for i, n := range g.nodes {
			quoted[i] = q(n)
		}
		w("    nodes: [%s]  # the haresources node first, then the others in ha.cf's order\n", strings.Join(quoted, ", "))
		w("    failback: %s  # %s\n", t.failback, cmt(t.failbackComment))
		if t.failback == "auto" {
			w("    # Heartbeat moved the group back at once; vigil waits until the node has been alive for\n")
			w("    # failback_delay (default 30s), so that a node that keeps rebooting does not drag it along.\n")
		}
		w("    resources:\n")
		for _, r := range g.resources {
			if r.res == nil {
				// A group without one of its resources would start and fail
				// (a mount without its DRBD promotion); the placeholder's type
				// keeps the file from validating until someone decides.
				w("      # TODO %s:%d: %s is not translated (see the report): replace this entry\n", cmt(t.opt.Haresources.Name), r.spec.Line, cmt(r.spec.Text))
				w("      - name: %s\n", q(r.placeholder))
				w("        type: %s\n", q("TODO: "+r.spec.Text))
				continue
			}
			renderResource(&b, r)
		}
	}
	return []byte(b.String())
}

func renderResource(b *strings.Builder, r resourceOut) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	res := r.res
	comment := r.spec.Text
	if r.note != "" {
		comment += "; " + r.note
	}
	w("      - name: %s  # %s\n", q(res.Name), cmt(comment))
	w("        type: %s\n", res.Type)
	field := func(name, v string) {
		if v != "" {
			w("        %s: %s\n", name, q(v))
		}
	}
	switch res.Type {
	case "ip":
		field("address", res.Address)
		field("interface", res.Interface)
	case "lsb":
		field("script", res.Script)
	case "ocf":
		field("agent", res.Agent)
		if res.Promotable {
			w("        promotable: true\n")
		}
		if len(res.Params) > 0 {
			keys := make([]string, 0, len(res.Params))
			for k := range res.Params {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			w("        params:\n")
			for _, k := range keys {
				w("          %s: %s\n", q(k), q(res.Params[k]))
			}
		}
	case "mount":
		field("device", res.Device)
		field("path", res.Path)
		field("fstype", res.FSType)
		field("options", res.Options)
	}
	for _, todo := range r.todos {
		w("        # %s\n", cmt(todo))
	}
}

func specTexts(rs []ResourceSpec) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Text
	}
	return strings.Join(parts, " ")
}

// initCommand is the `vigil init` line that makes the keys and certificates
// for this cluster, with ADDR where an address is still unknown.
func (t *translator) initCommand() string {
	parts := []string{"vigil init --dir DIR --cluster " + t.cluster}
	for _, n := range t.nodes {
		addrs := make([]string, len(n.addrs))
		for i, a := range n.addrs {
			if strings.HasPrefix(a, "TODO") {
				a = "ADDR"
			}
			addrs[i] = a
		}
		parts = append(parts, "--node "+n.name+"="+strings.Join(addrs, ","))
	}
	return strings.Join(parts, " ")
}

// InitCommand is that line, for the command's report.
func (r *Result) InitCommand() string { return r.initCmd }
