package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/internal/hbimport"
)

// maxImportInput bounds each Heartbeat file read, so that a wrong path (a disk
// image) is refused instead of read whole; real ones are a few kilobytes.
const maxImportInput = 1 << 20

func importCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "import", Short: "Translate another cluster manager's configuration into a vigil.yaml"}
	cmd.AddCommand(importHeartbeatCmd(g))
	return cmd
}

func importHeartbeatCmd(g *globals) *cobra.Command {
	var (
		hacfs, addresses         []string
		haresources, authkeys    string
		out, cluster, secretsDir string
		force                    bool
	)
	cmd := &cobra.Command{
		Use:   "heartbeat --ha-cf [NODE=]FILE --haresources FILE [--authkeys FILE] [--out FILE]",
		Short: "Write a vigil.yaml from Heartbeat's ha.cf, haresources and authkeys",
		Long: "Translates timings, nodes, links (ucast/bcast/mcast), haresources groups (IPaddr, IPaddr2,\n" +
			"Filesystem, LSB scripts, resource.d agents) and auto_failback. The report on standard error lists\n" +
			"every line not translated, or translated with a change, as FILE:LINE: directive: reason, and what\n" +
			"`vigil config validate` still says about the written file (its TODOs).\n\n" +
			"A ucast line names a peer's address; to know whose, give each node's ha.cf as NODE=FILE, or give\n" +
			"the addresses with --address NODE=IP[,IP...] (one per link, in link order; needed for bcast/mcast).\n" +
			"Exit 0 when the file was written (even with TODOs), 2 when an input is one Heartbeat would refuse.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt := hbimport.Options{Cluster: cluster, SecretsDir: secretsDir, Addresses: map[string][]string{}}
			for _, v := range hacfs {
				node, file := splitNodeFile(v)
				in, err := readImportInput(file)
				if err != nil {
					return usageError{err}
				}
				in.Node = node
				opt.HaCf = append(opt.HaCf, in)
			}
			var err error
			if opt.Haresources, err = readImportInput(haresources); err != nil {
				return usageError{err}
			}
			if authkeys != "" {
				in, err := readImportInput(authkeys)
				if err != nil {
					return usageError{err}
				}
				opt.Authkeys = &in
			}
			for _, a := range addresses {
				name, list, ok := strings.Cut(a, "=")
				if !ok || name == "" || list == "" {
					return usagef("--address %q: want NODE=IP[,IP...]", a)
				}
				opt.Addresses[name] = strings.Split(list, ",")
			}
			if out != "" && out != "-" {
				opt.OutName = out
				if _, err := os.Lstat(out); err == nil && !force {
					return usagef("import heartbeat: refusing to overwrite %s (use --force)", out)
				}
			}
			res, err := hbimport.Import(opt)
			var inputErrs hbimport.InputErrors
			if errors.As(err, &inputErrs) {
				fmt.Fprintln(g.stderr, inputErrs.Error())
				return usagef("import heartbeat: %d problem(s) Heartbeat itself would refuse; nothing written", len(inputErrs))
			}
			if err != nil {
				return err
			}
			where := "standard output"
			if out == "" || out == "-" {
				if _, err := g.stdout.Write(res.YAML); err != nil {
					return fmt.Errorf("import heartbeat: write: %w", err)
				}
			} else {
				if err := writeFileAtomic(out, res.YAML, 0o644); err != nil {
					return fmt.Errorf("import heartbeat: %w", err)
				}
				where = out
			}
			writeImportReport(g.stderr, where, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&hacfs, "ha-cf", nil, "ha.cf, or NODE=FILE for the ha.cf of node NODE (repeat for each node's)")
	f.StringVar(&haresources, "haresources", "", "haresources")
	f.StringVar(&authkeys, "authkeys", "", "authkeys (only reported on: vigil init makes new keys)")
	f.StringVar(&out, "out", "-", "file to write (- for standard output)")
	f.BoolVar(&force, "force", false, "overwrite --out if it exists")
	f.StringVar(&cluster, "cluster", "", "cluster name (default: ha.cf's cluster directive, else linux-ha)")
	f.StringVar(&secretsDir, "secrets-dir", ".", "cluster.secrets_dir: where vigil init puts the keys, relative to the written file")
	f.StringArrayVar(&addresses, "address", nil, "NODE=IP[,IP...]: a node's addresses, one per link (repeat)")
	_ = cmd.MarkFlagRequired("ha-cf")
	_ = cmd.MarkFlagRequired("haresources")
	return cmd
}

// splitNodeFile reads --ha-cf NODE=FILE; a value whose part before '=' looks
// like a path is a plain FILE.
func splitNodeFile(v string) (node, file string) {
	if n, f, ok := strings.Cut(v, "="); ok && n != "" && !strings.ContainsAny(n, `/\`) {
		return n, f
	}
	return "", v
}

func readImportInput(path string) (hbimport.Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return hbimport.Input{}, fmt.Errorf("import heartbeat: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImportInput+1))
	if err != nil {
		return hbimport.Input{}, fmt.Errorf("import heartbeat: read %s: %w", path, err)
	}
	if len(data) > maxImportInput {
		return hbimport.Input{}, fmt.Errorf("import heartbeat: %s is larger than %d bytes: not a Heartbeat configuration file", path, maxImportInput)
	}
	return hbimport.Input{Name: path, Data: data}, nil
}

// writeFileAtomic writes through a temporary file and a rename, so that an
// interrupted import never leaves half a vigil.yaml.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeImportReport(w io.Writer, where string, res *hbimport.Result) {
	fmt.Fprintf(w, "vigil import heartbeat: wrote %s: %d node(s), %d group(s)\n", where, res.Nodes, res.Groups)
	if u := res.Untranslated(); len(u) > 0 {
		fmt.Fprintf(w, "\nnot translated, or only in part (%d):\n", len(u))
		for _, f := range u {
			fmt.Fprintln(w, f)
		}
	}
	if c := res.Changed(); len(c) > 0 {
		fmt.Fprintf(w, "\ntranslated with a change (%d):\n", len(c))
		for _, f := range c {
			fmt.Fprintln(w, f)
		}
	}
	if len(res.Problems) > 0 {
		fmt.Fprintf(w, "\nthe file does not validate yet; fill in its TODOs (%d):\n", len(res.Problems))
		for _, p := range res.Problems {
			fmt.Fprintln(w, p)
		}
	} else {
		fmt.Fprintln(w, "\nthe file validates.")
		for _, warn := range res.Warnings {
			fmt.Fprintln(w, "warning:", warn)
		}
	}
	fmt.Fprintf(w, "\nnext: make the keys and certificates with\n  %s\nthen put the written file in place of DIR/vigil.yaml and run vigil config validate on it.\n", res.InitCommand())
}
