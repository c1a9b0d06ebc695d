package sync

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// CheckRsyncd is the check of rsyncd's `pre-xfer exec` (a non-zero exit refuses
// the transfer); getenv reads the variables the daemon sets for it. A pull (this
// node sends) is always allowed; a push is admitted only into paths no group
// running here holds, and the daemon process serving it is registered so that a
// takeover can kill it.
func (g Guard) CheckRsyncd(getenv func(string) string) error {
	args := rsyncdArgs(getenv)
	for _, a := range args {
		if a == "--sender" {
			return nil
		}
	}
	pid, err := strconv.Atoi(getenv("RSYNC_PID"))
	if err != nil || pid <= 0 {
		return fmt.Errorf("sync guard: RSYNC_PID %q: not run as rsyncd's pre-xfer exec", getenv("RSYNC_PID"))
	}
	module, modPath := getenv("RSYNC_MODULE_NAME"), getenv("RSYNC_MODULE_PATH")
	if modPath == "" {
		return errors.New("sync guard: RSYNC_MODULE_PATH is not set: not run as rsyncd's pre-xfer exec")
	}
	// RSYNC_REQUEST is "MODULE/PATH" as the client asked; the destination is
	// PATH under the module's path.
	req := getenv("RSYNC_REQUEST")
	rel := strings.TrimPrefix(strings.TrimPrefix(req, module), "/")
	if strings.Contains("/"+rel+"/", "/../") {
		return fmt.Errorf("sync guard: request %q climbs out of the module", req)
	}
	return g.Admit(pid, filepath.Join(modPath, rel))
}

func rsyncdArgs(getenv func(string) string) []string {
	var args []string
	for i := 0; ; i++ {
		a := getenv("RSYNC_ARG" + strconv.Itoa(i))
		if a == "" {
			return args
		}
		args = append(args, a)
	}
}

// CheckSSH is the check of an ssh forced command: original is the command the
// client asked for (SSH_ORIGINAL_COMMAND), pid the process that will exec it.
// Only `rsync --server ...` is accepted; a push is admitted only into paths no
// group running here holds. It returns the argv to exec (no shell), rsync being
// looked up in PATH.
func (g Guard) CheckSSH(pid int, original string) ([]string, error) {
	argv, err := splitCommand(original)
	if err != nil {
		return nil, fmt.Errorf("sync guard: %w", err)
	}
	if len(argv) < 3 || filepath.Base(argv[0]) != "rsync" || argv[1] != "--server" {
		return nil, fmt.Errorf("sync guard: only rsync --server may run with this key, not %q", original)
	}
	bin, err := exec.LookPath("rsync")
	if err != nil {
		return nil, fmt.Errorf("sync guard: %w", err)
	}
	argv[0] = bin
	for _, a := range argv[2:] {
		if a == "--sender" {
			return argv, nil
		}
	}
	dest := argv[len(argv)-1]
	if !filepath.IsAbs(dest) {
		return nil, fmt.Errorf("sync guard: destination %q is not absolute", dest)
	}
	if err := g.Admit(pid, dest); err != nil {
		return nil, err
	}
	return argv, nil
}

// splitCommand splits a command line the way the remote shell would for what
// rsync sends: words separated by blanks, backslash escapes (rsync 3.2.4 and
// later escape special characters so) and quotes. Anything the shell would
// treat specially beyond that (expansions, redirections, several commands) is
// refused rather than guessed at.
func splitCommand(s string) ([]string, error) {
	var argv []string
	var cur strings.Builder
	inWord := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			switch c {
			case '"':
				quote = 0
			case '\\':
				if i+1 < len(rs) && strings.ContainsRune("\\\"$`", rs[i+1]) {
					i++
				}
				cur.WriteRune(rs[i])
			case '$', '`':
				return nil, fmt.Errorf("command %q: expansion refused", s)
			default:
				cur.WriteRune(c)
			}
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("command %q ends with a backslash", s)
			}
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				argv = append(argv, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune(";&|<>$`(){}*?[~\n#", c):
			return nil, fmt.Errorf("command %q: shell syntax %q refused", s, c)
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("command %q: unterminated quote", s)
	}
	if inWord {
		argv = append(argv, cur.String())
	}
	return argv, nil
}
