package hbimport

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/config"
)

// Input is one file given to Import.
type Input struct {
	Name string // as the operator named it; findings and comments use it
	Data []byte
	// Node is, for an ha.cf, the Heartbeat node it was taken from ("" when not
	// known). A node's ha.cf lists the other nodes' addresses in its ucast lines,
	// so knowing whose file it is tells whose addresses they are.
	Node string
}

// Options are the inputs of Import.
type Options struct {
	// HaCf holds one ha.cf, or one per node; the first one's settings are used
	// and the others only add ucast addresses.
	HaCf        []Input
	Haresources Input
	Authkeys    *Input // optional
	// Cluster names the cluster; default ha.cf's cluster directive, else
	// Heartbeat's default "linux-ha".
	Cluster string
	// SecretsDir is written as cluster.secrets_dir: where `vigil init` put the
	// keys, relative to the written file. Default ".".
	SecretsDir string
	// Addresses gives a node's addresses, one per link, by its Heartbeat or vigil
	// name. They replace what the ucast lines say about that node; bcast and mcast
	// lines say nothing, so they need these.
	Addresses map[string][]string
	// OutName names the written file in validation problems; default vigil.yaml.
	OutName string
}

// Result is the translation.
type Result struct {
	YAML []byte
	// Findings lists every line that was not translated, or was translated with
	// a change, in file and line order.
	Findings []Finding
	// Problems are what `vigil config validate` says about YAML: the TODOs left
	// for the operator. Empty when the file validates.
	Problems config.Problems
	// Warnings are config's warnings for a file that validates.
	Warnings []string
	Nodes    int
	Groups   int
	initCmd  string
}

// Untranslated returns the findings for lines without a translation.
func (r *Result) Untranslated() []Finding { return r.filter(false) }

// Changed returns the findings for lines translated with a change.
func (r *Result) Changed() []Finding { return r.filter(true) }

func (r *Result) filter(changed bool) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Changed == changed {
			out = append(out, f)
		}
	}
	return out
}

// Heartbeat's defaults when ha.cf leaves a time out (heartbeat 3.0.6, config.c).
const (
	hbKeepalive = 1 * time.Second
	hbDeadtime  = 30 * time.Second
	// vigil's floor on keepalive (config validation).
	minKeepalive = 10 * time.Millisecond
	// Heartbeat's default cluster name (ha.cf "cluster").
	hbClusterName = "linux-ha"
)

type nodeOut struct {
	hb, name string
	line     int
	addrs    []string
	todo     string // why an address is a placeholder
	given    bool   // addresses came from Options.Addresses
}

type ucastEntry struct {
	ip   netip.Addr
	from string // the Heartbeat node whose ha.cf lists it, "" if unknown
	file string
	line int
}

type linkOut struct {
	iface   string
	kinds   []string
	file    string
	line    int // the first line naming this interface
	ucast   []ucastEntry
	owner   map[netip.Addr]string // ucast address → Heartbeat node
	bcastAt []mediumAt            // bcast/mcast lines, for findings
}

type mediumAt struct {
	file string
	m    Medium
}

type groupOut struct {
	src       ResourceLine
	name      string
	nodes     []string
	resources []resourceOut
}

type timingOut struct {
	name    string
	d       time.Duration
	comment string
}

type translator struct {
	opt      Options
	findings []Finding
	errs     InputErrors
	rank     map[string]int

	hacfs   []*HaCf
	primary *HaCf
	nodes   []*nodeOut
	byHB    map[string]*nodeOut
	links   []*linkOut
	timing  []timingOut

	cluster, clusterComment   string
	failback, failbackComment string
	groups                    []groupOut
	pings                     []pingAt
	targets                   []targetAt
	writeTargets              bool
}

type targetAt struct {
	addr string
	file string
	d    Directive
}

type pingAt struct {
	file string
	d    Directive
}

// Import translates a Heartbeat configuration into a vigil.yaml. It returns
// InputErrors when an input is one Heartbeat itself would have refused; every
// other difference is a Finding, and whatever the operator still has to fill in
// is a TODO in the file and a problem in Result.Problems.
func Import(opt Options) (*Result, error) {
	if len(opt.HaCf) == 0 {
		return nil, errors.New("import: no ha.cf given")
	}
	if opt.SecretsDir == "" {
		opt.SecretsDir = "."
	}
	if opt.OutName == "" {
		opt.OutName = "vigil.yaml"
	}
	t := &translator{opt: opt, rank: map[string]int{}, byHB: map[string]*nodeOut{}}
	for i, in := range opt.HaCf {
		t.rank[in.Name] = i
	}
	t.rank[opt.Haresources.Name] = len(opt.HaCf)
	if opt.Authkeys != nil {
		t.rank[opt.Authkeys.Name] = len(opt.HaCf) + 1
	}
	t.rank["--address"] = len(opt.HaCf) + 2

	for _, in := range opt.HaCf {
		h, err := ParseHaCf(in.Name, in.Data)
		t.collect(err)
		h.Node = strings.ToLower(in.Node)
		t.hacfs = append(t.hacfs, h)
	}
	t.primary = t.hacfs[0]
	var keys *Authkeys
	if opt.Authkeys != nil {
		k, err := ParseAuthkeys(opt.Authkeys.Name, opt.Authkeys.Data)
		t.collect(err)
		keys = k
	}
	res := ParseHaresources(opt.Haresources.Data)

	t.checkInputs(res)
	if len(t.errs) > 0 {
		sort.SliceStable(t.errs, func(i, j int) bool {
			a, b := t.errs[i], t.errs[j]
			if t.rank[a.File] != t.rank[b.File] {
				return t.rank[a.File] < t.rank[b.File]
			}
			return a.Line < b.Line
		})
		return nil, t.errs
	}
	t.translateNodes()
	t.translateCluster()
	t.translateTiming()
	t.translateFailback()
	t.translateLinks()
	t.translatePings()
	t.translateOther()
	t.translateGroups(res)
	t.translateAuthkeys(keys)

	out := &Result{YAML: t.render(), Nodes: len(t.nodes), Groups: len(t.groups), initCmd: t.initCommand()}
	sort.SliceStable(t.findings, func(i, j int) bool {
		a, b := t.findings[i], t.findings[j]
		if t.rank[a.File] != t.rank[b.File] {
			return t.rank[a.File] < t.rank[b.File]
		}
		return a.Line < b.Line
	})
	out.Findings = t.findings
	cfg, err := config.Parse(opt.OutName, out.YAML)
	var ps config.Problems
	switch {
	case errors.As(err, &ps):
		out.Problems = ps
	case err != nil:
		return nil, fmt.Errorf("import: check the written file: %w", err)
	default:
		out.Warnings = cfg.Warnings()
	}
	return out, nil
}

func (t *translator) collect(err error) {
	var es InputErrors
	if errors.As(err, &es) {
		t.errs = append(t.errs, es...)
	} else if err != nil {
		t.errs = append(t.errs, InputError{Msg: err.Error()})
	}
}

func (t *translator) errorf(file string, line int, directive, format string, args ...any) {
	t.errs = append(t.errs, InputError{File: file, Line: line, Directive: directive, Msg: fmt.Sprintf(format, args...)})
}

func (t *translator) add(file string, line int, directive, reason string, changed bool) {
	t.findings = append(t.findings, Finding{File: file, Line: line, Directive: directive, Reason: reason, Changed: changed})
}

// untranslated and changed report a haresources resource.
func (t *translator) untranslated(s ResourceSpec, reason string) {
	t.add(t.opt.Haresources.Name, s.Line, s.Text, reason, false)
}

func (t *translator) changed(s ResourceSpec, reason string) {
	t.add(t.opt.Haresources.Name, s.Line, s.Text, reason, true)
}

// checkInputs refuses, as Heartbeat does, a configuration it would not start
// with: no nodes, haresources naming an unknown node, Pacemaker in charge.
func (t *translator) checkInputs(res []ResourceLine) {
	p := t.primary
	known := map[string]bool{}
	for _, n := range p.Nodes {
		known[n.Name] = true
	}
	if len(p.Nodes) == 0 {
		t.errorf(p.File, 0, "node", "no node lines: Heartbeat needs one per cluster node (node NAME, as uname -n prints it)")
	}
	for _, h := range t.hacfs {
		if h.CRM != nil {
			t.errorf(h.File, h.CRM.Line, h.CRM.Name, "Pacemaker is on, so the resources are in its CIB and haresources is ignored; "+
				"importing a CIB is not supported: translate the CIB's resources by hand (docs/config.md)")
		}
		if h.Node != "" && len(p.Nodes) > 0 && !known[h.Node] {
			if hb, ok := t.hbNameOf(h.Node); ok {
				h.Node = hb // the operator used the vigil name
			} else {
				t.errorf(h.File, 0, "node", "this file is said to be node %q's, but ha.cf has no node %q", h.Node, h.Node)
			}
		}
	}
	if len(p.Nodes) > 0 {
		for _, l := range res {
			if !known[l.Node] {
				t.errorf(t.opt.Haresources.Name, l.Line, l.Node, "node %q is not declared in %s (Heartbeat refuses this file: \"Bad nodename\")", l.Node, p.File)
			}
		}
	}
	for name := range t.opt.Addresses {
		if _, vigilName := t.hbNameOf(name); !known[strings.ToLower(name)] && !vigilName {
			t.errorf("--address", 0, name, "no node %q in %s", name, p.File)
		}
	}
}

// hbNameOf finds the Heartbeat node whose vigil name is name, so that flags
// may use either.
func (t *translator) hbNameOf(name string) (string, bool) {
	for _, n := range t.primary.Nodes {
		if sanitizeName(n.Name) == name {
			return n.Name, true
		}
	}
	return "", false
}

func (t *translator) translateNodes() {
	p := t.primary
	used := map[string]bool{}
	for _, n := range p.Nodes {
		if t.byHB[n.Name] != nil {
			t.add(p.File, n.Line, "node", fmt.Sprintf("node %s is declared twice; kept once", n.Name), true)
			continue
		}
		name := unique(sanitizeName(n.Name), "node", used)
		if name != n.Name {
			t.add(p.File, n.Line, "node", fmt.Sprintf("node %s is called %s in vigil.yaml (lower-case letters, digits and '-'): "+
				"its agent runs with --node %s and its certificate is issued for that name", n.Name, name, name), true)
		}
		o := &nodeOut{hb: n.Name, name: name, line: n.Line}
		for k, v := range t.opt.Addresses {
			if strings.ToLower(k) == n.Name || k == name {
				o.addrs, o.given = append([]string(nil), v...), true
			}
		}
		t.nodes = append(t.nodes, o)
		t.byHB[n.Name] = o
	}
	// The other files should describe the same cluster; say where they do not.
	for _, h := range t.hacfs[1:] {
		var names []string
		for _, n := range h.Nodes {
			names = append(names, n.Name)
			if t.byHB[n.Name] == nil {
				t.add(h.File, n.Line, "node", fmt.Sprintf("node %s is not in %s, whose node lines are used", n.Name, p.File), false)
			}
		}
		for _, pair := range []struct {
			name string
			a, b Timing
		}{{"keepalive", p.Keepalive, h.Keepalive}, {"warntime", p.Warntime, h.Warntime}, {"deadtime", p.Deadtime, h.Deadtime}, {"initdead", p.Initdead, h.Initdead}} {
			if pair.a.D != pair.b.D && pair.b.Line > 0 {
				t.add(h.File, pair.b.Line, pair.name, fmt.Sprintf("differs from %s; %s's value is used", p.File, p.File), true)
			}
		}
		if h.AutoFailback != nil && (p.AutoFailback == nil || p.AutoFailback.Value != h.AutoFailback.Value) {
			t.add(h.File, h.AutoFailback.Line, "auto_failback", fmt.Sprintf("differs from %s; %s's value is used", p.File, p.File), true)
		}
	}
}

func (t *translator) translateCluster() {
	p := t.primary
	switch {
	case t.opt.Cluster != "":
		t.cluster, t.clusterComment = t.opt.Cluster, "from --cluster"
		if p.Cluster != nil {
			t.add(p.File, p.Cluster.Line, "cluster", "replaced by --cluster "+t.opt.Cluster, true)
		}
	case p.Cluster != nil:
		t.cluster = sanitizeName(p.Cluster.Value)
		t.clusterComment = fmt.Sprintf("%s:%d cluster %s", p.File, p.Cluster.Line, p.Cluster.Value)
		if t.cluster != p.Cluster.Value {
			t.add(p.File, p.Cluster.Line, "cluster", fmt.Sprintf("written as %q (lower-case letters, digits and '-')", t.cluster), true)
		}
	default:
		t.cluster, t.clusterComment = hbClusterName, "Heartbeat's default cluster name (ha.cf has no cluster line)"
	}
}

// translateTiming carries keepalive, warntime, deadtime and initdead over,
// filling in Heartbeat's own defaults, then adjusts what breaks vigil's rules:
// a lease must fit inside deadtime, so deadtime is at least 4 × keepalive.
func (t *translator) translateTiming() {
	p := t.primary
	f := p.File
	k, w, d, i := p.Keepalive, p.Warntime, p.Deadtime, p.Initdead
	from := func(name string, v Timing) string {
		return fmt.Sprintf("%s:%d %s", f, v.Line, name)
	}
	kc, wc, dc, ic := from("keepalive", k), from("warntime", w), from("deadtime", d), from("initdead", i)
	if k.Line == 0 {
		k.D = hbKeepalive
		kc = "Heartbeat's default"
		t.add(f, 0, "keepalive", fmt.Sprintf("not set: Heartbeat's default %s is written (vigil's own default is %s)", fmtDur(hbKeepalive), fmtDur(config.DefaultKeepalive)), true)
	}
	if d.Line == 0 {
		d.D = hbDeadtime
		dc = "Heartbeat's default"
		t.add(f, 0, "deadtime", fmt.Sprintf("not set: Heartbeat's default %s is written (vigil's own default is %s)", fmtDur(hbDeadtime), fmtDur(config.DefaultDeadtime)), true)
	}
	if k.D < minKeepalive {
		t.add(f, k.Line, "keepalive", fmt.Sprintf("%s is below vigil's floor: %s", fmtDur(k.D), fmtDur(minKeepalive)), true)
		k.D = minKeepalive
	}
	if d.D < 4*k.D {
		if d.D >= 4*minKeepalive {
			nk := (d.D / 4).Truncate(time.Millisecond)
			t.add(f, k.Line, "keepalive", fmt.Sprintf("%s becomes %s so that deadtime %s is at least 4 × keepalive "+
				"(vigil's lease must fit inside deadtime; the failure detection time is kept)", fmtDur(k.D), fmtDur(nk), fmtDur(d.D)), true)
			k.D = nk
		} else {
			nd := 4 * k.D
			t.add(f, d.Line, "deadtime", fmt.Sprintf("%s becomes %s, 4 × keepalive (vigil's lease must fit inside deadtime)", fmtDur(d.D), fmtDur(nd)), true)
			d.D = nd
		}
	}
	if w.Line == 0 {
		// Heartbeat's own rule when warntime is missing.
		w.D = (d.D / 2).Truncate(time.Millisecond)
		wc = "deadtime/2, Heartbeat's default"
		t.add(f, 0, "warntime", fmt.Sprintf("not set: deadtime/2 = %s, as Heartbeat did", fmtDur(w.D)), true)
	} else if w.D <= k.D || w.D >= d.D {
		nw := (d.D / 2).Truncate(time.Millisecond)
		t.add(f, w.Line, "warntime", fmt.Sprintf("%s becomes %s (deadtime/2): vigil needs keepalive < warntime < deadtime", fmtDur(w.D), fmtDur(nw)), true)
		w.D = nw
	}
	if i.Line == 0 {
		// Heartbeat's rule (config.c): deadtime above 10s, else 12s below 6s, else 2 × deadtime.
		switch {
		case d.D > 10*time.Second:
			i.D = d.D
		case d.D < 6*time.Second:
			i.D = 12 * time.Second
		default:
			i.D = 2 * d.D
		}
		ic = "Heartbeat's default"
		t.add(f, 0, "initdead", fmt.Sprintf("not set: Heartbeat's default for this deadtime, %s, is written", fmtDur(i.D)), true)
	} else if i.D < d.D {
		t.add(f, i.Line, "initdead", fmt.Sprintf("%s becomes %s: it must be at least deadtime (Heartbeat refused this too)", fmtDur(i.D), fmtDur(d.D)), true)
		i.D = d.D
	}
	t.timing = []timingOut{{"keepalive", k.D, kc}, {"warntime", w.D, wc}, {"deadtime", d.D, dc}, {"initdead", i.D, ic}}
}

func (t *translator) translateFailback() {
	p := t.primary
	a := p.AutoFailback
	switch {
	case a == nil:
		t.failback = "auto"
		t.failbackComment = "ha.cf has no auto_failback: Heartbeat's default, legacy, moved resources back"
		t.add(p.File, 0, "auto_failback", "not set: Heartbeat's default (legacy) moved resources back to their node: failback auto", true)
	case a.Value == "on":
		t.failback = "auto"
		t.failbackComment = fmt.Sprintf("%s:%d %s", p.File, a.Line, a.Raw)
	case a.Value == "off":
		t.failback = "manual"
		t.failbackComment = fmt.Sprintf("%s:%d %s: the group stays where it is until `vigil failback GROUP`", p.File, a.Line, a.Raw)
	default:
		t.failback = "auto"
		t.failbackComment = fmt.Sprintf("%s:%d %s: resources moved back", p.File, a.Line, a.Raw)
		t.add(p.File, a.Line, strings.Fields(a.Raw)[0], "legacy moved resources back to their node, as on does: failback auto "+
			"(legacy only existed for rolling upgrades from old Heartbeat versions)", true)
	}
}

// translateLinks turns the heartbeat media into links: one per interface, in
// the order ha.cf names them. A ucast line gives a peer's address on that link;
// whose address it is follows from whose ha.cf lists it (Options.HaCf[i].Node)
// and from elimination; bcast and mcast lines give no address at all.
func (t *translator) translateLinks() {
	byIface := map[string]*linkOut{}
	seenSerial := map[string]bool{}
	for _, h := range t.hacfs {
		for _, m := range h.Media {
			if m.Kind == "serial" {
				if key := fmt.Sprint(h.File, m.Line); !seenSerial[key] {
					seenSerial[key] = true
					t.add(h.File, m.Line, "serial", "vigil has no serial heartbeat: use a second network link instead (a crossover cable with its own addresses)", false)
				}
				continue
			}
			l := byIface[m.Iface]
			if l == nil {
				l = &linkOut{iface: m.Iface, file: h.File, line: m.Line, owner: map[netip.Addr]string{}}
				byIface[m.Iface] = l
				t.links = append(t.links, l)
			}
			if !contains(l.kinds, m.Kind) {
				l.kinds = append(l.kinds, m.Kind)
			}
			switch m.Kind {
			case "ucast", "ucast6":
				l.ucast = append(l.ucast, ucastEntry{ip: m.Peer, from: h.Node, file: h.File, line: m.Line})
			default:
				l.bcastAt = append(l.bcastAt, mediumAt{file: h.File, m: m})
			}
		}
	}
	given := 0
	for _, n := range t.nodes {
		if n.given {
			given++
		}
	}
	for i, l := range t.links {
		t.solveLink(l)
		for _, b := range l.bcastAt {
			kind, file := b.m.Kind, b.file
			if given == len(t.nodes) {
				t.add(file, b.m.Line, kind, fmt.Sprintf("link %d (%s): heartbeats go to the addresses given with --address, one by one, instead of a %s", i, l.iface, castWord(kind)), true)
				continue
			}
			t.add(file, b.m.Line, kind, fmt.Sprintf("a %s names no node addresses, and vigil sends heartbeats to each node's address on each link: "+
				"give every node's address on %s (link %d) with --address NODE=IP,... or in the TODOs of vigil.yaml", castWord(kind), l.iface, i), false)
		}
	}
	for _, n := range t.nodes {
		if n.given && len(t.links) > 0 && len(n.addrs) != len(t.links) {
			t.add("--address", 0, n.name, fmt.Sprintf("%d address(es), but ha.cf has %d link(s); the addresses given are used", len(n.addrs), len(t.links)), true)
		}
		if !n.given && len(t.links) == 0 {
			n.addrs = []string{fmt.Sprintf("TODO: %s's address", n.name)}
		}
	}
	for i, l := range t.links {
		var missing []string
		for _, n := range t.nodes {
			if n.given {
				continue
			}
			if ip, ok := l.ownerOf(n.hb); ok {
				n.addrs = append(n.addrs, ip.String())
				continue
			}
			n.addrs = append(n.addrs, fmt.Sprintf("TODO: %s's address on %s", n.name, l.iface))
			missing = append(missing, n.name)
		}
		if len(missing) > 0 && len(l.ucast) > 0 {
			t.add(l.ucast[0].file, l.ucast[0].line, "ucast", t.unresolvedReason(l, i, missing), false)
		}
	}
	if len(t.links) == 0 && given < len(t.nodes) {
		t.add(t.primary.File, 0, "ucast", "no bcast, mcast or ucast line: give every node's addresses with --address NODE=IP,... or in the TODOs of vigil.yaml", false)
	}
}

func castWord(kind string) string {
	if strings.HasPrefix(kind, "mcast") {
		return "multicast"
	}
	return "broadcast"
}

func (t *translator) unresolvedReason(l *linkOut, i int, missing []string) string {
	var free []string
	for _, e := range l.ucast {
		if _, owned := l.owner[e.ip]; !owned && !contains(free, e.ip.String()) {
			free = append(free, e.ip.String())
		}
	}
	who := strings.Join(missing, ", ")
	if len(free) > 0 {
		return fmt.Sprintf("no address for %s on %s (link %d): the files do not say which node has %s; "+
			"name the node each ha.cf comes from (--ha-cf NODE=FILE) or give --address NODE=IP,...", who, l.iface, i, strings.Join(free, ", "))
	}
	return fmt.Sprintf("no address for %s on %s (link %d): no ha.cf given lists it (a node's own ha.cf names only its peers); "+
		"add another node's ha.cf (--ha-cf NODE=FILE) or give --address NODE=IP,...", who, l.iface, i)
}

func (l *linkOut) ownerOf(node string) (netip.Addr, bool) {
	for ip, o := range l.owner {
		if o == node {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// solveLink decides whose each ucast address is. An ha.cf known to be node N's
// that lists exactly one address per other node does not list N's own (a
// shared file lists every node's, and Heartbeat ignores its own), so those
// addresses are not N's; addresses given with --address are their node's; then
// an address that only one node can have is that node's, and a node that only
// one address can belong to has it, when every node must have one.
func (t *translator) solveLink(l *linkOut) {
	var ips []netip.Addr
	for _, e := range l.ucast {
		if !containsAddr(ips, e.ip) {
			ips = append(ips, e.ip)
		}
	}
	notOf := map[netip.Addr]map[string]bool{}
	for _, h := range t.hacfs {
		if h.Node == "" {
			continue
		}
		var listed []netip.Addr
		for _, e := range l.ucast {
			if e.file == h.File && !containsAddr(listed, e.ip) {
				listed = append(listed, e.ip)
			}
		}
		if len(listed) == len(t.nodes)-1 {
			for _, ip := range listed {
				if notOf[ip] == nil {
					notOf[ip] = map[string]bool{}
				}
				notOf[ip][h.Node] = true
			}
		}
	}
	for _, n := range t.nodes {
		if !n.given {
			continue
		}
		for _, a := range n.addrs {
			if ip, err := netip.ParseAddr(a); err == nil && containsAddr(ips, ip.Unmap()) {
				l.owner[ip.Unmap()] = n.hb
			}
		}
	}
	hasAddr := func(node string) bool { _, ok := l.ownerOf(node); return ok }
	for changed := true; changed; {
		changed = false
		var freeIPs []netip.Addr
		for _, ip := range ips {
			if _, ok := l.owner[ip]; !ok {
				freeIPs = append(freeIPs, ip)
			}
		}
		var freeNodes []string
		for _, n := range t.nodes {
			if !hasAddr(n.hb) {
				freeNodes = append(freeNodes, n.hb)
			}
		}
		for _, ip := range freeIPs {
			var cands []string
			for _, n := range freeNodes {
				if !notOf[ip][n] {
					cands = append(cands, n)
				}
			}
			if len(cands) == 1 {
				l.owner[ip], changed = cands[0], true
				break
			}
		}
		if changed || len(freeIPs) != len(freeNodes) {
			continue
		}
		for _, n := range freeNodes {
			var cands []netip.Addr
			for _, ip := range freeIPs {
				if !notOf[ip][n] {
					cands = append(cands, ip)
				}
			}
			if len(cands) == 1 {
				l.owner[cands[0]], changed = n, true
				break
			}
		}
	}
}

// translatePings turns ping and ping_group lines into public targets. vigil
// declares a node cut off from its clients when it reaches none of its targets,
// which is what a ping group meant and what ipfail acted on; it wants 3 to 5 of
// them so that one router going away cannot isolate every node, so with fewer
// or more they are written as a comment to complete.
func (t *translator) translatePings() {
	seenLine := map[string]bool{}
	seenIP := map[string]bool{}
	for _, h := range t.hacfs {
		for _, d := range h.Pings {
			if key := strings.ToLower(d.text()); !seenLine[key] {
				seenLine[key] = true
				t.pings = append(t.pings, pingAt{h.File, d})
				args := d.Args
				if strings.EqualFold(d.Name, "ping_group") && len(args) > 0 {
					args = args[1:] // the group's name
				}
				for _, a := range args {
					if !seenIP[a] {
						seenIP[a] = true
						t.targets = append(t.targets, targetAt{addr: a, file: h.File, d: d})
					}
				}
			}
		}
	}
	n := len(t.targets)
	t.writeTargets = n >= check.MinPublicTargets && n <= check.MaxPublicTargets
	for _, p := range t.pings {
		if t.writeTargets {
			t.add(p.file, p.d.Line, p.d.Name, "written as public targets (icmp): a node that reaches none of them is cut off "+
				"from its clients and gives its groups up, as ipfail made Heartbeat do", true)
			continue
		}
		t.add(p.file, p.d.Line, p.d.Name, fmt.Sprintf("Heartbeat's ping nodes become vigil's public targets (cluster.public_targets), "+
			"but vigil wants %d to %d of them and ha.cf has %d: they are in a comment in vigil.yaml to complete",
			check.MinPublicTargets, check.MaxPublicTargets, n), false)
	}
}

// translateOther reports the ha.cf lines with no translation.
func (t *translator) translateOther() {
	reported := map[string]bool{}
	for _, h := range t.hacfs {
		for _, d := range h.Other {
			name := strings.ToLower(d.Name)
			if name == "crm" || name == "pacemaker" {
				continue // off: nothing to say
			}
			key := strings.ToLower(d.text())
			if reported[key] {
				continue
			}
			reported[key] = true
			reason := untranslatedReason(name)
			switch {
			case name == "respawn" && len(d.Args) > 1 && strings.HasSuffix(d.Args[1], "/ipfail"):
				reason = "ipfail moved resources off a node that lost its ping nodes: vigil's public targets do that (see the ping lines)"
			case name == "deadping" && t.writeTargets:
				reason = "public targets use vigil's check timing (every 2s, down after 3 misses) rather than a dead time"
			}
			t.add(h.File, d.Line, d.Name, reason, false)
		}
	}
}

func (t *translator) translateGroups(lines []ResourceLine) {
	used := map[string]bool{}
	for _, l := range lines {
		if len(l.Resources) == 0 {
			t.add(t.opt.Haresources.Name, l.Line, l.Node, "a node without resources: nothing to translate", false)
			continue
		}
		g := groupOut{src: l}
		owner := t.byHB[l.Node]
		g.nodes = append(g.nodes, owner.name)
		for _, n := range t.nodes {
			if n != owner {
				g.nodes = append(g.nodes, n.name)
			}
		}
		rnames := map[string]bool{}
		var first, script, agent string
		for _, s := range l.Resources {
			r := t.translateResource(s)
			if r.res == nil {
				r.placeholder = unique(sanitizeName(s.Name), "resource", rnames)
				g.resources = append(g.resources, r)
				continue
			}
			r.res.Name = unique(resourceName(r.res), "resource", rnames)
			if first == "" {
				first = r.res.Name
			}
			if script == "" && r.res.Type == "lsb" {
				script = r.res.Name
			}
			if agent == "" && r.res.Type == "ocf" {
				agent = r.res.Name
			}
			g.resources = append(g.resources, r)
		}
		// A group is named after its service when it has one: "httpd" says more
		// than the address in front of it, and an init script is more likely the
		// service than an agent such as MailTo.
		name := script
		if name == "" {
			name = agent
		}
		if name == "" {
			name = first
		}
		if name == "" {
			name = "group"
		}
		g.name = unique(name, "group", used)
		t.groups = append(t.groups, g)
	}
}

func resourceName(r *config.Resource) string {
	var n string
	switch r.Type {
	case "ip":
		a, _, _ := strings.Cut(r.Address, "/")
		n = "vip-" + a
	case "mount":
		n = "fs-" + r.Path
		if strings.Trim(r.Path, "/") == "" {
			n = "fs-root"
		}
	case "lsb":
		n = r.Script[strings.LastIndexByte(r.Script, '/')+1:]
	case "ocf":
		n = r.Agent[strings.IndexByte(r.Agent, '/')+1:]
		if res := r.Params["drbd_resource"]; r.Agent == "linbit/drbd" && res != "" {
			n = "drbd-" + res // one per DRBD resource, named after it
		}
	}
	return sanitizeName(n)
}

func (t *translator) translateAuthkeys(k *Authkeys) {
	if k == nil {
		return
	}
	reason := "Heartbeat's key is not reused: vigil signs heartbeats with HMAC-SHA-256 under a random 32-byte heartbeat.key, " +
		"and its raft log and API use TLS certificates; `vigil init` writes them all (cluster.secrets_dir)"
	switch k.Method {
	case "crc":
		reason += "; crc authenticated nothing, vigil always does"
	case "md5":
		reason += "; md5 is broken, vigil does not use it"
	}
	t.add(k.File, k.AuthLine, "auth", reason, false)
	for _, line := range append([]int{k.MethodLine}, k.Others...) {
		if line > 0 {
			t.add(k.File, line, "key", "not reused (see the auth line); the key is not copied anywhere", false)
		}
	}
}

// sanitizeName makes s a vigil name: lower-case letters, digits and '-', at
// most 63 characters, so that Heartbeat's FQDN node names and script names fit.
func sanitizeName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}

// unique returns name, or name-2, name-3, ... when it is taken (or a fallback
// when the name is empty), and marks it used.
func unique(name, fallback string, used map[string]bool) string {
	if name == "" {
		name = fallback
	}
	cand := name
	for i := 2; used[cand]; i++ {
		suffix := fmt.Sprintf("-%d", i)
		base := name
		if len(base)+len(suffix) > 63 {
			base = strings.TrimRight(base[:63-len(suffix)], "-")
		}
		cand = base + suffix
	}
	used[cand] = true
	return cand
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, v := range list {
		if v == a {
			return true
		}
	}
	return false
}

// fmtDur writes a duration in whole seconds or milliseconds: "30s", "1500ms".
func fmtDur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
