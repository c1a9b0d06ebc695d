package config

import "testing"

// The configuration printed in brief.md must load as written.
const briefConfig = `cluster:
  name: cityhall
  timing: {keepalive: 200ms, warntime: 1s, deadtime: 2s, initdead: 10s}
  public_targets: [{icmp: 192.0.2.1}, {tcp: "192.0.2.2:53"}, {http: "http://192.0.2.3/"}]
nodes:
  - {name: alessandro, addresses: [10.0.0.1, 192.168.100.1]}   # public network, heartbeat network
  - {name: federica,   addresses: [10.0.0.2, 192.168.100.2]}
  - {name: quorum,     addresses: [10.0.0.3], witness: true}
groups:
  - name: web
    nodes: [alessandro, federica]          # preference order
    failback: manual                       # auto | manual | never
    max_restarts: 2
    restart_window: 10m
    resources:
      - {name: vip,  type: ip, address: 10.0.0.100/24, interface: eth0}
      - {name: data, type: mount, device: /dev/drbd0, path: /srv/www, fstype: ext4, fsck: true}
      - {name: db,   type: systemd, unit: mariadb.service}
      - {name: www,  type: ocf, agent: heartbeat/apache, params: {configfile: /etc/apache2/apache2.conf}}
    checks:
      - {type: http, url: "http://10.0.0.100/health", interval: 2s, timeout: 1s, observers: all}
  - name: mail
    nodes: [federica, alessandro]
    failback: auto
    resources:
      - {name: vip,  type: ip, address: 10.0.0.101/24, interface: eth0}
      - {name: mta,  type: process, command: [/usr/sbin/postfix, start-fg]}
`

func TestBriefConfigLoads(t *testing.T) {
	cfg, err := Parse("brief.yaml", []byte(briefConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Cluster.PublicTargets) != 3 {
		t.Fatalf("public targets: %+v", cfg.Cluster.PublicTargets)
	}
	web, _ := cfg.Group("web")
	if len(web.Checks) != 1 || web.StartGrace.D() != DefaultStartGrace {
		t.Fatalf("web checks/defaults: %+v", web)
	}
}
