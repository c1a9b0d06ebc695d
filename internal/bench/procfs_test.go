package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A real /proc/PID/stat line, with a command name that has a space and ')'
// to check the parser finds the fields after the last ')'.
const fakeStat = "4242 (vigil a) b) S 1 4242 4242 0 -1 4194560 2456 0 0 0 123 45 0 0 20 0 9 0 5000 1262645248 4587 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

const fakeStatus = `Name:	vigil
Umask:	0022
State:	S (sleeping)
VmPeak:	 1233076 kB
VmRSS:	   18312 kB
RssAnon:	    9024 kB
RssFile:	    9288 kB
Threads:	9
voluntary_ctxt_switches:	150
nonvoluntary_ctxt_switches:	7
`

const fakeIO = `rchar: 912345
wchar: 777000
syscr: 1500
syscw: 2100
read_bytes: 0
write_bytes: 8192
cancelled_write_bytes: 4096
`

func writeFakeProc(t *testing.T, pid string, stat, status, io string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, pid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Two threads, each with the process's status lines: the switches add up.
	for name, body := range map[string]string{"stat": stat, "status": status, "io": io,
		"task/" + pid + "/status": status, "task/4243/status": status} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadProcFakeFiles(t *testing.T) {
	root := writeFakeProc(t, "4242", fakeStat, fakeStatus, fakeIO)
	got, err := readProc(root, 4242)
	if err != nil {
		t.Fatal(err)
	}
	want := procSample{CPUTicks: 123 + 45, RSSKB: 18312, RSSAnonKB: 9024, RSSFileKB: 9288, Switches: 2 * (150 + 7), WriteBytes: 8192, CancelledWriteBytes: 4096, Syscw: 2100, Wchar: 777000}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestReadProcRejectsBadFiles(t *testing.T) {
	for name, files := range map[string][3]string{
		"short stat":   {"1 (x) S 1 2 3\n", fakeStatus, fakeIO},
		"stat no ')'":  {"1 x S 1 2 3 4 5 6 7 8 9 10 11 12 13\n", fakeStatus, fakeIO},
		"bad utime":    {strings.Replace(fakeStat, " 123 45 ", " x 45 ", 1), fakeStatus, fakeIO},
		"zombie":       {fakeStat, "Name:\tvigil\nState:\tZ (zombie)\n", fakeIO},
		"rss in pages": {fakeStat, "VmRSS:\t18312 pages\n", fakeIO},
		"io missing":   {fakeStat, fakeStatus, "rchar: 1\nwchar: 2\n"},
		"no switches":  {fakeStat, "VmRSS:\t18312 kB\n", fakeIO},
		"io not a num": {fakeStat, fakeStatus, strings.Replace(fakeIO, "syscw: 2100", "syscw: many", 1)},
	} {
		root := writeFakeProc(t, "7", files[0], files[1], files[2])
		if _, err := readProc(root, 7); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := readProc(t.TempDir(), 7); err == nil {
		t.Error("missing process: no error")
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc("/proc", os.Getpid())
	if err != nil {
		t.Skipf("no usable /proc here: %v", err)
	}
	if s.RSSKB == 0 || s.RSSAnonKB == 0 || s.Switches == 0 {
		t.Fatalf("own RSS, anonymous RSS or context switches zero: %+v", s)
	}
}

func TestCompareFiles(t *testing.T) {
	t0 := time.Unix(1000, 0)
	before := map[string]fileInfo{
		"same":    {10, t0},
		"grown":   {10, t0},
		"touched": {10, t0},
		"gone":    {5, t0},
	}
	after := map[string]fileInfo{
		"same":    {10, t0},
		"grown":   {30, t0.Add(time.Second)},
		"touched": {10, t0.Add(time.Second)},
		"new":     {7, t0.Add(time.Second)},
	}
	dc := compareFiles(before, after)
	var paths []string
	for _, f := range dc.Changed {
		paths = append(paths, f.Path)
	}
	if strings.Join(paths, ",") != "gone,grown,new,touched" {
		t.Fatalf("changed %v", paths)
	}
	if dc.BytesGrown != 20+7-5 || dc.Files != 4 {
		t.Fatalf("grown %d, files %d", dc.BytesGrown, dc.Files)
	}
}

func TestRemoveSectionKeepsTheRest(t *testing.T) {
	in := "cluster:\n  name: x\n  timing:\n    keepalive: 200ms\n    # note\n    deadtime: 2s\n  ports:\n    api: 1\nnodes: []\n"
	got := removeSection(in, "  timing:\n")
	if got != "cluster:\n  name: x\n  ports:\n    api: 1\nnodes: []\n" {
		t.Fatalf("got %q", got)
	}
}
