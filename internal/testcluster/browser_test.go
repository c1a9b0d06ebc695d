package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-ha/vigil/internal/model"
)

// chromiumPath is Debian's chromium (scripts/install-deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test and returns a tab's context.
// Without Chromium the test is skipped, unless VIGIL_REQUIRE_BROWSER is set (CI).
func browser(t *testing.T) context.Context {
	t.Helper()
	if err := exec.Command(chromiumPath, "--version").Run(); err != nil {
		msg := fmt.Sprintf("no usable Chromium at %s (apt-get install chromium): %v", chromiumPath, err)
		if os.Getenv("VIGIL_REQUIRE_BROWSER") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // tests run as root
		// The nodes' certificates come from the cluster's own CA, which this
		// throwaway profile does not trust.
		chromedp.IgnoreCertErrors,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc() // waits for the browser to exit
	})
	return ctx
}

// shots is where screenshots go: VIGIL_SCREENSHOTS (docs/screenshots when
// making the README's), else the test's temporary directory.
func shots(t *testing.T) string {
	if d := os.Getenv("VIGIL_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestConsoleInABrowser drives the console in headless Chromium against a real
// three-node cluster: log in, see it green, move a group through the dialog and
// see the move arrive by live update, see CSRF and the viewer role enforced, and
// watch a failover after a node dies.
func TestConsoleInABrowser(t *testing.T) {
	ctx := browser(t)
	h := &holders{t: t, running: map[string]map[string]bool{}}
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: webGroup, Factory: fakeServices(h)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	c.WaitFor("cluster formed, web on a", 20*time.Second, func() bool {
		on := h.on("web")
		return allAgree(c, []string{"a", "b", "q-w"}, formed)() && len(on) == 1 && on[0] == "a"
	})
	dir := shots(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(dir, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	n, _ := c.Config.Node("a")
	base := "https://" + c.Config.APIAddrs(n)[0]

	// Log in with the operator token: the overview is green with three nodes.
	do("log in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), c.token),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#health.lvl-green")),
		chromedp.WaitVisible(chromedp.CSS(`#live-dot.on`)), // the live stream is connected
	)
	if got := eval(`String(document.querySelectorAll("tr.node[data-level=green]").length)`); got != "3" {
		shot("failed")
		t.Fatalf("%s green nodes on the overview", got)
	}
	if got := eval(`document.querySelector("#health h2").textContent`); got != "All well" {
		t.Fatalf("health says %q", got)
	}
	shot("console-overview")

	// Move web to b: the dialog asks for the node and a reason; the page changes
	// by live update, without a reload (the marker survives).
	do("open the move dialog",
		chromedp.Navigate(base+"/groups"),
		chromedp.WaitVisible(chromedp.CSS(`section.group[data-group=web][data-node=a][data-state=running]`)),
		chromedp.Click(chromedp.CSS(`a[data-action=move][data-group=web]`)),
		chromedp.WaitVisible(chromedp.CSS(`dialog#confirm[open] select[name=node]`)),
	)
	eval(`window.vigilMarker = "kept"; ""`)
	// The browser will not send the form without a reason (the server would refuse it too).
	if got := eval(`String(document.querySelector("dialog#confirm form").checkValidity())`); got != "false" {
		t.Fatalf("an empty reason passed the form's validation")
	}
	do("give a reason",
		chromedp.SetValue(chromedp.CSS(`dialog#confirm select[name=node]`), "b"),
		chromedp.SendKeys(chromedp.CSS(`dialog#confirm textarea[name=reason]`), "patching a"),
	)
	shot("console-move-dialog")
	do("confirm the move",
		chromedp.Click(chromedp.CSS(`#confirm-submit`)),
		chromedp.WaitNotPresent(chromedp.CSS(`dialog#confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash.lvl-green`)),
		chromedp.WaitVisible(chromedp.CSS(`section.group[data-group=web][data-node=b][data-state=running]`)),
	)
	if got := eval(`String(window.vigilMarker)`); got != "kept" {
		t.Fatalf("the page reloaded instead of updating live (marker %q)", got)
	}
	if on := h.on("web"); len(on) != 1 || on[0] != "b" {
		t.Fatalf("web runs on %v", on)
	}
	shot("console-groups-after-move")

	// The timeline shows who asked and why.
	do("timeline",
		chromedp.Navigate(base+"/events?kind=move_requested"),
		chromedp.WaitVisible(chromedp.CSS(`tr.event[data-kind=move_requested]`)),
	)
	if row := eval(`document.querySelector("tr.event[data-kind=move_requested]").textContent`); !strings.Contains(row, "operator") || !strings.Contains(row, "patching a") {
		t.Fatalf("timeline row: %q", row)
	}
	shot("console-events")

	// CSRF: a POST without the session's token is refused, and nothing moves.
	csrfless := eval(`fetch("/actions/move", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "group=web&node=a&reason=csrf"}).then(r => String(r.status))`)
	if csrfless != "403" {
		t.Fatalf("POST without a CSRF token: HTTP %s", csrfless)
	}

	// A failover drill from its button: web goes to a and back to b while the
	// page shows the drill running, then passed, by live update.
	do("open the drill dialog",
		chromedp.Navigate(base+"/drills"),
		chromedp.WaitVisible(chromedp.CSS(`a[data-action=drill][data-group=web]`)),
		chromedp.Click(chromedp.CSS(`a[data-action=drill][data-group=web]`)),
		chromedp.WaitVisible(chromedp.CSS(`dialog#confirm[open] input[name=return]`)),
		chromedp.Click(chromedp.CSS(`dialog#confirm input[name=return]`)),
		chromedp.SendKeys(chromedp.CSS(`dialog#confirm textarea[name=reason]`), "quarterly drill"),
	)
	shot("console-drill-dialog")
	do("confirm the drill",
		chromedp.Click(chromedp.CSS(`#confirm-submit`)),
		chromedp.WaitNotPresent(chromedp.CSS(`dialog#confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash.lvl-green`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.drill[data-outcome=passed]`)),
	)
	if row := eval(`document.querySelector("tr.drill[data-outcome=passed]").textContent`); !strings.Contains(row, "b → a → b") || !strings.Contains(row, "operator") {
		t.Fatalf("drill row: %q", row)
	}
	if on := h.on("web"); len(on) != 1 || on[0] != "b" {
		t.Fatalf("after the drill web runs on %v, want b", on)
	}
	eval(`document.querySelector("tr.drill-steps details").open = true; ""`)
	shot("console-drills")

	// A viewer: no action buttons, and an action posted anyway is 403.
	cl := c.Client("a")
	defer cl.Close()
	viewer, err := cl.CreateToken(context.Background(), "ro", model.TokenViewer)
	if err != nil {
		t.Fatal(err)
	}
	do("log out and in as a viewer",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`button.link`)),
		chromedp.Click(chromedp.CSS(`button.link`)),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), viewer.Token),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#health")),
		chromedp.Navigate(base+"/groups"),
		chromedp.WaitVisible(chromedp.CSS(`section.group[data-group=web]`)),
	)
	if got := eval(`String(document.querySelectorAll("[data-action]").length)`); got != "0" {
		t.Fatalf("a viewer sees %s action buttons", got)
	}
	if user := eval(`document.querySelector("#user").textContent`); user != "ro" {
		t.Fatalf("logged in as %q", user)
	}
	refused := eval(`fetch("/actions/move", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded",
		"X-CSRF-Token": document.querySelector("input[name=csrf]").value, "HX-Request": "true"},
		body: "group=web&node=a&reason=viewer"}).then(r => String(r.status))`)
	if refused != "403" {
		t.Fatalf("a viewer's move: HTTP %s", refused)
	}
	if on := h.on("web"); len(on) != 1 || on[0] != "b" {
		t.Fatalf("web moved for a viewer: %v", on)
	}

	// Kill b, where web runs: the page (served by a) turns yellow and shows web
	// taken over by a, by live update.
	do("overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#health.lvl-green")))
	c.Stop("b")
	do("failover seen",
		chromedp.WaitVisible(chromedp.CSS(`tr.node[data-node=b][data-level=red]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.group[data-group=web][data-node=a][data-state=running]`)),
		chromedp.WaitVisible(chromedp.CSS("#health.lvl-yellow")),
	)
	if reasons := eval(`document.querySelector("#health").textContent`); !strings.Contains(reasons, "node b is dead") {
		t.Fatalf("the yellow banner does not say why: %q", reasons)
	}
	shot("console-failover")
}
