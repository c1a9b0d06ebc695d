package testcluster

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/model"
	"github.com/vigil-ha/vigil/internal/pki"
)

const webGroup = `  - name: web
    nodes: [a, b]
    failback: manual
    resources:
      - {name: www, type: process, command: [/bin/true]}
`

// tokenClient is a client for node with the given token instead of operator.token.
func tokenClient(t *testing.T, c *Cluster, node, token string) *apiclient.Client {
	t.Helper()
	tlsCfg, err := pki.ClientTLS(c.caPEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := c.Config.Node(node)
	return apiclient.New(c.Config.APIAddrs(n), tlsCfg, token)
}

func httpStatus(err error) int {
	var apiErr *apiclient.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

// A viewer token created through the API reads on every node but may not act;
// once revoked, every node refuses it. Actions name the token that asked.
func TestViewerTokenReadsButCannotMove(t *testing.T) {
	h := &holders{t: t, running: map[string]map[string]bool{}}
	c := New(t, Options{Nodes: []string{"a", "b", "q-w"}, Timing: fast, Groups: webGroup, Factory: fakeServices(h)})
	for _, n := range []string{"a", "b", "q-w"} {
		c.Start(n)
	}
	c.WaitFor("web on a", 20*time.Second, func() bool { on := h.on("web"); return len(on) == 1 && on[0] == "a" })
	ctx := context.Background()
	admin := c.Client("b") // through a node that may not be the coordinator
	defer admin.Close()

	viewer, err := admin.CreateToken(ctx, "ro", model.TokenViewer)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := admin.CreateToken(ctx, "alice", model.TokenOperator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateToken(ctx, "ro", model.TokenAdmin); httpStatus(err) != http.StatusConflict {
		t.Fatalf("a second token named ro: %v", err)
	}
	// The log keeps the hash, never the secret.
	evs, err := admin.Events(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var created int
	for _, ev := range evs {
		if ev.Kind == model.EventTokenCreated && ev.Token != nil && ev.By == "operator" {
			created++
			if ev.Token.Hash == "" {
				t.Errorf("token_created without a hash: %+v", ev)
			}
		}
		if strings.Contains(ev.Reason+ev.Output, viewer.Token) || (ev.Token != nil && ev.Token.Hash == viewer.Token) {
			t.Fatalf("a token's secret is in the log: %+v", ev)
		}
	}
	if created != 2 {
		t.Fatalf("%d token_created events", created)
	}

	for _, node := range []string{"a", "b", "q-w"} {
		vc := tokenClient(t, c, node, viewer.Token)
		c.WaitFor("the viewer token known on "+node, 5*time.Second, func() bool {
			_, err := vc.Status(ctx)
			return err == nil
		})
		if gs, err := vc.Groups(ctx); err != nil || len(gs) != 1 {
			t.Fatalf("viewer reads groups on %s: %v %v", node, gs, err)
		}
		if id, err := vc.WhoAmI(ctx); err != nil || id.Name != "ro" || id.Role != model.TokenViewer {
			t.Fatalf("whoami on %s: %+v %v", node, id, err)
		}
		if _, err := vc.Act(ctx, "/v1/groups/web/move", model.OperatorAction{Node: "b", Reason: "try"}); httpStatus(err) != http.StatusForbidden {
			t.Fatalf("viewer move on %s: want 403, got %v", node, err)
		}
		if _, err := vc.CreateToken(ctx, "x", model.TokenAdmin); httpStatus(err) != http.StatusForbidden {
			t.Fatalf("viewer creates a token on %s: want 403, got %v", node, err)
		}
		vc.Close()
	}
	if on := h.on("web"); len(on) != 1 || on[0] != "a" {
		t.Fatalf("web moved for a viewer: %v", on)
	}

	// The operator token moves web; the event names it.
	oc := tokenClient(t, c, "a", ops.Token)
	defer oc.Close()
	c.WaitFor("alice known on a", 5*time.Second, func() bool { _, err := oc.Status(ctx); return err == nil })
	ev, err := oc.Act(ctx, "/v1/groups/web/move", model.OperatorAction{Node: "b", Reason: "patching a"})
	if err != nil || ev.By != "alice" {
		t.Fatalf("operator move: %+v %v", ev, err)
	}
	c.WaitFor("web on b", 10*time.Second, func() bool { on := h.on("web"); return len(on) == 1 && on[0] == "b" })
	if _, err := oc.Tokens(ctx); httpStatus(err) != http.StatusForbidden {
		t.Fatalf("operator lists tokens: want 403, got %v", err)
	}

	// The CLI: list, revoke; then no node takes the token.
	cfgPath := filepath.Join(c.Dir, "vigil.yaml")
	code, out, errs := runCLI("--config", cfgPath, "token", "list")
	if code != 0 || !strings.Contains(out, "operator") || !strings.Contains(out, "ro") || !strings.Contains(out, "viewer") {
		t.Fatalf("token list: %d %q %q", code, out, errs)
	}
	code, out, errs = runCLI("--config", cfgPath, "token", "revoke", "ro", "--reason", "test over")
	if code != 0 || !strings.Contains(out, "token_revoked") {
		t.Fatalf("token revoke: %d %q %q", code, out, errs)
	}
	for _, node := range []string{"a", "b", "q-w"} {
		vc := tokenClient(t, c, node, viewer.Token)
		c.WaitFor("the revoked token refused on "+node, 5*time.Second, func() bool {
			_, err := vc.Status(ctx)
			return httpStatus(err) == http.StatusUnauthorized
		})
		vc.Close()
	}
	code, out, errs = runCLI("--config", cfgPath, "token", "create", "--role", "admin", "--name", "ci")
	if code != 0 || !strings.HasPrefix(out, pki.TokenPrefix) || strings.Count(out, "\n") != 1 || !strings.Contains(errs, "not shown again") {
		t.Fatalf("token create: %d %q %q", code, out, errs)
	}
	if code, _, errs = runCLI("--config", cfgPath, "token", "create", "--role", "root", "--name", "x"); code != 2 {
		t.Fatalf("bad role: %d %q", code, errs)
	}
}
