package sync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Guard is the receiving side's half of "never backwards": a node that runs (or
// is starting) a group holds the group's sync paths, and while it does, no
// incoming rsync may write under them. The sending side cannot enforce this on
// its own: an agent frozen (SIGSTOP) in the middle of a pass leaves its rsync
// running after the group has moved, and only the node now in charge, which is
// alive, can refuse it.
//
// The state lives in files under Dir, so that the check can run in a process of
// its own (rsyncd's pre-xfer exec, an ssh forced command: `vigil sync-guard`):
//
//	Dir/hold/GROUP      the paths GROUP's sync resources replicate, one a line;
//	                    present from before the group starts until it has stopped
//	Dir/admitted/PID    a receiver the check let through: "STARTTIME DEST"
//
// Admitting registers the receiver before it looks for holds, and Hold writes
// the hold before it looks for receivers: whichever comes second sees the other,
// so a transfer is either refused or killed, never let through unseen.
type Guard struct{ Dir string }

// ErrHeld is why a transfer was refused.
var ErrHeld = errors.New("this node runs the group that owns the path: it sends copies, it does not receive them")

func (g Guard) holdDir() string     { return filepath.Join(g.Dir, "hold") }
func (g Guard) admittedDir() string { return filepath.Join(g.Dir, "admitted") }

// Hold records that group runs here, with its sync paths. Written to a temporary
// file and renamed, so the check never reads half a list.
func (g Guard) Hold(group string, paths []string) error {
	if err := os.MkdirAll(g.holdDir(), 0o755); err != nil {
		return fmt.Errorf("sync guard: %w", err)
	}
	var b strings.Builder
	for _, p := range paths {
		b.WriteString(cleanPath(p) + "\n")
	}
	final := filepath.Join(g.holdDir(), group)
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("sync guard: hold %s: %w", group, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("sync guard: hold %s: %w", group, err)
	}
	return nil
}

// Release ends group's hold: the group has stopped here.
func (g Guard) Release(group string) error {
	if err := os.Remove(filepath.Join(g.holdDir(), group)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sync guard: release %s: %w", group, err)
	}
	return nil
}

// ReleaseAll ends every hold: an agent starting runs no group yet.
func (g Guard) ReleaseAll() error {
	if err := os.RemoveAll(g.holdDir()); err != nil {
		return fmt.Errorf("sync guard: %w", err)
	}
	return nil
}

// Held lists the held paths with the group holding each.
func (g Guard) Held() (map[string]string, error) {
	ents, err := os.ReadDir(g.holdDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sync guard: %w", err)
	}
	held := map[string]string{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(g.holdDir(), e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("sync guard: %w", err)
		}
		for _, p := range strings.Fields(string(b)) {
			held[p] = e.Name()
		}
	}
	return held, nil
}

// Admit decides whether a receiver (process pid) may write to dest. It registers
// the receiver first, then checks the holds; a refused receiver is unregistered.
// Any error refuses: the check fails closed.
func (g Guard) Admit(pid int, dest string) error {
	dest = cleanPath(dest)
	if !filepath.IsAbs(dest) {
		return fmt.Errorf("sync guard: destination %q is not absolute", dest)
	}
	g.markChecked()
	st, err := procStart(pid)
	if err != nil {
		return fmt.Errorf("sync guard: receiver %d: %w", pid, err)
	}
	if err := os.MkdirAll(g.admittedDir(), 0o755); err != nil {
		return fmt.Errorf("sync guard: %w", err)
	}
	g.prune()
	reg := filepath.Join(g.admittedDir(), strconv.Itoa(pid))
	if err := os.WriteFile(reg, []byte(st+" "+dest+"\n"), 0o644); err != nil {
		return fmt.Errorf("sync guard: register %d: %w", pid, err)
	}
	held, err := g.Held()
	if err == nil {
		for p, group := range held {
			if overlaps(p, dest) {
				err = fmt.Errorf("sync guard: refusing a write to %s: %s holds %s: %w", dest, group, p, ErrHeld)
				break
			}
		}
	}
	if err != nil {
		_ = os.Remove(reg)
		return err
	}
	return nil
}

// checkedFile's modification time is when the check last ran here, which
// is how the agent tells copies that came through it from copies that did
// not (Unguarded).
func (g Guard) checkedFile() string { return filepath.Join(g.Dir, "last-check") }

// markChecked records that the check ran. Best effort: a failure costs only a
// false "unguarded" warning later, never a refusal.
func (g Guard) markChecked() {
	if err := os.MkdirAll(g.Dir, 0o755); err != nil {
		return
	}
	now := time.Now()
	if err := os.Chtimes(g.checkedFile(), now, now); errors.Is(err, os.ErrNotExist) {
		_ = os.WriteFile(g.checkedFile(), nil, 0o644)
	}
}

// unguardedSlack is how much later than the last check a stamp may land and
// still count as checked: every pass sends its stamp in a session of its own,
// checked at its start, so a guarded stamp lands a connection set-up after
// its check, not more.
const unguardedSlack = 30 * time.Second

// Unguarded returns the paths whose sync stamp arrived here (its ctime, on
// this node's clock) more than unguardedSlack after the check last ran, or
// when it never ran: copies that came in without `vigil sync-guard`, so that
// nothing would refuse a stale sender's copy into a group this node runs.
func (g Guard) Unguarded(paths []string) []string {
	var checked time.Time
	if fi, err := os.Stat(g.checkedFile()); err == nil {
		checked = fi.ModTime()
	}
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(filepath.Join(p, StampFile))
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		arrived := time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		if checked.IsZero() || arrived.After(checked.Add(unguardedSlack)) {
			out = append(out, p)
		}
	}
	return out
}

// prune forgets the registrations of receivers that have ended.
func (g Guard) prune() {
	ents, _ := os.ReadDir(g.admittedDir())
	for _, e := range ents {
		if _, _, alive := g.admitted(e.Name()); !alive {
			_ = os.Remove(filepath.Join(g.admittedDir(), e.Name()))
		}
	}
}

// admitted reads one registration: the receiver's pid and destination, and
// whether that very process (same start time) still runs.
func (g Guard) admitted(name string) (pid int, dest string, alive bool) {
	pid, err := strconv.Atoi(name)
	if err != nil {
		return 0, "", false
	}
	b, err := os.ReadFile(filepath.Join(g.admittedDir(), name))
	if err != nil {
		return pid, "", false
	}
	st, dest, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	now, err := procStart(pid)
	return pid, dest, err == nil && now == st
}

// Receiver is an rsync process found writing into a held path.
type Receiver struct {
	PID  int
	Why  string // how it was found
	Dest string
}

// KillReceivers kills every rsync receiver that may write under paths: those the
// check let through (registered), and those found in /proc (an rsync server or
// daemon child whose working directory or destination is under a path), which
// covers transfers that started before the check was installed. It waits up to
// wait for them to be gone, removes the temporary files they were writing (a
// killed rsync leaves its ".NAME.XXXXXX" behind), and returns what it killed;
// an error means some may still run.
func (g Guard) KillReceivers(paths []string, wait time.Duration) ([]Receiver, error) {
	found := map[int]Receiver{}
	ents, _ := os.ReadDir(g.admittedDir())
	for _, e := range ents {
		pid, dest, alive := g.admitted(e.Name())
		if !alive {
			_ = os.Remove(filepath.Join(g.admittedDir(), e.Name()))
			continue
		}
		for _, p := range paths {
			if overlaps(cleanPath(p), dest) {
				found[pid] = Receiver{PID: pid, Why: "admitted by the sync guard", Dest: dest}
			}
		}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("sync guard: %w", err)
	}
	self := os.Getpid()
	children := map[int][]int{}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if f, err := procStat(pid); err == nil && len(f) > 1 {
			if ppid, err := strconv.Atoi(f[1]); err == nil {
				children[ppid] = append(children[ppid], pid)
			}
		}
		if _, ok := found[pid]; ok {
			continue
		}
		if r, ok := rsyncReceiver(pid, paths); ok {
			found[pid] = r
		}
	}
	// The receiving rsync forks (generator and receiver): the child of a
	// killed one could still finish the file it is writing.
	queue := make([]int, 0, len(found))
	for pid := range found {
		queue = append(queue, pid)
	}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		for _, c := range children[parent] {
			if _, ok := found[c]; !ok {
				found[c] = Receiver{PID: c, Why: fmt.Sprintf("child of receiver %d", parent), Dest: found[parent].Dest}
				queue = append(queue, c)
			}
		}
	}
	var out []Receiver
	var partial []string
	for _, r := range found {
		// Read before the kill: a killed rsync cannot remove its temporary file.
		partial = append(partial, tempFilesOf(r.PID, paths)...)
		if err := syscall.Kill(r.PID, syscall.SIGKILL); err == nil {
			out = append(out, r)
		}
	}
	defer func() {
		for _, p := range partial {
			_ = os.Remove(p)
		}
	}()
	deadline := time.Now().Add(wait)
	for _, r := range out {
		for {
			st, err := procState(r.PID)
			if err != nil || st == "Z" {
				break // gone, or dead and waiting for its parent
			}
			if time.Now().After(deadline) {
				return out, fmt.Errorf("sync guard: rsync receiver %d (%s) is still running after SIGKILL", r.PID, r.Dest)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return out, nil
}

// rsyncTemp is the name rsync gives the file it receives until it is
// complete: ".NAME.XXXXXX" next to NAME.
var rsyncTemp = regexp.MustCompile(`^\..+\.[A-Za-z0-9]{6}$`)

// tempFilesOf lists the rsync temporary files pid has open under paths.
func tempFilesOf(pid int, paths []string) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, _ := os.ReadDir(dir)
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil || !filepath.IsAbs(target) || !rsyncTemp.MatchString(filepath.Base(target)) {
			continue
		}
		for _, p := range paths {
			if under(target, cleanPath(p)) {
				out = append(out, target)
				break
			}
		}
	}
	return out
}

// rsyncReceiver says whether pid is an rsync that receives into one of paths: a
// server started by ssh (`rsync --server`, not `--sender`) whose destination
// (its last argument) or working directory is under a path, or a daemon child
// (`rsync --daemon`) whose working directory is under a path: rsync changes to
// the destination directory before receiving. The daemon's listener works in
// "/", which no sync path is, so it is never matched.
func rsyncReceiver(pid int, paths []string) (Receiver, bool) {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "rsync" {
		return Receiver{}, false
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return Receiver{}, false
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	server, daemon := false, false
	for _, a := range argv {
		switch a {
		case "--server":
			server = true
		case "--daemon":
			daemon = true
		case "--sender":
			return Receiver{}, false
		}
	}
	if !server && !daemon {
		return Receiver{}, false
	}
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	for _, p := range paths {
		p = cleanPath(p)
		if cwd != "" && under(cwd, p) {
			return Receiver{PID: pid, Why: "rsync working in " + cwd, Dest: cwd}, true
		}
		if server && len(argv) > 0 {
			dest := argv[len(argv)-1]
			if !filepath.IsAbs(dest) && cwd != "" {
				dest = filepath.Join(cwd, dest)
			}
			if overlaps(p, cleanPath(dest)) {
				return Receiver{PID: pid, Why: "rsync --server writing to " + dest, Dest: dest}, true
			}
		}
	}
	return Receiver{}, false
}

func cleanPath(p string) string { return filepath.Clean("/" + strings.TrimPrefix(p, "/")) }

// under says whether p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// overlaps says whether a write to dest may touch held: dest inside held, or
// held inside dest (a copy to /srv rewrites /srv/www).
func overlaps(held, dest string) bool { return under(dest, held) || under(held, dest) }

// procStat returns the fields of /proc/PID/stat after the command name.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// procStart is the process's start time in clock ticks since boot: with the pid,
// it names one process even after the pid is reused.
func procStart(pid int) (string, error) {
	f, err := procStat(pid)
	if err != nil {
		return "", err
	}
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f[19], nil // field 22 of stat(5); f[0] is field 3
}

func procState(pid int) (string, error) {
	f, err := procStat(pid)
	if err != nil {
		return "", err
	}
	return f[0], nil
}

// GuardSubdir is the guard's directory under the agent's data directory.
const GuardSubdir = "sync-guard"
