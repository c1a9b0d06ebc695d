package cli

import (
	"fmt"
	"io"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/pki"
)

// printConsole tells the demo's user where the web console is and gives the
// bootstrap token to paste on its login page.
func printConsole(w io.Writer, cfgPath, node string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	n, ok := cfg.Node(node)
	if !ok {
		return fmt.Errorf("demo console: no node %s in %s", node, cfgPath)
	}
	addrs := cfg.APIAddrs(n)
	if len(addrs) == 0 {
		return fmt.Errorf("demo console: node %s has no API address", node)
	}
	token, err := pki.LoadToken(cfg.SecretsPath("operator.token"))
	if err != nil {
		return fmt.Errorf("demo console: %w", err)
	}
	fmt.Fprintf(w, "\nWeb console (every node serves it; this is %s):\n  https://%s/\n", node, addrs[0])
	fmt.Fprintf(w, "Log in with the operator token (role admin):\n  %s\n", token)
	fmt.Fprintf(w, "The certificate is signed by the cluster's own CA, %s:\nthe browser warns unless you trust that CA.\n", cfg.SecretsPath("ca.crt"))
	return nil
}
