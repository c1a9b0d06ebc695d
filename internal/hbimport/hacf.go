package hbimport

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Directive is one meaningful line of ha.cf or authkeys: its name and its
// arguments, with the comment removed.
type Directive struct {
	Line int
	Name string
	Args []string
}

func (d Directive) text() string {
	return strings.TrimSpace(d.Name + " " + strings.Join(d.Args, " "))
}

// lex splits a Heartbeat configuration file as Heartbeat's parse_config does:
// a '#' anywhere starts a comment, the first word is the directive, and the
// arguments are separated by blanks or commas ("node a, b" names two nodes).
func lex(data []byte) []Directive {
	var out []Directive
	for i, line := range strings.Split(string(data), "\n") {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		f := strings.FieldsFunc(line, isDelim)
		if len(f) == 0 {
			continue
		}
		out = append(out, Directive{Line: i + 1, Name: f[0], Args: f[1:]})
	}
	return out
}

func isDelim(r rune) bool {
	switch r {
	case ' ', '\t', ',', '\r', '\f', '\v':
		return true
	}
	return false
}

// Medium is one heartbeat path of ha.cf: bcast, mcast, ucast (and their IPv6
// forms) name an interface; serial names a device.
type Medium struct {
	Line  int
	Kind  string // bcast, mcast, mcast6, ucast, ucast6, serial
	Iface string // interface, or the serial device
	Peer  netip.Addr
}

// Setting is a directive whose last occurrence wins, as in Heartbeat.
type Setting struct {
	Line  int
	Value string
	Raw   string // as written, when Value is normalised
}

// Timing is one of keepalive, warntime, deadtime, initdead as Heartbeat read it.
type Timing struct {
	Line int // 0: not set in the file
	D    time.Duration
}

// NameAt is a node name with the line that declared it.
type NameAt struct {
	Line int
	Name string
}

// HaCf is what the importer takes from one ha.cf file.
type HaCf struct {
	File string
	// Node is the node this file was taken from, when the operator said so
	// (--ha-cf NODE=FILE): its ucast lines then name the other nodes' addresses.
	Node string

	Keepalive, Warntime, Deadtime, Initdead Timing
	Nodes                                   []NameAt
	Cluster                                 *Setting
	// AutoFailback is normalised to on, off or legacy.
	AutoFailback *Setting
	Media        []Medium
	// Pings are ping and ping_group lines: Heartbeat's public-network targets.
	Pings []Directive
	// CRM is a crm or pacemaker line that turns Pacemaker on: resources then live
	// in the CIB, not in haresources.
	CRM *Directive
	// Other lines are kept to be reported as not translated.
	Other []Directive
}

// maxTiming bounds Heartbeat times so that the arithmetic stays far from overflow;
// nobody waits a day to declare a node dead.
const maxTiming = 24 * time.Hour

// ParseHaCf reads one ha.cf. It returns InputErrors for lines Heartbeat would
// refuse (a time that is not a time, a ucast without a peer address); unknown or
// untranslatable directives are kept in Other, not refused.
func ParseHaCf(file string, data []byte) (*HaCf, error) {
	h := &HaCf{File: file}
	var errs InputErrors
	bad := func(d Directive, format string, args ...any) {
		errs = append(errs, InputError{File: file, Line: d.Line, Directive: d.Name, Msg: fmt.Sprintf(format, args...)})
	}
	for _, d := range lex(data) {
		name := strings.ToLower(d.Name)
		if name == "udp" {
			// Heartbeat's own alias (DIRTYALIASKLUDGE): udp was bcast's old name.
			name = "bcast"
		}
		switch name {
		case "keepalive", "warntime", "deadtime", "initdead":
			if len(d.Args) != 1 {
				bad(d, "want one time, e.g. %s 2 (seconds) or %s 1500ms", name, name)
				continue
			}
			v, err := parseHbTime(d.Args[0])
			if err != nil {
				bad(d, "%v", err)
				continue
			}
			if v <= 0 && (name == "keepalive" || name == "warntime") {
				// Heartbeat refuses these (set_keepalive_ms, set_warntime_ms).
				bad(d, "%q: must be more than 0", d.Args[0])
				continue
			}
			t := Timing{Line: d.Line, D: v}
			switch name {
			case "keepalive":
				h.Keepalive = t
			case "warntime":
				h.Warntime = t
			case "deadtime":
				h.Deadtime = t
			case "initdead":
				h.Initdead = t
			}
		case "node":
			if len(d.Args) == 0 {
				bad(d, "no node name")
			}
			for _, n := range d.Args {
				// Heartbeat lower-cases node names (add_node: g_strdown).
				h.Nodes = append(h.Nodes, NameAt{Line: d.Line, Name: strings.ToLower(n)})
			}
		case "cluster":
			if len(d.Args) != 1 {
				bad(d, "want one cluster name")
				continue
			}
			h.Cluster = &Setting{Line: d.Line, Value: d.Args[0]}
		case "auto_failback":
			if len(d.Args) != 1 {
				bad(d, "want on, off or legacy")
				continue
			}
			v, ok := failbackValue(d.Args[0])
			if !ok {
				bad(d, "%q: want on, off or legacy (or another boolean: yes, no, true, false, y, n, 1, 0)", d.Args[0])
				continue
			}
			h.AutoFailback = &Setting{Line: d.Line, Value: v, Raw: d.text()}
		case "nice_failback":
			// Obsolete; Heartbeat reads "on" as auto_failback off and "off" as legacy.
			b, ok := boolValue(firstArg(d))
			if !ok || len(d.Args) != 1 {
				bad(d, "want on or off")
				continue
			}
			v := "legacy"
			if b {
				v = "off"
			}
			h.AutoFailback = &Setting{Line: d.Line, Value: v, Raw: d.text()}
		case "bcast":
			if len(d.Args) == 0 {
				bad(d, "no interface")
			}
			for _, ifc := range d.Args {
				h.Media = append(h.Media, Medium{Line: d.Line, Kind: name, Iface: ifc})
			}
		case "mcast", "mcast6":
			// mcast IFACE GROUP PORT TTL LOOP
			if len(d.Args) != 5 {
				bad(d, "want %s IFACE GROUP PORT TTL LOOP", name)
				continue
			}
			g, err := netip.ParseAddr(d.Args[1])
			if err != nil || !g.IsMulticast() {
				bad(d, "%q is not a multicast group address", d.Args[1])
				continue
			}
			h.Media = append(h.Media, Medium{Line: d.Line, Kind: name, Iface: d.Args[0]})
		case "ucast", "ucast6":
			if len(d.Args) != 2 {
				bad(d, "want %s IFACE PEER-ADDRESS", name)
				continue
			}
			ip, err := netip.ParseAddr(d.Args[1])
			if err != nil || ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() {
				// Host names would need DNS at failover time; vigil refuses them too.
				bad(d, "%q is not a unicast IP address", d.Args[1])
				continue
			}
			h.Media = append(h.Media, Medium{Line: d.Line, Kind: name, Iface: d.Args[0], Peer: ip.Unmap()})
		case "serial":
			if len(d.Args) == 0 {
				bad(d, "no serial device")
			}
			for _, dev := range d.Args {
				h.Media = append(h.Media, Medium{Line: d.Line, Kind: name, Iface: dev})
			}
		case "ping", "ping_group":
			h.Pings = append(h.Pings, d)
		case "crm", "pacemaker":
			if v := strings.ToLower(firstArg(d)); v == "respawn" || v == "on" || v == "yes" || v == "true" || v == "y" || v == "1" {
				dd := d
				h.CRM = &dd
				continue
			}
			h.Other = append(h.Other, d)
		default:
			h.Other = append(h.Other, d)
		}
	}
	if len(errs) > 0 {
		return h, errs
	}
	return h, nil
}

func firstArg(d Directive) string {
	if len(d.Args) == 0 {
		return ""
	}
	return d.Args[0]
}

// boolValue is Heartbeat's cl_str_to_boolean.
func boolValue(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "on", "yes", "y", "1":
		return true, true
	case "false", "off", "no", "n", "0":
		return false, true
	}
	return false, false
}

func failbackValue(s string) (string, bool) {
	if strings.EqualFold(s, "legacy") {
		return "legacy", true
	}
	b, ok := boolValue(s)
	if !ok {
		return "", false
	}
	if b {
		return "on", true
	}
	return "off", true
}

// parseHbTime reads Heartbeat's time syntax (get_msec): a bare number is
// seconds, "ms"/"msec" and "us"/"usec" suffixes change the unit, and the result
// is rounded to the millisecond. "s"/"sec" are accepted as well, although
// Heartbeat itself did not, because an operator may have written them in a
// copy meant for another tool.
func parseHbTime(s string) (time.Duration, error) {
	ls := strings.ToLower(s)
	num := strings.TrimRight(ls, "abcdefghijklmnopqrstuvwxyz")
	unit := ls[len(num):]
	if num == "" || strings.Trim(num, "0123456789.") != "" {
		return 0, fmt.Errorf("%q is not a time (Heartbeat times are seconds, e.g. 2, or end in ms, e.g. 1500ms)", s)
	}
	var mult float64
	switch unit {
	case "", "s", "sec":
		mult = 1000
	case "ms", "msec":
		mult = 1
	case "us", "usec":
		mult = 0.001
	default:
		return 0, fmt.Errorf("%q: unknown unit %q (Heartbeat times are seconds, or end in ms or us)", s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a time (Heartbeat times are seconds, e.g. 2, or end in ms, e.g. 1500ms)", s)
	}
	ms := math.Floor(v*mult + 0.5)
	if ms > float64(maxTiming/time.Millisecond) {
		return 0, fmt.Errorf("%q is longer than %s", s, maxTiming)
	}
	return time.Duration(ms) * time.Millisecond, nil
}
