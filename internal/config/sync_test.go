package config

import (
	"strings"
	"testing"
)

const syncBase = `cluster: {name: c}
nodes:
  - {name: a, addresses: [10.0.0.1, 192.168.1.1]}
  - {name: b, addresses: [10.0.0.2, 192.168.1.2]}
  - {name: w, addresses: [10.0.0.3, 192.168.1.3], witness: true}
groups:
  - name: web
    nodes: [a, b]
    resources:
`

func TestSyncResource(t *testing.T) {
	ok := syncBase + `      - {name: data, type: sync, paths: [/srv/www], transport: rsyncd, secrets_file: /etc/vigil/rsync.pw, interval: 1m, bwlimit: 20M}
      - {name: data2, type: sync, paths: [/srv/mail], to: [b], key_file: /root/.ssh/id_ed25519, known_hosts: /etc/vigil/known_hosts, user: backup}
`
	if _, err := Parse("/etc/vigil/vigil.yaml", []byte(ok)); err != nil {
		t.Fatalf("valid sync resources refused: %v", err)
	}
	for _, c := range []struct{ res, want string }{
		{`{name: d, type: sync}`, "paths"},
		{`{name: d, type: sync, paths: [srv]}`, "absolute"},
		{`{name: d, type: sync, paths: [/]}`, "overwrite"},
		{`{name: d, type: sync, paths: [/srv], to: [w]}`, "not one of the group's nodes"},
		{`{name: d, type: sync, paths: [/srv], transport: nfs}`, "ssh or rsyncd"},
		{`{name: d, type: sync, paths: [/srv], transport: rsyncd}`, "secrets_file"},
		{`{name: d, type: sync, paths: [/srv], secrets_file: /x}`, "only for transport rsyncd"},
		{`{name: d, type: sync, paths: [/srv], transport: rsyncd, secrets_file: /x, known_hosts: /k}`, "only for transport ssh"},
		{`{name: d, type: sync, paths: [/srv], key_file: "/my keys/id"}`, "without blanks"},
		{`{name: d, type: sync, paths: [/srv], bwlimit: "fast"}`, "--bwlimit"},
		{`{name: d, type: process, command: [/bin/true], paths: [/srv]}`, "does not apply"},
	} {
		_, err := Parse("/etc/vigil/vigil.yaml", []byte(syncBase+"      - "+c.res+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.res, err, c.want)
		}
	}
}
