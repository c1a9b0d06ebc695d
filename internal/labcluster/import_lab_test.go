package labcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Seed 003 migrated with `vigil import heartbeat`: its ha.cf and haresources
// (testdata of internal/hbimport) become the lab's vigil.yaml. Only what the
// lab cannot keep changes: the virtual IP and the nodes' addresses move into
// the lab's subnet, and the witness the import asks for is added. Then the
// cluster behaves like the original: the VIP runs on cluster-node1 (the
// haresources node), moves to cluster-node2 when cluster-node1 loses power,
// and auto_failback brings it back once cluster-node1 returns.
func TestImportedSeed003FailsOverAndBack(t *testing.T) {
	const (
		n1, n2 = "cluster-node1", "cluster-node2"
		vip    = "10.90.5.50"
	)
	c := New(t, Options{Tag: "imp3", PublicSubnet: "10.90.5.0/24", HeartbeatSubnet: "10.90.6.0/24",
		Nodes: []NodeSpec{{Name: n1}, {Name: n2}, {Name: "w", Witness: true}}})
	seed := "../hbimport/testdata/seed003/"
	haresources, err := os.ReadFile(seed + "haresources")
	if err != nil {
		t.Fatal(err)
	}
	labRes := filepath.Join(t.TempDir(), "haresources")
	if err := os.WriteFile(labRes, []byte(strings.ReplaceAll(string(haresources), "192.168.0.50", vip)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := func(n string) string { return c.Node(n).Host.Addr(Public) }
	ctx := context.Background()
	imported := filepath.Join(t.TempDir(), "vigil.yaml")
	out, err := c.Node("w").Host.Run(ctx, c.Bin, "import", "heartbeat", "--ha-cf", seed+"ha.cf", "--haresources", labRes,
		"--authkeys", seed+"authkeys", "--address", n1+"="+addr(n1), "--address", n2+"="+addr(n2), "--out", imported)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	t.Logf("import report:\n%s", out)
	yaml, err := os.ReadFile(imported)
	if err != nil {
		t.Fatal(err)
	}
	// The witness the import's comment asks for, as the last node.
	witness := fmt.Sprintf("  - {name: w, addresses: [%q], witness: true}\n", addr("w"))
	i := strings.Index(string(yaml), "\ngroups:")
	if i < 0 {
		t.Fatalf("no groups in the imported file:\n%s", yaml)
	}
	lab := string(yaml[:i+1]) + witness + string(yaml[i+1:])
	if err := os.WriteFile(c.Config, []byte(lab), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.Node("w").Host.Run(ctx, c.Bin, "config", "validate", c.Config); err != nil {
		t.Fatalf("the imported config does not validate: %v\n%s\n%s", err, out, lab)
	}
	for _, want := range []string{"keepalive: 2s", "deadtime: 10s", "failback: auto", "address: \"" + vip + "/24\""} {
		if !strings.Contains(lab, want) {
			t.Errorf("imported config lacks %q", want)
		}
	}

	c.StartAll()
	c.WaitHealthy(2 * time.Minute)
	group := "vip-" + strings.ReplaceAll(vip, ".", "-")
	// holds: node alone has the VIP on its eth0 (a powered-off node, whose
	// cables are out, is not asked: its address stays, unreachable).
	holds := func(node string, off ...string) func() error {
		return func() error {
			for _, n := range []string{n1, n2} {
				if len(off) > 0 && off[0] == n {
					continue
				}
				o, err := c.Node(n).Host.Run(ctx, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
				has := err == nil && strings.Contains(string(o), " "+vip+"/")
				if has != (n == node) {
					return fmt.Errorf("%s holds the VIP: %v", n, has)
				}
			}
			return nil
		}
	}
	c.WaitGroupOn([]string{n1, n2, "w"}, group, n1, 2*time.Minute)
	c.WaitFor("the VIP on "+n1+" only", 30*time.Second, holds(n1))

	at := c.PowerOff(n1)
	c.WaitGroupOn([]string{n2, "w"}, group, n2, 10*time.Second+time.Minute)
	c.WaitFor("the VIP on "+n2, 30*time.Second, holds(n2, n1))
	t.Logf("VIP on %s %v after %s lost power (Heartbeat's deadtime 10s)", n2, time.Since(at).Round(time.Millisecond), n1)

	back := time.Now()
	c.PowerOn(n1)
	c.WaitGroupOn([]string{n1, n2, "w"}, group, n1, 3*time.Minute)
	c.WaitFor("the VIP back on "+n1+" only", 30*time.Second, holds(n1))
	t.Logf("auto_failback: the VIP back on %s %v after it returned", n1, time.Since(back).Round(time.Millisecond))
}
