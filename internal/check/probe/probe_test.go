package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/check"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func probeWithin(t *testing.T, p check.Prober, timeout time.Duration) check.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Probe(ctx)
}

func wantOK(t *testing.T, r check.Result, detail string) {
	t.Helper()
	if !r.OK || !strings.Contains(r.Detail, detail) {
		t.Fatalf("want ok with %q, got %+v", detail, r)
	}
	if r.Duration <= 0 {
		t.Errorf("no duration: %+v", r)
	}
}

func wantFail(t *testing.T, r check.Result, detail string) {
	t.Helper()
	if r.OK || !strings.Contains(r.Detail, detail) {
		t.Fatalf("want failure with %q, got %+v", detail, r)
	}
}

func build(t *testing.T, c check.Check) check.Prober {
	t.Helper()
	if ps := c.Validate("check", nil); len(check.Errors(ps)) > 0 {
		t.Fatalf("invalid check in test: %v", ps)
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// acceptLoop serves a listener until it is closed, reporting each peer's address.
func acceptLoop(t *testing.T, ln net.Listener) <-chan string {
	peers := make(chan string, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case peers <- c.RemoteAddr().String():
			default:
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return peers
}

func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peers := acceptLoop(t, ln)
	addr := ln.Addr().String()

	t.Run("open port", func(t *testing.T) {
		wantOK(t, probeWithin(t, build(t, check.Check{Type: check.TCP, Address: addr, Observers: local}), time.Second), "connected to "+addr)
		<-peers
	})
	t.Run("source address", func(t *testing.T) {
		// Every 127/8 address is local on Linux: 127.0.0.2 proves the bind.
		p := build(t, check.Check{Type: check.TCP, Address: addr, Source: "127.0.0.2", Observers: local})
		wantOK(t, probeWithin(t, p, time.Second), "connected")
		if peer := <-peers; !strings.HasPrefix(peer, "127.0.0.2:") {
			t.Errorf("server saw %s, want 127.0.0.2", peer)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := closed.Addr().String()
		closed.Close()
		wantFail(t, probeWithin(t, &TCP{Address: a}, time.Second), "connection refused")
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
		defer cancel()
		wantFail(t, (&TCP{Address: addr}).Probe(ctx), "timed out")
	})
	t.Run("source not local", func(t *testing.T) {
		wantFail(t, probeWithin(t, &TCP{Address: addr, Source: netip.MustParseAddr("192.0.2.77")}, time.Second), "bind")
	})
	t.Run("ipv6", func(t *testing.T) {
		if !hasIPv6Loopback() {
			t.Skip("no IPv6 loopback")
		}
		ln6, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		acceptLoop(t, ln6)
		wantOK(t, probeWithin(t, build(t, check.Check{Type: check.TCP, Address: ln6.Addr().String(), Source: "::1", Observers: local}), time.Second), "connected")
	})
}

var local = check.Observers{Mode: check.ObserveLocal}

func httpServer(t *testing.T) (*httptest.Server, *sync.Map) {
	hits := &sync.Map{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		hits.Store("/ok", r.RemoteAddr)
		fmt.Fprint(w, "status: all good")
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "backend database unreachable", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		hits.Store("/elsewhere", true)
		http.Error(w, "should not be followed", http.StatusInternalServerError)
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		// The marker lies beyond what the probe reads.
		w.Write([]byte(strings.Repeat("x", maxBody+10)))
		w.Write([]byte("MARKER"))
	})
	return httptest.NewUnstartedServer(mux), hits
}

func TestHTTP(t *testing.T) {
	srv, hits := httpServer(t)
	srv.Start()
	defer srv.Close()
	u := srv.URL
	cases := []struct {
		name   string
		c      check.Check
		ok     bool
		detail string
	}{
		{"200", check.Check{URL: u + "/ok"}, true, "HTTP 200"},
		{"503", check.Check{URL: u + "/down"}, false, "HTTP 503, expected 2xx or 3xx"},
		{"404", check.Check{URL: u + "/nothing"}, false, "HTTP 404"},
		{"redirect is up and not followed", check.Check{URL: u + "/moved"}, true, "HTTP 302"},
		{"redirect not expected", check.Check{URL: u + "/moved", ExpectStatus: check.ExpectStatus{"200"}}, false, "HTTP 302, expected 200"},
		{"expect 204", check.Check{URL: u + "/nocontent", ExpectStatus: check.ExpectStatus{"204"}}, true, "HTTP 204"},
		{"expect 503", check.Check{URL: u + "/down", ExpectStatus: check.ExpectStatus{"5xx"}}, true, "HTTP 503"},
		{"body match", check.Check{URL: u + "/ok", BodyContains: "all good"}, true, `body contains "all good"`},
		{"body miss shows the page", check.Check{URL: u + "/ok", BodyContains: "ready"}, false, `lacks "ready" (body: "status: all good")`},
		{"body beyond the limit", check.Check{URL: u + "/big", BodyContains: "MARKER"}, false, "lacks"},
		{"slow server times out", check.Check{URL: u + "/slow", Timeout: 0}, false, "timed out after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Type, tc.c.Observers = check.HTTP, local
			r := probeWithin(t, build(t, tc.c), 300*time.Millisecond)
			t.Logf("%+v", r)
			if r.OK != tc.ok || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("got %+v, want ok=%v with %q", r, tc.ok, tc.detail)
			}
		})
	}
	if _, followed := hits.Load("/elsewhere"); followed {
		t.Error("a redirect was followed")
	}
	t.Run("source address", func(t *testing.T) {
		r := probeWithin(t, build(t, check.Check{Type: check.HTTP, URL: u + "/ok", Source: "127.0.0.3", Observers: local}), time.Second)
		wantOK(t, r, "HTTP 200")
		if peer, _ := hits.Load("/ok"); !strings.HasPrefix(peer.(string), "127.0.0.3:") {
			t.Errorf("server saw %v", peer)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		a := ln.Addr().String()
		ln.Close()
		wantFail(t, probeWithin(t, build(t, check.Check{Type: check.HTTP, URL: "http://" + a + "/", Observers: local}), time.Second), "connection refused")
	})
}

// testCA is a private CA and a server certificate for 127.0.0.1 and ::1 only.
type testCA struct {
	pemFile string
	server  tls.Certificate
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "service"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return testCA{pemFile: file, server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

func TestHTTPS(t *testing.T) {
	ca := newTestCA(t, "vigil-test-ca")
	other := newTestCA(t, "other-ca")
	srv, _ := httpServer(t)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.server}}
	// The server's own handshake errors (from the probes meant to fail) are noise.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	u := srv.URL

	cases := []struct {
		name   string
		c      check.Check
		ok     bool
		detail string
	}{
		{"verified with its CA", check.Check{URL: u + "/ok", CAFile: ca.pemFile, BodyContains: "good"}, true, "HTTP 200"},
		{"status still checked", check.Check{URL: u + "/down", CAFile: ca.pemFile}, false, "HTTP 503"},
		{"system roots do not know it", check.Check{URL: u + "/ok"}, false, "certificate"},
		{"another CA", check.Check{URL: u + "/ok", CAFile: other.pemFile}, false, "certificate"},
		{"name not in the certificate", check.Check{URL: fmt.Sprintf("https://localhost:%d/ok", port), CAFile: ca.pemFile}, false, "certificate"},
		{"insecure skips verification", check.Check{URL: fmt.Sprintf("https://localhost:%d/ok", port), Insecure: true}, true, "HTTP 200"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Type, tc.c.Observers = check.HTTPS, local
			r := probeWithin(t, build(t, tc.c), 2*time.Second)
			t.Logf("%+v", r)
			if r.OK != tc.ok || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("got %+v, want ok=%v with %q", r, tc.ok, tc.detail)
			}
		})
	}
	t.Run("ipv6", func(t *testing.T) {
		if !hasIPv6Loopback() {
			t.Skip("no IPv6 loopback")
		}
		srv6, _ := httpServer(t)
		ln, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		srv6.Listener.Close()
		srv6.Listener = ln
		srv6.TLS = &tls.Config{Certificates: []tls.Certificate{ca.server}}
		srv6.StartTLS()
		defer srv6.Close()
		r := probeWithin(t, build(t, check.Check{Type: check.HTTPS, URL: srv6.URL + "/ok", CAFile: ca.pemFile, Source: "::1", Observers: local}), 2*time.Second)
		wantOK(t, r, "HTTP 200")
	})
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o644)
	for _, tc := range []struct {
		c    check.Check
		want string
	}{
		{check.Check{Type: check.HTTPS, URL: "https://127.0.0.1/", CAFile: filepath.Join(dir, "missing.pem")}, "read ca_file"},
		{check.Check{Type: check.HTTPS, URL: "https://127.0.0.1/", CAFile: junk}, "no PEM certificate"},
		{check.Check{Type: check.TCP, Address: "127.0.0.1:1", Source: "lo"}, "not an IP address"},
		{check.Check{Type: check.TCP, Address: "127.0.0.1"}, "missing :port"},
		{check.Check{Type: "smoke"}, "unknown type"},
		{check.Check{Type: check.Script}, "no command"},
		{check.Check{Type: check.HTTP, URL: "gopher://h/"}, "scheme"},
	} {
		if _, err := New(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.c, err, tc.want)
		}
	}
}

func TestScript(t *testing.T) {
	sh := func(script string) check.Prober {
		return build(t, check.Check{Type: check.Script, Command: []string{"/bin/sh", "-c", script}})
	}
	wantOK(t, probeWithin(t, sh("echo checking; echo all fine"), 5*time.Second), "exit status 0: all fine")
	wantFail(t, probeWithin(t, sh("echo 'disk full' >&2; exit 3"), 5*time.Second), "exit status 3: disk full")
	wantOK(t, probeWithin(t, sh(`test "$VIGIL_CHECK" = "script sh"`), 5*time.Second), "exit status 0")

	start := time.Now()
	// The child ignores SIGTERM: only the SIGKILL after the grace ends it.
	r := probeWithin(t, sh("trap '' TERM; sleep 30 & wait"), 200*time.Millisecond)
	wantFail(t, r, "timed out")
	if took := time.Since(start); took > 200*time.Millisecond+scriptGrace+2*time.Second {
		t.Errorf("a timed-out script took %s", took)
	}

	wantFail(t, probeWithin(t, &Script{Command: []string{"/nonexistent/check"}}, time.Second), "start /nonexistent/check")
	wantFail(t, probeWithin(t, &Script{Command: []string{"/bin/sh", "-c", "kill -9 $$"}}, time.Second), "killed")
}

// The detail of a timed-out read says how long, not Go's error chain.
func TestDescribe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d := describe(ctx, io.EOF, time.Now()); d != "cancelled" {
		t.Errorf("got %q", d)
	}
	if d := describe(context.Background(), io.EOF, time.Now()); d != "EOF" {
		t.Errorf("got %q", d)
	}
}
