package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// TCP passes when a connection to Address ("host:port") is accepted; the
// connection is closed at once, without sending anything.
type TCP struct {
	Address string
	Source  netip.Addr // zero: the routing table chooses
}

var _ check.Prober = (*TCP)(nil)

// Probe connects within ctx's deadline.
func (p *TCP) Probe(ctx context.Context) check.Result {
	start := time.Now()
	d := dialer(p.Source)
	conn, err := d.DialContext(ctx, "tcp", p.Address)
	if err != nil {
		return check.Result{Detail: describe(ctx, err, start), Duration: time.Since(start)}
	}
	took := time.Since(start)
	_ = conn.Close()
	return check.Result{OK: true, Detail: fmt.Sprintf("connected to %s", conn.RemoteAddr()), Duration: took}
}

// dialer binds to source when one is given. No dialer timeout: ctx carries it.
func dialer(source netip.Addr) *net.Dialer {
	d := &net.Dialer{}
	if source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: source.AsSlice(), Zone: source.Zone()}
	}
	return d
}

// describe turns a probe error into a short detail; a timeout says how long it
// waited rather than Go's "i/o timeout" chain.
func describe(ctx context.Context, err error, start time.Time) string {
	if ctx.Err() != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Sprintf("timed out after %s", time.Since(start).Round(time.Millisecond))
		}
		return "cancelled"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		// "dial tcp 127.0.0.1:1: connect: connection refused" is already clear;
		// keep the operation, drop the repetition.
		return op.Error()
	}
	return err.Error()
}
