package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hbTestdata = "../hbimport/testdata/"

// TestImportHeartbeat runs the command on seed 003's configuration: the file
// is written, the report lists the untranslated lines, and with the addresses
// given the result passes `vigil config validate`.
func TestImportHeartbeat(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "vigil.yaml")
	args := []string{"import", "heartbeat", "--ha-cf", hbTestdata + "seed003/ha.cf", "--haresources", hbTestdata + "seed003/haresources",
		"--authkeys", hbTestdata + "seed003/authkeys", "--out", out}
	code, stdout, stderr := run(t, args...)
	if code != ExitOK || stdout != "" {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"wrote " + out + ": 2 node(s), 1 group(s)",
		"\n" + hbTestdata + "seed003/ha.cf:7: logfile: ",
		"\n" + hbTestdata + "seed003/ha.cf:14: bcast: a broadcast names no node addresses",
		"\n" + hbTestdata + "seed003/ha.cf:15: ping: ",
		"\n" + hbTestdata + "seed003/authkeys:1: auth: ",
		"the file does not validate yet",
		out + ":34: nodes[0].addresses[0]: ",
		"vigil init --dir DIR --cluster linux-ha --node cluster-node1=ADDR --node cluster-node2=ADDR",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("report lacks %q:\n%s", want, stderr)
		}
	}
	// It does not overwrite without --force.
	code, _, stderr = run(t, args...)
	if code != ExitUsage || !strings.Contains(stderr, "--force") {
		t.Fatalf("second run: exit %d %s", code, stderr)
	}
	args = append(args, "--force", "--address", "cluster-node1=192.168.0.2", "--address", "cluster-node2=192.168.0.3", "--cluster", "seed003")
	if code, _, stderr = run(t, args...); code != ExitOK || !strings.Contains(stderr, "the file validates.") {
		t.Fatalf("with addresses: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = run(t, "config", "validate", out)
	if code != ExitOK || !strings.Contains(stdout, `ok (2 nodes, cluster "seed003")`) {
		t.Fatalf("validate: %d %s %s", code, stdout, stderr)
	}
}

// TestImportHeartbeatNodeFiles: each node's ha.cf, named, gives every address;
// without --out the file goes to standard output.
func TestImportHeartbeatNodeFiles(t *testing.T) {
	code, stdout, stderr := run(t, "import", "heartbeat", "--ha-cf", "alpha="+hbTestdata+"ucast/alpha.ha.cf",
		"--ha-cf", "beta="+hbTestdata+"ucast/beta.ha.cf", "--haresources", hbTestdata+"ucast/haresources")
	if code != ExitOK || !strings.Contains(stdout, `addresses: ["10.0.0.1", "192.168.100.1"]`) || !strings.Contains(stderr, "the file validates.") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(p, []byte(stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, "config", "validate", p); code != ExitOK {
		t.Fatalf("validate: %d %s %s", code, out, errs)
	}
}

// TestImportHeartbeatBadInput: what Heartbeat refuses exits 2, every line
// listed, nothing written; so do a missing file and a bad flag.
func TestImportHeartbeatBadInput(t *testing.T) {
	dir := t.TempDir()
	hacf := filepath.Join(dir, "ha.cf")
	if err := os.WriteFile(hacf, []byte("node a b\nkeepalive fast\nucast eth0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "vigil.yaml")
	code, _, stderr := run(t, "import", "heartbeat", "--ha-cf", hacf, "--haresources", hbTestdata+"ucast/haresources", "--out", out)
	if code != ExitUsage || !strings.Contains(stderr, hacf+":2: keepalive: ") || !strings.Contains(stderr, hacf+":3: ucast: ") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a file was written")
	}
	for _, args := range [][]string{
		{"import", "heartbeat", "--ha-cf", filepath.Join(dir, "missing"), "--haresources", hbTestdata + "ucast/haresources"},
		{"import", "heartbeat", "--haresources", hbTestdata + "ucast/haresources"},
		{"import", "heartbeat", "--ha-cf", hbTestdata + "ucast/shared.ha.cf", "--haresources", hbTestdata + "ucast/haresources", "--address", "alpha"},
	} {
		if code, _, stderr := run(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
}
