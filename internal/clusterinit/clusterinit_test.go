package clusterinit

import (
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/pki"
)

func threeNodes() []NodeSpec {
	return []NodeSpec{
		{Name: "alessandro", Addresses: []string{"10.0.0.1", "192.168.100.1"}},
		{Name: "federica", Addresses: []string{"10.0.0.2", "192.168.100.2"}},
		{Name: "quorum", Addresses: []string{"10.0.0.3"}, Witness: true},
	}
}

func wantFiles(nodes []NodeSpec) map[string]fs.FileMode {
	m := map[string]fs.FileMode{
		"vigil.yaml":     0o644,
		"ca.crt":         0o644,
		"ca.key":         0o600,
		"heartbeat.key":  0o600,
		"operator.token": 0o600,
	}
	for _, n := range nodes {
		m["nodes/"+n.Name+".crt"] = 0o644
		m["nodes/"+n.Name+".key"] = 0o600
	}
	return m
}

// listFiles returns every regular file under dir, relative, with its mode.
func listFiles(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	got := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRunWritesEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc-vigil")
	nodes := threeNodes()
	written, err := Run(Options{Dir: dir, Cluster: "cityhall", Nodes: nodes})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := wantFiles(nodes)
	got := listFiles(t, dir)
	for rel, mode := range want {
		if m, ok := got[rel]; !ok {
			t.Errorf("%s not written", rel)
		} else if m != mode {
			t.Errorf("%s mode %v, want %v", rel, m, mode)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("unexpected file %s", rel)
		}
	}
	if len(written) != len(want) {
		t.Errorf("Run returned %d paths, want %d: %v", len(written), len(want), written)
	}
	for _, p := range written {
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Errorf("returned path %s is not under %s", p, dir)
		}
	}

	// Every node certificate chains to ca.crt and carries the node's addresses.
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pki.CertPool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		certPEM, _ := os.ReadFile(filepath.Join(dir, "nodes", n.Name+".crt"))
		keyPEM, _ := os.ReadFile(filepath.Join(dir, "nodes", n.Name+".key"))
		if _, err := pki.PeerTLS(caPEM, certPEM, keyPEM); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
		block, _ := pem.Decode(certPEM)
		if block == nil {
			t.Fatalf("%s: no PEM", n.Name)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range append([]string{n.Name}, n.Addresses...) {
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
				t.Errorf("%s as %s: %v", n.Name, host, err)
			}
		}
	}
	if _, err := pki.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")); err != nil {
		t.Errorf("LoadCA: %v", err)
	}
	if _, err := pki.LoadHMACKey(filepath.Join(dir, "heartbeat.key")); err != nil {
		t.Errorf("LoadHMACKey: %v", err)
	}
	if _, err := pki.LoadToken(filepath.Join(dir, "operator.token")); err != nil {
		t.Errorf("LoadToken: %v", err)
	}

	cfg := decodeConfig(t, filepath.Join(dir, "vigil.yaml"))
	if cfg.Cluster.Name != "cityhall" || cfg.Cluster.SecretsDir != "." {
		t.Errorf("cluster = %+v", cfg.Cluster)
	}
	wantTiming := config.Timing{
		Keepalive: config.Duration(200 * time.Millisecond),
		Warntime:  config.Duration(time.Second),
		Deadtime:  config.Duration(2 * time.Second),
		Initdead:  config.Duration(10 * time.Second),
	}
	if cfg.Cluster.Timing != wantTiming {
		t.Errorf("timing = %+v, want %+v", cfg.Cluster.Timing, wantTiming)
	}
	wantPorts := config.Ports{Heartbeat: config.DefaultHeartbeatPort, Raft: config.DefaultRaftPort, API: config.DefaultAPIPort}
	if cfg.Cluster.Ports != wantPorts {
		t.Errorf("ports = %+v, want %+v", cfg.Cluster.Ports, wantPorts)
	}
	if len(cfg.Nodes) != len(nodes) {
		t.Fatalf("nodes = %+v", cfg.Nodes)
	}
	for i, n := range nodes {
		got := cfg.Nodes[i]
		if got.Name != n.Name || !slices.Equal(got.Addresses, n.Addresses) || got.Witness != n.Witness {
			t.Errorf("node %d = %+v, want %+v", i, got, n)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, "vigil.yaml"))
	if !strings.Contains(string(data), "ca.key") || !strings.Contains(string(data), "offline") {
		t.Error("vigil.yaml does not say that ca.key can go offline")
	}
	if strings.Contains(string(data), "WARNING: two nodes") {
		t.Error("fence warning for a cluster with a witness")
	}
}

// decodeConfig parses a generated vigil.yaml strictly into config.Config,
// then loads it with config.Load, which also applies config's validation.
func decodeConfig(t *testing.T, path string) config.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg config.Config
	if err := yaml.UnmarshalWithOptions(data, &cfg, yaml.Strict()); err != nil {
		t.Fatalf("strict decode of %s: %v\n%s", path, err, data)
	}
	loaded, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load(%s): %v\n%s", path, err, data)
	}
	if loaded.Cluster.Name != cfg.Cluster.Name || len(loaded.Nodes) != len(cfg.Nodes) {
		t.Errorf("config.Load = %+v, strict decode = %+v", loaded, cfg)
	}
	return cfg
}

func TestRunTwoNodesWarnsAboutFencing(t *testing.T) {
	dir := t.TempDir()
	nodes := []NodeSpec{
		{Name: "a", Addresses: []string{"10.0.0.1"}},
		{Name: "b", Addresses: []string{"10.0.0.2"}},
	}
	if _, err := Run(Options{Dir: dir, Cluster: "c", Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "vigil.yaml"))
	if !strings.Contains(string(data), "fence device") {
		t.Errorf("no fence warning for two nodes without witness:\n%s", data)
	}
	decodeConfig(t, filepath.Join(dir, "vigil.yaml"))
}

// YAML-special names and IPv6 addresses must still come back as the same strings.
func TestRunAwkwardValues(t *testing.T) {
	dir := t.TempDir()
	nodes := []NodeSpec{
		{Name: "no", Addresses: []string{"::1", "fd00::1"}},
		{Name: "123", Addresses: []string{"127.0.0.2"}},
		{Name: "x-1", Addresses: []string{"127.0.0.3"}, Witness: true},
	}
	if _, err := Run(Options{Dir: dir, Cluster: "null", Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	cfg := decodeConfig(t, filepath.Join(dir, "vigil.yaml"))
	if cfg.Cluster.Name != "null" {
		t.Errorf("cluster name = %q", cfg.Cluster.Name)
	}
	for i, n := range nodes {
		if cfg.Nodes[i].Name != n.Name || !slices.Equal(cfg.Nodes[i].Addresses, n.Addresses) {
			t.Errorf("node %d = %+v, want %+v", i, cfg.Nodes[i], n)
		}
	}
}

func TestRunRefusesToOverwrite(t *testing.T) {
	for _, existing := range []string{"ca.key", "vigil.yaml", "nodes/federica.key", "operator.token"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, existing)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := listFiles(t, dir)
			written, err := Run(Options{Dir: dir, Cluster: "cityhall", Nodes: threeNodes()})
			if err == nil {
				t.Fatal("Run overwrote without Force")
			}
			if want := "refusing to overwrite " + p + " (use --force)"; !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to contain %q", err, want)
			}
			if len(written) != 0 {
				t.Errorf("written = %v", written)
			}
			if after := listFiles(t, dir); len(after) != len(before) {
				t.Errorf("files after refusal: %v, before: %v", after, before)
			}
			if data, _ := os.ReadFile(p); string(data) != "keep me" {
				t.Errorf("%s changed to %q", existing, data)
			}
		})
	}
}

func TestRunForceOverwrites(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Dir: dir, Cluster: "cityhall", Nodes: threeNodes()}
	if _, err := Run(opt); err != nil {
		t.Fatal(err)
	}
	oldCA, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	oldToken, _ := os.ReadFile(filepath.Join(dir, "operator.token"))
	if _, err := Run(opt); err == nil {
		t.Fatal("second Run without Force succeeded")
	}
	opt.Force = true
	written, err := Run(opt)
	if err != nil {
		t.Fatalf("Run with Force: %v", err)
	}
	if len(written) != len(wantFiles(opt.Nodes)) {
		t.Errorf("written = %v", written)
	}
	newCA, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	newToken, _ := os.ReadFile(filepath.Join(dir, "operator.token"))
	if string(newCA) == string(oldCA) || string(newToken) == string(oldToken) {
		t.Error("Force did not replace the CA and the token")
	}
	got := listFiles(t, dir)
	for rel, mode := range wantFiles(opt.Nodes) {
		if got[rel] != mode {
			t.Errorf("%s mode %v, want %v", rel, got[rel], mode)
		}
	}
	if len(got) != len(wantFiles(opt.Nodes)) {
		t.Errorf("leftover files: %v", got)
	}
	// The new node certificates chain to the new CA.
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	certPEM, _ := os.ReadFile(filepath.Join(dir, "nodes", "alessandro.crt"))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "nodes", "alessandro.key"))
	if _, err := pki.ServerTLS(caPEM, certPEM, keyPEM); err != nil {
		t.Error(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, _ := x509.ParseCertificate(block.Bytes)
	pool, _ := pki.CertPool(caPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("node certificate does not chain to the new CA: %v", err)
	}
}

func TestRunValidation(t *testing.T) {
	two := func() []NodeSpec {
		return []NodeSpec{{Name: "a", Addresses: []string{"10.0.0.1"}}, {Name: "b", Addresses: []string{"10.0.0.2"}}}
	}
	cases := []struct {
		name string
		opt  func(*Options)
		want string
	}{
		{"no dir", func(o *Options) { o.Dir = "" }, "directory"},
		{"no cluster", func(o *Options) { o.Cluster = "" }, "cluster name"},
		{"bad cluster", func(o *Options) { o.Cluster = "City_Hall" }, `cluster name "City_Hall"`},
		{"one node", func(o *Options) { o.Nodes = o.Nodes[:1] }, "at least 2"},
		{"duplicate", func(o *Options) { o.Nodes[1].Name = "a" }, `node "a" is given twice`},
		{"bad node name", func(o *Options) { o.Nodes[1].Name = "B" }, `node name "B"`},
		{"long node name", func(o *Options) { o.Nodes[1].Name = strings.Repeat("x", 64) }, "1 to 63"},
		{"hyphen first", func(o *Options) { o.Nodes[1].Name = "-b" }, `node name "-b"`},
		{"too many links", func(o *Options) {
			o.Nodes[1].Addresses = []string{"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8", "10.1.0.9"}
		}, "at most 8 links"},
		{"no address", func(o *Options) { o.Nodes[1].Addresses = nil }, `node "b" has no address`},
		{"bad address", func(o *Options) { o.Nodes[1].Addresses = []string{"10.0.0.300"} }, `"10.0.0.300" is not an IP address`},
		{"cidr", func(o *Options) { o.Nodes[1].Addresses = []string{"10.0.0.2/24"} }, "not an IP address"},
		{"shared address", func(o *Options) { o.Nodes[1].Addresses = []string{"10.0.0.1"} }, `already node "a"'s`},
		{"all witnesses", func(o *Options) { o.Nodes[0].Witness, o.Nodes[1].Witness = true, true }, "witness"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			opt := Options{Dir: dir, Cluster: "c", Nodes: two()}
			c.opt(&opt)
			if opt.Dir == "" {
				dir = ""
			}
			_, err := Run(opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if dir != "" {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("invalid input created %s", dir)
				}
			}
		})
	}
}

func TestParseNodeFlag(t *testing.T) {
	got, err := ParseNodeFlag("alessandro=10.0.0.1, 192.168.100.1", false)
	if err != nil {
		t.Fatal(err)
	}
	want := NodeSpec{Name: "alessandro", Addresses: []string{"10.0.0.1", "192.168.100.1"}}
	if got.Name != want.Name || !slices.Equal(got.Addresses, want.Addresses) || got.Witness {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got, err = ParseNodeFlag("quorum=FD00::3", true)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Witness || !slices.Equal(got.Addresses, []string{"fd00::3"}) {
		t.Errorf("witness: got %+v", got)
	}

	errs := []struct {
		in      string
		witness bool
		want    string
	}{
		{"alessandro", false, `--node "alessandro": want NAME=ADDR`},
		{"=10.0.0.1", false, `node name ""`},
		{"Bad=10.0.0.1", true, `--witness "Bad=10.0.0.1": node name "Bad"`},
		{"a=", false, "address 1 is empty"},
		{"a=10.0.0.1,", false, "address 2 is empty"},
		{"a=host.example", false, `"host.example" is not an IP address`},
		{"a=fe80::1%eth0", false, "zone"},
		{"a=0.0.0.0", false, "unspecified"},
		{"a=224.0.0.1", false, "multicast"},
		{"a-=10.0.0.1", false, `node name "a-"`},
	}
	for _, e := range errs {
		_, err := ParseNodeFlag(e.in, e.witness)
		if err == nil || !strings.Contains(err.Error(), e.want) {
			t.Errorf("ParseNodeFlag(%q) err = %v, want it to contain %q", e.in, err, e.want)
		}
	}
}
