package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// demoWebCmd is the demo service that the demo's web group runs behind its VIP: it
// answers every request with the name of the node serving it, so a client sees
// the failover.
func demoWebCmd(g *globals) *cobra.Command {
	var listen, node string
	cmd := &cobra.Command{
		Use:    "demo-web --listen ADDR --node NAME",
		Short:  "The demo's web service: answers with the name of the node serving it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if node == "" {
				node = os.Getenv("VIGIL_NODE") // set by the agent for process resources
			}
			if node == "" {
				node, _ = os.Hostname()
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("demo-web: %w", err)
			}
			srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Vigil-Node", node)
				fmt.Fprintf(w, "served by %s\n", node)
			})}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
				if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address to listen on")
	cmd.Flags().StringVar(&node, "node", "", "node name to report (default: $VIGIL_NODE, else the host name)")
	return cmd
}
