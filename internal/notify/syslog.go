package notify

import (
	"context"
	"fmt"
	"log/syslog"
	"net"

	"github.com/vigil-ha/vigil/internal/model"
)

// syslogSender keeps one connection per target; log/syslog reconnects on a
// failed write. Only the target's worker uses it, so it needs no lock.
type syslogSender struct {
	network, address, tag string
	w                     *syslog.Writer
}

func (s *syslogSender) send(ctx context.Context, p Payload) error {
	if s.w == nil {
		if s.network == "tcp" {
			// log/syslog dials without a timeout; a connect that hangs would hold
			// this target's worker (and shutdown), so reachability is checked first.
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", s.address)
			if err != nil {
				return fmt.Errorf("syslog: %w", err)
			}
			c.Close()
		}
		tag := s.tag
		if tag == "" {
			tag = DefaultSyslogTag
		}
		w, err := syslog.Dial(s.network, s.address, syslog.LOG_DAEMON|syslog.LOG_INFO, tag)
		if err != nil {
			return fmt.Errorf("syslog: %w", err)
		}
		s.w = w
	}
	msg := fmt.Sprintf("%s (id %s, reporter %s)", p.Summary, p.ID, p.Event.Reporter)
	var err error
	switch p.Event.Severity {
	case model.SeverityCritical:
		err = s.w.Crit(msg)
	case model.SeverityWarning:
		err = s.w.Warning(msg)
	default:
		err = s.w.Info(msg)
	}
	if err != nil {
		s.w.Close()
		s.w = nil
		return fmt.Errorf("syslog: %w", err)
	}
	return nil
}

func (s *syslogSender) close() {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
}
