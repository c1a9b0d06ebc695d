package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body under the
// target's secret; receivers recompute it to know the POST came from the cluster.
const SignatureHeader = "X-Vigil-Signature"

// Sign returns the SignatureHeader value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

type webhook struct {
	url        string
	secret     string
	secretFile string
	headers    map[string]string
	client     *http.Client
}

func newWebhook(t Target, opt Options) (*webhook, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	pool, err := loadCAs(resolve(opt.ConfigDir, t.CAFile))
	if err != nil {
		return nil, err
	}
	if pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &webhook{url: t.URL, secret: t.Secret, secretFile: resolve(opt.ConfigDir, t.SecretFile), headers: t.Headers,
		client: &http.Client{Transport: tr,
			// A redirected POST turns into a GET without the body: report the new URL instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
}

func (w *webhook) send(ctx context.Context, p Payload) error {
	body, err := p.encode()
	if err != nil {
		return permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("webhook request: %w", err))
	}
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-notify")
	req.Header.Set("X-Vigil-Delivery", p.ID)
	req.Header.Set("X-Vigil-Event", string(p.Event.Kind))
	secret := w.secret
	if w.secretFile != "" {
		if secret, err = readSecret(w.secretFile); err != nil {
			return fmt.Errorf("webhook secret_file: %w", err)
		}
	}
	if secret != "" {
		req.Header.Set(SignatureHeader, Sign([]byte(secret), body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	// Read a little so the connection can be reused and the error can quote it.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 300 && c < 400:
		return permanent(fmt.Errorf("webhook: %s redirects to %q: configure that URL", resp.Status, resp.Header.Get("Location")))
	case c == http.StatusRequestTimeout || c == http.StatusTooEarly || c == http.StatusTooManyRequests:
		return fmt.Errorf("webhook: %s %s", resp.Status, snippet(answer))
	case c >= 400 && c < 500:
		// The receiver refused this request; sending it again will not change its mind.
		return permanent(fmt.Errorf("webhook: %s %s", resp.Status, snippet(answer)))
	default:
		return fmt.Errorf("webhook: %s %s", resp.Status, snippet(answer))
	}
}

func (w *webhook) close() { w.client.CloseIdleConnections() }
