package debtest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The version the test builds with: a tag plus commits, so the test also checks how a
// `git describe` string becomes a Debian version.
const (
	testVersion    = "v1.2.3-4-gabcdef0"
	testCommit     = "abcdef0"
	testDebVersion = "1.2.3+git4.abcdef0"
)

// TestDebInstallsAndRuns builds the package with packaging/build-deb.sh, installs it with dpkg
// into a throwaway root (its own dpkg database, never the machine's), runs the installed
// `vigil version` and `vigil config validate` on the shipped example, checks the man pages,
// completions, unit and directories, then purges it.
func TestDebInstallsAndRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a .deb: not with -short")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query", "gzip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the package test needs Debian's dpkg", tool)
		}
	}
	repo := repoRoot(t)
	hostStatus := fileHash(t, "/var/lib/dpkg/status")

	out := t.TempDir()
	build := exec.Command("bash", "packaging/build-deb.sh")
	build.Dir = repo
	build.Env = append(os.Environ(), "OUT_DIR="+out, "LINTIAN=0",
		"VERSION="+testVersion, "COMMIT="+testCommit, "GOARCH="+runtime.GOARCH)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "vigil_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one .deb in %s, got %v", out, debs)
	}
	deb := debs[0]
	if got, want := filepath.Base(deb), "vigil_"+testDebVersion+"_"+debArch(t)+".deb"; got != want {
		t.Errorf("package file %s, want %s", got, want)
	}

	info := run(t, "dpkg-deb", "-I", deb)
	for _, want := range []string{"Package: vigil", "Version: " + testDebVersion, "Architecture: " + debArch(t),
		"Recommends: nftables, iproute2", " postinst", " prerm", " postrm", " conffiles", " md5sums"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	listing := run(t, "dpkg-deb", "-c", deb)
	if !strings.Contains(listing, "drwx------ root/root") {
		t.Errorf("private directories missing or not 0700 root/root:\n%s", listing)
	}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		if !strings.Contains(line, " root/root ") {
			t.Errorf("not owned by root: %s", line)
		}
	}

	root := t.TempDir()
	admin := initDpkgRoot(t, root)
	// --force-script-chrootless: the root has no shell to chroot into; dpkg then sets
	// DPKG_ROOT, which the maintainer scripts prefix to every path they touch.
	// --path-include: minimal images exclude /usr/share/man and /usr/share/doc in
	// /etc/dpkg/dpkg.cfg.d; this root must get every file the package has.
	dpkg := func(args ...string) string {
		base := []string{"--root=" + root, "--admindir=" + admin, "--log=" + filepath.Join(root, "var/log/dpkg.log"),
			"--force-script-chrootless", "--path-include=*"}
		return run(t, "dpkg", append(base, args...)...)
	}
	dpkg("--install", deb)
	status := run(t, "dpkg-query", "--admindir="+admin, "-W", "-f", "${Status} ${Version}\n${Conffiles}\n", "vigil")
	if !strings.HasPrefix(status, "install ok installed "+testDebVersion) || !strings.Contains(status, "/etc/default/vigil") {
		t.Errorf("dpkg-query after install:\n%s", status)
	}

	bin := filepath.Join(root, "usr/bin/vigil")
	if got := run(t, bin, "version"); !strings.HasPrefix(got, "vigil "+testVersion+" (commit "+testCommit) {
		t.Errorf("installed vigil version: %q", got)
	}
	example := filepath.Join(root, "usr/share/doc/vigil/examples/vigil.yaml")
	if got := run(t, bin, "config", "validate", example); !strings.Contains(got, ": ok (3 nodes") {
		t.Errorf("config validate on the shipped example: %q", got)
	}

	for _, p := range []string{"lib/systemd/system/vigil.service", "etc/default/vigil",
		"usr/share/doc/vigil/copyright", "usr/share/doc/vigil/changelog.gz"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("installed file: %v", err)
		}
	}
	unit := readFile(t, filepath.Join(root, "lib/systemd/system/vigil.service"))
	if !strings.Contains(unit, "EnvironmentFile=/etc/default/vigil") || !strings.Contains(unit, "ExecStart=/usr/bin/vigil agent --config /etc/vigil/vigil.yaml --node ${VIGIL_NODE}") {
		t.Errorf("unit file:\n%s", unit)
	}
	for _, d := range []string{"etc/vigil", "var/lib/vigil"} {
		st, err := os.Stat(filepath.Join(root, d))
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: want a 0700 directory, got %v %v", d, st, err)
		}
	}
	checkManPages(t, filepath.Join(root, "usr/share/man/man1"))
	checkCompletions(t, root)

	// Purge: the agent's state goes, the cluster's keys in /etc/vigil stay (the package did
	// not make them), the conffile goes.
	must(t, os.MkdirAll(filepath.Join(root, "var/lib/vigil/alpha"), 0o700))
	must(t, os.WriteFile(filepath.Join(root, "var/lib/vigil/alpha/raft.db"), []byte("x"), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "etc/vigil/ca.crt"), []byte("x"), 0o644))
	dpkg("--purge", "vigil")
	for _, gone := range []string{"usr/bin/vigil", "var/lib/vigil", "etc/default/vigil", "lib/systemd/system/vigil.service"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("after purge %s still exists (%v)", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc/vigil/ca.crt")); err != nil {
		t.Errorf("purge removed the cluster's keys: %v", err)
	}

	if got := fileHash(t, "/var/lib/dpkg/status"); got != hostStatus {
		t.Error("the machine's own dpkg database changed")
	}
}

func checkManPages(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"vigil", "vigil-version", "vigil-agent", "vigil-config", "vigil-config-validate", "vigil-init"} {
		page := gunzip(t, filepath.Join(dir, name+".1.gz"))
		want := strings.ReplaceAll(name, "-", `\-`) + ` \- `
		if !strings.Contains(page, ".TH \""+strings.ToUpper(strings.ReplaceAll(name, "-", `\-`))+"\" \"1\"") || !strings.Contains(page, want) {
			t.Errorf("%s.1: no title or NAME line %q:\n%s", name, want, page)
			continue
		}
		if _, err := exec.LookPath("groff"); err != nil {
			continue
		}
		// -ww: every warning; a page that formats with warnings is malformed roff.
		cmd := exec.Command("groff", "-man", "-ww", "-z", "-Tutf8")
		cmd.Stdin = strings.NewReader(page)
		if b, err := cmd.CombinedOutput(); err != nil || len(b) > 0 {
			t.Errorf("groff on %s.1: %v\n%s", name, err, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "vigil-gen-docs.1.gz")); err == nil {
		t.Error("the hidden gen-docs command has a man page")
	}
}

func checkCompletions(t *testing.T, root string) {
	t.Helper()
	bashFile := filepath.Join(root, "usr/share/bash-completion/completions/vigil")
	for file, want := range map[string]string{
		bashFile: "__start_vigil",
		filepath.Join(root, "usr/share/zsh/vendor-completions/_vigil"):        "#compdef vigil",
		filepath.Join(root, "usr/share/fish/vendor_completions.d/vigil.fish"): "complete -c vigil",
	} {
		if got := readFile(t, file); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q", file, want)
		}
	}
	run(t, "bash", "-n", bashFile)
}

// initDpkgRoot makes the smallest dpkg database dpkg accepts: an empty status file and the
// info, updates and triggers directories.
func initDpkgRoot(t *testing.T, root string) string {
	t.Helper()
	admin := filepath.Join(root, "var/lib/dpkg")
	for _, d := range []string{"info", "updates", "triggers", "../../log"} {
		must(t, os.MkdirAll(filepath.Join(admin, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(admin, "status"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(admin, "available"), nil, 0o644))
	return admin
}

func debArch(t *testing.T) string {
	t.Helper()
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	case "mips64le":
		return "mips64el"
	}
	return runtime.GOARCH
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	must(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("man page: %v", err)
		return ""
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return ""
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Errorf("%s: %v", path, err)
	}
	return string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%v", err)
	}
	return string(b)
}

// fileHash is empty for a missing file, so a machine without a dpkg database compares equal.
func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return string(sum[:])
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
