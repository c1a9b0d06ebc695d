package check

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/vigil-ha/vigil/internal/duration"
)

// PublicTarget is one address on the public (client) network that every node
// probes to learn whether it can still reach its clients, written as
// {icmp: 192.0.2.1}, {tcp: "192.0.2.2:53"} or {http: "http://192.0.2.3/"} (an
// https URL is verified against the system roots). Exactly one of the three is set.
type PublicTarget struct {
	ICMP string `yaml:"icmp"`
	TCP  string `yaml:"tcp"`
	HTTP string `yaml:"http"`

	// Optional tuning; zero means the check defaults (2s, 1s, rise 2, fall 3), so
	// a node is isolated 4 to 6 seconds after its public network goes away.
	Interval duration.Duration `yaml:"interval"`
	Timeout  duration.Duration `yaml:"timeout"`
	Rise     int               `yaml:"rise"`
	Fall     int               `yaml:"fall"`
}

// Name identifies the target in events: "icmp 192.0.2.1", "tcp 192.0.2.2:53",
// "http http://192.0.2.3/".
func (t PublicTarget) Name() string {
	switch {
	case t.ICMP != "":
		return "icmp " + t.ICMP
	case t.TCP != "":
		return "tcp " + t.TCP
	case t.HTTP != "":
		return "http " + t.HTTP
	}
	return "(empty public target)"
}

// Check is the target as a check that the node runs on its own behalf, sent from
// source (the node's public address; "" lets the routing table choose), with
// defaults applied. A source of the other IP family than a literal target is left
// out: an IPv4 public address cannot send to an IPv6 target.
func (t PublicTarget) Check(source string) Check {
	c := Check{
		Name:      "public " + t.Name(),
		Interval:  t.Interval,
		Timeout:   t.Timeout,
		Rise:      t.Rise,
		Fall:      t.Fall,
		Source:    source,
		Observers: Observers{Mode: ObserveLocal},
	}
	switch {
	case t.ICMP != "":
		c.Type, c.Target = ICMP, t.ICMP
	case t.TCP != "":
		c.Type, c.Address = TCP, t.TCP
	case strings.HasPrefix(t.HTTP, "https:"):
		c.Type, c.URL = HTTPS, t.HTTP
	default:
		c.Type, c.URL = HTTP, t.HTTP
	}
	if source != "" {
		if s, err := netip.ParseAddr(source); err == nil {
			if h := t.host(); h.IsValid() && h.Unmap().Is4() != s.Unmap().Is4() {
				c.Source = ""
			}
		}
	}
	c.ApplyDefaults()
	return c
}

// host is the target's address when it is an IP literal.
func (t PublicTarget) host() netip.Addr {
	h := t.ICMP
	switch {
	case t.TCP != "":
		h, _, _ = ParseHostPort(t.TCP)
	case t.HTTP != "":
		if u, err := url.Parse(t.HTTP); err == nil {
			h = u.Hostname()
		}
	}
	a, _ := netip.ParseAddr(h)
	return a
}

// ValidatePublicTargets checks the cluster's public_targets. Fields start with
// path, e.g. "cluster.public_targets" gives "cluster.public_targets[1].tcp". An
// empty list is valid: the feature is off and no node is ever isolated.
func ValidatePublicTargets(path string, ts []PublicTarget) []Problem {
	ps := &problems{prefix: path}
	if n := len(ts); n > 0 && n < MinPublicTargets {
		ps.add("", "%d target(s): give %d to %d, so that one target going away cannot isolate every node",
			n, MinPublicTargets, MaxPublicTargets)
	} else if n > MaxPublicTargets {
		ps.add("", "%d targets: give %d to %d; more add probe traffic, not certainty", n, MinPublicTargets, MaxPublicTargets)
	}
	seen := map[string]int{}
	for i, t := range ts {
		tp := &problems{prefix: fmt.Sprintf("%s[%d]", path, i)}
		var set []string
		for _, f := range []struct {
			name, v string
		}{{"icmp", t.ICMP}, {"tcp", t.TCP}, {"http", t.HTTP}} {
			if f.v != "" {
				set = append(set, f.name)
			}
		}
		switch len(set) {
		case 0:
			tp.add("", "give one of icmp, tcp or http")
		case 1:
			var host string
			switch set[0] {
			case "icmp":
				host = validateHost(tp, "icmp", t.ICMP)
			case "tcp":
				host = validateHostPort(tp, "tcp", t.TCP)
			case "http":
				host = validateURL(tp, "http", t.HTTP, "http|https")
			}
			if host != "" && isLoopback(host) {
				tp.add(set[0], "%s is a loopback address: always reachable, it would hide an isolated node", host)
			}
			if j, dup := seen[t.Name()]; dup {
				tp.add(set[0], "the same target as %s[%d]", path, j)
			} else {
				seen[t.Name()] = i
			}
		default:
			tp.add(set[1], "one target per entry: %s is already set", set[0])
		}
		validateTiming(tp, t.Interval, t.Timeout, t.Rise, t.Fall)
		ps.list = append(ps.list, tp.list...)
	}
	return ps.list
}
