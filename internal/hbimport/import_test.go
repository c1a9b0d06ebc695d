package hbimport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
)

func input(t testing.TB, path string) Input {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return Input{Name: path, Data: data}
}

func mem(name, text string) Input { return Input{Name: name, Data: []byte(text)} }

// lineOf returns the 1-based line of data equal to text, so that expectations
// about the Debian samples name the line they mean instead of a bare number.
func lineOf(t *testing.T, data []byte, text string) int {
	t.Helper()
	for i, l := range strings.Split(string(data), "\n") {
		if l == text {
			return i + 1
		}
	}
	t.Fatalf("no line %q", text)
	return 0
}

// uncomment removes the leading '#' of the lines whose rest is one of lines.
func uncomment(t *testing.T, data []byte, lines ...string) []byte {
	t.Helper()
	all := strings.Split(string(data), "\n")
	for _, want := range lines {
		found := false
		for i, l := range all {
			if l == "#"+want {
				all[i], found = want, true
			}
		}
		if !found {
			t.Fatalf("the sample has no line %q", "#"+want)
		}
	}
	return []byte(strings.Join(all, "\n"))
}

func mustImport(t *testing.T, opt Options) *Result {
	t.Helper()
	res, err := Import(opt)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return res
}

func parsed(t *testing.T, res *Result) *config.Config {
	t.Helper()
	cfg, err := config.Parse("vigil.yaml", res.YAML)
	if err != nil {
		t.Fatalf("the written file does not validate:\n%v\n%s", err, res.YAML)
	}
	return cfg
}

// findings renders findings as "LINE directive" for compact comparisons.
func lines(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = fmt.Sprintf("%s:%d %s", f.File, f.Line, f.Directive)
	}
	return out
}

func hasFinding(fs []Finding, file string, line int, directive, reason string) bool {
	for _, f := range fs {
		if f.File == file && f.Line == line && f.Directive == directive && strings.Contains(f.Reason, reason) {
			return true
		}
	}
	return false
}

func requireFinding(t *testing.T, fs []Finding, file string, line int, directive, reason string) {
	t.Helper()
	if !hasFinding(fs, file, line, directive, reason) {
		var all []string
		for _, f := range fs {
			all = append(all, f.String())
		}
		t.Errorf("no finding %s:%d: %s: ...%s...; have:\n%s", file, line, directive, reason, strings.Join(all, "\n"))
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// TestSeed003 imports the configuration of seed 003: two nodes, a virtual IP
// 192.168.0.50 on eth0, auto_failback yes, heartbeats broadcast on eth0.
func TestSeed003(t *testing.T) {
	opt := Options{
		HaCf:        []Input{input(t, "seed003/ha.cf")},
		Haresources: input(t, "seed003/haresources"),
		Authkeys:    ptr(input(t, "seed003/authkeys")),
	}
	res := mustImport(t, opt)
	// bcast names no addresses: the file has TODOs and says so.
	if len(res.Problems) != 2 || res.Problems[0].Field != "nodes[0].addresses[0]" || !strings.Contains(string(res.YAML), `"TODO: cluster-node1's address on eth0"`) {
		t.Fatalf("problems %v\n%s", res.Problems, res.YAML)
	}
	want := []string{
		"seed003/ha.cf:7 logfile", "seed003/ha.cf:8 logfacility", "seed003/ha.cf:13 udpport",
		"seed003/ha.cf:14 bcast", "seed003/ha.cf:15 ping",
		"seed003/authkeys:1 auth", "seed003/authkeys:2 key",
	}
	if got := lines(res.Untranslated()); !equal(got, want) {
		t.Errorf("untranslated %v, want %v", got, want)
	}
	if c := res.Changed(); len(c) != 0 {
		t.Errorf("changed %v", c)
	}
	if strings.Contains(string(res.YAML), "seed003-not-a-secret") {
		t.Error("the authkeys key is in the output")
	}

	// With the addresses the seed gives, the file validates.
	opt.Addresses = map[string][]string{"cluster-node1": {"192.168.0.2"}, "cluster-node2": {"192.168.0.3"}}
	res = mustImport(t, opt)
	cfg := parsed(t, res)
	if tm := cfg.Cluster.Timing; tm.Keepalive.D() != 2*time.Second || tm.Warntime.D() != 6*time.Second || tm.Deadtime.D() != 10*time.Second || tm.Initdead.D() != time.Minute {
		t.Errorf("timing %+v", tm)
	}
	if len(cfg.Nodes) != 2 || cfg.Nodes[0].Name != "cluster-node1" || cfg.Nodes[0].Addresses[0] != "192.168.0.2" || cfg.Nodes[1].Addresses[0] != "192.168.0.3" {
		t.Errorf("nodes %+v", cfg.Nodes)
	}
	g := cfg.Groups[0]
	if len(cfg.Groups) != 1 || g.Failback != "auto" || !equal(g.Nodes, []string{"cluster-node1", "cluster-node2"}) {
		t.Errorf("group %+v", g)
	}
	if r := g.Resources[0]; len(g.Resources) != 1 || r.Type != "ip" || r.Address != "192.168.0.50/24" || r.Interface != "eth0" {
		t.Errorf("resources %+v", g.Resources)
	}
	requireFinding(t, res.Changed(), "seed003/ha.cf", 14, "bcast", "given with --address")
	if !strings.Contains(string(res.YAML), `#   - {icmp: "192.168.0.1"}`) {
		t.Errorf("the ping node is not suggested as a public target:\n%s", res.YAML)
	}
	if res.InitCommand() != "vigil init --dir DIR --cluster linux-ha --node cluster-node1=192.168.0.2 --node cluster-node2=192.168.0.3" {
		t.Errorf("init command %q", res.InitCommand())
	}
}

func ptr[T any](v T) *T { return &v }

// TestDebianSamplesAsShipped: every example in Debian's sample files is
// commented out, so there is no node and no auth line: Heartbeat refuses
// them, and so does the import, naming the files.
func TestDebianSamplesAsShipped(t *testing.T) {
	_, err := Import(Options{
		HaCf:        []Input{input(t, "debian/ha.cf")},
		Haresources: input(t, "debian/haresources"),
		Authkeys:    ptr(input(t, "debian/authkeys")),
	})
	var errs InputErrors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("err %v", err)
	}
	if errs[0].String() != "debian/ha.cf: node: no node lines: Heartbeat needs one per cluster node (node NAME, as uname -n prints it)" ||
		!strings.HasPrefix(errs[1].String(), "debian/authkeys: auth: no auth line") {
		t.Errorf("errors:\n%v", errs)
	}
}

// debianHaCf is Debian's sample ha.cf with its example lines uncommented.
func debianHaCf(t *testing.T) Input {
	in := input(t, "debian/ha.cf")
	in.Data = uncomment(t, in.Data,
		"debugfile /var/log/ha-debug", "logfile\t/var/log/ha-log",
		"keepalive 2", "deadtime 30", "warntime 10", "initdead 120", "udpport\t694", "baud\t19200",
		"serial\t/dev/ttyS0\t# Linux", "bcast\teth0\t\t# Linux", "mcast eth0 225.0.0.1 694 1 0", "ucast eth0 192.168.1.2",
		"stonith_host *     baytech 10.0.0.3 mylogin mysecretpassword", "watchdog /dev/watchdog",
		"node\tken3", "node\tkathy", "ping 10.10.10.254", "ping_group group1 10.10.10.254 10.10.10.253",
		"respawn hacluster /usr/lib/heartbeat/ipfail", "apiauth ipfail gid=haclient uid=hacluster",
		"hopfudge 1", "deadping 30", "compression\tbz2")
	return in
}

// TestDebianSamplesUncommented imports Debian's sample ha.cf and authkeys with
// their examples uncommented, and the haresources example with an explicit
// interface: every untranslated line is reported at its line.
func TestDebianSamplesUncommented(t *testing.T) {
	hacf := debianHaCf(t)
	auth := input(t, "debian/authkeys")
	auth.Data = uncomment(t, auth.Data, "auth 1", "1 crc", "2 sha1 HI!", "3 md5 Hello!")
	hares := input(t, "debian/haresources")
	hares.Data = uncomment(t, hares.Data, "just.linux-ha.org\t135.9.216.3/28/eth0/135.9.216.12 httpd")
	hares.Data = []byte(strings.ReplaceAll(string(hares.Data), "\njust.linux-ha.org\t", "\nken3\t"))

	opt := Options{HaCf: []Input{hacf}, Haresources: hares, Authkeys: &auth}
	res := mustImport(t, opt)
	at := func(text string) int { return lineOf(t, hacf.Data, text) }
	const f = "debian/ha.cf"
	u := res.Untranslated()
	for _, c := range []struct {
		line             int
		directive, cause string
	}{
		{at("debugfile /var/log/ha-debug"), "debugfile", "logs to standard error"},
		{at("logfile\t/var/log/ha-log"), "logfile", "logs to standard error"},
		{at("logfacility\tlocal0"), "logfacility", "logs to standard error"},
		{at("udpport\t694"), "udpport", "7482/udp"},
		{at("baud\t19200"), "baud", "no serial heartbeat"},
		{at("serial\t/dev/ttyS0\t# Linux"), "serial", "no serial heartbeat"},
		{at("bcast\teth0\t\t# Linux"), "bcast", "give every node's address on eth0"},
		{at("mcast eth0 225.0.0.1 694 1 0"), "mcast", "a multicast names no node addresses"},
		{at("ucast eth0 192.168.1.2"), "ucast", "do not say which node has 192.168.1.2"},
		{at("stonith_host *     baytech 10.0.0.3 mylogin mysecretpassword"), "stonith_host", "fencing"},
		{at("watchdog /dev/watchdog"), "watchdog", "nftables"},
		{at("ping 10.10.10.254"), "ping", "vigil wants 3 to 5 of them and ha.cf has 2"},
		{at("ping_group group1 10.10.10.254 10.10.10.253"), "ping_group", "vigil wants 3 to 5"},
		{at("respawn hacluster /usr/lib/heartbeat/ipfail"), "respawn", "ipfail"},
		{at("apiauth ipfail gid=haclient uid=hacluster"), "apiauth", "operator token"},
		{at("hopfudge 1"), "hopfudge", "no vigil equivalent"},
		{at("deadping 30"), "deadping", "not written as public targets"},
		{at("compression\tbz2"), "compression", "no vigil equivalent"},
	} {
		requireFinding(t, u, f, c.line, c.directive, c.cause)
	}
	requireFinding(t, u, "debian/authkeys", lineOf(t, auth.Data, "auth 1"), "auth", "crc authenticated nothing")
	for _, key := range []string{"1 crc", "2 sha1 HI!", "3 md5 Hello!"} {
		requireFinding(t, u, "debian/authkeys", lineOf(t, auth.Data, key), "key", "not reused")
	}
	if n := len(u); n != 18+4 {
		t.Errorf("%d untranslated findings, want 22:\n%v", n, lines(u))
	}
	requireFinding(t, res.Changed(), "debian/haresources", lineOf(t, hares.Data, "ken3\t135.9.216.3/28/eth0/135.9.216.12 httpd"),
		"135.9.216.3/28/eth0/135.9.216.12", "broadcast 135.9.216.12 not carried over")
	for _, secret := range []string{"mysecretpassword", "HI!", "Hello!"} {
		if strings.Contains(string(res.YAML), secret) || strings.Contains(fmt.Sprint(res.Findings), secret) {
			t.Errorf("%q is in the output", secret)
		}
	}
	// Only the addresses are missing; given, the file validates.
	if len(res.Problems) != 2 {
		t.Errorf("problems: %v", res.Problems)
	}
	opt.Addresses = map[string][]string{"ken3": {"192.168.1.1"}, "kathy": {"192.168.1.2"}}
	cfg := parsed(t, mustImport(t, opt))
	if tm := cfg.Cluster.Timing; tm.Keepalive.D() != 2*time.Second || tm.Warntime.D() != 10*time.Second || tm.Deadtime.D() != 30*time.Second || tm.Initdead.D() != 2*time.Minute {
		t.Errorf("timing %+v", tm)
	}
	g := cfg.Groups[0]
	if g.Name != "httpd" || g.Failback != "auto" || !equal(g.Nodes, []string{"ken3", "kathy"}) || len(g.Resources) != 2 ||
		g.Resources[0].Address != "135.9.216.3/28" || g.Resources[0].Interface != "eth0" || g.Resources[1].Script != "httpd" {
		t.Errorf("group %+v", g)
	}
}

// TestDebianHaresourcesExamples runs every example line of Debian's sample
// haresources (its node names declared in ha.cf).
func TestDebianHaresourcesExamples(t *testing.T) {
	hacf := mem("ha.cf", "node just.linux-ha.org node1\nucast eth0 10.0.0.1\nucast eth0 10.0.0.2\nauto_failback on\n")
	addrs := map[string][]string{"just.linux-ha.org": {"10.0.0.1"}, "node1": {"10.0.0.2"}}
	sample := input(t, "debian/haresources").Data
	for _, c := range []struct {
		line      string
		resources []string // type:main field of each resource
		todos     int      // validation problems left (prefix and interface of addresses Heartbeat routed)
	}{
		{"just.linux-ha.org\t135.9.216.110", []string{"ip:135.9.216.110"}, 2},
		{"just.linux-ha.org\t135.9.216.110 http", []string{"ip:135.9.216.110", "lsb:http"}, 2},
		{"just.linux-ha.org\t135.9.216.110 135.9.215.111 135.9.216.112 httpd", []string{"ip:135.9.216.110", "ip:135.9.215.111", "ip:135.9.216.112", "lsb:httpd"}, 6},
		{"just.linux-ha.org\t135.9.216.3/28/eth0/135.9.216.12 httpd", []string{"ip:135.9.216.3/28", "lsb:httpd"}, 0},
		{"node1  10.0.0.170 Filesystem::/dev/sda1::/data1::ext2", []string{"ip:10.0.0.170", "mount:/dev/sda1"}, 2},
	} {
		t.Run(c.line, func(t *testing.T) {
			hares := Input{Name: "haresources", Data: uncomment(t, sample, c.line)}
			res := mustImport(t, Options{HaCf: []Input{hacf}, Haresources: hares, Addresses: addrs})
			if len(res.Problems) != c.todos {
				t.Fatalf("problems %v", res.Problems)
			}
			requireFinding(t, res.Changed(), "ha.cf", 1, "node", "just-linux-ha-org")
			g := res.groups(t)
			if len(g) != 1 {
				t.Fatalf("groups %v", g)
			}
			if !equal(g[0], c.resources) {
				t.Errorf("resources %v, want %v", g[0], c.resources)
			}
		})
	}
}

// groups decodes the written file loosely (it may not validate) into, per
// group, "type:main field" per resource.
func (r *Result) groups(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	var cur []string
	var typ string
	for _, l := range strings.Split(string(r.YAML), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "nodes: [") && strings.Contains(l, "haresources node first"):
			if cur != nil {
				out = append(out, cur)
			}
			cur = []string{}
		case strings.HasPrefix(l, "type: "):
			typ = strings.TrimPrefix(l, "type: ")
		case typ != "" && (strings.HasPrefix(l, "address: ") || strings.HasPrefix(l, "script: ") || strings.HasPrefix(l, "agent: ") || strings.HasPrefix(l, "device: ")):
			_, v, _ := strings.Cut(l, ": ")
			cur = append(cur, typ+":"+strings.Trim(v, `"`))
			typ = ""
		}
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// TestUcastTwoLinks: each node's ha.cf names the other's address on each
// interface, so with both files named, every address is known.
func TestUcastTwoLinks(t *testing.T) {
	alpha, beta := input(t, "ucast/alpha.ha.cf"), input(t, "ucast/beta.ha.cf")
	alpha.Node, beta.Node = "alpha", "beta"
	hares := input(t, "ucast/haresources")
	res := mustImport(t, Options{HaCf: []Input{alpha, beta}, Haresources: hares})
	cfg := parsed(t, res)
	if !equal(cfg.Nodes[0].Addresses, []string{"10.0.0.1", "192.168.100.1"}) || !equal(cfg.Nodes[1].Addresses, []string{"10.0.0.2", "192.168.100.2"}) {
		t.Errorf("nodes %+v", cfg.Nodes)
	}
	if len(cfg.Groups) != 2 || cfg.Groups[0].Name != "apache2" || cfg.Groups[1].Name != "postfix" ||
		!equal(cfg.Groups[1].Nodes, []string{"beta", "alpha"}) || cfg.Groups[1].Failback != "manual" ||
		cfg.Groups[1].Resources[1].Script != "postfix" {
		t.Errorf("groups %+v", cfg.Groups)
	}
	if tm := cfg.Cluster.Timing; tm.Keepalive.D() != 500*time.Millisecond || tm.Deadtime.D() != 5*time.Second {
		t.Errorf("timing %+v", tm)
	}
	// beta's udpport line says the same as alpha's: reported once.
	if got := lines(res.Untranslated()); !equal(got, []string{"ucast/alpha.ha.cf:6 udpport"}) {
		t.Errorf("untranslated %v", got)
	}

	// A file may be named by the node's vigil name as well.
	fqdn := Input{Name: "a.ha.cf", Node: "web1-example-com", Data: []byte("node web1.example.com b\nucast eth0 10.0.0.2\n")}
	res = mustImport(t, Options{HaCf: []Input{fqdn}, Haresources: mem("haresources", "")})
	if !strings.Contains(string(res.YAML), `- name: "b"  # a.ha.cf:1 node b
    addresses: ["10.0.0.2"]`) {
		t.Errorf("b's address:\n%s", res.YAML)
	}

	// Only alpha's file: it names beta's addresses, not alpha's own.
	res = mustImport(t, Options{HaCf: []Input{alpha}, Haresources: hares})
	if !strings.Contains(string(res.YAML), `addresses: ["10.0.0.2", "192.168.100.2"]`) || len(res.Problems) != 2 {
		t.Errorf("problems %v\n%s", res.Problems, res.YAML)
	}
	requireFinding(t, res.Untranslated(), "ucast/alpha.ha.cf", 7, "ucast", "no address for alpha on eth0 (link 0): no ha.cf given lists it")
	requireFinding(t, res.Untranslated(), "ucast/alpha.ha.cf", 8, "ucast", "no address for alpha on eth1 (link 1)")

	// One file for both nodes lists every address: whose is whose is unknown...
	shared := input(t, "ucast/shared.ha.cf")
	res = mustImport(t, Options{HaCf: []Input{shared}, Haresources: hares})
	if len(res.Problems) != 4 {
		t.Errorf("problems %v", res.Problems)
	}
	requireFinding(t, res.Untranslated(), "ucast/shared.ha.cf", 7, "ucast", "no address for alpha, beta on eth0 (link 0): the files do not say which node has 10.0.0.1, 10.0.0.2")
	// ...until one node's addresses are given: the others follow.
	res = mustImport(t, Options{HaCf: []Input{shared}, Haresources: hares, Addresses: map[string][]string{"alpha": {"10.0.0.1", "192.168.100.1"}}})
	cfg = parsed(t, res)
	if !equal(cfg.Nodes[1].Addresses, []string{"10.0.0.2", "192.168.100.2"}) {
		t.Errorf("beta %+v", cfg.Nodes[1])
	}
}

// TestThreeNodesByElimination: with three nodes, each file lists its two
// peers; an address listed by two files belongs to the third node.
func TestThreeNodesByElimination(t *testing.T) {
	files := []Input{
		{Name: "a.ha.cf", Node: "a", Data: []byte("node a b c\nucast eth0 10.0.0.2\nucast eth0 10.0.0.3\n")},
		{Name: "b.ha.cf", Node: "b", Data: []byte("node a b c\nucast eth0 10.0.0.1\nucast eth0 10.0.0.3\n")},
		{Name: "c.ha.cf", Node: "c", Data: []byte("node a b c\nucast eth0 10.0.0.1\nucast eth0 10.0.0.2\n")},
	}
	cfg := parsed(t, mustImport(t, Options{HaCf: files, Haresources: mem("haresources", "a 10.0.0.100/24/eth0\n")}))
	for i, want := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		if cfg.Nodes[i].Addresses[0] != want {
			t.Errorf("node %s: %v, want %s", cfg.Nodes[i].Name, cfg.Nodes[i].Addresses, want)
		}
	}
}

// twoNodes is an ha.cf that gives everything but the resources.
const twoNodes = "keepalive 1\nwarntime 5\ndeadtime 10\ninitdead 20\nnode a b\nucast eth0 10.0.0.1\nucast eth0 10.0.0.2\nauto_failback on\n"

var twoAddrs = map[string][]string{"a": {"10.0.0.1"}, "b": {"10.0.0.2"}}

// TestResourceMappings covers every haresources mapping and every resource
// that is not translated, at its line.
func TestResourceMappings(t *testing.T) {
	for _, c := range []struct {
		res      string
		want     *config.Resource // nil: not translated
		finding  string           // expected finding reason (untranslated or changed)
		changed  bool
		problems int
	}{
		{"IPaddr::10.0.0.50/24/eth0", &config.Resource{Type: "ip", Address: "10.0.0.50/24", Interface: "eth0"}, "", false, 0},
		{"10.0.0.50/24/eth0", &config.Resource{Type: "ip", Address: "10.0.0.50/24", Interface: "eth0"}, "", false, 0},
		{"IPaddr2::10.0.0.50/24/eth0", &config.Resource{Type: "ip", Address: "10.0.0.50/24", Interface: "eth0"}, "", false, 0},
		{"IPaddr2::10.0.0.50/255.255.255.0/eth1", &config.Resource{Type: "ip", Address: "10.0.0.50/24", Interface: "eth1"}, "", false, 0},
		{"IPaddr::10.0.0.50/24/eth0/10.0.0.255", &config.Resource{Type: "ip", Address: "10.0.0.50/24", Interface: "eth0"}, "", false, 0},
		{"IPaddr::10.0.0.50/24/eth0/10.0.0.127", &config.Resource{Type: "ip", Address: "10.0.0.50/24", Interface: "eth0"}, "broadcast 10.0.0.127 not carried over", true, 0},
		{"IPaddr2::10.0.0.50/24/eth0:0", &config.Resource{Type: "ip", Address: "10.0.0.50/24", Interface: "eth0"}, "alias label :0 dropped", true, 0},
		{"IPaddr::10.0.0.50/24/10.0.0.255", &config.Resource{Type: "ip", Address: "10.0.0.50/24"}, "no interface", false, 1},
		{"IPaddr::10.0.0.50", &config.Resource{Type: "ip", Address: "10.0.0.50"}, "no netmask", false, 2},
		{"IPaddr::10.0.0.50/255.0.255.0/eth0", &config.Resource{Type: "ip", Address: "10.0.0.50", Interface: "eth0"}, "neither a prefix length", false, 1},
		{"IPaddr::10.0.0.300/24/eth0", nil, `"10.0.0.300" is not an IPv4 address`, false, 1},
		{"IPaddr::10.0.0.50::eth0", nil, "2 arguments", false, 1},
		{"IPv6addr::2001:db8::50/64/eth0", &config.Resource{Type: "ip", Address: "2001:db8::50/64", Interface: "eth0"}, "", false, 0},
		{"IPaddr2::2001:db8::50/64/eth0", &config.Resource{Type: "ip", Address: "2001:db8::50/64", Interface: "eth0"}, "", false, 0},
		{"Filesystem::/dev/drbd0::/data::ext3", &config.Resource{Type: "mount", Device: "/dev/drbd0", Path: "/data", FSType: "ext3"}, "", false, 0},
		{"Filesystem::/dev/sda1::/srv::ext4::noatime,nodev", &config.Resource{Type: "mount", Device: "/dev/sda1", Path: "/srv", FSType: "ext4", Options: "noatime,nodev"}, "", false, 0},
		{"Filesystem::-Ldata::/data::xfs", &config.Resource{Type: "mount", Device: "LABEL=data", Path: "/data", FSType: "xfs"}, "", false, 0},
		{"Filesystem::-U0b1c::/data::xfs", &config.Resource{Type: "mount", Device: "UUID=0b1c", Path: "/data", FSType: "xfs"}, "", false, 0},
		{"Filesystem::/dev/sda1::/data", &config.Resource{Type: "mount", Device: "/dev/sda1", Path: "/data"}, "no file system type", false, 1},
		{"Filesystem::/dev/sda1", nil, "DEVICE::DIRECTORY", false, 1},
		{"drbddisk::r0", &config.Resource{Type: "ocf", Agent: "linbit/drbd", Promotable: true, Params: map[string]string{"drbd_resource": "r0"}}, "promotable ocf:linbit:drbd", true, 0},
		{"drbddisk", nil, "acted on every DRBD resource", false, 1},
		{"drbddisk::all", nil, "acted on every DRBD resource", false, 1},
		{"MailTo::root@example.org::failover", &config.Resource{Type: "ocf", Agent: "heartbeat/MailTo", Params: map[string]string{"email": "root@example.org", "subject": "failover"}}, "", false, 0},
		{"apache::/etc/apache2/apache2.conf", &config.Resource{Type: "ocf", Agent: "heartbeat/apache", Params: map[string]string{"configfile": "/etc/apache2/apache2.conf"}}, "", false, 0},
		{"Delay::5", &config.Resource{Type: "ocf", Agent: "heartbeat/Delay", Params: map[string]string{"startdelay": "5"}}, "", false, 0},
		{"Delay", &config.Resource{Type: "ocf", Agent: "heartbeat/Delay", Params: map[string]string{"startdelay": "10"}}, "", false, 0},
		{"Raid1::/etc/raidtab::/dev/md0", &config.Resource{Type: "ocf", Agent: "heartbeat/Raid1", Params: map[string]string{"raidconf": "/etc/raidtab", "raiddev": "/dev/md0"}}, "", false, 0},
		{"LVM::vg0", &config.Resource{Type: "ocf", Agent: "heartbeat/LVM", Params: map[string]string{"volgrpname": "vg0"}}, "", false, 0},
		{"SendArp::10.0.0.9/eth0", &config.Resource{Type: "ocf", Agent: "heartbeat/SendArp", Params: map[string]string{"ip": "10.0.0.9", "nic": "eth0"}}, "", false, 0},
		{"WAS::9080", &config.Resource{Type: "ocf", Agent: "heartbeat/WAS", Params: map[string]string{"port": "9080"}}, "", false, 0},
		{"Xinetd::tftp", &config.Resource{Type: "ocf", Agent: "heartbeat/Xinetd", Params: map[string]string{"service": "tftp"}}, "", false, 0},
		{"IPsrcaddr::10.0.0.50", &config.Resource{Type: "ocf", Agent: "heartbeat/IPsrcaddr", Params: map[string]string{"ipaddress": "10.0.0.50"}}, "", false, 0},
		{"AudibleAlarm::a::b", &config.Resource{Type: "ocf", Agent: "heartbeat/AudibleAlarm", Params: map[string]string{"nodelist": "a b"}}, "", false, 0},
		{"Xinetd", nil, "Xinetd::SERVICE", false, 1},
		{"OCF::apache::www", nil, "/etc/ha.d/conf/OCF/", false, 1},
		{"httpd", &config.Resource{Type: "lsb", Script: "httpd"}, "", false, 0},
		{"nfs-kernel-server", &config.Resource{Type: "lsb", Script: "nfs-kernel-server"}, "", false, 0},
		{"myscript::arg", nil, "without arguments", false, 1},
	} {
		t.Run(c.res, func(t *testing.T) {
			// The resource is on the second physical line of a continued line.
			hares := mem("haresources", "# groups\na \\\n  "+c.res+"\n")
			res := mustImport(t, Options{HaCf: []Input{mem("ha.cf", twoNodes)}, Haresources: hares, Addresses: twoAddrs})
			fs := res.Untranslated()
			if c.changed {
				fs = res.Changed()
			}
			if c.finding != "" {
				requireFinding(t, fs, "haresources", 3, c.res, c.finding)
			} else if len(res.Findings) != 0 {
				t.Errorf("findings %v", res.Findings)
			}
			if len(res.Problems) != c.problems {
				t.Errorf("problems %v\n%s", res.Problems, res.YAML)
			}
			cfg, err := config.Parse("x", res.YAML)
			if c.problems == 0 {
				if err != nil {
					t.Fatal(err)
				}
				got := cfg.Groups[0].Resources[0]
				got.Name, got.MonitorInterval = "", 0
				if fmt.Sprint(got) != fmt.Sprint(*c.want) {
					t.Errorf("got %+v\nwant %+v", got, *c.want)
				}
			}
			if c.want == nil {
				// A placeholder keeps the file from validating: the group needs the resource.
				if !strings.Contains(string(res.YAML), "# TODO haresources:3: "+c.res+" is not translated") ||
					!strings.Contains(string(res.YAML), "type: "+q("TODO: "+c.res)) {
					t.Errorf("no TODO placeholder for it:\n%s", res.YAML)
				}
				if len(res.Problems) != 1 || res.Problems[0].Field != "groups[0].resources[0].type" {
					t.Errorf("problems %v", res.Problems)
				}
			}
			if c.want != nil && c.problems > 0 && !strings.Contains(string(res.YAML), "        # TODO ") {
				t.Errorf("no TODO under the resource:\n%s", res.YAML)
			}
		})
	}
}

// TestGroupsAndNames: one group per haresources line, named after its service,
// resources in order, names made unique, nodes in preference order.
func TestGroupsAndNames(t *testing.T) {
	hacf := mem("ha.cf", "node Web1.Example.COM db_2\nucast eth0 10.0.0.1\nucast eth0 10.0.0.2\nauto_failback off\n")
	hares := mem("haresources", "web1.example.com 10.0.0.100/24/eth0 10.0.0.101/24/eth0 Filesystem::/dev/drbd0::/srv/www::ext4 apache2\n"+
		"db_2 10.0.0.102/24/eth0 Filesystem::/dev/drbd1::/::ext4\n"+
		"db_2 IPaddr2::10.0.0.103/24/eth0 apache2 MailTo::root\n"+
		"web1.example.com\n")
	res := mustImport(t, Options{HaCf: []Input{hacf}, Haresources: hares,
		Addresses: map[string][]string{"web1.example.com": {"10.0.0.1"}, "db-2": {"10.0.0.2"}}})
	cfg := parsed(t, res)
	var names [][]string
	for _, g := range cfg.Groups {
		n := []string{g.Name, strings.Join(g.Nodes, ",")}
		for _, r := range g.Resources {
			n = append(n, r.Name)
		}
		names = append(names, n)
	}
	want := [][]string{
		{"apache2", "web1-example-com,db-2", "vip-10-0-0-100", "vip-10-0-0-101", "fs-srv-www", "apache2"},
		{"vip-10-0-0-102", "db-2,web1-example-com", "vip-10-0-0-102", "fs-root"},
		{"apache2-2", "db-2,web1-example-com", "vip-10-0-0-103", "apache2", "mailto"},
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("groups %v\nwant   %v", names, want)
	}
	requireFinding(t, res.Changed(), "ha.cf", 1, "node", "node web1.example.com is called web1-example-com")
	requireFinding(t, res.Changed(), "ha.cf", 1, "node", "node db_2 is called db-2")
	requireFinding(t, res.Untranslated(), "haresources", 4, "web1.example.com", "without resources")
	if cfg.Groups[0].Failback != "manual" {
		t.Errorf("failback %s", cfg.Groups[0].Failback)
	}
}

// TestHaCfDirectives: translated directives, and each untranslated one at its line.
func TestHaCfDirectives(t *testing.T) {
	hacf := mem("ha.cf", `# comment
cluster Prod_Cluster   # trailing comment
node a, b
ucast eth0 10.0.0.1
ucast eth0 10.0.0.2
udp eth1
mcast eth2 239.192.0.1 694 1 0
serial /dev/ttyS0 /dev/ttyS1
respawn hacluster /usr/lib/heartbeat/dopd
stonith baytech /etc/ha.d/conf/stonith.baytech
autojoin any
frobnicate 3
crm off
use_logd yes
`)
	res := mustImport(t, Options{HaCf: []Input{hacf}, Haresources: mem("haresources", "a 10.0.0.100/24/eth0\n"),
		Addresses: map[string][]string{"a": {"10.0.0.1", "10.1.0.1", "10.2.0.1"}, "b": {"10.0.0.2", "10.1.0.2", "10.2.0.2"}}})
	cfg := parsed(t, res)
	if cfg.Cluster.Name != "prod-cluster" || len(cfg.Nodes) != 2 {
		t.Errorf("cluster %q nodes %v", cfg.Cluster.Name, cfg.Nodes)
	}
	want := []string{"ha.cf:8 serial", "ha.cf:9 respawn", "ha.cf:10 stonith", "ha.cf:11 autojoin", "ha.cf:12 frobnicate", "ha.cf:14 use_logd"}
	if got := lines(res.Untranslated()); !equal(got, want) {
		t.Errorf("untranslated %v\nwant %v", got, want)
	}
	requireFinding(t, res.Untranslated(), "ha.cf", 12, "frobnicate", "unknown directive")
	requireFinding(t, res.Untranslated(), "ha.cf", 9, "respawn", "process resource")
	// Timings not set: Heartbeat's defaults, said so; links from three media.
	for _, d := range []string{"keepalive", "deadtime", "warntime", "initdead"} {
		requireFinding(t, res.Changed(), "ha.cf", 0, d, "not set")
	}
	requireFinding(t, res.Changed(), "ha.cf", 2, "cluster", `"prod-cluster"`)
	requireFinding(t, res.Changed(), "ha.cf", 6, "bcast", "link 1 (eth1)")
	requireFinding(t, res.Changed(), "ha.cf", 7, "mcast", "link 2 (eth2)")
	requireFinding(t, res.Changed(), "ha.cf", 0, "auto_failback", "legacy")
	if tm := cfg.Cluster.Timing; tm.Keepalive.D() != time.Second || tm.Warntime.D() != 15*time.Second || tm.Deadtime.D() != 30*time.Second || tm.Initdead.D() != 30*time.Second {
		t.Errorf("timing %+v", tm)
	}
	if cfg.Groups[0].Failback != "auto" {
		t.Errorf("failback %s", cfg.Groups[0].Failback)
	}
	// --cluster wins over ha.cf's name.
	res = mustImport(t, Options{HaCf: []Input{hacf}, Haresources: mem("haresources", ""), Cluster: "cityhall", SecretsDir: "/etc/vigil"})
	if !strings.Contains(string(res.YAML), `name: "cityhall"`) || !strings.Contains(string(res.YAML), `secrets_dir: "/etc/vigil"`) {
		t.Errorf("cluster or secrets_dir:\n%s", res.YAML)
	}
	requireFinding(t, res.Changed(), "ha.cf", 2, "cluster", "replaced by --cluster cityhall")
}

// TestPingNodes: three to five ping nodes become public targets; fewer stay a
// comment to complete, so that the file still validates.
func TestPingNodes(t *testing.T) {
	hacf := mem("ha.cf", twoNodes+"ping 192.0.2.1\nping_group dns 192.0.2.53 192.0.2.54\nping 192.0.2.1\ndeadping 20\nrespawn hacluster /usr/lib/heartbeat/ipfail\n")
	res := mustImport(t, Options{HaCf: []Input{hacf}, Haresources: mem("haresources", "a 10.0.0.100/24/eth0\n"), Addresses: twoAddrs})
	cfg := parsed(t, res)
	var got []string
	for _, p := range cfg.Cluster.PublicTargets {
		got = append(got, p.ICMP)
	}
	if !equal(got, []string{"192.0.2.1", "192.0.2.53", "192.0.2.54"}) {
		t.Errorf("public targets %v", got)
	}
	requireFinding(t, res.Changed(), "ha.cf", 9, "ping", "written as public targets")
	requireFinding(t, res.Changed(), "ha.cf", 10, "ping_group", "written as public targets")
	requireFinding(t, res.Untranslated(), "ha.cf", 12, "deadping", "check timing")
	requireFinding(t, res.Untranslated(), "ha.cf", 13, "respawn", "ipfail")

	hacf = mem("ha.cf", twoNodes+"ping 192.0.2.1\n")
	res = mustImport(t, Options{HaCf: []Input{hacf}, Haresources: mem("haresources", "a 10.0.0.100/24/eth0\n"), Addresses: twoAddrs})
	if cfg := parsed(t, res); len(cfg.Cluster.PublicTargets) != 0 || !strings.Contains(string(res.YAML), `  #   - {icmp: "192.0.2.1"}`) {
		t.Errorf("one ping node:\n%s", res.YAML)
	}
	requireFinding(t, res.Untranslated(), "ha.cf", 9, "ping", "ha.cf has 1")
}

func TestFailback(t *testing.T) {
	for _, c := range []struct {
		line, want, changed string
	}{
		{"auto_failback on", "auto", ""},
		{"auto_failback yes", "auto", ""},
		{"auto_failback TRUE", "auto", ""},
		{"auto_failback off", "manual", ""},
		{"auto_failback no", "manual", ""},
		{"auto_failback legacy", "auto", "legacy moved resources back"},
		{"nice_failback on", "manual", ""},
		{"nice_failback off", "auto", "legacy moved resources back"},
		{"", "auto", "not set"},
	} {
		hacf := mem("ha.cf", twoNodes[:strings.Index(twoNodes, "auto_failback")]+c.line+"\n")
		res := mustImport(t, Options{HaCf: []Input{hacf}, Haresources: mem("haresources", "a 10.0.0.100/24/eth0\n"), Addresses: twoAddrs})
		cfg := parsed(t, res)
		if cfg.Groups[0].Failback != c.want {
			t.Errorf("%q: failback %s, want %s", c.line, cfg.Groups[0].Failback, c.want)
		}
		var fb []Finding
		for _, f := range res.Changed() {
			if strings.HasSuffix(f.Directive, "_failback") {
				fb = append(fb, f)
			}
		}
		if (c.changed == "") != (len(fb) == 0) || (c.changed != "" && !strings.Contains(fb[0].Reason, c.changed)) {
			t.Errorf("%q: findings %v", c.line, fb)
		}
	}
}

// TestTiming covers Heartbeat's time syntax and the adjustments to vigil's rules.
func TestTiming(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		hacf       string
		k, w, d, i time.Duration
		changed    []string // "line directive" of the changes
	}{
		{"keepalive 2\nwarntime 10\ndeadtime 30\ninitdead 120\n", 2 * time.Second, 10 * time.Second, 30 * time.Second, 120 * time.Second, nil},
		{"keepalive 1500ms\nwarntime 0.5\ndeadtime 6\ninitdead 12000ms\n", 1500 * ms, 3 * time.Second, 6 * time.Second, 12 * time.Second, []string{"2 warntime"}},
		{"keepalive 250000us\nwarntime 200000usec\ndeadtime 2 \ninitdead 1\n", 250 * ms, time.Second, 2 * time.Second, 2 * time.Second, []string{"2 warntime", "4 initdead"}},
		// Heartbeat allowed deadtime > 2 × keepalive; vigil needs 4 ×: keepalive shrinks.
		{"keepalive 2\nwarntime 4\ndeadtime 5\ninitdead 60\n", 1250 * ms, 4 * time.Second, 5 * time.Second, 60 * time.Second, []string{"1 keepalive"}},
		{"keepalive 2\nwarntime 1\ndeadtime 5\ninitdead 60\n", 1250 * ms, 2500 * ms, 5 * time.Second, 60 * time.Second, []string{"1 keepalive", "2 warntime"}},
		{"keepalive 5ms\nwarntime 8ms\ndeadtime 20ms\ninitdead 1\n", 10 * ms, 20 * ms, 40 * ms, time.Second, []string{"1 keepalive", "2 warntime", "3 deadtime"}},
		{"keepalive 1\ndeadtime 8\n", time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, []string{"0 warntime", "0 initdead"}},
		{"deadtime 5\n", time.Second, 2500 * ms, 5 * time.Second, 12 * time.Second, []string{"0 keepalive", "0 warntime", "0 initdead"}},
		{"keepalive 1\nwarntime 1\ndeadtime 10\ninitdead 5\n", time.Second, 5 * time.Second, 10 * time.Second, 10 * time.Second, []string{"2 warntime", "4 initdead"}},
	} {
		hacf := mem("ha.cf", c.hacf+"node a b\nucast eth0 10.0.0.1\nucast eth0 10.0.0.2\nauto_failback on\n")
		res := mustImport(t, Options{HaCf: []Input{hacf}, Haresources: mem("haresources", ""), Addresses: twoAddrs})
		cfg := parsed(t, res)
		tm := cfg.Cluster.Timing
		if tm.Keepalive.D() != c.k || tm.Warntime.D() != c.w || tm.Deadtime.D() != c.d || tm.Initdead.D() != c.i {
			t.Errorf("%q: got %v %v %v %v, want %v %v %v %v", c.hacf, tm.Keepalive.D(), tm.Warntime.D(), tm.Deadtime.D(), tm.Initdead.D(), c.k, c.w, c.d, c.i)
		}
		var got []string
		for _, f := range res.Changed() {
			got = append(got, fmt.Sprintf("%d %s", f.Line, f.Directive))
		}
		if !equal(got, c.changed) {
			t.Errorf("%q: changes %v, want %v", c.hacf, got, c.changed)
		}
	}
}

// TestInputErrors: what Heartbeat refuses is refused, every line at once.
func TestInputErrors(t *testing.T) {
	for _, c := range []struct {
		hacf, hares, authkeys string
		want                  []string
	}{
		{"node a b\nkeepalive two\ndeadtime 10s5\nwarntime 0\ninitdead 1h\n", "", "",
			[]string{`ha.cf:2: keepalive: "two" is not a time`, `ha.cf:3: deadtime: "10s5" is not a time`, `ha.cf:4: warntime: "0": must be more than 0`, `ha.cf:5: initdead: "1h": unknown unit "h"`}},
		{"node a b\nucast eth0\nucast eth0 peer.example.com\nmcast eth0 10.0.0.1 694 1 0\nbcast\nauto_failback maybe\n", "", "",
			[]string{"ha.cf:2: ucast: want ucast IFACE PEER-ADDRESS", `ha.cf:3: ucast: "peer.example.com" is not a unicast IP address`,
				`ha.cf:4: mcast: "10.0.0.1" is not a multicast group address`, "ha.cf:5: bcast: no interface", `ha.cf:6: auto_failback: "maybe": want on, off or legacy`}},
		{"node a b\ncrm respawn\n", "", "", []string{"ha.cf:2: crm: Pacemaker is on"}},
		{"node a b\n", "a 10.0.0.1\nc httpd\n", "", []string{`haresources:2: c: node "c" is not declared in ha.cf`}},
		{"keepalive 2\n", "", "", []string{"ha.cf: node: no node lines"}},
		{"node a b\n", "", "auth 2\n1 sha1\n3 rot13 x\nfoo\n", []string{"authkeys:1: auth: key 2 is not defined", "authkeys:2: 1: method sha1 needs a key",
			`authkeys:3: 3: method "rot13": want crc, sha1 or md5`, "authkeys:4: foo: want auth N"}},
	} {
		opt := Options{HaCf: []Input{mem("ha.cf", c.hacf)}, Haresources: mem("haresources", c.hares)}
		if c.authkeys != "" {
			opt.Authkeys = ptr(mem("authkeys", c.authkeys))
		}
		_, err := Import(opt)
		var errs InputErrors
		if !errors.As(err, &errs) || len(errs) != len(c.want) {
			t.Errorf("%q: %v, want %d errors", c.hacf, err, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(errs[i].String(), w) {
				t.Errorf("error %d: %q, want %q...", i, errs[i], w)
			}
		}
	}
	_, err := Import(Options{HaCf: []Input{mem("ha.cf", twoNodes)}, Haresources: mem("haresources", ""), Addresses: map[string][]string{"zed": {"10.0.0.9"}}})
	if err == nil || !strings.Contains(err.Error(), `--address: zed: no node "zed"`) {
		t.Errorf("unknown --address node: %v", err)
	}
	if _, err := Import(Options{}); err == nil {
		t.Error("no ha.cf: no error")
	}
}

func TestParseHaCfLexing(t *testing.T) {
	h, err := ParseHaCf("ha.cf", []byte("  node\tA,B ,c # d\r\nkeepalive 2#x\n#node z\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range h.Nodes {
		names = append(names, fmt.Sprintf("%d:%s", n.Line, n.Name))
	}
	if !equal(names, []string{"1:a", "1:b", "1:c"}) || h.Keepalive != (Timing{Line: 2, D: 2 * time.Second}) {
		t.Errorf("nodes %v keepalive %+v", names, h.Keepalive)
	}
}

func TestParseHaresources(t *testing.T) {
	lines := ParseHaresources([]byte("# c\nnode1 10.0.0.1 \\\n   httpd # web\n\nnode2 a#b Filesystem::/dev/x::/y::ext4 \\\n"))
	got := fmt.Sprint(lines)
	want := "[{2 node1 [{2 10.0.0.1 IPaddr [10.0.0.1] true} {3 httpd httpd [] false}]} {5 node2 [{5 a#b a#b [] false} {5 Filesystem::/dev/x::/y::ext4 Filesystem [/dev/x /y ext4] false}]}]"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestOutputAlwaysParses: whatever strings the inputs hold, the written file is
// YAML that config reads; at worst it has problems, never a syntax error.
func TestOutputAlwaysParses(t *testing.T) {
	res := mustImport(t, Options{
		HaCf:        []Input{mem("ha.cf", "node a\"b c\\d\ncluster \"x\x01\nucast eth0 10.0.0.1\nucast e\"th1 10.0.0.2\nping \"1\n")},
		Haresources: mem("haresources", "a\"b IPaddr::10.0.0.9/24/e\"th0 sc\"ript Filesystem::/d\"::/p\x7f::t::o\"\n"),
	})
	checkNoSyntaxProblem(t, res)
}

func checkNoSyntaxProblem(t *testing.T, res *Result) {
	t.Helper()
	for _, p := range res.Problems {
		if p.Field == "(syntax)" || strings.Contains(p.Message, "unknown field") || strings.HasPrefix(p.Field, "(file)") {
			t.Fatalf("the written file does not parse: %v\n%s", p, res.YAML)
		}
	}
}

// Each DRBD resource gets its own name, so two drbddisk entries in one group
// do not collide.
func TestDRBDResourcesNamedAfterTheirDRBDResource(t *testing.T) {
	hares := mem("haresources", "a drbddisk::r0 drbddisk::r1 Filesystem::/dev/drbd0::/srv::ext4\n")
	res := mustImport(t, Options{HaCf: []Input{mem("ha.cf", twoNodes)}, Haresources: hares, Addresses: twoAddrs})
	cfg, err := config.Parse("x", res.YAML)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	var names []string
	for _, r := range cfg.Groups[0].Resources {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, ","), "drbd-r0,drbd-r1,fs-srv"; got != want {
		t.Fatalf("resource names %s, want %s", got, want)
	}
}
