package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File modes for what we write: secrets are readable by their owner only.
const (
	KeyMode  fs.FileMode = 0o600 // private keys, heartbeat key, operator token
	CertMode fs.FileMode = 0o644 // certificates and the cluster config
)

// WriteFile writes data to path with mode perm atomically: it writes a temporary
// file in the same directory, syncs it, and then moves it into place, so a crash
// leaves either the old file or the whole new one, never half of it.
// Unless overwrite is set, an existing file is left alone and the error wraps
// fs.ErrExist; the check and the move are one step, so a file created
// concurrently is not clobbered either.
func WriteFile(path string, data []byte, perm fs.FileMode, overwrite bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	// Chmod, not the create mode, because the umask must not loosen or
	// tighten what we were asked for.
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if overwrite {
		if err = os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else {
		// link(2) fails if path exists, unlike rename(2): that is the atomic
		// "create, never replace" we need.
		if err = os.Link(tmpName, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("write %s: %w", path, fs.ErrExist)
			}
			// Some file systems have no hard links; fall back to check-then-rename.
			if _, statErr := os.Lstat(path); statErr == nil {
				return fmt.Errorf("write %s: %w", path, fs.ErrExist)
			}
			if err = os.Rename(tmpName, path); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
		} else {
			_ = os.Remove(tmpName)
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. It is best effort: some systems cannot
// sync a directory, and the data itself is already on disk.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
