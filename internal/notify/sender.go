package notify

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func newSender(t Target, opt Options) (sender, time.Duration, error) {
	timeout := t.Timeout.D()
	def := map[string]time.Duration{TypeWebhook: DefaultWebhookTimeout, TypeEmail: DefaultEmailTimeout,
		TypeScript: DefaultScriptTimeout, TypeSyslog: DefaultSyslogTimeout, TypeFile: 10 * time.Second}[t.Type]
	if timeout <= 0 {
		timeout = def
	}
	var s sender
	var err error
	switch t.Type {
	case TypeWebhook:
		s, err = newWebhook(t, opt)
	case TypeEmail:
		s, err = newEmail(t, opt)
	case TypeScript:
		s = &scriptSender{argv: t.Command, log: opt.Logger.With("target", t.Name)}
	case TypeSyslog:
		s = &syslogSender{network: t.Network, address: t.Address, tag: t.Tag}
	case TypeFile:
		s = &fileSender{path: filepath.Join(resolve(opt.ConfigDir, t.Dir), LogFileName)}
	default:
		err = fmt.Errorf("unknown type %q", t.Type)
	}
	if err != nil {
		return nil, timeout, err
	}
	return s, timeout, nil
}

// brokenSender stands in for a target whose setup failed, so the failure shows in Status.
type brokenSender struct{ err error }

func (b brokenSender) send(context.Context, Payload) error { return b.err }
func (b brokenSender) close()                              {}

// resolve makes a configured path absolute against the config file's directory.
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// readSecret reads a key or password file at each use, so a rotated secret needs
// no restart. Trailing newlines (from echo) are not part of the secret.
func readSecret(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

func loadCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// snippet shortens a receiver's answer for an error message.
func snippet(b []byte) string {
	s := oneLine(strings.TrimSpace(string(b)))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
