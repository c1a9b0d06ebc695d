package clusterinit

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/template"

	"github.com/vigil-ha/vigil/internal/config"
)

// The starter config is a template rather than a marshalled struct so that it
// can carry the comments a first-time user needs. Every value is either a
// number, a duration from config's defaults, or a validated name or address
// passed through quote, so the output always parses.
var configTemplate = template.Must(template.New("vigil.yaml").Funcs(template.FuncMap{
	"quote": quote,
	"list":  quoteList,
}).Parse(`# vigil.yaml for cluster {{quote .Cluster}}, written by ` + "`vigil init`" + `.
# The same file goes on every node and witness. Check it with: vigil config validate
#
# Files that ` + "`vigil init`" + ` wrote next to this one (see cluster.secrets_dir):
#   ca.crt               the cluster CA certificate; every node needs it.
#   ca.key               the CA private key. Nothing in a running cluster uses it: it only
#                        issues new node certificates. Move it offline after init.
#   nodes/NAME.crt/.key  each node's certificate and key; copy to each node only its own.
#   heartbeat.key        authenticates heartbeats; the same on every node.
#   operator.token       bearer token for the CLI and the HTTPS API; keep it private.

cluster:
  name: {{quote .Cluster}}
  # Where the files above are, relative to this file.
  secrets_dir: "."
  # Heartbeat's names (ha.cf): a heartbeat every keepalive; a warning after warntime
  # without one; the node is declared dead after deadtime; initdead is the longer
  # wait for peers when the cluster starts.
  timing:
    keepalive: {{.Keepalive}}
    warntime: {{.Warntime}}
    deadtime: {{.Deadtime}}
    initdead: {{.Initdead}}
  # The same ports on every node; several nodes on one machine need distinct addresses.
  ports:
    heartbeat: {{.HeartbeatPort}}  # UDP
    raft: {{.RaftPort}}       # TCP, mutual TLS between nodes
    api: {{.APIPort}}        # HTTPS: CLI, web console, /metrics

# The i-th address of every node is on link i: heartbeats go over every link, so
# give each node one address per network, in the same order (for example the
# public network first, then a dedicated heartbeat network).
# A witness votes for quorum but never runs groups.
nodes:
{{- range .Nodes}}
  - name: {{quote .Name}}
    addresses: {{list .Addresses}}
    witness: {{.Witness}}
{{- end}}
{{- if .TwoNodesNoWitness}}

# WARNING: two nodes without a witness have no safe majority. Automatic failover
# needs a fence device; otherwise add a witness (vigil init --witness NAME=ADDR).
{{- end}}

# Service groups come next. For example:
#
# groups:
#   - name: web
#     nodes: [{{.ExampleNodes}}]  # in order of preference
#     failback: manual  # auto | manual | never
#     resources:
#       - {name: vip, type: ip, address: 192.0.2.100/24, interface: eth0}
#       - {name: www, type: systemd, unit: nginx.service}
#     checks:
#       - {type: http, url: "http://192.0.2.100/", interval: 2s, timeout: 1s}
`))

type configData struct {
	Cluster                          string
	Keepalive, Warntime              string
	Deadtime, Initdead               string
	HeartbeatPort, RaftPort, APIPort int
	Nodes                            []node
	TwoNodesNoWitness                bool
	ExampleNodes                     string
}

func renderConfig(cluster string, nodes []node) ([]byte, error) {
	d := configData{
		Cluster:       cluster,
		Keepalive:     config.DefaultKeepalive.String(),
		Warntime:      config.DefaultWarntime.String(),
		Deadtime:      config.DefaultDeadtime.String(),
		Initdead:      config.DefaultInitdead.String(),
		HeartbeatPort: config.DefaultHeartbeatPort,
		RaftPort:      config.DefaultRaftPort,
		APIPort:       config.DefaultAPIPort,
		Nodes:         nodes,
	}
	var workers []string
	witness := false
	for _, n := range nodes {
		if n.Witness {
			witness = true
		} else {
			workers = append(workers, n.Name)
		}
	}
	d.TwoNodesNoWitness = !witness && len(nodes) == 2
	d.ExampleNodes = strings.Join(workers, ", ")
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render vigil.yaml: %w", err)
	}
	return buf.Bytes(), nil
}

// quote returns a YAML double-quoted scalar. strconv.Quote's escapes are a
// subset of YAML's for the ASCII names and addresses we write, and quoting
// keeps names such as "no", "null" or "123" strings.
func quote(s string) string {
	return strconv.Quote(s)
}

// quoteList returns a YAML flow sequence of quoted addresses.
func quoteList(addrs []netip.Addr) string {
	items := make([]string, len(addrs))
	for i, a := range addrs {
		items[i] = quote(a.String())
	}
	return "[" + strings.Join(items, ", ") + "]"
}
