package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vigil-ha/vigil/internal/apiclient"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/pki"
)

// connect builds an API client from the config: the CA and operator token come from
// the secrets directory; the node is --node, or this machine's own node, or any node.
func (g *globals) connect(node string) (*apiclient.Client, *config.Config, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	caPEM, err := os.ReadFile(cfg.SecretsPath("ca.crt"))
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA: %w", err)
	}
	tlsCfg, err := pki.ClientTLS(caPEM, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	token := os.Getenv("VIGIL_TOKEN")
	if token == "" {
		if token, err = pki.LoadToken(cfg.SecretsPath("operator.token")); err != nil {
			return nil, nil, fmt.Errorf("operator token (or set VIGIL_TOKEN): %w", err)
		}
	}
	addrs, err := apiAddrs(cfg, node)
	if err != nil {
		return nil, nil, err
	}
	return apiclient.New(addrs, tlsCfg, token), cfg, nil
}

func apiAddrs(cfg *config.Config, node string) ([]string, error) {
	if node != "" {
		n, ok := cfg.Node(node)
		if !ok {
			return nil, usagef("--node %q is not in %s (nodes: %v)", node, cfg.Path, cfg.NodeNames())
		}
		return cfg.APIAddrs(n), nil
	}
	local := localAddrs()
	var mine, others []string
	for _, n := range cfg.Nodes {
		isLocal := false
		for _, a := range n.Addresses {
			isLocal = isLocal || local[a]
		}
		if isLocal {
			mine = append(mine, cfg.APIAddrs(n)...)
		} else {
			others = append(others, cfg.APIAddrs(n)...)
		}
	}
	return append(mine, others...), nil
}

func localAddrs() map[string]bool {
	out := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			out[ipn.IP.String()] = true
		}
	}
	return out
}

// withClient connects to node (the config's first reachable node if "") and
// runs fn with a 10-second deadline, the budget of every one-shot verb.
func (g *globals) withClient(ctx context.Context, node string, fn func(context.Context, *apiclient.Client) error) error {
	c, _, err := g.connect(node)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return fn(ctx, c)
}

// printJSON writes v as indented JSON, the --json output of every verb.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
