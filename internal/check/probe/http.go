package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// maxBody bounds what is read for body_contains: a health page is small, and a
// check that hits a large download must not eat the agent's memory.
const maxBody = 256 << 10

// HTTP passes when a GET of URL answers with an accepted status and, if
// BodyContains is set, a body containing it. Redirects are not followed and
// connections are not reused: each probe tests a fresh connect, as a new client would.
type HTTP struct {
	URL          string
	Expect       check.ExpectStatus // empty: 2xx or 3xx
	BodyContains string

	client *http.Client
}

var _ check.Prober = (*HTTP)(nil)

// NewHTTP builds an http or https probe. tlsConf is used for https URLs (nil:
// verify against the system roots); source binds the local address (zero: any).
func NewHTTP(rawURL string, expect check.ExpectStatus, bodyContains string, source netip.Addr, tlsConf *tls.Config) (*HTTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("http probe: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("http probe: %q: scheme must be http or https", rawURL)
	}
	if tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr := &http.Transport{
		// No proxy from the environment: the check tests the path from this node.
		Proxy:               nil,
		DialContext:         dialer(source).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 0, // ctx bounds the whole probe
		DisableKeepAlives:   true,
		DisableCompression:  true,
		// A server that sends headers for ever must not hold the probe beyond its
		// timeout either; ctx already ends it, this bounds memory.
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &HTTP{
		URL:          rawURL,
		Expect:       expect,
		BodyContains: bodyContains,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Probe sends one GET within ctx's deadline.
func (p *HTTP) Probe(ctx context.Context) check.Result {
	start := time.Now()
	ok, detail := p.probe(ctx, start)
	return check.Result{OK: ok, Detail: detail, Duration: time.Since(start)}
}

func (p *HTTP) probe(ctx context.Context, start time.Time) (bool, string) {
	if p.client == nil {
		return false, "http probe not built with NewHTTP"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return false, fmt.Sprintf("bad request: %v", err)
	}
	req.Header.Set("User-Agent", "vigil-check")
	resp, err := p.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return false, describe(ctx, err, start)
	}
	defer resp.Body.Close()
	if !p.Expect.Match(resp.StatusCode) {
		return false, fmt.Sprintf("HTTP %d, expected %s", resp.StatusCode, p.Expect)
	}
	if p.BodyContains == "" {
		return true, fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil && !bytes.Contains(body, []byte(p.BodyContains)) {
		return false, fmt.Sprintf("HTTP %d, reading the body: %s", resp.StatusCode, describe(ctx, err, start))
	}
	if !bytes.Contains(body, []byte(p.BodyContains)) {
		return false, fmt.Sprintf("HTTP %d, body lacks %q%s", resp.StatusCode, p.BodyContains, excerpt(body))
	}
	return true, fmt.Sprintf("HTTP %d, body contains %q", resp.StatusCode, p.BodyContains)
}

// excerpt shows the start of a body that did not match: usually an error page
// that says why.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return " (empty body)"
	}
	const max = 80
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf(" (body: %q)", s)
}
