package ocf

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"20s": 20 * time.Second, "20": 20 * time.Second, " 5s ": 5 * time.Second,
		"500ms": 500 * time.Millisecond, "2min": 2 * time.Minute, "1m": time.Minute,
		"1h": time.Hour, "1.5s": 1500 * time.Millisecond, "90sec": 90 * time.Second,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "s", "20 parsecs", "${OCF_RESKEY_x}", "-5s"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
}

const sampleMeta = `some agent logged this to stderr
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Sample" version="1.1">
<version>1.0</version>
<longdesc lang="en">Long &amp; winding.</longdesc>
<shortdesc lang="en">Sample</shortdesc>
<parameters>
<parameter name="ip" unique="1" required="1">
<longdesc lang="en">The address.</longdesc>
<shortdesc lang="en">IPv4 or IPv6 address</shortdesc>
<content type="string" default="" />
</parameter>
<parameter name="old" required="0"><deprecated/><shortdesc lang="en">x</shortdesc><content type="boolean" default="false"/></parameter>
</parameters>
<actions>
<action name="start" timeout="90" />
<action name="stop" timeout="2min" />
<action name="monitor" timeout="30s" interval="10s" depth="0" role="Promoted" />
<action name="monitor" timeout="20s" interval="11s" depth="0" />
<action name="validate-all" timeout="${X}" />
</actions>
</resource-agent>
trailing noise`

func TestParseMetaData(t *testing.T) {
	m, err := ParseMetaData([]byte(sampleMeta))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "Sample" || m.Version != "1.0" || m.LongDesc != "Long & winding." || m.ShortDesc != "Sample" {
		t.Fatalf("header: %+v", m)
	}
	ip, ok := m.Param("ip")
	if !ok || !ip.Required || !ip.Unique || ip.Type != "string" || ip.ShortDesc != "IPv4 or IPv6 address" {
		t.Fatalf("ip: %+v", ip)
	}
	old, _ := m.Param("old")
	if !old.Deprecated || old.Required || old.Default != "false" {
		t.Fatalf("old: %+v", old)
	}
	for name, want := range map[string]time.Duration{"start": 90 * time.Second, "stop": 2 * time.Minute, "monitor": 20 * time.Second, "validate-all": 0} {
		a, ok := m.Action(name)
		if !ok || a.Timeout != want {
			t.Errorf("action %s: %+v, want timeout %v", name, a, want)
		}
	}
	if _, err := ParseMetaData([]byte("usage: foo {start|stop}")); err == nil {
		t.Fatal("want an error for output that is not meta-data")
	}
}

func TestParseMetaDataLenient(t *testing.T) {
	m, err := ParseMetaData([]byte(`<resource-agent name="x"><shortdesc>a & b</shortdesc><parameters><parameter name="p" required="1"/></parameters></resource-agent>`))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := m.Param("p"); !ok || !p.Required {
		t.Fatalf("%+v", m)
	}
}

// Every agent Debian ships must produce meta-data the parser reads, with
// the actions Vigil relies on.
func TestMetaDataOfEveryInstalledAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 140 shell scripts")
	}
	requireResourceAgents(t)
	agents, err := filepath.Glob(filepath.Join(DefaultOCFRoot, "resource.d", "heartbeat", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, path := range agents {
		if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			continue
		}
		name := "heartbeat/" + filepath.Base(path)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			m, err := MetaData(ctx, "", name)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			for _, act := range []string{"start", "stop", "monitor"} {
				if _, ok := m.Action(act); !ok {
					t.Errorf("%s: no %s action in %+v", name, act, m.Actions)
				}
			}
		}()
	}
	wg.Wait()
}
