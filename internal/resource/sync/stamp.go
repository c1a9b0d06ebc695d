package sync

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Stamp is what a pass records in the copy it made.
type Stamp struct {
	From string    // the node that sent the copy
	Time time.Time // when the pass started: the copy has every write before it
}

// ReadStamp reads the stamp in dir; the error wraps os.ErrNotExist when there is none.
func ReadStamp(dir string) (Stamp, error) {
	b, err := os.ReadFile(filepath.Join(dir, StampFile))
	if err != nil {
		return Stamp{}, fmt.Errorf("read sync stamp: %w", err)
	}
	from, ts, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	if !ok {
		return Stamp{}, fmt.Errorf("sync stamp in %s: %q is not \"NODE TIME\"", dir, b)
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Stamp{}, fmt.Errorf("sync stamp in %s: %w", dir, err)
	}
	return Stamp{From: from, Time: t}, nil
}

func writeTempStamp(st Stamp) (string, error) {
	f, err := os.CreateTemp("", "vigil-sync-stamp-")
	if err != nil {
		return "", fmt.Errorf("stamp: %w", err)
	}
	_, werr := fmt.Fprintf(f, "%s %s\n", st.From, st.Time.UTC().Format(time.RFC3339Nano))
	cerr := f.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("stamp: write %s: %v %v", f.Name(), werr, cerr)
	}
	return f.Name(), nil
}
