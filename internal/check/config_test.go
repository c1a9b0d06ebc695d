package check

import (
	"encoding/json"
	"go/build"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// The shapes of the brief, decoded the way internal/config decodes (strict).
const sampleYAML = `
public_targets: [{icmp: 192.0.2.1}, {tcp: "192.0.2.2:53"}, {http: "http://192.0.2.3/"}]
checks:
  - {type: http, url: "http://10.0.0.100/health", interval: 2s, timeout: 1s, observers: all}
  - name: api
    type: https
    url: https://10.0.0.100:8443/ready
    expect_status: [200, "204", 3xx]
    body_contains: ready
    ca_file: /etc/vigil/api-ca.pem
    source: 10.0.0.1
    observers: [alessandro, federica, quorum]
    lost_after: 15s
    rise: 1
    fall: 5
  - {type: tcp, address: "10.0.0.100:5432", observers: local}
  - {type: icmp, target: "2001:db8::1", expect_status: 200}
  - {type: script, command: [/usr/local/bin/check-db, --quick]}
`

type sample struct {
	PublicTargets []PublicTarget `yaml:"public_targets"`
	Checks        []Check        `yaml:"checks"`
}

func decode(t *testing.T, src string) sample {
	t.Helper()
	var s sample
	if err := yaml.UnmarshalWithOptions([]byte(src), &s, yaml.Strict()); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return s
}

func TestDecodeBriefShape(t *testing.T) {
	s := decode(t, sampleYAML)
	if len(s.PublicTargets) != 3 || s.PublicTargets[0].ICMP != "192.0.2.1" || s.PublicTargets[1].TCP != "192.0.2.2:53" ||
		s.PublicTargets[2].HTTP != "http://192.0.2.3/" {
		t.Fatalf("public targets: %+v", s.PublicTargets)
	}
	c := s.Checks
	if c[0].Interval.D() != 2*time.Second || c[0].Timeout.D() != time.Second || c[0].Observers.Mode != ObserveAll {
		t.Errorf("check 0: %+v", c[0])
	}
	api := c[1]
	if got := []string(api.ExpectStatus); strings.Join(got, ",") != "200,204,3xx" {
		t.Errorf("expect_status %q", got)
	}
	if api.Observers.Mode != ObserveNodes || strings.Join(api.Observers.Nodes, ",") != "alessandro,federica,quorum" {
		t.Errorf("observers %+v", api.Observers)
	}
	if api.LostAfter.D() != 15*time.Second || api.Rise != 1 || api.Fall != 5 || api.Source != "10.0.0.1" || api.BodyContains != "ready" {
		t.Errorf("api: %+v", api)
	}
	if c[2].Observers.Mode != ObserveLocal {
		t.Errorf("local: %+v", c[2].Observers)
	}
	if len(c[3].ExpectStatus) != 1 || c[3].ExpectStatus[0] != "200" {
		t.Errorf("scalar expect_status: %q", c[3].ExpectStatus)
	}
	if c[4].Command[0] != "/usr/local/bin/check-db" || c[4].DisplayName() != "script check-db" {
		t.Errorf("script: %+v %s", c[4], c[4].DisplayName())
	}

	nodes := []string{"alessandro", "federica", "quorum"}
	ps := ValidateChecks("groups[0].checks", s.Checks, nodes)
	// The icmp check carries an http-only field: the one error expected.
	if len(ps) != 1 || ps[0].Field != "groups[0].checks[3].expect_status" {
		t.Errorf("problems: %v", ps)
	}
	if ps := ValidatePublicTargets("cluster.public_targets", s.PublicTargets); len(ps) != 0 {
		t.Errorf("public target problems: %v", ps)
	}
}

func TestDecodeRejects(t *testing.T) {
	// Strict decoding catches a misspelt field, as for the rest of vigil.yaml.
	var s sample
	err := yaml.UnmarshalWithOptions([]byte("checks: [{type: tcp, adress: 'x:1'}]"), &s, yaml.Strict())
	if err == nil || !strings.Contains(err.Error(), "adress") {
		t.Errorf("misspelt field: %v", err)
	}
	// A bare number is not a duration.
	err = yaml.UnmarshalWithOptions([]byte("checks: [{type: tcp, interval: 5}]"), &s, yaml.Strict())
	if err == nil {
		t.Error("interval: 5 accepted")
	}
	// Observers that cannot be understood decode, and Validate names the field.
	s = decode(t, "checks: [{type: tcp, address: 'h:1', observers: everyone}, {type: tcp, address: 'h:2', observers: [a, 3]}, {type: tcp, address: 'h:3', observers: {a: 1}}]")
	ps := ValidateChecks("checks", s.Checks, nil)
	want := []string{"checks[0].observers", "checks[1].observers", "checks[2].observers"}
	if got := fields(ps); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("fields %v, want %v (%v)", got, want, ps)
	}
}

func fields(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p.Field)
		}
	}
	sort.Strings(out)
	return out
}

func TestValidateCheck(t *testing.T) {
	nodes := []string{"a", "b", "c"}
	cases := []struct {
		name  string
		yaml  string
		field string // "" means valid
		msg   string
	}{
		{"minimal http", `{type: http, url: "http://10.0.0.100/"}`, "", ""},
		{"minimal icmp v6", `{type: icmp, target: "fe80::1%eth0", observers: [a, b, c]}`, "", ""},
		{"host name", `{type: tcp, address: "db.example.org:5432"}`, "", ""},
		{"no type", `{url: "http://x/"}`, "type", "required"},
		{"bad type", `{type: ping, target: x}`, "type", `"ping"`},
		{"icmp without target", `{type: icmp}`, "target", "required"},
		{"icmp with port", `{type: icmp, target: "10.0.0.1:80"}`, "target", "no port"},
		{"icmp junk", `{type: icmp, target: "not a host"}`, "target", "neither"},
		{"tcp without port", `{type: tcp, address: "10.0.0.1"}`, "address", "missing :port"},
		{"tcp bad port", `{type: tcp, address: "10.0.0.1:99999"}`, "address", "1 to 65535"},
		{"tcp v6 without brackets", `{type: tcp, address: "2001:db8::1:80"}`, "address", "brackets"},
		{"tcp with url", `{type: tcp, address: "h:1", url: "http://h/"}`, "url", "not used by tcp"},
		{"http with https url", `{type: http, url: "https://h/"}`, "url", "type: https"},
		{"https with http url", `{type: https, url: "http://h/"}`, "url", "type: http"},
		{"ftp", `{type: http, url: "ftp://h/"}`, "url", "scheme"},
		{"http no host", `{type: http, url: "http:///x"}`, "url", "no host"},
		{"http ca_file", `{type: http, url: "http://h/", ca_file: /x.pem}`, "ca_file", "not used by http"},
		{"insecure and ca", `{type: https, url: "https://h/", ca_file: /x.pem, insecure: true}`, "insecure", "one or the other"},
		{"bad status", `{type: http, url: "http://h/", expect_status: [200, 700]}`, "expect_status[1]", "100 to 599"},
		{"bad class", `{type: http, url: "http://h/", expect_status: 6xx}`, "expect_status[0]", "class"},
		{"script without command", `{type: script}`, "command", "required"},
		{"script with source", `{type: script, command: [x], source: 10.0.0.1}`, "source", "not used by script"},
		{"bad source", `{type: tcp, address: "h:1", source: eth0}`, "source", "not an IP"},
		{"source family", `{type: tcp, address: "10.0.0.1:1", source: "2001:db8::2"}`, "source", "families"},
		{"interval floor", `{type: tcp, address: "h:1", interval: 1ms}`, "interval", "floor"},
		{"timeout over interval", `{type: tcp, address: "h:1", interval: 1s, timeout: 2s}`, "timeout", "longer than the interval"},
		{"timeout over default interval", `{type: tcp, address: "h:1", timeout: 3s}`, "timeout", "longer than the interval (2s)"},
		{"negative timeout", `{type: tcp, address: "h:1", timeout: -1s}`, "timeout", "positive"},
		{"rise too big", `{type: tcp, address: "h:1", rise: 1000}`, "rise", "1 to 100"},
		{"fall negative", `{type: tcp, address: "h:1", fall: -1}`, "fall", "1 to 100"},
		{"lost_after negative", `{type: tcp, address: "h:1", lost_after: -5s}`, "lost_after", "positive"},
		{"unknown observer", `{type: tcp, address: "h:1", observers: [a, z]}`, "observers[1]", "not a node"},
		{"duplicate observer", `{type: tcp, address: "h:1", observers: [a, a]}`, "observers[1]", "twice"},
		{"empty observers", `{type: tcp, address: "h:1", observers: []}`, "observers", "empty list"},
		{"loopback seen by all", `{type: http, url: "http://127.0.0.1:8080/"}`, "observers", "loopback"},
		{"localhost seen by all", `{type: tcp, address: "localhost:5432", observers: all}`, "observers", "loopback"},
		{"loopback local is fine", `{type: tcp, address: "127.0.0.1:5432", observers: local}`, "", ""},
		{"loopback one node is fine", `{type: icmp, target: "::1", observers: [a]}`, "", ""},
		{"name spaces", `{name: " web", type: tcp, address: "h:1"}`, "name", "spaces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := decode(t, "checks: ["+tc.yaml+"]")
			ps := s.Checks[0].Validate("g.checks[0]", nodes)
			var errs []Problem
			for _, p := range ps {
				if !p.Warning {
					errs = append(errs, p)
				}
			}
			if tc.field == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected problems: %v", errs)
				}
				return
			}
			for _, p := range errs {
				if p.Field == "g.checks[0]."+tc.field && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want %s: ...%s...; got %v", tc.field, tc.msg, errs)
		})
	}
}

func TestValidateWarnings(t *testing.T) {
	s := decode(t, `checks: [{type: https, url: "https://h/", insecure: true, observers: [a, b]}]`)
	ps := s.Checks[0].Validate("c", nil)
	var warned []string
	for _, p := range ps {
		if !p.Warning {
			t.Errorf("error: %v", p)
		}
		warned = append(warned, p.Field)
		if !strings.Contains(p.Error(), "warning:") {
			t.Errorf("%q", p.Error())
		}
	}
	sort.Strings(warned)
	if strings.Join(warned, " ") != "c.insecure c.observers" {
		t.Errorf("warnings on %v", warned)
	}
}

func TestValidateChecksNames(t *testing.T) {
	s := decode(t, `checks: [{type: tcp, address: "h:1"}, {type: tcp, address: "h:1"}, {name: x, type: tcp, address: "h:2"}, {name: x, type: icmp, target: h}]`)
	got := fields(ValidateChecks("groups[2].checks", s.Checks, nil))
	if strings.Join(got, " ") != "groups[2].checks[1].name groups[2].checks[3].name" {
		t.Errorf("got %v", got)
	}
}

func TestApplyDefaults(t *testing.T) {
	s := decode(t, `checks: [{type: http, url: "http://h/"}, {type: script, command: [x]}, {type: tcp, address: "h:1", interval: 500ms}]`)
	for i := range s.Checks {
		s.Checks[i].ApplyDefaults()
		if ps := s.Checks[i].Validate("c", nil); len(ps) > 0 {
			t.Errorf("check %d invalid after defaults: %v", i, ps)
		}
	}
	h, sc, short := s.Checks[0], s.Checks[1], s.Checks[2]
	if h.Interval.D() != DefaultInterval || h.Timeout.D() != DefaultTimeout || h.Rise != DefaultRise || h.Fall != DefaultFall ||
		h.LostAfter.D() != DefaultLostAfter || h.Observers.Mode != ObserveAll {
		t.Errorf("http defaults: %+v", h)
	}
	if sc.Observers.Mode != ObserveLocal {
		t.Errorf("script observers default %v", sc.Observers)
	}
	if short.Timeout.D() != 500*time.Millisecond {
		t.Errorf("timeout with a short interval: %v", short.Timeout.D())
	}
}

func TestExpectStatus(t *testing.T) {
	cases := []struct {
		e    ExpectStatus
		code int
		want bool
	}{
		{nil, 200, true}, {nil, 302, true}, {nil, 399, true}, {nil, 404, false}, {nil, 500, false}, {nil, 101, false},
		{ExpectStatus{"204"}, 204, true}, {ExpectStatus{"204"}, 200, false},
		{ExpectStatus{"2xx", "401"}, 401, true}, {ExpectStatus{"2XX"}, 250, true},
		{ExpectStatus{"bogus"}, 200, false},
	}
	for _, tc := range cases {
		if got := tc.e.Match(tc.code); got != tc.want {
			t.Errorf("%v.Match(%d) = %v", tc.e, tc.code, got)
		}
	}
}

func TestPublicTargets(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		field string
		msg   string
	}{
		{"brief shape", `[{icmp: 192.0.2.1}, {tcp: "192.0.2.2:53"}, {http: "http://192.0.2.3/"}]`, "", ""},
		{"five with https and names", `[{icmp: 192.0.2.1}, {icmp: "2001:db8::1"}, {tcp: "dns.example.org:53"}, {http: "https://192.0.2.3/"}, {http: "http://192.0.2.4/", interval: 5s, fall: 2}]`, "", ""},
		{"none is off", `[]`, "", ""},
		{"too few", `[{icmp: 192.0.2.1}, {icmp: 192.0.2.2}]`, "pt", "give 3 to 5"},
		{"too many", `[{icmp: 192.0.2.1}, {icmp: 192.0.2.2}, {icmp: 192.0.2.3}, {icmp: 192.0.2.4}, {icmp: 192.0.2.5}, {icmp: 192.0.2.6}]`, "pt", "give 3 to 5"},
		{"bad tcp", `[{icmp: 192.0.2.1}, {tcp: "192.0.2.2"}, {http: "http://192.0.2.3/"}]`, "pt[1].tcp", "missing :port"},
		{"two kinds in one", `[{icmp: 192.0.2.1, tcp: "192.0.2.1:1"}, {icmp: 192.0.2.2}, {icmp: 192.0.2.3}]`, "pt[0].tcp", "one target per entry"},
		{"empty entry", `[{interval: 2s}, {icmp: 192.0.2.2}, {icmp: 192.0.2.3}]`, "pt[0]", "give one of"},
		{"duplicate", `[{icmp: 192.0.2.1}, {icmp: 192.0.2.2}, {icmp: 192.0.2.1}]`, "pt[2].icmp", "same target as pt[0]"},
		{"loopback", `[{icmp: 127.0.0.1}, {icmp: 192.0.2.2}, {icmp: 192.0.2.3}]`, "pt[0].icmp", "loopback"},
		{"ftp", `[{http: "ftp://192.0.2.1/"}, {icmp: 192.0.2.2}, {icmp: 192.0.2.3}]`, "pt[0].http", "http or https"},
		{"timing", `[{icmp: 192.0.2.1, timeout: 5s}, {icmp: 192.0.2.2}, {icmp: 192.0.2.3}]`, "pt[0].timeout", "longer than the interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s struct {
				PT []PublicTarget `yaml:"pt"`
			}
			if err := yaml.UnmarshalWithOptions([]byte("pt: "+tc.yaml), &s, yaml.Strict()); err != nil {
				t.Fatal(err)
			}
			ps := ValidatePublicTargets("pt", s.PT)
			if tc.field == "" {
				if len(ps) > 0 {
					t.Fatalf("unexpected: %v", ps)
				}
				for _, pt := range s.PT {
					c := pt.Check("10.0.0.1")
					if vs := c.Validate("x", nil); len(vs) > 0 {
						t.Errorf("%s as a check: %v", pt.Name(), vs)
					}
				}
				return
			}
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want %s: ...%s...; got %v", tc.field, tc.msg, ps)
		})
	}
}

func TestPublicTargetCheck(t *testing.T) {
	c := PublicTarget{HTTP: "https://192.0.2.3/", Fall: 2}.Check("10.0.0.1")
	if c.Type != HTTPS || c.URL != "https://192.0.2.3/" || c.Source != "10.0.0.1" || c.Fall != 2 || c.Rise != DefaultRise ||
		c.Observers.Mode != ObserveLocal || c.Name != "public http https://192.0.2.3/" {
		t.Errorf("%+v", c)
	}
	if c := (PublicTarget{TCP: "192.0.2.2:53"}).Check(""); c.Type != TCP || c.Address != "192.0.2.2:53" {
		t.Errorf("%+v", c)
	}
	// An IPv4 public address cannot send to an IPv6 target: the source is left out.
	if c := (PublicTarget{ICMP: "2001:db8::1"}).Check("10.0.0.1"); c.Source != "" {
		t.Errorf("source %q kept for an IPv6 target", c.Source)
	}
	if c := (PublicTarget{TCP: "[2001:db8::1]:53"}).Check("2001:db8::10"); c.Source != "2001:db8::10" {
		t.Errorf("source %q dropped for a same-family target", c.Source)
	}
	if c := (PublicTarget{HTTP: "http://dns.example.org/"}).Check("10.0.0.1"); c.Source != "10.0.0.1" {
		t.Errorf("source %q dropped for a host name", c.Source)
	}
}

func TestObserversRoundTrip(t *testing.T) {
	for _, src := range []string{`"all"`, `"local"`, `["a","b"]`} {
		var o Observers
		if err := json.Unmarshal([]byte(src), &o); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(o)
		if err != nil || string(b) != src {
			t.Errorf("%s -> %+v -> %s %v", src, o, b, err)
		}
		y, err := yaml.Marshal(struct {
			O Observers `yaml:"observers"`
		}{o})
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			O Observers `yaml:"observers"`
		}
		if err := yaml.UnmarshalWithOptions(y, &back, yaml.Strict()); err != nil || back.O.String() != o.String() {
			t.Errorf("yaml round trip %s: %q gave %v %v", src, y, back.O, err)
		}
	}
}

func TestParseHostPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"10.0.0.1:80", "10.0.0.1", 80, true},
		{"[::1]:53", "::1", 53, true},
		{"db.example.org:5432", "db.example.org", 5432, true},
		{":80", "", 0, false}, {"h:", "", 0, false}, {"h:0", "", 0, false}, {"[::1]", "", 0, false},
		{"[nope]:1", "", 0, false}, {"::1:53", "", 0, false}, {"h", "", 0, false},
	} {
		h, p, err := ParseHostPort(tc.in)
		if (err == nil) != tc.ok || h != tc.host || p != tc.port {
			t.Errorf("ParseHostPort(%q) = %q %d %v", tc.in, h, p, err)
		}
	}
}

// The pure core stays pure: the probes and the runner do the I/O.
func TestCoreImportsNoIO(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		pure := imp == "net/netip" || imp == "net/url"
		if !pure && (imp == "os" || imp == "os/exec" || imp == "net" || strings.HasPrefix(imp, "net/") ||
			imp == "syscall" || strings.HasSuffix(imp, "/runexec") || strings.HasPrefix(imp, "golang.org/x/net")) {
			t.Errorf("check imports %s; keep I/O in check/probe and check/runner", imp)
		}
	}
}
