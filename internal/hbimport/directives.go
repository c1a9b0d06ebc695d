package hbimport

import "strings"

// Why each ha.cf directive without a translation has none, so that the report
// tells the operator what to do instead of only that something was dropped.
var untranslatedHaCf = map[string]string{
	"udpport": "not carried over: vigil's heartbeats are a different protocol on cluster.ports.heartbeat " +
		"(default 7482/udp; raft 7481/tcp, API 7480/tcp), so both can run side by side during the migration; open those ports",
	"baud":        "vigil has no serial heartbeat: use a second network link instead (a crossover cable with its own addresses)",
	"logfile":     "vigil logs to standard error (the journal under systemd) and records every decision as an event (vigil events)",
	"debugfile":   "vigil logs to standard error (the journal under systemd) and records every decision as an event (vigil events)",
	"logfacility": "vigil logs to standard error (the journal under systemd) and records every decision as an event (vigil events)",
	"use_logd":    "vigil logs to standard error (the journal under systemd) and records every decision as an event (vigil events)",
	"debug":       "vigil has no debug level in vigil.yaml",
	"stonith": "vigil does not use Heartbeat's STONITH plugins: add a fencing: device in vigil.yaml " +
		"with the matching agent from Debian's fence-agents (docs/config.md, fencing)",
	"stonith_host": "vigil does not use Heartbeat's STONITH plugins: add a fencing: device in vigil.yaml " +
		"with the matching agent from Debian's fence-agents (docs/config.md, fencing)",
	"watchdog": "not carried over: vigil enforces its lease in the kernel (nftables), so a frozen node stops " +
		"answering on its virtual IPs by itself; a hardware watchdog is not configured in vigil.yaml",
	"respawn": "vigil does not start helper programs with the cluster: run the program as a process resource " +
		"of a group, or as a systemd unit",
	"apiauth":                 "vigil's API is authenticated with TLS certificates and an operator token that vigil init writes",
	"deadping":                "the ping nodes are not written as public targets (see the ping lines), so neither is their dead time",
	"hopfudge":                "Heartbeat-internal tuning with no vigil equivalent",
	"hbgenmethod":             "Heartbeat-internal tuning with no vigil equivalent",
	"realtime":                "Heartbeat-internal tuning with no vigil equivalent",
	"rtprio":                  "Heartbeat-internal tuning with no vigil equivalent",
	"msgfmt":                  "Heartbeat-internal tuning with no vigil equivalent",
	"compression":             "Heartbeat-internal tuning with no vigil equivalent",
	"coredumps":               "Heartbeat-internal tuning with no vigil equivalent",
	"corerootdir":             "Heartbeat-internal tuning with no vigil equivalent",
	"uuidfrom":                "Heartbeat-internal tuning with no vigil equivalent",
	"env":                     "Heartbeat-internal tuning with no vigil equivalent",
	"memreserve":              "Heartbeat-internal tuning with no vigil equivalent",
	"badpack_warn":            "vigil counts rejected heartbeat packets and writes an event for them",
	"compression_threshold":   "Heartbeat-internal tuning with no vigil equivalent",
	"traditional_compression": "Heartbeat-internal tuning with no vigil equivalent",
	"conn_logd_time":          "Heartbeat-internal tuning with no vigil equivalent",
	"max_rexmit_delay":        "Heartbeat-internal tuning with no vigil equivalent",
	"register_to_apphbd":      "Heartbeat-internal tuning with no vigil equivalent",
	"normalpoll":              "Heartbeat-internal tuning with no vigil equivalent",
	"syslogmsgfmt":            "Heartbeat-internal tuning with no vigil equivalent",
	"autojoin": "vigil has no automatic joining: every node is listed in vigil.yaml and holds a certificate " +
		"from the cluster CA",
	"quorum_server": "vigil counts its own quorum: add a witness node (a small third machine that votes) instead",
	"crm":           "Pacemaker is off: nothing to translate",
	"pacemaker":     "Pacemaker is off: nothing to translate",
}

func untranslatedReason(name string) string {
	if r, ok := untranslatedHaCf[strings.ToLower(name)]; ok {
		return r
	}
	return "unknown directive (Heartbeat itself refuses unknown directives); not translated"
}
