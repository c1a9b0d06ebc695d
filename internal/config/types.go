package config

import (
	"github.com/vigil-ha/vigil/internal/check"
	"time"

	"github.com/vigil-ha/vigil/internal/duration"
	"github.com/vigil-ha/vigil/internal/notify"
	"github.com/vigil-ha/vigil/internal/workflow"
)

// Defaults, documented in docs/config.md. Heartbeat users know these names.
const (
	DefaultKeepalive     = 200 * time.Millisecond
	DefaultWarntime      = 1 * time.Second
	DefaultDeadtime      = 2 * time.Second
	DefaultInitdead      = 10 * time.Second
	DefaultHeartbeatPort = 7482
	DefaultRaftPort      = 7481
	DefaultAPIPort       = 7480
	DefaultClockDrift    = 0.01 // 1 %: far above the few ppm real oscillators drift
)

// Config is the whole cluster's configuration: the same file on every node.
type Config struct {
	Cluster Cluster `yaml:"cluster"`
	Nodes   []Node  `yaml:"nodes"`
	Groups  []Group `yaml:"groups"`
	// Fencing devices, spoken to with the fence-agents protocol.
	Fencing []FenceDevice `yaml:"fencing"`
	// Workflows are procedures of steps driven by exit codes (docs/config.md).
	Workflows []workflow.Workflow `yaml:"workflows"`
	// Batch is the remote batch service; disabled by default.
	Batch Batch `yaml:"batch"`
	// Notifications route committed events to webhooks, mail, scripts, syslog and files.
	Notifications notify.Config `yaml:"notifications"`

	// Path is the file the config was loaded from; relative paths resolve against its directory.
	Path string `yaml:"-"`

	warnings []string // found by validate, with file:line, for Warnings
}

// Cluster holds cluster-wide settings.
type Cluster struct {
	Name string `yaml:"name"`
	// SecretsDir holds ca.crt, heartbeat.key, operator.token and nodes/NAME.{crt,key}.
	// Relative to the config file's directory; default ".".
	SecretsDir string `yaml:"secrets_dir"`
	Timing     Timing `yaml:"timing"`
	Ports      Ports  `yaml:"ports"`
	// MaxGroupsPerNode caps how many groups one node runs at once (0: no cap).
	MaxGroupsPerNode int `yaml:"max_groups_per_node"`
	// PublicTargets are 3 to 5 addresses on the public network (routers, DNS
	// servers...): a node that reaches none of them is cut off from its clients.
	PublicTargets []check.PublicTarget `yaml:"public_targets"`
	// Isolation is what a node does when it hears no peer on any link (seed 002's
	// Split Brain Assassin): tell the load balancer to stop sending it traffic.
	Isolation Isolation `yaml:"isolation"`
}

// Isolation configures the isolated-node protocol.
type Isolation struct {
	// NotificationDir receives outOfOrder.<group> files (and outOfOrder.all) while
	// the node is isolated; they are removed when it is healthy again.
	NotificationDir string `yaml:"notification_dir"`
	// OnIsolated and OnRecovered are commands (argv) run once per transition.
	OnIsolated  []string `yaml:"on_isolated"`
	OnRecovered []string `yaml:"on_recovered"`
}

// Timing uses Heartbeat's names (ha.cf): keepalive, warntime, deadtime, initdead.
type Timing struct {
	Keepalive Duration `yaml:"keepalive"`
	Warntime  Duration `yaml:"warntime"`
	Deadtime  Duration `yaml:"deadtime"`
	Initdead  Duration `yaml:"initdead"`
	// ClockDrift bounds how much faster or slower one node's clock may run than another's,
	// as a fraction; lease arithmetic adds it as a margin.
	ClockDrift float64 `yaml:"clock_drift"`
}

// Ports are the same on every node; several nodes on one machine use distinct addresses.
type Ports struct {
	Heartbeat int `yaml:"heartbeat"` // UDP
	Raft      int `yaml:"raft"`      // TCP, mutual TLS
	API       int `yaml:"api"`       // HTTPS
}

// Node is one server (or witness). The i-th address of every node is on link i.
type Node struct {
	Name      string   `yaml:"name"`
	Addresses []string `yaml:"addresses"`
	Witness   bool     `yaml:"witness"`
}

// Duration is a time.Duration written as "200ms", "2s" (shared with the workflow
// definitions, which cannot import this package).
type Duration = duration.Duration

// FenceDevice is a power switch or management board that can turn nodes off,
// driven by a fence agent (Debian's fence-agents, or a script speaking its protocol:
// key=value lines on standard input, action=off|on|reboot|status).
type FenceDevice struct {
	Name   string            `yaml:"name"`
	Agent  string            `yaml:"agent"` // absolute path, e.g. /usr/sbin/fence_ipmilan
	Params map[string]string `yaml:"params"`
	// Nodes this device can fence; Plugs optionally maps a node to its plug/port.
	Nodes   []string          `yaml:"nodes"`
	Plugs   map[string]string `yaml:"plugs"`
	Timeout Duration          `yaml:"timeout"` // default 30s
}
