package labcluster

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// keepalived, for the side-by-side failover benchmark: Debian's keepalived
// (VRRP) moving the same VIP between two lab hosts that both run the same
// demo-web, so that the same client measures both systems.
//
// keepalived only ever runs here through lab.Host.Start, that is inside a
// lab namespace (`ip netns exec`), with its own configuration and pid files
// in a temporary directory: never the Debian service's files, never in the
// root namespace, where it would add the VIP to the machine's own
// interfaces.

// VRRP describes one VRRP instance shared by the keepalived nodes.
type VRRP struct {
	// VIP with its prefix length, e.g. "10.87.1.100/24"; it goes on Iface.
	VIP   string
	Iface string // the interface adverts and the VIP use, e.g. "eth0"
	// RouterID is the VRRP virtual router id (1-255), unique on the segment.
	RouterID int
	// Advert is the advertisement interval. Below a second VRRPv3 is used,
	// with centisecond resolution; whole seconds keep keepalived's default
	// VRRPv2.
	Advert time.Duration
}

// Version is the VRRP version the configuration asks for.
func (v VRRP) Version() int {
	if v.Advert%time.Second != 0 {
		return 3
	}
	return 2
}

// MasterDown is RFC 5798's Master_Down_Interval for a backup of the given
// priority: 3 × the advert interval plus a skew of (256 − priority) / 256
// of it. It is how long a backup waits, after the master's last advert,
// before it takes over.
func (v VRRP) MasterDown(priority int) time.Duration {
	skew := time.Duration(float64(v.Advert) * float64(256-priority) / 256)
	return 3*v.Advert + skew
}

// Conf renders keepalived.conf for one node. Both nodes start as BACKUP
// with nopreempt, so that a node coming back does not take the VIP back
// (the lab's Vigil groups use failback: manual, and a preempting return
// would add a second outage the client would see). The higher priority
// wins the first election. garp settings are keepalived's defaults: a
// burst of gratuitous ARPs on becoming master, repeated after 5 s.
func (v VRRP) Conf(node string, priority int) string {
	advert := fmt.Sprintf("%d", int(v.Advert/time.Second))
	if v.Version() == 3 {
		advert = fmt.Sprintf("%.2f", v.Advert.Seconds())
	}
	return fmt.Sprintf(`# written by vigil's labcluster for the failover benchmark
global_defs {
  router_id vigil-lab-%[1]s
}
vrrp_instance web {
  state BACKUP
  nopreempt
  interface %[2]s
  virtual_router_id %[3]d
  priority %[4]d
  advert_int %[5]s
  version %[6]d
  virtual_ipaddress {
    %[7]s dev %[2]s
  }
}
`, node, v.Iface, v.RouterID, priority, advert, v.Version(), v.VIP)
}

// KeepalivedNode is keepalived and a demo-web running on one lab host.
type KeepalivedNode struct {
	Name     string
	Host     *lab.Host
	Priority int
	Dir      string // config, pid files, logs
	LogPath  string // keepalived's console log

	vrrp      VRRP
	bin       string // the vigil binary, for demo-web
	port      int
	keepalive *lab.Proc
	web       *lab.Proc
	// logFrom is the size of LogPath when keepalived was last started: the
	// states before it belong to an earlier life.
	logFrom int64
}

// KeepalivedBinary returns keepalived's path, or an error that says how to
// install it.
func KeepalivedBinary() (string, error) {
	p, err := exec.LookPath("keepalived")
	if err != nil {
		return "", fmt.Errorf("keepalived: %w (apt-get install keepalived, or make deps)", err)
	}
	return p, nil
}

// KeepalivedVersion is the first line of `keepalived --version`.
func KeepalivedVersion() string {
	out, _ := exec.Command("keepalived", "--version").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// NewKeepalivedNode prepares keepalived for host in dir; Start runs it.
func NewKeepalivedNode(h *lab.Host, v VRRP, priority int, dir, vigilBin string, port int) (*KeepalivedNode, error) {
	if _, err := KeepalivedBinary(); err != nil {
		return nil, err
	}
	if _, err := netip.ParsePrefix(v.VIP); err != nil {
		return nil, fmt.Errorf("keepalived on %s: VIP: %w", h.Name(), err)
	}
	if v.Advert < 10*time.Millisecond || v.Advert > 255*time.Second || v.RouterID < 1 || v.RouterID > 255 {
		return nil, fmt.Errorf("keepalived on %s: advert %v / router id %d out of VRRP's range", h.Name(), v.Advert, v.RouterID)
	}
	if v.Version() == 3 && v.Advert%(10*time.Millisecond) != 0 {
		return nil, fmt.Errorf("keepalived on %s: advert %v: VRRPv3 counts in centiseconds", h.Name(), v.Advert)
	}
	dir = filepath.Join(dir, h.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("keepalived on %s: %w", h.Name(), err)
	}
	k := &KeepalivedNode{Name: h.Name(), Host: h, Priority: priority, Dir: dir, LogPath: filepath.Join(dir, "keepalived.log"),
		vrrp: v, bin: vigilBin, port: port}
	if err := os.WriteFile(k.conf(), []byte(v.Conf(h.Name(), priority)), 0o644); err != nil {
		return nil, fmt.Errorf("keepalived on %s: write config: %w", h.Name(), err)
	}
	return k, nil
}

func (k *KeepalivedNode) conf() string { return filepath.Join(k.Dir, "keepalived.conf") }

// Start runs demo-web (answering as this node) and keepalived in the
// host's namespace. keepalived runs in the foreground (-n), VRRP only
// (-P), logging to its console only (-l -G), with its own pid files.
func (k *KeepalivedNode) Start() error {
	web := []string{k.bin, "demo-web", "--listen", fmt.Sprintf("0.0.0.0:%d", k.port), "--node", k.Name}
	p, err := k.Host.Start("demo-web", web, nil, filepath.Join(k.Dir, "demo-web.log"))
	if err != nil {
		return err
	}
	k.web = p
	if fi, err := os.Stat(k.LogPath); err == nil {
		k.logFrom = fi.Size()
	} else {
		k.logFrom = 0
	}
	// A previous life's pid files go: keepalived refuses to start while one
	// names a live process, and after a power-off its VRRP child may linger
	// as a zombie, which still counts as alive.
	var pids []string
	for _, f := range []string{"keepalived", "vrrp", "checkers", "bfd"} {
		p := filepath.Join(k.Dir, f+".pid")
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keepalived on %s: %w", k.Name, err)
		}
		pids = append(pids, p)
	}
	argv := []string{"keepalived", "-n", "-P", "-l", "-G", "-D", "-f", k.conf(),
		"-p", pids[0], "-r", pids[1], "-c", pids[2], "-b", pids[3]}
	p, err = k.Host.Start("keepalived", argv, nil, k.LogPath)
	if err != nil {
		return err
	}
	k.keepalive = p
	return nil
}

// Reap waits for keepalived and demo-web to be gone after the host lost
// power (or kills them), so that Start may run them again.
func (k *KeepalivedNode) Reap() error {
	var errs []error
	for _, p := range []*lab.Proc{k.keepalive, k.web} {
		if p != nil {
			errs = append(errs, p.Kill())
		}
	}
	return errors.Join(errs...)
}

var vrrpStateRE = regexp.MustCompile(`\(web\) Entering (\w+) STATE`)

// States lists the VRRP states keepalived entered since it was last
// started, in order, e.g. [BACKUP MASTER]; keepalived logs "(web)
// Entering MASTER STATE" on each transition.
func (k *KeepalivedNode) States() []string {
	data, err := os.ReadFile(k.LogPath)
	if err != nil || int64(len(data)) < k.logFrom {
		return nil
	}
	var out []string
	for _, m := range vrrpStateRE.FindAllSubmatch(data[k.logFrom:], -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// State is the last state keepalived entered since its start ("" if none yet).
func (k *KeepalivedNode) State() string {
	s := k.States()
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// LogTail is the end of keepalived's log, for failure messages.
func (k *KeepalivedNode) LogTail(lines int) string {
	data, _ := os.ReadFile(k.LogPath)
	ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
