package ip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    config.Resource
		opts    Options
		wantErr string
	}{
		{"v4", config.Resource{Name: "vip", Type: "ip", Address: "10.0.0.100/24", Interface: "eth0"}, Options{}, ""},
		{"v6", config.Resource{Name: "vip", Address: "fd00::100/64", Interface: "eth0"}, Options{}, ""},
		{"host route", config.Resource{Address: "10.0.0.100/32", Interface: "eth0"}, Options{}, ""},
		{"wrong type", config.Resource{Name: "x", Type: "mount", Address: "10.0.0.100/24", Interface: "eth0"}, Options{}, `type is "mount"`},
		{"no address", config.Resource{Interface: "eth0"}, Options{}, "address: missing"},
		{"no prefix", config.Resource{Address: "10.0.0.100", Interface: "eth0"}, Options{}, "has no prefix length: write it as 10.0.0.100/24"},
		{"garbage", config.Resource{Address: "10.0.0/24", Interface: "eth0"}, Options{}, "is not an address with a prefix length"},
		{"network address", config.Resource{Address: "10.0.0.0/24", Interface: "eth0"}, Options{}, "network address"},
		{"broadcast", config.Resource{Address: "10.0.0.255/24", Interface: "eth0"}, Options{}, "broadcast address"},
		{"loopback", config.Resource{Address: "127.0.0.2/8", Interface: "eth0"}, Options{}, "cannot be a virtual IP"},
		{"link-local", config.Resource{Address: "fe80::1/64", Interface: "eth0"}, Options{}, "cannot be a virtual IP"},
		{"multicast", config.Resource{Address: "239.1.1.1/24", Interface: "eth0"}, Options{}, "cannot be a virtual IP"},
		{"mapped", config.Resource{Address: "::ffff:10.0.0.1/120", Interface: "eth0"}, Options{}, "IPv4-mapped"},
		{"no interface", config.Resource{Address: "10.0.0.100/24"}, Options{}, "interface: missing"},
		{"alias label", config.Resource{Address: "10.0.0.100/24", Interface: "eth0:1"}, Options{}, "alias label"},
		{"long name", config.Resource{Address: "10.0.0.100/24", Interface: "abcdefghijklmnop"}, Options{}, "longer than 15"},
		{"slash", config.Resource{Address: "10.0.0.100/24", Interface: "a/b"}, Options{}, "no '/'"},
		{"negative interval", config.Resource{Address: "10.0.0.100/24", Interface: "eth0"}, Options{GARPInterval: -time.Second}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.spec, tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if v.opts.GARPCount != DefaultGARPCount || v.opts.GARPInterval != DefaultGARPInterval {
					t.Errorf("defaults: count %d interval %v", v.opts.GARPCount, v.opts.GARPInterval)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New: got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestMsCeil(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		time.Nanosecond:                             time.Millisecond,
		time.Millisecond:                            time.Millisecond,
		time.Millisecond + time.Nanosecond:          2 * time.Millisecond,
		400*time.Millisecond + 300*time.Microsecond: 401 * time.Millisecond,
		1600 * time.Millisecond:                     1600 * time.Millisecond,
	} {
		if got := msCeil(in); got != want {
			t.Errorf("msCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestStartInMissingNetNS(t *testing.T) {
	// Not root: Start must fail cleanly, not panic, and say what it tried.
	v, err := New(config.Resource{Address: "10.0.0.100/24", Interface: "eth0"}, Options{NetNS: "/nonexistent/netns"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := v.Start(context.Background())
	if err == nil {
		t.Fatal("Start in a missing namespace succeeded")
	}
	if out.ExitCode != 1 || !strings.Contains(out.Text, "error:") {
		t.Errorf("output %+v", out)
	}
	var pe interface{ Unwrap() error }
	if !errors.As(err, &pe) {
		t.Errorf("error %v is not wrapped", err)
	}
}
