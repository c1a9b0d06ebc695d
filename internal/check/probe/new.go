package probe

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"

	"github.com/vigil-ha/vigil/internal/check"
)

// New builds the probe a validated check describes. Files (ca_file) are read
// here, once, so that a missing CA is a start-up error rather than a check that
// fails at every probe and moves the group. Relative paths are the caller's to
// resolve (against the config file's directory).
func New(c check.Check) (check.Prober, error) {
	name := c.DisplayName()
	var src netip.Addr
	if c.Source != "" {
		a, err := netip.ParseAddr(c.Source)
		if err != nil {
			return nil, fmt.Errorf("check %s: source %q: not an IP address", name, c.Source)
		}
		src = a
	}
	switch c.Type {
	case check.ICMP:
		if c.Target == "" {
			return nil, fmt.Errorf("check %s: no target", name)
		}
		return &ICMP{Target: c.Target, Source: src}, nil
	case check.TCP:
		if _, _, err := check.ParseHostPort(c.Address); err != nil {
			return nil, fmt.Errorf("check %s: address %q: %w", name, c.Address, err)
		}
		return &TCP{Address: c.Address, Source: src}, nil
	case check.HTTP:
		p, err := NewHTTP(c.URL, c.ExpectStatus, c.BodyContains, src, nil)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", name, err)
		}
		return p, nil
	case check.HTTPS:
		conf, err := tlsConfig(c.CAFile, c.Insecure)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", name, err)
		}
		p, err := NewHTTP(c.URL, c.ExpectStatus, c.BodyContains, src, conf)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", name, err)
		}
		return p, nil
	case check.Script:
		if len(c.Command) == 0 || c.Command[0] == "" {
			return nil, fmt.Errorf("check %s: no command", name)
		}
		// The script learns which check it serves, so one script can serve several.
		return &Script{Command: append([]string(nil), c.Command...), Env: []string{"VIGIL_CHECK=" + name}}, nil
	}
	return nil, fmt.Errorf("check %s: unknown type %q", name, string(c.Type))
}

// tlsConfig verifies against caFile alone when given (the CA that signed the
// service; trusting the system roots as well would accept any public certificate
// for that name), the system roots otherwise, or nothing when insecure.
func tlsConfig(caFile string, insecure bool) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		conf.InsecureSkipVerify = true
		return conf, nil
	}
	if caFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}
