package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const year = 365 * 24 * time.Hour

var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

func newCA(t *testing.T, cluster string) *CA {
	t.Helper()
	ca, err := NewCA(cluster, year)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func issue(t *testing.T, ca *CA, name string, addrs []netip.Addr) (certPEM, keyPEM []byte) {
	t.Helper()
	c, k, err := ca.IssueNode(name, addrs, year)
	if err != nil {
		t.Fatalf("IssueNode(%s): %v", name, err)
	}
	return c, k
}

func TestNewCA(t *testing.T) {
	ca := newCA(t, "cityhall")
	if got, want := ca.Cert.Subject.CommonName, "vigil cityhall CA"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("not a signing CA: IsCA=%v KeyUsage=%v", ca.Cert.IsCA, ca.Cert.KeyUsage)
	}
	if _, err := NewCA("", year); err == nil {
		t.Error("NewCA with empty name: no error")
	}
	if _, err := NewCA("x", 0); err == nil {
		t.Error("NewCA with zero validity: no error")
	}
}

func TestIssueNodeVerifies(t *testing.T) {
	ca := newCA(t, "cityhall")
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}
	certPEM, keyPEM := issue(t, ca, "alessandro", addrs)
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("key pair: %v", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "alessandro" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "alessandro" {
		t.Errorf("DNS SANs = %v, want [alessandro]", cert.DNSNames)
	}
	if len(cert.IPAddresses) != 2 {
		t.Errorf("IP SANs = %v, want 2", cert.IPAddresses)
	}
	if cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf outlives CA")
	}
	pool, err := CertPool(ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"alessandro", "10.0.0.1", "fd00::1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			_, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}})
			if err != nil {
				t.Errorf("verify as %s usage %v: %v", host, usage, err)
			}
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "10.0.0.2", Roots: pool}); err == nil {
		t.Error("verified for an address not in the certificate")
	}
	other := newCA(t, "other")
	otherPool, _ := CertPool(other.CertPEM())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: otherPool}); err == nil {
		t.Error("verified against another CA")
	}

	if _, _, err := ca.IssueNode("", addrs, year); err == nil {
		t.Error("IssueNode with empty name: no error")
	}
	if _, _, err := ca.IssueNode("x", []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}, year); err == nil {
		t.Error("IssueNode with zoned address: no error")
	}
}

func TestLoadCA(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "c")
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := WriteFile(certPath, ca.CertPEM(), CertMode, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(keyPath, keyPEM, KeyMode, false); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(certPath, keyPath)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("loaded certificate differs")
	}
	// The loaded CA must be able to issue certificates that chain to the original.
	certPEM, _ := issue(t, loaded, "n1", loopback)
	cert, _ := parseCert(certPEM)
	pool, _ := CertPool(ca.CertPEM())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("cert from loaded CA does not verify: %v", err)
	}

	other := newCA(t, "c")
	otherKey, _ := other.KeyPEM()
	if _, err := ParseCA(ca.CertPEM(), otherKey); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: err = %v", err)
	}
	leafPEM, leafKey := issue(t, ca, "n1", loopback)
	if _, err := ParseCA(leafPEM, leafKey); err == nil {
		t.Error("ParseCA accepted a leaf certificate")
	}
	if _, err := LoadCA(filepath.Join(dir, "missing.crt"), keyPath); err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if err := WriteFile(p, []byte("one"), KeyMode, false); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "one", KeyMode)
	err := WriteFile(p, []byte("two"), KeyMode, false)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write without overwrite: err = %v, want ErrExist", err)
	}
	checkFile(t, p, "one", KeyMode)
	if err := WriteFile(p, []byte("three"), CertMode, true); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "three", CertMode)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := WriteFile(filepath.Join(dir, "nodir", "x"), nil, KeyMode, false); err == nil {
		t.Error("write into a missing directory: no error")
	}
}

func checkFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != content {
		t.Errorf("%s = %q, want %q", path, data, content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s mode = %v, want %v", path, fi.Mode().Perm(), mode)
	}
}

// handshake runs a real TLS handshake over loopback TCP and exchanges one byte
// from server to client, so that a client certificate rejected by the server
// (which TLS 1.3 reports after the client's handshake returns) shows up as a
// client error too.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (serverState, clientState tls.ConnectionState, serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		state tls.ConnectionState
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, serverCfg)
		if err := s.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		if _, err := s.Write([]byte("x")); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{state: s.ConnectionState()}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cc := tls.Client(c, clientCfg)
	clientErr = cc.Handshake()
	if clientErr == nil {
		var b [1]byte
		_, clientErr = io.ReadFull(cc, b[:])
		clientState = cc.ConnectionState()
	}
	r := <-done
	return r.state, clientState, r.err, clientErr
}

// withServerName copies cfg and sets the name a dialer would take from the address.
func withServerName(cfg *tls.Config, name string) *tls.Config {
	c := cfg.Clone()
	c.ServerName = name
	return c
}

func TestPeerTLS(t *testing.T) {
	ca := newCA(t, "c")
	caPEM := ca.CertPEM()
	aCert, aKey := issue(t, ca, "alpha", loopback)
	bCert, bKey := issue(t, ca, "beta", loopback)
	alpha, err := PeerTLS(caPEM, aCert, aKey)
	if err != nil {
		t.Fatal(err)
	}
	beta, err := PeerTLS(caPEM, bCert, bKey)
	if err != nil {
		t.Fatal(err)
	}
	if alpha.MinVersion != tls.VersionTLS13 || alpha.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("peer config: MinVersion=%x ClientAuth=%v", alpha.MinVersion, alpha.ClientAuth)
	}

	t.Run("same CA", func(t *testing.T) {
		ss, cs, serr, cerr := handshake(t, alpha, withServerName(beta, "127.0.0.1"))
		if serr != nil || cerr != nil {
			t.Fatalf("server err %v, client err %v", serr, cerr)
		}
		if name, ok := PeerName(ss); !ok || name != "beta" {
			t.Errorf("server sees peer %q %v, want beta", name, ok)
		}
		if name, ok := PeerName(cs); !ok || name != "alpha" {
			t.Errorf("client sees peer %q %v, want alpha", name, ok)
		}
	})

	other := newCA(t, "c") // same cluster name, different key: must still be rejected
	xCert, xKey := issue(t, other, "intruder", loopback)
	intruder, err := PeerTLS(other.CertPEM(), xCert, xKey)
	if err != nil {
		t.Fatal(err)
	}
	// The intruder trusts our CA, so only our side's verification can stop it.
	intruderTrusting, err := PeerTLS(caPEM, xCert, xKey)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("foreign client", func(t *testing.T) {
		_, _, serr, cerr := handshake(t, alpha, withServerName(intruderTrusting, "127.0.0.1"))
		if serr == nil {
			t.Error("server accepted a client certificate from another CA")
		}
		if cerr == nil {
			t.Error("client with a foreign certificate got data")
		}
	})
	t.Run("foreign server", func(t *testing.T) {
		_, _, serr, cerr := handshake(t, intruder, withServerName(alpha, "127.0.0.1"))
		if cerr == nil {
			t.Error("client accepted a server certificate from another CA")
		}
		if serr == nil {
			t.Error("server handshake succeeded against a rejecting client")
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		anon, err := ClientTLS(caPEM, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, serr, cerr := handshake(t, alpha, withServerName(anon, "127.0.0.1"))
		if serr == nil || cerr == nil {
			t.Errorf("peer server accepted a client without certificate: server err %v, client err %v", serr, cerr)
		}
	})
}

func TestServerTLS(t *testing.T) {
	ca := newCA(t, "c")
	caPEM := ca.CertPEM()
	sCert, sKey := issue(t, ca, "alpha", loopback)
	server, err := ServerTLS(caPEM, sCert, sKey)
	if err != nil {
		t.Fatal(err)
	}
	if server.MinVersion != tls.VersionTLS13 || server.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Errorf("server config: MinVersion=%x ClientAuth=%v", server.MinVersion, server.ClientAuth)
	}

	t.Run("token client without certificate", func(t *testing.T) {
		cli, err := ClientTLS(caPEM, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ss, cs, serr, cerr := handshake(t, server, withServerName(cli, "127.0.0.1"))
		if serr != nil || cerr != nil {
			t.Fatalf("server err %v, client err %v", serr, cerr)
		}
		if name, ok := PeerName(ss); ok {
			t.Errorf("PeerName without client certificate = %q, true", name)
		}
		if name, ok := PeerName(cs); !ok || name != "alpha" {
			t.Errorf("client sees server %q %v, want alpha", name, ok)
		}
	})
	t.Run("node client with certificate", func(t *testing.T) {
		cCert, cKey := issue(t, ca, "beta", nil)
		cli, err := ClientTLS(caPEM, cCert, cKey)
		if err != nil {
			t.Fatal(err)
		}
		ss, _, serr, cerr := handshake(t, server, withServerName(cli, "127.0.0.1"))
		if serr != nil || cerr != nil {
			t.Fatalf("server err %v, client err %v", serr, cerr)
		}
		if name, ok := PeerName(ss); !ok || name != "beta" {
			t.Errorf("PeerName = %q %v, want beta", name, ok)
		}
	})
	t.Run("client with foreign certificate", func(t *testing.T) {
		other := newCA(t, "c")
		xCert, xKey := issue(t, other, "beta", nil)
		cli, err := ClientTLS(caPEM, xCert, xKey)
		if err != nil {
			t.Fatal(err)
		}
		_, _, serr, _ := handshake(t, server, withServerName(cli, "127.0.0.1"))
		if serr == nil {
			t.Error("server accepted a client certificate from another CA")
		}
	})
	t.Run("wrong address", func(t *testing.T) {
		cli, err := ClientTLS(caPEM, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, cerr := handshake(t, server, withServerName(cli, "10.9.9.9"))
		if cerr == nil {
			t.Error("client accepted a certificate without the dialed address")
		}
	})
}

func TestTLSConfigErrors(t *testing.T) {
	ca := newCA(t, "c")
	cert, key := issue(t, ca, "n", loopback)
	if _, err := ServerTLS([]byte("junk"), cert, key); err == nil {
		t.Error("ServerTLS with junk CA: no error")
	}
	if _, err := PeerTLS(ca.CertPEM(), cert, []byte("junk")); err == nil {
		t.Error("PeerTLS with junk key: no error")
	}
	if _, err := ClientTLS(ca.CertPEM(), cert, nil); err == nil {
		t.Error("ClientTLS with certificate but no key: no error")
	}
	if _, ok := PeerName(tls.ConnectionState{}); ok {
		t.Error("PeerName of an empty state: ok")
	}
}

func TestToken(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if !strings.HasPrefix(a, TokenPrefix) || len(a) != len(TokenPrefix)+43 {
		t.Errorf("token %q: want prefix %q and 43 base64url characters", a, TokenPrefix)
	}
	if a == b {
		t.Error("two tokens are equal")
	}
	if !TokenEqual(a, a) {
		t.Error("TokenEqual(a, a) = false")
	}
	if TokenEqual(b, a) || TokenEqual(a[:10], a) || TokenEqual("", a) {
		t.Error("TokenEqual accepted a wrong token")
	}
	if TokenEqual("", "") {
		t.Error("empty expected token matched")
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "operator.token")
	if err := WriteFile(p, []byte(a+"\n"), KeyMode, false); err != nil {
		t.Fatal(err)
	}
	got, err := LoadToken(p)
	if err != nil || got != a {
		t.Errorf("LoadToken = %q, %v", got, err)
	}
	bad := filepath.Join(dir, "bad")
	_ = os.WriteFile(bad, []byte("hunter2\n"), 0o600)
	if _, err := LoadToken(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadToken(bad) err = %v", err)
	}
}

func TestHMACKey(t *testing.T) {
	key, err := NewHMACKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != HMACKeySize {
		t.Fatalf("key length %d", len(key))
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "heartbeat.key")
	if err := WriteFile(p, EncodeHMACKey(key), KeyMode, false); err != nil {
		t.Fatal(err)
	}
	got, err := LoadHMACKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(key) {
		t.Error("loaded key differs")
	}
	for name, content := range map[string]string{
		"empty":     "\n",
		"not hex":   strings.Repeat("zz", 32),
		"odd":       strings.Repeat("a", 65),
		"too short": strings.Repeat("ab", 31),
	} {
		bp := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		_ = os.WriteFile(bp, []byte(content), 0o600)
		if _, err := LoadHMACKey(bp); err == nil || !strings.Contains(err.Error(), bp) {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
	if _, err := LoadHMACKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}
