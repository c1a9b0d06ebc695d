package tomcat

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/cli"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/duration"
	"github.com/vigil-ha/vigil/internal/workflow"
	"github.com/vigil-ha/vigil/internal/workflow/history"
	"github.com/vigil-ha/vigil/internal/workflow/runner"
)

// standinEnv makes the test binary the stand-in Tomcat: `vigil demo-web`.
const standinEnv = "TOMCAT_STANDIN_LISTEN"

func TestMain(m *testing.M) {
	if addr := os.Getenv(standinEnv); addr != "" {
		os.Exit(cli.Run(context.Background(), []string{"demo-web", "--listen", addr}, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

const base = `cluster:
  name: legend
nodes:
  - {name: legendone, addresses: [10.0.0.1]}
  - {name: legendtwo, addresses: [10.0.0.2]}
  - {name: quorum, addresses: [10.0.0.3], witness: true}
`

// loadExample parses the fragment appended to a cluster, as an operator would use it.
func loadExample(t *testing.T) *config.Config {
	t.Helper()
	frag, err := os.ReadFile("vigil-fragment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "vigil.yaml"), []byte(base+string(frag)))
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if ws := cfg.Warnings(); len(ws) > 0 {
		t.Fatalf("the example has warnings: %q", ws)
	}
	return cfg
}

// faster scales the example's production timings down, except the restart's
// 30-minute cool-down, which the test needs to be long.
func faster(ws []workflow.Workflow) {
	for i := range ws {
		for j := range ws[i].Steps {
			s := &ws[i].Steps[j]
			if s.Watch != nil {
				s.Watch.Interval = duration.Duration(100 * time.Millisecond)
			}
			if s.RetryDelay > 0 {
				s.RetryDelay = duration.Duration(100 * time.Millisecond)
			}
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type remoteCalls struct {
	mu    sync.Mutex
	calls []string
}

func (r *remoteCalls) exec(_ context.Context, req runner.StepRequest) runner.StepResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm := req.Step.Remote
	r.calls = append(r.calls, rm.EffectiveAction()+" "+rm.Workflow+" on "+rm.Node)
	// The failed primary does not answer: what takeControl must live with.
	return runner.StepResult{ExitCode: workflow.RemoteExitUnreachable, Output: "no answer from " + rm.Node}
}

func TestTomcatExample(t *testing.T) {
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		if _, err := os.Stat("/usr/bin/wget"); err != nil {
			t.Skip("the example's check needs curl or wget")
		}
	}
	cfg := loadExample(t)
	ws := cfg.Workflows
	faster(ws)
	tmp := t.TempDir()
	addr := freeAddr(t)
	url := "http://" + addr + "/"
	pidfile := filepath.Join(tmp, "tomcat.pid")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killPid(pidfile) }) // whatever happens, no stand-in outlives the test
	remote := &remoteCalls{}
	eng, err := runner.Open(runner.Options{
		Path: filepath.Join(tmp, "runs.db"), Workflows: ws, BaseDir: cfg.Dir(), Grace: 500 * time.Millisecond,
		Env: []string{"TOMCAT_URL=" + url, "TOMCAT_PIDFILE=" + pidfile, "TOMCAT_STANDIN=" + self,
			standinEnv + "=" + addr, "VIGIL_NODE=legendtwo", "TOMCAT_START_WAIT=20", "TOMCAT_STOP_WAIT=5"},
		StepExecutor: remote.exec,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	start := func(name string) string {
		t.Helper()
		id, err := eng.Start(name, workflow.RunOptions{}, "test")
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		return id
	}
	until := func(id string, what string, cond func(history.Run) bool) history.Run {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := eng.Run(id)
			if err == nil && cond(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out; run %+v", what, r)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	committed := func(r history.Run) bool { return r.Commit != "" }
	final := func(r history.Run) bool { return r.Result.Final() }
	ctx := context.Background()

	// normalPrimer starts Tomcat, passes its commit point and keeps watching.
	primer := start("normalPrimer")
	until(primer, "normalPrimer committed", committed)
	if body := get(t, url); !strings.Contains(body, "served by legendtwo") {
		t.Fatalf("stand-in answered %q", body)
	}
	if _, err := eng.Start("normalPrimer", workflow.RunOptions{}, "test"); !errors.Is(err, runner.ErrAlreadyRunning) {
		t.Fatalf("normalPrimer started twice: %v", err)
	}

	// Tomcat dies: the watch notices (after its retries) and the run abends.
	killPid(pidfile)
	r := until(primer, "normalPrimer abended", final)
	if r.Result != workflow.ResultAbended || r.Step != "normalEnd" || r.Commit != "normalEnd" {
		t.Fatalf("normalPrimer after the crash: %s at %s (commit %q)", r.Result, r.Step, r.Commit)
	}

	// restartWorkFlow brings it back, then holds: no second restart meanwhile.
	restart := start("restartWorkFlow")
	r = until(restart, "restart in its cool-down", func(r history.Run) bool { return r.Phase == "waiting" && r.Step == "cooldown" })
	if r.Commit != "checkTomcat" || get(t, url) == "" {
		t.Fatalf("restart: commit %q", r.Commit)
	}
	if _, err := eng.Start("restartWorkFlow", workflow.RunOptions{}, "test"); !errors.Is(err, runner.ErrAlreadyRunning) {
		t.Fatalf("restart chain not prevented: %v", err)
	}
	if err := eng.Stop(ctx, restart); err != nil {
		t.Fatal(err)
	}

	// gracefulShutdown stops it.
	r = until(start("gracefulShutdown"), "gracefulShutdown", final)
	if r.Result != workflow.ResultEnded || len(r.Steps) != 1 || answers(url) {
		t.Fatalf("gracefulShutdown: %s, %d steps, still answering %v", r.Result, len(r.Steps), answers(url))
	}

	// takeControl on the secondary: the primary does not answer, it goes on.
	take := start("takeControl")
	r = until(take, "takeControl committed", committed)
	if r.Steps[0].Step != "stopPrimary" || r.Steps[0].ExitCode != workflow.RemoteExitUnreachable || !answers(url) {
		t.Fatalf("takeControl: %+v", r.Steps[0])
	}
	remote.mu.Lock()
	calls := strings.Join(remote.calls, "; ")
	remote.mu.Unlock()
	if calls != "run gracefulShutdown on legendone" {
		t.Fatalf("remote calls: %q", calls)
	}
	if err := eng.Stop(ctx, take); err != nil {
		t.Fatal(err)
	}
	if r = until(start("gracefulShutdown"), "final shutdown", final); r.Result != workflow.ResultEnded || answers(url) {
		t.Fatalf("final shutdown: %s", r.Result)
	}
}

func answers(url string) bool {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// killPid kills the stand-in the scripts recorded, and waits for it to go.
func killPid(pidfile string) {
	data, err := os.ReadFile(pidfile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// alive: the process exists and is not a zombie waiting for its reaper (the
// stand-in's parent, the step's shell, is gone; init reaps when it gets to it).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
