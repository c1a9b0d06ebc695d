package mount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/resource"
	"github.com/vigil-ha/vigil/internal/runexec"
)

// DefaultKillGrace is how long processes that keep the file system busy get
// between SIGTERM and SIGKILL: enough for a database to flush and exit.
const DefaultKillGrace = 5 * time.Second

// Options tune an agent.
type Options struct {
	Logger *slog.Logger
	// KillGrace: see DefaultKillGrace; 0 means the default.
	KillGrace time.Duration
}

// Agent mounts one file system.
//
// Mounting goes through mount(8) rather than the mount(2) system call: it
// parses the same -o options as fstab (VFS flags mixed with file-system
// options), resolves UUID= and LABEL=, attaches images to loop devices and
// runs helpers such as mount.nfs, so whatever works in fstab works here.
type Agent struct {
	name    string
	device  string
	path    string
	fstype  string
	options string
	fsck    bool
	grace   time.Duration
	times   config.Timeouts
	log     *slog.Logger
}

var _ resource.Agent = (*Agent)(nil)

// New prepares the mount of spec (type mount).
func New(spec config.Resource, opts Options) (*Agent, error) {
	if spec.Type != "" && spec.Type != "mount" {
		return nil, fmt.Errorf("mount: resource %q has type %q, not mount", spec.Name, spec.Type)
	}
	switch {
	case spec.Device == "" || strings.ContainsRune(spec.Device, 0):
		return nil, fmt.Errorf("mount: resource %q: device %q: want a block device such as /dev/drbd0", spec.Name, spec.Device)
	case !filepath.IsAbs(spec.Path) || strings.ContainsRune(spec.Path, 0):
		return nil, fmt.Errorf("mount: resource %q: path %q: want an absolute mount point", spec.Name, spec.Path)
	case filepath.Clean(spec.Path) == "/":
		return nil, fmt.Errorf("mount: resource %q: refusing to manage /", spec.Name)
	case spec.FSType == "" || strings.ContainsAny(spec.FSType, " ,/\x00"):
		return nil, fmt.Errorf("mount: resource %q: fstype %q: want a file system type such as ext4", spec.Name, spec.FSType)
	case strings.ContainsRune(spec.Options, 0):
		return nil, fmt.Errorf("mount: resource %q: options contain a NUL byte", spec.Name)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := opts.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	return &Agent{
		name:    spec.Name,
		device:  spec.Device,
		path:    filepath.Clean(spec.Path),
		fstype:  spec.FSType,
		options: spec.Options,
		fsck:    spec.Fsck,
		grace:   grace,
		times:   spec.Timeouts,
		log:     log.With("resource", spec.Name, "device", spec.Device, "path", spec.Path),
	}, nil
}

// Timeouts are the configured per-action timeouts, else Vigil's defaults.
// A large file system's fsck counts against start.
func (a *Agent) Timeouts() (start, stop, monitor time.Duration) {
	pick := func(d config.Duration, def time.Duration) time.Duration {
		if d > 0 {
			return d.D()
		}
		return def
	}
	return pick(a.times.Start, config.DefaultStartTimeout), pick(a.times.Stop, config.DefaultStopTimeout),
		pick(a.times.Monitor, config.DefaultMonitorTimeout)
}

// view is what the mount table says about the mount point.
type view struct {
	target string  // the mount point with symlinks resolved, as mountinfo spells it
	dev    device  // the configured device, resolved now
	all    []entry // this mount namespace's table
	top    *entry  // the visible mount at target; nil when nothing is mounted there
	ours   *entry  // the topmost mount of our device at target, nil if none
}

func (a *Agent) look() (view, error) {
	v := view{target: a.path, dev: resolveDevice(a.device)}
	if r, err := filepath.EvalSymlinks(a.path); err == nil {
		v.target = r
	}
	all, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return v, err
	}
	v.all = all
	var at []int
	for i, e := range all {
		if e.Target == v.target {
			at = append(at, i)
		}
	}
	// The visible mount is the one no other mount at the same place sits on.
	for _, i := range at {
		covered := false
		for _, j := range at {
			if all[j].Parent == all[i].ID {
				covered = true
			}
		}
		if !covered {
			v.top = &all[i]
		}
		if v.dev.matches(all[i]) && (v.ours == nil || all[i].Parent == v.ours.ID) {
			v.ours = &all[i]
		}
	}
	return v, nil
}

// state maps a view to a resource state, with the reason for Failed.
func (v view) state() (resource.State, error) {
	switch {
	case v.top == nil:
		return resource.Stopped, nil
	case v.ours == v.top:
		return resource.Running, nil
	case v.ours != nil:
		return resource.Failed, fmt.Errorf("%s is mounted at %s but hidden under %s (%s)", v.dev.spec, v.target, v.top.Source, v.top.FSType)
	}
	return resource.Failed, fmt.Errorf("%s (%s) is mounted at %s, not %s", v.top.Source, v.top.FSType, v.target, v.dev.spec)
}

// Monitor reads this mount namespace's table: Running when the device is
// the visible mount at the path, Stopped when nothing is mounted there,
// Failed when something else is.
func (a *Agent) Monitor(ctx context.Context) (resource.State, resource.Output, error) {
	start := time.Now()
	v, err := a.look()
	if err != nil {
		return resource.Failed, resource.Output{}, fmt.Errorf("mount %s: %w", a.name, err)
	}
	st, err := v.state()
	text := fmt.Sprintf("%s at %s: %s", a.device, v.target, st)
	if v.top != nil {
		text += fmt.Sprintf(" (%s %s)", v.top.Source, v.top.FSType)
	}
	if err != nil {
		err = fmt.Errorf("mount %s: %w", a.name, err)
	}
	return st, resource.Output{Text: text + "\n", Duration: time.Since(start)}, err
}

// Start checks the file system first when fsck is set (exit codes 1 and 2
// mean errors were corrected, which is recorded; 4 and above fail the start),
// then mounts it. A device already mounted at the path is success.
func (a *Agent) Start(ctx context.Context) (resource.Output, error) {
	to, _, _ := a.Timeouts()
	ctx, cancel := withDefaultTimeout(ctx, to)
	defer cancel()
	rec := &recorder{start: time.Now()}
	v, err := a.look()
	if err != nil {
		return rec.out(), fmt.Errorf("mount %s: %w", a.name, err)
	}
	switch st, serr := v.state(); st {
	case resource.Running:
		rec.note("%s is already mounted at %s", a.device, v.target)
		return rec.out(), nil
	case resource.Failed:
		return rec.out(), fmt.Errorf("mount %s: %w", a.name, serr)
	}
	if v.dev.local() && v.dev.resolved == "" {
		return rec.out(), fmt.Errorf("mount %s: device %s does not exist on this node", a.name, a.device)
	}
	if err := os.MkdirAll(a.path, 0o755); err != nil {
		return rec.out(), fmt.Errorf("mount %s: create mount point: %w", a.name, err)
	}
	if a.fsck {
		if err := a.check(ctx, v.dev, rec); err != nil {
			return rec.out(), fmt.Errorf("mount %s: %w", a.name, err)
		}
	}
	argv := []string{"mount", "-t", a.fstype}
	if a.options != "" {
		argv = append(argv, "-o", a.options)
	}
	argv = append(argv, a.device, a.path)
	res, err := rec.run(ctx, argv)
	if err != nil {
		return rec.out(), fmt.Errorf("mount %s: %w", a.name, err)
	}
	if res.Err() != nil {
		return rec.out(), fmt.Errorf("mount %s: mount %s on %s: %v%s", a.name, a.device, a.path, res.Err(), lastLine(res.Output))
	}
	v, err = a.look()
	if err != nil {
		return rec.out(), fmt.Errorf("mount %s: %w", a.name, err)
	}
	if st, serr := v.state(); st != resource.Running {
		return rec.out(), fmt.Errorf("mount %s: mount exited 0 but the table says %v: %v", a.name, st, serr)
	}
	return rec.out(), nil
}

// fsck exit status bits (fsck(8)).
var fsckBits = []struct {
	bit  int
	text string
}{
	{1, "errors corrected"}, {2, "errors corrected, reboot advised"}, {4, "errors left uncorrected"},
	{8, "operational error"}, {16, "usage or syntax error"}, {32, "cancelled by request"}, {128, "shared-library error"},
}

func fsckMeaning(code int) string {
	if code == 0 {
		return "no errors"
	}
	var parts []string
	for _, b := range fsckBits {
		if code&b.bit != 0 {
			parts = append(parts, b.text)
		}
	}
	return strings.Join(parts, ", ")
}

// check runs fsck -a (preen: repair what is safe without asking). Its output
// becomes part of the start's output, so the consistency check is on record
// with the takeover. Only local devices are checked: a network file system
// has no checker on this side.
func (a *Agent) check(ctx context.Context, d device, rec *recorder) error {
	if !d.local() {
		rec.note("fsck skipped: %s is not a local device", a.device)
		return nil
	}
	argv := []string{"fsck", "-T", "-V", "-a", a.device}
	if a.fstype != "auto" {
		// fsck(8) silently falls back to fsck.ext2 for a type it has no
		// checker for; say so instead.
		if !haveChecker(a.fstype) {
			return fmt.Errorf("fsck is set but this node has no fsck.%s", a.fstype)
		}
		argv = []string{"fsck", "-T", "-V", "-t", a.fstype, "-a", a.device}
	}
	res, err := rec.run(ctx, argv)
	if err != nil {
		return err
	}
	if res.TimedOut || res.Signal != "" {
		return fmt.Errorf("fsck %s: %v", a.device, res.Err())
	}
	meaning := fsckMeaning(res.ExitCode)
	rec.note("fsck %s: exit %d (%s)", a.device, res.ExitCode, meaning)
	if res.ExitCode >= 4 {
		return fmt.Errorf("fsck %s: exit %d (%s)%s", a.device, res.ExitCode, meaning, lastLine(res.Output))
	}
	if res.ExitCode != 0 {
		a.log.Warn("fsck corrected errors before mounting", "exit", res.ExitCode, "output", string(res.Output))
	} else {
		a.log.Info("fsck found no errors", "device", a.device)
	}
	return nil
}

func haveChecker(fstype string) bool {
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if fi, err := os.Stat(filepath.Join(dir, "fsck."+fstype)); err == nil && !fi.IsDir() {
			return true
		}
	}
	return false
}

// Stop unmounts the file system. When it is busy, the processes using it
// (in any mount namespace) get SIGTERM, then SIGKILL after the grace period,
// and the unmount is retried. Copies of the mount that other mount namespaces
// made (ip netns exec, unshare, containers) are unmounted too: as long as one
// exists the kernel keeps the file system mounted, and another node must not
// mount it. Stop fails if the file system is still mounted anywhere.
func (a *Agent) Stop(ctx context.Context) (resource.Output, error) {
	_, to, _ := a.Timeouts()
	ctx, cancel := withDefaultTimeout(ctx, to)
	defer cancel()
	rec := &recorder{start: time.Now()}
	v, err := a.look()
	if err != nil {
		return rec.out(), fmt.Errorf("mount %s: %w", a.name, err)
	}
	if v.ours == nil {
		if v.top != nil {
			rec.note("%s is not mounted at %s (%s is, left alone)", a.device, v.target, v.top.Source)
		} else {
			rec.note("%s is not mounted at %s", a.device, v.target)
		}
		return rec.out(), nil
	}
	if v.ours != v.top {
		_, serr := v.state()
		return rec.out(), fmt.Errorf("mount %s: %w; unmount what is on top first", a.name, serr)
	}
	fsDev := v.ours.Dev
	if err := a.unmountHere(ctx, rec); err != nil {
		return rec.out(), fmt.Errorf("mount %s: %w", a.name, err)
	}
	if err := a.unmountElsewhere(ctx, fsDev, rec); err != nil {
		return rec.out(), fmt.Errorf("mount %s: %w", a.name, err)
	}
	return rec.out(), nil
}

// unmountHere unmounts the path (and what is mounted below it), killing
// the processes that keep it busy if a plain unmount fails.
func (a *Agent) unmountHere(ctx context.Context, rec *recorder) error {
	for attempt := 0; ; attempt++ {
		v, err := a.look()
		if err != nil {
			return err
		}
		if v.ours == nil {
			return nil
		}
		for _, t := range below(v.all, v.ours.ID) {
			if _, err := rec.run(ctx, []string{"umount", t}); err != nil {
				return err
			}
		}
		if _, err := rec.run(ctx, []string{"umount", v.target}); err != nil {
			return err
		}
		v, err = a.look()
		if err != nil {
			return err
		}
		if v.ours == nil {
			return nil
		}
		if attempt > 0 || ctx.Err() != nil {
			return a.stillBusy(v.ours.Dev, fmt.Sprintf("%s is still mounted at %s", a.device, v.target))
		}
		if err := a.killUsers(ctx, v.ours.Dev, rec); err != nil {
			return err
		}
	}
}

// unmountElsewhere unmounts the copies of the file system in other mount
// namespaces, and fails if the file system is still mounted at another
// place in this one (a bind mount someone made by hand must not be torn
// down behind their back, but the device is not free either).
func (a *Agent) unmountElsewhere(ctx context.Context, fsDev uint64, rec *recorder) error {
	for attempt := 0; ; attempt++ {
		v, err := a.look()
		if err != nil {
			return err
		}
		var here []string
		for _, e := range v.all {
			if e.Dev == fsDev {
				here = append(here, e.Target)
			}
		}
		if len(here) > 0 {
			return fmt.Errorf("%s is unmounted from %s but still mounted at %s in this mount namespace; unmount it or make it part of the group", a.device, v.target, strings.Join(here, ", "))
		}
		others, err := otherNamespaces(fsDev)
		if err != nil {
			return err
		}
		if len(others) == 0 {
			return nil
		}
		if attempt > 1 || ctx.Err() != nil {
			var where []string
			for _, o := range others {
				where = append(where, fmt.Sprintf("%s in the mount namespace of pid %d (%s)", strings.Join(o.targets, ", "), o.pid, o.comm))
			}
			return a.stillBusy(fsDev, fmt.Sprintf("%s is still mounted at %s", a.device, strings.Join(where, "; ")))
		}
		if attempt == 1 {
			if err := a.killUsers(ctx, fsDev, rec); err != nil {
				return err
			}
			// A namespace whose last process was killed is gone with its copy.
			if others, err = otherNamespaces(fsDev); err != nil {
				return err
			}
		}
		for _, o := range others {
			for _, t := range o.targets {
				if _, err := rec.run(ctx, []string{"nsenter", "--mount=/proc/" + strconv.Itoa(o.pid) + "/ns/mnt", "umount", t}); err != nil {
					return err
				}
			}
		}
	}
}

func (a *Agent) killUsers(ctx context.Context, fsDev uint64, rec *recorder) error {
	hs, err := findHolders(fsDev)
	if err != nil {
		return err
	}
	if len(hs) == 0 {
		rec.note("busy, but no process uses %s (open by the kernel, e.g. swap, a loop device or an NFS export?)", devString(fsDev))
		return nil
	}
	for _, h := range hs {
		rec.note("in use by %s", h)
	}
	rec.note("sending SIGTERM, then SIGKILL after %s", a.grace)
	signalled, err := killHolders(ctx, fsDev, hs, a.grace)
	for _, h := range signalled {
		a.log.Warn("ended a process that kept the file system busy", "pid", h.pid, "comm", h.comm, "using", h.how)
	}
	return err
}

// stillBusy is the final error, naming who still holds the file system.
func (a *Agent) stillBusy(fsDev uint64, msg string) error {
	hs, err := findHolders(fsDev)
	if err != nil {
		return errors.Join(errors.New(msg), err)
	}
	if len(hs) == 0 {
		return errors.New(msg)
	}
	var list []string
	for _, h := range hs {
		list = append(list, h.String())
	}
	return fmt.Errorf("%s; in use by %s", msg, strings.Join(list, "; "))
}

// below lists the mount points stacked under the mount id, deepest first,
// so that each can be unmounted before its parent.
func below(all []entry, id int) []string {
	children := map[int][]entry{}
	for _, e := range all {
		children[e.Parent] = append(children[e.Parent], e)
	}
	var out []string
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			if c.ID == p {
				continue
			}
			walk(c.ID)
			out = append(out, c.Target)
		}
	}
	walk(id)
	return out
}

// nsMounts is a mount namespace other than ours that has the file system mounted.
type nsMounts struct {
	pid     int // a process in that namespace, to enter it through
	comm    string
	targets []string // deepest first
}

func otherNamespaces(fsDev uint64) ([]nsMounts, error) {
	self, ok := nsInode("self")
	if !ok {
		return nil, errors.New("cannot read /proc/self/ns/mnt")
	}
	seen := map[uint64]bool{self: true}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []nsMounts
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ino, ok := nsInode(e.Name())
		if !ok || seen[ino] {
			continue
		}
		seen[ino] = true
		es, err := readMountinfo("/proc/" + e.Name() + "/mountinfo")
		if err != nil {
			continue // the process ended
		}
		var ts []string
		for _, m := range es {
			if m.Dev == fsDev {
				ts = append(ts, m.Target)
			}
		}
		if len(ts) == 0 {
			continue
		}
		sort.Slice(ts, func(i, j int) bool { return len(ts[i]) > len(ts[j]) })
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		out = append(out, nsMounts{pid: pid, comm: strings.TrimSpace(string(comm)), targets: ts})
	}
	return out, nil
}

func nsInode(pid string) (uint64, bool) {
	fi, err := os.Stat("/proc/" + pid + "/ns/mnt")
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Ino, true
}

// recorder collects every command an action ran and what it printed, for
// the action's event.
type recorder struct {
	start time.Time
	text  strings.Builder
	code  int
}

func (r *recorder) note(format string, args ...any) {
	fmt.Fprintf(&r.text, format+"\n", args...)
}

func (r *recorder) run(ctx context.Context, argv []string) (runexec.Result, error) {
	if err := ctx.Err(); err != nil {
		return runexec.Result{}, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	fmt.Fprintf(&r.text, "$ %s\n", strings.Join(argv, " "))
	res, err := runexec.Run(ctx, runexec.Cmd{Argv: argv})
	if err != nil {
		return res, err
	}
	r.text.Write(res.Output)
	if res.Truncated {
		r.text.WriteString("[output truncated]\n")
	}
	if e := res.Err(); e != nil {
		fmt.Fprintf(&r.text, "[%v]\n", e)
	}
	r.code = res.ExitCode
	return res, nil
}

func (r *recorder) out() resource.Output {
	return resource.Output{Text: r.text.String(), ExitCode: r.code, Duration: time.Since(r.start)}
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return ": " + l
	}
	return ""
}

// withDefaultTimeout bounds a call whose caller gave no deadline, so that a
// hung mount cannot block the group for ever.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
