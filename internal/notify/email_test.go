package notify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// smtpServer is a minimal SMTP server for tests: EHLO/HELO, STARTTLS, AUTH PLAIN,
// MAIL, RCPT, DATA, RSET, NOOP, QUIT. It is strict where a real relay is: no AUTH
// before TLS (when it offers TLS) and no MAIL before AUTH (when it wants one).
type smtpServer struct {
	ln       net.Listener
	tls      *tls.Config // nil: STARTTLS not offered
	user     string
	pass     string
	received chan smtpMail
	wg       sync.WaitGroup
}

type smtpMail struct {
	from   string
	to     []string
	data   []byte
	tls    bool
	authed string
}

func newSMTPServer(t *testing.T, tlsConf *tls.Config, user, pass string) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, tls: tlsConf, user: user, pass: pass, received: make(chan smtpMail, 16)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *smtpServer) handle(c net.Conn) {
	defer func() { c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(c)
	var m smtpMail
	reply := func(format string, args ...any) { _ = tp.PrintfLine(format, args...) }
	reply("220 test.invalid ESMTP ready")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			lines := []string{"test.invalid"}
			if s.tls != nil && !m.tls {
				lines = append(lines, "STARTTLS")
			}
			if s.user != "" && (m.tls || s.tls == nil) {
				lines = append(lines, "AUTH PLAIN")
			}
			lines = append(lines, "8BITMIME")
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				reply("250%s%s", sep, l)
			}
		case "STARTTLS":
			if s.tls == nil || m.tls {
				reply("502 not now")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, tp = tc, textproto.NewConn(tc)
			m = smtpMail{tls: true} // RFC 3207: forget everything said before TLS
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if s.user == "" || !strings.EqualFold(mech, "PLAIN") || (s.tls != nil && !m.tls) {
				reply("504 unavailable")
				continue
			}
			dec, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(dec), "\x00")
			if err != nil || len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass {
				reply("535 5.7.8 authentication failed")
				continue
			}
			m.authed = parts[1]
			reply("235 2.7.0 accepted")
		case "MAIL":
			if s.user != "" && m.authed == "" {
				reply("530 5.7.0 authentication required")
				continue
			}
			m.from = smtpPath(arg, "FROM:")
			reply("250 ok")
		case "RCPT":
			if m.from == "" {
				reply("503 MAIL first")
				continue
			}
			m.to = append(m.to, smtpPath(arg, "TO:"))
			reply("250 ok")
		case "DATA":
			if len(m.to) == 0 {
				reply("503 RCPT first")
				continue
			}
			reply("354 end with .")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.data = data
			s.received <- m
			m = smtpMail{tls: m.tls, authed: m.authed}
			reply("250 queued")
		case "RSET":
			m = smtpMail{tls: m.tls, authed: m.authed}
			reply("250 ok")
		case "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown command")
		}
	}
}

// smtpPath reads the address of "FROM:<a@b> BODY=8BITMIME".
func smtpPath(arg, prefix string) string {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return ""
	}
	addr, _, _ := strings.Cut(arg[len(prefix):], " ")
	return strings.Trim(addr, "<>")
}

// testCert makes a self-signed certificate for 127.0.0.1 and writes it as a CA file.
func testCert(t *testing.T) (*tls.Config, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}, path
}

func TestEmailOverSTARTTLSWithAuth(t *testing.T) {
	tlsConf, caFile := testCert(t)
	srv := newSMTPServer(t, tlsConf, "vigil", "pa55 word")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "smtp.pass"), []byte("pa55 word\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := Target{Name: "mail", Type: TypeEmail, SMTP: srv.ln.Addr().String(), Username: "vigil",
		PasswordFile: "smtp.pass", CAFile: caFile, From: "Vigil <vigil@example.com>",
		To: []string{"ops@example.com", "Night Shift <night@example.com>"}, SubjectPrefix: "[prod]"}
	d := start(t, allTo(target), Options{ConfigDir: dir})
	ev := event(42, model.EventGroupFailed, model.SeverityCritical)
	ev.Group, ev.Reason, ev.Output = "web", "monitor failed 3 times — giving up on a", "line one\n.\nline three"
	d.Notify(ev)

	var m smtpMail
	select {
	case m = <-srv.received:
	case <-time.After(10 * time.Second):
		t.Fatalf("no mail; status %+v", status(d.Dispatcher, "mail"))
	}
	if !m.tls || m.authed != "vigil" || m.from != "vigil@example.com" ||
		strings.Join(m.to, ",") != "ops@example.com,night@example.com" {
		t.Fatalf("envelope %+v", m)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[prod] CRITICAL group_failed group web node b: monitor failed 3 times — giving up on a"; subject != want {
		t.Errorf("subject %q, want %q", subject, want)
	}
	if msg.Header.Get("Message-ID") != "<vigil.test.42@example.com>" || msg.Header.Get("X-Vigil-Event") != "group_failed" {
		t.Errorf("headers %v", msg.Header)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Group:     web", "Index:     42", "Sent by a for route all.", "line one\n.\nline three"} {
		if !strings.Contains(strings.ReplaceAll(string(body), "\r\n", "\n"), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	waitFor(t, "delivered", func() bool { return status(d.Dispatcher, "mail").Delivered == 1 })
}

func TestEmailProblemsAreVisible(t *testing.T) {
	tlsConf, caFile := testCert(t)
	// A relay without STARTTLS: nothing is sent in clear, the notification waits.
	plain := newSMTPServer(t, nil, "", "")
	// A relay that refuses the password: 535 is final, not retried.
	strict := newSMTPServer(t, tlsConf, "vigil", "right")
	cfg := allTo(
		Target{Name: "plain", Type: TypeEmail, SMTP: plain.ln.Addr().String(), From: "v@example.com", To: []string{"o@example.com"}},
		Target{Name: "strict", Type: TypeEmail, SMTP: strict.ln.Addr().String(), CAFile: caFile, Username: "vigil",
			Password: "wrong", From: "v@example.com", To: []string{"o@example.com"}},
	)
	d := start(t, cfg, Options{})
	d.Notify(event(1, model.EventNodeDead, model.SeverityCritical))
	waitFor(t, "both targets report", func() bool {
		return status(d.Dispatcher, "plain").LastError != "" && status(d.Dispatcher, "strict").Failed == 1
	})
	if st := status(d.Dispatcher, "plain"); st.Queued != 1 || !strings.Contains(st.LastError, "STARTTLS") {
		t.Errorf("plain: %+v", st)
	}
	if st := status(d.Dispatcher, "strict"); st.Queued != 0 || !strings.Contains(st.LastError, "535") {
		t.Errorf("strict: %+v", st)
	}
	if p := d.Undelivered(0); len(p) != 1 || p[0].Target != "plain" || p[0].Index != 1 || p[0].Attempts == 0 {
		t.Errorf("undelivered %+v", p)
	}
	select {
	case m := <-plain.received:
		t.Fatalf("mail sent in clear: %+v", m)
	case m := <-strict.received:
		t.Fatalf("mail sent with a refused password: %+v", m)
	default:
	}
}
