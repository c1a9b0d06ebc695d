package mount

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountinfo(t *testing.T) {
	es, err := parseMountinfo(`26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
41 26 7:3 /sub /srv/my\040data rw,relatime shared:1 master:2 - ext4 /dev/loop3 rw,discard
42 41 0:4 net:[4026532177] /run/netns/x rw shared:2 - nsfs nsfs rw
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("%d entries", len(es))
	}
	e := es[1]
	if e.ID != 41 || e.Parent != 26 || e.Dev != unix.Mkdev(7, 3) || e.Root != "/sub" || e.Target != "/srv/my data" || e.FSType != "ext4" || e.Source != "/dev/loop3" {
		t.Fatalf("%+v", e)
	}
	if _, err := parseMountinfo("1 2 3\n"); err == nil {
		t.Fatal("garbage accepted")
	}
	if got := unescape(`a\134b\011c\0`); got != "a\\b\tc\\0" {
		t.Fatalf("unescape: %q", got)
	}
}

func TestBelowIsDeepestFirst(t *testing.T) {
	all := []entry{{ID: 1, Parent: 0, Target: "/"}, {ID: 10, Parent: 1, Target: "/m"}, {ID: 11, Parent: 10, Target: "/m/a"},
		{ID: 12, Parent: 11, Target: "/m/a/b"}, {ID: 13, Parent: 10, Target: "/m/c"}}
	got := below(all, 10)
	want := []string{"/m/a/b", "/m/a", "/m/c"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
}
