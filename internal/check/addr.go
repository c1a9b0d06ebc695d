package check

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ParseHostPort splits "host:port" or "[v6]:port" without importing net, which
// keeps this package free of I/O; probes use it to know what they dial.
func ParseHostPort(s string) (host string, port int, err error) {
	var ps string
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, errors.New("missing ']' after the IPv6 address")
		}
		host, ps = s[1:end], s[end+1:]
		if !strings.HasPrefix(ps, ":") {
			return "", 0, errors.New("missing :port after the address")
		}
		ps = ps[1:]
		if _, err := netip.ParseAddr(host); err != nil {
			return "", 0, fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
	default:
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return "", 0, errors.New("missing :port")
		}
		host, ps = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return "", 0, errors.New("an IPv6 address needs brackets: [2001:db8::1]:80")
		}
	}
	if host == "" {
		return "", 0, errors.New("missing host")
	}
	port, perr := strconv.Atoi(ps)
	if perr != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: use 1 to 65535", ps)
	}
	return host, port, nil
}

// validHostname accepts DNS names (RFC 1123 labels); IP literals are checked apart.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func checkHost(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if !validHostname(h) {
		return fmt.Errorf("%q is neither an IP address nor a host name", h)
	}
	return nil
}

// validateHost checks a bare host (icmp) and returns it when valid.
func validateHost(ps *problems, field, s string) string {
	if s == "" {
		ps.add(field, "required: an IPv4 or IPv6 address or a host name")
		return ""
	}
	if strings.HasPrefix(s, "[") || (strings.Count(s, ":") == 1) {
		ps.add(field, "%q: icmp has no port; give the address alone", s)
		return ""
	}
	if err := checkHost(s); err != nil {
		ps.add(field, "%v", err)
		return ""
	}
	return s
}

// validateHostPort checks host:port (tcp) and returns the host when valid.
func validateHostPort(ps *problems, field, s string) string {
	if s == "" {
		ps.add(field, "required: host:port, e.g. 10.0.0.100:5432 or [2001:db8::1]:53")
		return ""
	}
	host, _, err := ParseHostPort(s)
	if err != nil {
		ps.add(field, "%q: %v", s, err)
		return ""
	}
	if err := checkHost(host); err != nil {
		ps.add(field, "%v", err)
		return ""
	}
	return host
}

// validateURL checks an http or https URL; schemes lists the accepted ones
// (the check type, or "http|https" for public targets). It returns the host.
func validateURL(ps *problems, field, s, schemes string) string {
	if s == "" {
		ps.add(field, "required: e.g. http://10.0.0.100/health")
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		ps.add(field, "%q: not a URL", s)
		return ""
	}
	okScheme := false
	for _, sc := range strings.Split(schemes, "|") {
		okScheme = okScheme || u.Scheme == sc
	}
	if !okScheme {
		if schemes == string(HTTP) && u.Scheme == "https" {
			ps.add(field, "%q: an https URL needs type: https", s)
		} else if schemes == string(HTTPS) && u.Scheme == "http" {
			ps.add(field, "%q: an http URL needs type: http", s)
		} else {
			ps.add(field, "%q: the scheme must be %s", s, strings.ReplaceAll(schemes, "|", " or "))
		}
		return ""
	}
	host := u.Hostname()
	if host == "" {
		ps.add(field, "%q: no host", s)
		return ""
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			ps.add(field, "%q: port %q: use 1 to 65535", s, p)
			return ""
		}
	}
	if err := checkHost(host); err != nil {
		ps.add(field, "%v", err)
		return ""
	}
	return host
}

// validateSource checks a source address and, when the target is an IP literal,
// that both are of one family (an IPv4 source cannot reach an IPv6 target).
func validateSource(ps *problems, field, src, host string) {
	a, err := netip.ParseAddr(src)
	if err != nil {
		ps.add(field, "%q: not an IP address (the local address probes are sent from)", src)
		return
	}
	if a.IsUnspecified() || a.IsMulticast() {
		ps.add(field, "%s: use one of this node's unicast addresses", src)
		return
	}
	if t, err := netip.ParseAddr(host); err == nil && t.Unmap().Is4() != a.Unmap().Is4() {
		ps.add(field, "%s and the target %s are of different IP families", src, host)
	}
}

// isLoopback: a loopback literal, or localhost, which resolves to one.
func isLoopback(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.IsLoopback()
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}
