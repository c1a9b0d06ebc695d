package clusterinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-ha/vigil/internal/pki"
)

// Certificate lifetimes. They are long because certificate rotation does not
// exist yet, and an expired node certificate would stop the cluster.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	NodeValidity = 10 * 365 * 24 * time.Hour
)

// File names inside Options.Dir; config's SecretsDir documents the same layout.
const (
	ConfigFile       = "vigil.yaml"
	CACertFile       = "ca.crt"
	CAKeyFile        = "ca.key"
	HeartbeatKeyFile = "heartbeat.key"
	TokenFile        = "operator.token"
	NodesDir         = "nodes"
)

// dirMode keeps directories we create private: they hold keys.
const dirMode fs.FileMode = 0o700

type file struct {
	rel  string
	data []byte
	mode fs.FileMode
}

// Run creates a cluster in opt.Dir: the CA, a certificate for every node
// (witnesses included), the heartbeat key, the operator token and vigil.yaml.
// Unless opt.Force is set it refuses, before writing anything, if any of those
// files exists. Each file is written atomically. It returns the paths written;
// on error, files it created are removed again, and the paths it returns are
// the ones that stay changed (files it overwrote under Force).
func Run(opt Options) (written []string, err error) {
	nodes, err := validate(opt)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	files, err := generate(opt.Cluster, nodes)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}

	// Check every target first so that a refusal leaves the directory untouched.
	existed := map[string]bool{}
	for _, f := range files {
		p := filepath.Join(opt.Dir, f.rel)
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			if !opt.Force {
				return nil, fmt.Errorf("init: refusing to overwrite %s (use --force)", p)
			}
			existed[p] = true
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, fmt.Errorf("init: check %s: %w", p, err)
		}
	}

	if err := os.MkdirAll(filepath.Join(opt.Dir, NodesDir), dirMode); err != nil {
		return nil, fmt.Errorf("init: create directory: %w", err)
	}
	for _, f := range files {
		p := filepath.Join(opt.Dir, f.rel)
		if err := pki.WriteFile(p, f.data, f.mode, opt.Force); err != nil {
			return cleanup(written, existed), fmt.Errorf("init: %w", err)
		}
		written = append(written, p)
	}
	return written, nil
}

// cleanup removes the files this run created, so a failed init can simply be
// run again, and returns the ones that stay (overwritten under Force).
func cleanup(written []string, existed map[string]bool) []string {
	var kept []string
	for _, p := range written {
		if existed[p] {
			kept = append(kept, p)
			continue
		}
		if err := os.Remove(p); err != nil {
			kept = append(kept, p)
		}
	}
	return kept
}

// generate builds every file in memory, so that nothing is written when key
// generation or rendering fails. vigil.yaml comes last: once it exists, the
// secrets it describes are complete.
func generate(cluster string, nodes []node) ([]file, error) {
	ca, err := pki.NewCA(cluster, CAValidity)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	hmacKey, err := pki.NewHMACKey()
	if err != nil {
		return nil, err
	}
	token, err := pki.NewToken()
	if err != nil {
		return nil, err
	}
	files := []file{
		{CACertFile, ca.CertPEM(), pki.CertMode},
		{CAKeyFile, caKey, pki.KeyMode},
		{HeartbeatKeyFile, pki.EncodeHMACKey(hmacKey), pki.KeyMode},
		{TokenFile, []byte(token + "\n"), pki.KeyMode},
	}
	for _, n := range nodes {
		certPEM, keyPEM, err := ca.IssueNode(n.Name, n.Addresses, NodeValidity)
		if err != nil {
			return nil, err
		}
		files = append(files,
			file{filepath.Join(NodesDir, n.Name+".crt"), certPEM, pki.CertMode},
			file{filepath.Join(NodesDir, n.Name+".key"), keyPEM, pki.KeyMode},
		)
	}
	cfg, err := renderConfig(cluster, nodes)
	if err != nil {
		return nil, err
	}
	files = append(files, file{ConfigFile, cfg, pki.CertMode})
	return files, nil
}
