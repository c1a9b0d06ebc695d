package notify

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/vigil-ha/vigil/internal/runexec"
)

// scriptMaxOutput keeps enough of a script's output to explain a failure.
const scriptMaxOutput = 16 << 10

type scriptSender struct {
	argv []string
	log  *slog.Logger
}

// send runs the command with the payload on standard input and VIGIL_EVENT_* in
// its environment; exit 0 is delivered, anything else is retried.
func (s *scriptSender) send(ctx context.Context, p Payload) error {
	body, err := p.encode()
	if err != nil {
		return permanent(err)
	}
	res, err := runexec.Run(ctx, runexec.Cmd{Argv: s.argv, Env: p.env(), Stdin: string(body) + "\n", MaxOutput: scriptMaxOutput})
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("script %s: %w: %s", s.argv[0], err, snippet(res.Output))
	}
	if len(res.Output) > 0 {
		s.log.Debug("notification script output", "event", p.Event.Kind, "index", p.Event.Index, "output", string(res.Output))
	}
	return nil
}

func (s *scriptSender) close() {}
