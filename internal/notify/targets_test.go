package notify

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestScriptGetsEventOnStdinAndInEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// $0 is the output path; the script records its stdin and VIGIL_ environment.
	script := `cat > "$0.json"; env | grep '^VIGIL_' | sort > "$0.env"; echo done`
	cfg := allTo(
		Target{Name: "ok", Type: TypeScript, Command: []string{"/bin/sh", "-c", script, out}},
		Target{Name: "bad", Type: TypeScript, Command: []string{"/bin/sh", "-c", "echo 'pager gateway down' >&2; exit 3"}},
	)
	d := start(t, cfg, Options{})
	ev := event(9, model.EventNodeFenced, model.SeverityCritical)
	ev.Reason = "confirmed off by fence device pdu1"
	d.Notify(ev)
	waitFor(t, "script ran and bad one failed", func() bool {
		return status(d.Dispatcher, "ok").Delivered == 1 && status(d.Dispatcher, "bad").LastError != ""
	})
	data, err := os.ReadFile(out + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var p Payload
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("stdin %q: %v", data, err)
	}
	if p.Event.Index != 9 || p.Event.Kind != model.EventNodeFenced || p.ID != "test/9" {
		t.Fatalf("payload %+v", p)
	}
	env, err := os.ReadFile(out + ".env")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VIGIL_EVENT_KIND=node_fenced", "VIGIL_EVENT_SEVERITY=critical", "VIGIL_EVENT_INDEX=9",
		"VIGIL_EVENT_NODE=b", "VIGIL_EVENT_REASON=confirmed off by fence device pdu1", "VIGIL_NODE=a", "VIGIL_NOTIFICATION_ID=test/9"} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	// A failing script's output is what the operator sees.
	if st := status(d.Dispatcher, "bad"); !strings.Contains(st.LastError, "exit status 3") ||
		!strings.Contains(st.LastError, "pager gateway down") || st.Queued != 1 {
		t.Errorf("bad: %+v", st)
	}
}

func TestSyslogOverUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := allTo(Target{Name: "syslog", Type: TypeSyslog, Network: "udp", Address: pc.LocalAddr().String(), Tag: "vigil-test"})
	d := start(t, cfg, Options{})
	d.Notify(event(3, model.EventNodeDead, model.SeverityCritical))
	d.Notify(event(4, model.EventLinkDown, model.SeverityWarning))
	var got []string
	buf := make([]byte, 4096)
	for len(got) < 2 {
		_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	// LOG_DAEMON (3<<3) with LOG_CRIT (2) and LOG_WARNING (4).
	if !strings.HasPrefix(got[0], "<26>") || !strings.Contains(got[0], " vigil-test[") ||
		!strings.Contains(got[0], "CRITICAL node_dead node b: no heartbeat for 2s (id test/3, reporter a)") {
		t.Errorf("first message %q", got[0])
	}
	if !strings.HasPrefix(got[1], "<28>") || !strings.Contains(got[1], "WARNING link_down") {
		t.Errorf("second message %q", got[1])
	}
	waitFor(t, "counted", func() bool { return status(d.Dispatcher, "syslog").Delivered == 2 })
}

func TestFileTargetAppendsJSONLines(t *testing.T) {
	dir := t.TempDir()
	cfg := allTo(Target{Name: "file", Type: TypeFile, Dir: "notes"})
	d := start(t, cfg, Options{ConfigDir: dir})
	for i := uint64(1); i <= 3; i++ {
		d.Notify(event(i, model.EventGroupStarted, model.SeverityInfo))
	}
	waitFor(t, "three lines", func() bool { return status(d.Dispatcher, "file").Delivered == 3 })
	f, err := os.Open(filepath.Join(dir, "notes", LogFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var idx []uint64
	for sc.Scan() {
		var p Payload
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		idx = append(idx, p.Event.Index)
	}
	if len(idx) != 3 || idx[0] != 1 || idx[2] != 3 {
		t.Fatalf("lines for %v", idx)
	}
}

func TestBrokenTargetDoesNotStopTheOthers(t *testing.T) {
	dir := t.TempDir()
	cfg := allTo(
		Target{Name: "hook", Type: TypeWebhook, URL: "https://127.0.0.1:1/", CAFile: "missing.crt"},
		Target{Name: "file", Type: TypeFile, Dir: dir},
	)
	d := start(t, cfg, Options{ConfigDir: dir})
	d.Notify(event(1, model.EventNodeDead, model.SeverityCritical))
	waitFor(t, "file delivered, hook failing", func() bool {
		return status(d.Dispatcher, "file").Delivered == 1 && strings.Contains(status(d.Dispatcher, "hook").LastError, "ca_file")
	})
}
