package probe

import (
	"context"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// Script passes when Command exits 0. It runs in its own process group, which is
// killed when the timeout ends it, so a hung check leaves nothing behind.
type Script struct {
	Command []string
	Env     []string // added to runexec's minimal environment
	Dir     string
}

var _ check.Prober = (*Script)(nil)

// scriptGrace is the pause between SIGTERM and SIGKILL after a timeout: short,
// because the next probe is due soon and a health check has nothing to save.
const scriptGrace = 500 * time.Millisecond

// scriptOutput bounds captured output: the last line goes into the detail.
const scriptOutput = 4 << 10

// Probe runs the command within ctx's deadline.
func (p *Script) Probe(ctx context.Context) check.Result {
	res, err := runexec.Run(ctx, runexec.Cmd{
		Argv:      p.Command,
		Env:       p.Env,
		Dir:       p.Dir,
		MaxOutput: scriptOutput,
		Grace:     scriptGrace,
	})
	if err != nil {
		return check.Result{Detail: err.Error(), Duration: res.Duration}
	}
	detail := "exit status 0"
	if e := res.Err(); e != nil {
		detail = e.Error()
	}
	if line := lastLine(res.Output); line != "" {
		detail += ": " + line
	}
	return check.Result{OK: res.Err() == nil, Detail: detail, Duration: res.Duration}
}

// lastLine is the last non-empty output line, where scripts usually say why.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	s := strings.TrimSpace(lines[len(lines)-1])
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
