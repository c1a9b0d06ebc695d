package check

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/duration"
	"github.com/vigil-ha/vigil/internal/finding"
)

// Check defaults. The interval and timeout follow the brief's example
// (interval: 2s, timeout: 1s): a timeout of half the interval leaves room for the
// probe to end before the next one is due, and 1s is long next to a LAN round
// trip yet short enough that a hung service is caught in the first probe.
const (
	DefaultInterval = 2 * time.Second
	DefaultTimeout  = 1 * time.Second
	// MinInterval keeps a typo (interval: 1ms) from turning a check into a flood.
	MinInterval = 100 * time.Millisecond
	// MinTimeout: below this even a loopback connect under load fails spuriously.
	MinTimeout = 10 * time.Millisecond
)

// Type is the kind of probe.
type Type string

// The probe types.
const (
	ICMP   Type = "icmp"
	TCP    Type = "tcp"
	HTTP   Type = "http"
	HTTPS  Type = "https"
	Script Type = "script"
)

// Check is one health check as written in the configuration: a group's checks,
// or (through PublicTarget.Check) a public-network target.
type Check struct {
	// Name identifies the check in events; default "<type> <target>" (see DisplayName).
	Name string `yaml:"name"`
	Type Type   `yaml:"type"`

	Target  string   `yaml:"target"`  // icmp: an IPv4 or IPv6 address, or a host name
	Address string   `yaml:"address"` // tcp: host:port ([v6]:port)
	URL     string   `yaml:"url"`     // http, https
	Command []string `yaml:"command"` // script: argv; exit code 0 means up

	Interval duration.Duration `yaml:"interval"` // default 2s
	Timeout  duration.Duration `yaml:"timeout"`  // default 1s, at most the interval
	Rise     int               `yaml:"rise"`     // default 2
	Fall     int               `yaml:"fall"`     // default 3

	// http and https: accepted status codes ("200", 204, "2xx"); default 2xx and 3xx.
	// Redirects are not followed: a 302 to a login page says the server is alive,
	// following it would test another service.
	ExpectStatus ExpectStatus `yaml:"expect_status"`
	// BodyContains, when set, must appear in the first 256 KiB of the response body.
	BodyContains string `yaml:"body_contains"`
	// https: CAFile (PEM) replaces the system roots for verifying the server;
	// Insecure skips verification altogether (a self-signed test service).
	CAFile   string `yaml:"ca_file"`
	Insecure bool   `yaml:"insecure"`

	// Source is the local address network probes are sent from, so that a node
	// tests the path its clients use (its public address) rather than whichever
	// interface the routing table prefers.
	Source string `yaml:"source"`

	// Observers says which nodes run this check for a group: all (default for
	// network checks: no single observer decides), local (the node running the
	// group; default for scripts, which test the node they run on), or a list.
	Observers Observers `yaml:"observers"`
	// LostAfter is how long a majority of eligible observers must see the check
	// down before the group is lost (see DefaultLostAfter).
	LostAfter duration.Duration `yaml:"lost_after"`
}

// checkFields lists, per type, the type-specific fields it accepts, so that a
// field meant for another type is reported instead of silently ignored.
var checkFields = map[Type][]string{
	ICMP:   {"target", "source"},
	TCP:    {"address", "source"},
	HTTP:   {"url", "source", "expect_status", "body_contains"},
	HTTPS:  {"url", "source", "expect_status", "body_contains", "ca_file", "insecure"},
	Script: {"command"},
}

func (c *Check) setFields() []string {
	var set []string
	add := func(name string, ok bool) {
		if ok {
			set = append(set, name)
		}
	}
	add("target", c.Target != "")
	add("address", c.Address != "")
	add("url", c.URL != "")
	add("command", len(c.Command) > 0)
	add("expect_status", len(c.ExpectStatus) > 0)
	add("body_contains", c.BodyContains != "")
	add("ca_file", c.CAFile != "")
	add("insecure", c.Insecure)
	add("source", c.Source != "")
	return set
}

// DisplayName is the check's name, or "<type> <target>" when none is given.
func (c *Check) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	switch c.Type {
	case ICMP:
		return "icmp " + c.Target
	case TCP:
		return "tcp " + c.Address
	case HTTP, HTTPS:
		return string(c.Type) + " " + c.URL
	case Script:
		if len(c.Command) > 0 {
			return "script " + path.Base(c.Command[0])
		}
	}
	return string(c.Type)
}

// ApplyDefaults fills the zero fields with their defaults. Validate accepts a
// check before or after it.
func (c *Check) ApplyDefaults() {
	if c.Interval == 0 {
		c.Interval = duration.Duration(DefaultInterval)
	}
	if c.Timeout == 0 {
		// Never longer than the interval: a short interval without a timeout
		// must not become a configuration error.
		c.Timeout = duration.Duration(min(DefaultTimeout, c.Interval.D()))
	}
	if c.Rise == 0 {
		c.Rise = DefaultRise
	}
	if c.Fall == 0 {
		c.Fall = DefaultFall
	}
	if c.LostAfter == 0 {
		c.LostAfter = duration.Duration(DefaultLostAfter)
	}
	if c.Observers.Mode == ObserveDefault {
		if c.Type == Script {
			c.Observers.Mode = ObserveLocal
		} else {
			c.Observers.Mode = ObserveAll
		}
	}
}

// Problem is one thing wrong (or, with Warning, suspicious) in a check definition.
type Problem = finding.Problem

// Errors keeps the problems that are not warnings.
func Errors(ps []Problem) []Problem { return finding.Errors(ps) }

type problems struct {
	prefix string
	list   []Problem
}

func (ps *problems) add(field, format string, args ...any) {
	ps.list = append(ps.list, Problem{Field: join(ps.prefix, field), Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) warn(field, format string, args ...any) {
	ps.list = append(ps.list, Problem{Field: join(ps.prefix, field), Message: fmt.Sprintf(format, args...), Warning: true})
}

func join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case strings.HasPrefix(field, "["):
		return prefix + field
	}
	return prefix + "." + field
}

// ValidateChecks checks a list of checks (a group's checks: section) and that their
// names are unique. Fields start with path, e.g. "groups[0].checks". nodes, when
// not nil, are the cluster's node names that observer lists may use.
func ValidateChecks(path string, cs []Check, nodes []string) []Problem {
	var out []Problem
	seen := map[string]int{}
	for i, c := range cs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if j, dup := seen[c.DisplayName()]; dup {
			field := join(p, "name")
			out = append(out, Problem{Field: field, Message: fmt.Sprintf("%q is already the name of %s[%d]; give one of them a name", c.DisplayName(), path, j)})
		} else {
			seen[c.DisplayName()] = i
		}
		out = append(out, c.Validate(p, nodes)...)
	}
	return out
}

// Validate checks one check. Fields start with path (e.g. "groups[0].checks[1]").
// nodes, when not nil, are the node names observer lists may use.
func (c Check) Validate(path string, nodes []string) []Problem {
	ps := &problems{prefix: path}
	allowed, ok := checkFields[c.Type]
	if !ok {
		if c.Type == "" {
			ps.add("type", "required: icmp, tcp, http, https or script")
		} else {
			ps.add("type", "%q: use icmp, tcp, http, https or script", string(c.Type))
		}
		return ps.list
	}
	for _, f := range c.setFields() {
		if !contains(allowed, f) {
			ps.add(f, "not used by %s checks (%s ones take %s)", c.Type, c.Type, strings.Join(allowed, ", "))
		}
	}
	if c.Name != "" && strings.TrimSpace(c.Name) != c.Name {
		ps.add("name", "%q: no leading or trailing spaces", c.Name)
	}
	var host string // the probed host, when known, for loopback and family checks
	switch c.Type {
	case ICMP:
		host = validateHost(ps, "target", c.Target)
	case TCP:
		host = validateHostPort(ps, "address", c.Address)
	case HTTP, HTTPS:
		host = validateURL(ps, "url", c.URL, string(c.Type))
		validateHTTPOptions(ps, c)
	case Script:
		if len(c.Command) == 0 || c.Command[0] == "" {
			ps.add("command", "required: the program and its arguments, e.g. [/usr/local/bin/check-db, --quick]")
		}
	}
	if c.Source != "" && contains(allowed, "source") {
		validateSource(ps, "source", c.Source, host)
	}
	validateTiming(ps, c.Interval, c.Timeout, c.Rise, c.Fall)
	if c.LostAfter < 0 {
		ps.add("lost_after", "must be positive")
	}
	validateObservers(ps, c.Observers, nodes)
	// Every observer probing 127.0.0.1 tests itself, not the service the group
	// runs: the vote would be meaningless.
	mode := c.Observers.Mode
	if mode == ObserveDefault && c.Type != Script {
		mode = ObserveAll
	}
	if host != "" && isLoopback(host) && mode != ObserveLocal && !(mode == ObserveNodes && len(c.Observers.Nodes) == 1) {
		ps.add("observers", "the target %s is each observer's own loopback: use observers: local, or the group's address", host)
	}
	return ps.list
}

func validateHTTPOptions(ps *problems, c Check) {
	for i, s := range c.ExpectStatus {
		if _, _, err := parseStatus(s); err != nil {
			ps.add(fmt.Sprintf("expect_status[%d]", i), "%v", err)
		}
	}
	if c.Insecure && c.CAFile != "" {
		ps.add("insecure", "with ca_file set, insecure would ignore it: use one or the other")
	}
	if c.Insecure {
		ps.warn("insecure", "the server's certificate is not verified: anything answering on that address passes")
	}
	if len(c.BodyContains) > maxBodyContains {
		ps.add("body_contains", "longer than %d bytes", maxBodyContains)
	}
}

// maxBodyContains is far below the 256 KiB the probe reads, so a match is possible.
const maxBodyContains = 4096

func validateTiming(ps *problems, interval, timeout duration.Duration, rise, fall int) {
	iv, to := interval.D(), timeout.D()
	if iv < 0 {
		ps.add("interval", "must be positive")
	} else if iv > 0 && iv < MinInterval {
		ps.add("interval", "%s is below the %s floor", iv, MinInterval)
	}
	if to < 0 {
		ps.add("timeout", "must be positive")
	} else if to > 0 && to < MinTimeout {
		ps.add("timeout", "%s is below the %s floor", to, MinTimeout)
	}
	effIv := iv
	if effIv == 0 {
		effIv = DefaultInterval
	}
	if to > effIv {
		// Probes of one check never overlap, so a longer timeout would silently
		// stretch the interval.
		ps.add("timeout", "%s is longer than the interval (%s)", to, effIv)
	}
	if rise < 0 || rise > MaxRiseFall {
		ps.add("rise", "%d: use 1 to %d (0 means %d)", rise, MaxRiseFall, DefaultRise)
	}
	if fall < 0 || fall > MaxRiseFall {
		ps.add("fall", "%d: use 1 to %d (0 means %d)", fall, MaxRiseFall, DefaultFall)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ObserverMode says which nodes run a group check.
type ObserverMode string

// Observer modes. ObserveDefault is the zero value: all for network checks,
// local for scripts (see Check.ApplyDefaults).
const (
	ObserveDefault ObserverMode = ""
	ObserveAll     ObserverMode = "all"
	ObserveLocal   ObserverMode = "local"
	ObserveNodes   ObserverMode = "nodes"
)

// Observers is written as all, local, or a list of node names.
type Observers struct {
	Mode  ObserverMode
	Nodes []string // for ObserveNodes
	// bad keeps a value that could not be understood, so that Validate reports it
	// with its field path instead of the decoder failing without one.
	bad string
}

// UnmarshalYAML accepts "all", "local" or a list of node names. It has the
// signature both YAML libraries in use call, so the package needs neither.
func (o *Observers) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	*o = Observers{}
	switch x := v.(type) {
	case nil:
	case string:
		switch ObserverMode(x) {
		case ObserveAll, ObserveLocal:
			o.Mode = ObserverMode(x)
		default:
			o.bad = fmt.Sprintf("%q: use all, local or a list of node names ([%s])", x, x)
		}
	case []any:
		o.Mode = ObserveNodes
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				o.bad = fmt.Sprintf("%v: node names are strings", e)
				continue
			}
			o.Nodes = append(o.Nodes, s)
		}
	default:
		o.bad = fmt.Sprintf("%v: use all, local or a list of node names", x)
	}
	return nil
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (o Observers) MarshalYAML() (any, error) { return o.value(), nil }

// MarshalJSON writes "all", "local" or a list of names.
func (o Observers) MarshalJSON() ([]byte, error) { return json.Marshal(o.value()) }

func (o Observers) value() any {
	if o.Mode == ObserveNodes {
		return o.Nodes
	}
	return string(o.Mode)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (o *Observers) UnmarshalJSON(b []byte) error {
	return o.UnmarshalYAML(func(v any) error { return json.Unmarshal(b, v) })
}

func (o Observers) String() string {
	if o.Mode == ObserveNodes {
		return "[" + strings.Join(o.Nodes, ", ") + "]"
	}
	if o.Mode == ObserveDefault {
		return "default"
	}
	return string(o.Mode)
}

func validateObservers(ps *problems, o Observers, nodes []string) {
	if o.bad != "" {
		ps.add("observers", "%s", o.bad)
		return
	}
	switch o.Mode {
	case ObserveDefault, ObserveAll, ObserveLocal:
		return
	case ObserveNodes:
	default:
		ps.add("observers", "%q: use all, local or a list of node names", string(o.Mode))
		return
	}
	if len(o.Nodes) == 0 {
		ps.add("observers", "an empty list: use all, local or name at least one node")
	}
	seen := map[string]bool{}
	for i, n := range o.Nodes {
		f := fmt.Sprintf("observers[%d]", i)
		switch {
		case n == "":
			ps.add(f, "empty node name")
		case seen[n]:
			ps.add(f, "%q is listed twice", n)
		case nodes != nil && !contains(nodes, n):
			ps.add(f, "%q is not a node of this cluster", n)
		}
		seen[n] = true
	}
	if len(o.Nodes) == 2 {
		// A majority of two is both: one observer that cannot see the public
		// network, or one that disagrees, holds the verdict back.
		ps.warn("observers", "two observers: both must agree; a third (a witness will do) lets a majority decide")
	}
}

// ExpectStatus lists the accepted HTTP status codes: exact codes ("204", 204) or
// classes ("2xx"). Empty means 2xx and 3xx.
type ExpectStatus []string

// UnmarshalYAML accepts one code or a list, as numbers or strings.
func (e *ExpectStatus) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	*e = nil
	var items []any
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		items = x
	default:
		items = []any{x}
	}
	for _, it := range items {
		// Kept as text: Validate reports a bad entry with its index.
		*e = append(*e, fmt.Sprint(it))
	}
	return nil
}

// Match says whether code is accepted. Entries that do not parse match nothing;
// Validate reports them.
func (e ExpectStatus) Match(code int) bool {
	if len(e) == 0 {
		return code >= 200 && code < 400
	}
	for _, s := range e {
		lo, hi, err := parseStatus(s)
		if err == nil && code >= lo && code <= hi {
			return true
		}
	}
	return false
}

// String is the accepted set for a probe's detail: "2xx or 3xx", "200, 204".
func (e ExpectStatus) String() string {
	if len(e) == 0 {
		return "2xx or 3xx"
	}
	return strings.Join(e, ", ")
}

// parseStatus reads "204" or "2xx" as an inclusive range of codes.
func parseStatus(s string) (lo, hi int, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if len(t) == 3 && t[1:] == "xx" && t[0] >= '1' && t[0] <= '5' {
		c := int(t[0]-'0') * 100
		return c, c + 99, nil
	}
	n, perr := strconv.Atoi(t)
	if perr != nil || n < 100 || n > 599 {
		return 0, 0, fmt.Errorf("%q: use a status code from 100 to 599 or a class such as 2xx", s)
	}
	return n, n, nil
}
