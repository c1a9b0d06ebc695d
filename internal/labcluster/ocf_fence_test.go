package labcluster

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-ha/vigil/internal/model"
)

// TestDebianIPaddr2GroupFencedFailover: a group made of Debian's own OCF agents,
// unchanged (IPaddr2 for the address, Dummy), plus the demo service, runs on its
// preferred node; a fence device is configured (a small script that powers a
// namespace off, standing in for an IPMI board). When the active node dies, the
// coordinator fences it, confirms it off, and only then moves the group; the
// client is answered by the survivor and no two nodes ever hold the address.
func TestDebianIPaddr2GroupFencedFailover(t *testing.T) {
	for _, agent := range []string{"IPaddr2", "Dummy"} {
		if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/" + agent); err != nil {
			t.Fatalf("Debian's resource-agents package is required (scripts/install-deps.sh installs it): %v", err)
		}
	}
	const third = 60
	c := New(t, Options{Tag: "ofence", PublicSubnet: fmt.Sprintf("10.81.%d.0/24", third),
		HeartbeatSubnet: fmt.Sprintf("10.81.%d.0/24", third+1), Nodes: twoPlusWitness(), Clients: []string{clientHost}})
	vip := fmt.Sprintf("10.81.%d.100", third)
	dir := t.TempDir()
	fence := filepath.Join(dir, "fence_netns")
	// The fence-agents protocol on stdin; "plug" is the node's namespace.
	script := `#!/bin/sh
in=$(cat)
ns=$(echo "$in" | sed -n 's/^plug=//p')
case $(echo "$in" | sed -n 's/^action=//p') in
  off) ip netns pids "$ns" | xargs -r kill -9; exit 0 ;;
  status) [ -z "$(ip netns pids "$ns")" ] && exit 2; exit 0 ;;
esac
exit 1
`
	if err := os.WriteFile(fence, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`
groups:
  - name: app
    nodes: [a, b]
    resources:
      - {name: addr, type: ocf, agent: heartbeat/IPaddr2, params: {ip: %s, cidr_netmask: "24", nic: eth0}, monitor_interval: 2s}
      - {name: flag, type: ocf, agent: heartbeat/Dummy, params: {state: "%s/dummy.state"}, monitor_interval: 2s}
      - {name: www, type: process, command: [%q, demo-web, --listen, "0.0.0.0:8080"], grace: 2s}
fencing:
  - {name: netns-switch, agent: %s, nodes: [a, b], plugs: {a: %s, b: %s}, timeout: 20s}
`, vip, dir, c.Bin, fence, c.Node("a").Host.Netns(), c.Node("b").Host.Netns())
	f, err := os.OpenFile(c.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	f.Close()
	chk := c.CheckSplitBrain(Watch{Group: "app", VIP: netip.MustParseAddr(vip), Service: DemoWeb("0.0.0.0:8080")})
	c.StartAll()
	c.WaitHealthy(formTimeout)
	client := c.StartClient(clientHost, vip+":8080")
	gl := &groupLab{Cluster: c, t: t, chk: chk, clients: map[string]*Client{"app": client}}
	gl.waitOn([]string{"a", "b", "w"}, "app", "a", convergeTimeout)

	before := gl.events("b", "w")
	last := before[len(before)-1].Index
	gl.PowerOff("a")
	gl.waitOn([]string{"b", "w"}, "app", "b", convergeTimeout+takeoverSlack)

	evs := Since(gl.events("b", "w"), last)
	var fenced, assigned uint64
	for _, ev := range evs {
		switch {
		case ev.Kind == model.EventNodeFenced && ev.Node == "a" && fenced == 0:
			fenced = ev.Index
		case ev.Kind == model.EventGroupAssigned && ev.Group == "app" && ev.Node == "b" && assigned == 0:
			assigned = ev.Index
		}
	}
	if fenced == 0 || assigned == 0 || assigned < fenced {
		t.Fatalf("the takeover (event %d) must follow a confirmed fence (event %d):\n%s", assigned, fenced, FormatEvents(evs))
	}
	for _, ev := range GroupEvents(evs, "app", model.EventResourceAction) {
		if ev.Resource == "addr" && ev.Node == "b" && ev.Severity != model.SeverityInfo {
			t.Errorf("IPaddr2 on b: %s\n%s", ev.Reason, ev.Output)
		}
	}
}
