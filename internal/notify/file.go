package notify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// fileSender appends one JSON line per notification, for tools that tail a file.
type fileSender struct {
	path string
}

func (f *fileSender) send(_ context.Context, p Payload) error {
	line, err := p.encode()
	if err != nil {
		return permanent(err)
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o750); err != nil {
		return fmt.Errorf("notification file: %w", err)
	}
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("notification file: %w", err)
	}
	// One write per line: concurrent appenders (another tool) never interleave within it.
	_, werr := fh.Write(append(line, '\n'))
	// Synced before the spool forgets the notification, so a crash cannot lose it.
	serr := fh.Sync()
	cerr := fh.Close()
	for _, err := range []error{werr, serr, cerr} {
		if err != nil {
			return fmt.Errorf("notification file %s: %w", f.path, err)
		}
	}
	return nil
}

func (f *fileSender) close() {}
