package hbimport

import (
	"errors"
	"testing"
)

func seeds(f *testing.F, paths ...string) {
	for _, p := range paths {
		f.Add(input(f, p).Data)
	}
}

// FuzzParseHaCf: no input makes the ha.cf parser panic, and an error is
// always a list of located input errors.
func FuzzParseHaCf(f *testing.F) {
	seeds(f, "debian/ha.cf", "seed003/ha.cf", "ucast/alpha.ha.cf", "ucast/shared.ha.cf")
	f.Add([]byte("keepalive 1.5e3ms\nnode a,b\nmcast eth0 ff02::1 694 1 0\nucast6 eth0 fe80::1%eth0\nauto_failback LEGACY\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHaCf("ha.cf", data)
		var errs InputErrors
		if err != nil && (!errors.As(err, &errs) || len(errs) == 0) {
			t.Fatalf("error %v is not InputErrors", err)
		}
		if h == nil {
			t.Fatal("no result")
		}
	})
}

// FuzzParseHaresources: no input makes the haresources parser panic.
func FuzzParseHaresources(f *testing.F) {
	seeds(f, "debian/haresources", "seed003/haresources", "ucast/haresources")
	f.Add([]byte("n IPv6addr::2001:db8::1/64/eth0 Filesystem::-Lx::/::ext4 \\\n drbddisk::r0 10.0.0.1/255.255.255.0/eth0:0/10.0.0.255\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range ParseHaresources(data) {
			if l.Node == "" || l.Line < 1 {
				t.Fatalf("line %+v", l)
			}
		}
	})
}

// FuzzImport: whatever the three files hold, Import does not panic, and what
// it writes is YAML that config reads (at worst with problems, the TODOs).
func FuzzImport(f *testing.F) {
	f.Add(input(f, "seed003/ha.cf").Data, input(f, "seed003/haresources").Data, input(f, "seed003/authkeys").Data)
	f.Add(input(f, "ucast/shared.ha.cf").Data, input(f, "ucast/haresources").Data, []byte("auth 1\n1 crc\n"))
	f.Add([]byte(twoNodes), []byte("a IPaddr::10.0.0.9 Filesystem::/d::/p drbddisk MailTo::x LVM httpd::x\n"), []byte{})
	f.Fuzz(func(t *testing.T, hacf, hares, auth []byte) {
		opt := Options{HaCf: []Input{{Name: "ha.cf", Data: hacf}}, Haresources: Input{Name: "haresources", Data: hares}}
		if len(auth) > 0 {
			opt.Authkeys = &Input{Name: "authkeys", Data: auth}
		}
		res, err := Import(opt)
		if err != nil {
			var errs InputErrors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not InputErrors", err)
			}
			return
		}
		checkNoSyntaxProblem(t, res)
	})
}
