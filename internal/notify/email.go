package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
)

type emailSender struct {
	t            Target
	host         string
	tls          *tls.Config
	passwordFile string
	hello        string
}

func newEmail(t Target, opt Options) (*emailSender, error) {
	host, _, err := net.SplitHostPort(t.SMTP)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	pool, err := loadCAs(resolve(opt.ConfigDir, t.CAFile))
	if err != nil {
		return nil, err
	}
	hello, err := os.Hostname()
	if err != nil || hello == "" || strings.ContainsAny(hello, " \r\n") {
		hello = "localhost"
	}
	return &emailSender{t: t, host: host, tls: &tls.Config{ServerName: host, RootCAs: pool, MinVersion: tls.VersionTLS12},
		passwordFile: resolve(opt.ConfigDir, t.PasswordFile), hello: hello}, nil
}

func (e *emailSender) close() {}

func (e *emailSender) send(ctx context.Context, p Payload) error {
	msg, err := e.message(p)
	if err != nil {
		return permanent(err)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", e.t.SMTP)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	// net/smtp has no context: the deadline bounds every read and write, and
	// cancellation (shutdown) cuts the connection short.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		conn.Close()
		return smtpErr("greeting", err)
	}
	defer c.Close()
	if err := e.converse(c, p, msg); err != nil {
		return err
	}
	// The message was accepted at the end of DATA; a failed QUIT does not undo that.
	_ = c.Quit()
	return nil
}

func (e *emailSender) converse(c *smtp.Client, p Payload, msg []byte) error {
	if err := c.Hello(e.hello); err != nil {
		return smtpErr("EHLO", err)
	}
	if e.t.startTLS() {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp: %s does not offer STARTTLS (set starttls: false only for a relay on this machine)", e.t.SMTP)
		}
		if err := c.StartTLS(e.tls); err != nil {
			return smtpErr("STARTTLS", err)
		}
	}
	if e.t.Username != "" {
		pw := e.t.Password
		if e.passwordFile != "" {
			var err error
			if pw, err = readSecret(e.passwordFile); err != nil {
				return fmt.Errorf("smtp password_file: %w", err)
			}
		}
		if err := c.Auth(smtp.PlainAuth("", e.t.Username, pw, e.host)); err != nil {
			return smtpErr("AUTH", err)
		}
	}
	from, _ := mail.ParseAddress(e.t.From)
	if err := c.Mail(from.Address); err != nil {
		return smtpErr("MAIL FROM", err)
	}
	for _, to := range e.t.To {
		a, err := mail.ParseAddress(to)
		if err != nil {
			return permanent(fmt.Errorf("smtp: recipient %q: %w", to, err))
		}
		if err := c.Rcpt(a.Address); err != nil {
			return smtpErr("RCPT TO "+a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpErr("DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("end of DATA", err)
	}
	return nil
}

// smtpErr keeps 5xx replies permanent (the relay refuses this message or these
// credentials for good) and everything else, 4xx and network errors, retryable.
func smtpErr(step string, err error) error {
	err = fmt.Errorf("smtp %s: %w", step, err)
	var tp *textproto.Error
	if errors.As(err, &tp) && tp.Code >= 500 {
		return permanent(err)
	}
	return err
}

// message builds a plain-text mail. The Message-ID is derived from the event, so
// the duplicate a coordinator change may send threads with (or is dropped as) the first.
func (e *emailSender) message(p Payload) ([]byte, error) {
	from, err := mail.ParseAddress(e.t.From)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	var to []string
	for _, t := range e.t.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("to %q: %w", t, err)
		}
		to = append(to, a.String())
	}
	prefix := e.t.SubjectPrefix
	if prefix == "" {
		prefix = "[vigil]"
		if p.Cluster != "" {
			prefix = "[vigil " + p.Cluster + "]"
		}
	}
	subject := []rune(oneLine(prefix + " " + p.Summary))
	if len(subject) > 200 {
		subject = append(subject[:199], '…')
	}
	domain := "vigil.invalid"
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 {
		domain = from.Address[i+1:]
	}
	ev := p.Event
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from.String())
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", string(subject)))
	hdr("Date", time.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+messageIDLocal(p)+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("X-Vigil-Event", string(ev.Kind))
	hdr("X-Vigil-Severity", string(ev.Severity))
	hdr("X-Vigil-Delivery", messageIDLocal(p))
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	var body strings.Builder
	body.WriteString(p.Summary + "\n\n")
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&body, "%-10s %s\n", k+":", v)
		}
	}
	field("Time", ev.Time.UTC().Format(time.RFC3339))
	field("Kind", string(ev.Kind))
	field("Severity", string(ev.Severity))
	field("Node", ev.Node)
	field("Link", ev.Link)
	field("Group", ev.Group)
	field("Resource", ev.Resource)
	field("Target", ev.Target)
	field("By", ev.By)
	field("Reporter", ev.Reporter)
	field("Reason", ev.Reason)
	field("Index", strconv.FormatUint(ev.Index, 10))
	fmt.Fprintf(&body, "\nSent by %s for route %s.\n", p.Sender, strings.Join(p.Routes, ", "))
	if ev.Output != "" {
		body.WriteString("\nOutput:\n" + ev.Output + "\n")
	}
	if _, err := qp.Write([]byte(body.String())); err != nil {
		return nil, fmt.Errorf("encode mail body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("encode mail body: %w", err)
	}
	return b.Bytes(), nil
}

// messageIDLocal turns the payload id ("cluster/12") into a Message-ID's left part.
func messageIDLocal(p Payload) string {
	return "vigil." + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '.'
	}, strings.Trim(p.ID, "/"))
}
