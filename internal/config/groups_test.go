package config

import (
	"errors"
	"strings"
	"testing"
)

const withGroups = good + `groups:
  - name: web
    nodes: [alessandro, federica]
    failback: manual
    max_restarts: 2
    restart_window: 10m
    resources:
      - {name: vip,  type: ip, address: 10.0.0.100/24, interface: eth0}
      - {name: data, type: mount, device: /dev/drbd0, path: /srv/www, fstype: ext4, fsck: true}
      - {name: db,   type: systemd, unit: mariadb.service}
      - {name: www,  type: ocf, agent: heartbeat/apache, params: {configfile: /etc/apache2/apache2.conf}}
  - name: mail
    nodes: [federica, alessandro]
    failback: auto
    resources:
      - {name: vip,  type: ip, address: 10.0.0.101/24, interface: eth0}
      - {name: mta,  type: process, command: [/usr/sbin/postfix, start-fg]}
`

func TestGroupsFromTheBrief(t *testing.T) {
	cfg, err := Parse("v.yaml", []byte(withGroups))
	if err != nil {
		t.Fatal(err)
	}
	web, ok := cfg.Group("web")
	if !ok || len(web.Resources) != 4 || web.Resources[3].Params["configfile"] == "" {
		t.Fatalf("web = %+v", web)
	}
	mail, _ := cfg.Group("mail")
	if mail.Failback != "auto" || mail.StartTimeout.D() != DefaultStartTimeout || mail.Resources[0].MonitorInterval.D() != DefaultMonitorEvery {
		t.Fatalf("defaults not applied: %+v", mail)
	}
}

func TestGroupProblems(t *testing.T) {
	bad := good + `groups:
  - name: web
    nodes: [alessandro, quorum, nobody]
    failback: sometimes
    resources:
      - {name: vip, type: ip, address: 10.0.0.100, interface: eth0}
      - {name: vip, type: process, command: [postfix], unit: x.service}
      - {name: m, type: mount, device: /dev/x, path: srv, fstype: ext4}
      - {name: z, type: zfs}
`
	_, err := Parse("v.yaml", []byte(bad))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want problems, got %v", err)
	}
	text := ps.Error()
	for _, want := range []string{
		`v.yaml:10: groups[0].nodes[1]: "quorum" is a witness`,
		`v.yaml:10: groups[0].nodes[2]: "nobody" is not a node`,
		`v.yaml:11: groups[0].failback: "sometimes"`,
		`v.yaml:13: groups[0].resources[0].address: "10.0.0.100" is not an address with a prefix length`,
		`v.yaml:14: groups[0].resources[1].name: "vip" appears twice`,
		`v.yaml:14: groups[0].resources[1].unit: does not apply to type process`,
		`v.yaml:14: groups[0].resources[1].command: "postfix": use an absolute path`,
		`v.yaml:15: groups[0].resources[2].path: required for type mount`,
		`v.yaml:16: groups[0].resources[3].type: "zfs"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
}

// promotable applies to OCF resources only: the OCF promote/demote actions are
// what it drives.
func TestPromotableIsForOCF(t *testing.T) {
	ok := good + `groups:
  - name: db
    nodes: [alessandro, federica]
    resources:
      - {name: drbd, type: ocf, agent: linbit/drbd, params: {drbd_resource: r0}, promotable: true}
`
	cfg, err := Parse("v.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := cfg.Group("db"); !g.Resources[0].Promotable {
		t.Fatalf("promotable not read: %+v", g.Resources[0])
	}
	bad := strings.Replace(ok, "type: ocf, agent: linbit/drbd, params: {drbd_resource: r0}", "type: systemd, unit: drbd.service", 1)
	_, err = Parse("v.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "groups[0].resources[0].promotable: does not apply to type systemd") {
		t.Fatalf("promotable on a systemd resource: %v", err)
	}
}
