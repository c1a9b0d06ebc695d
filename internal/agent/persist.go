package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/membership"
	"github.com/vigil-ha/vigil/internal/pki"
)

const (
	incarnationFile = "incarnation"
	refusalsFile    = "refusals.json"
)

// nextIncarnation returns a boot counter greater than any this node used before.
// The stored counter covers a clock set back; the wall clock covers a lost data
// directory (peers drop heartbeats from an older incarnation as replays).
func nextIncarnation(dataDir string, wall time.Time) (uint64, error) {
	path := filepath.Join(dataDir, incarnationFile)
	var stored uint64
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		stored, err = strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: not a number: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	next := max(stored+1, uint64(wall.UnixMilli()))
	if err := pki.WriteFile(path, []byte(strconv.FormatUint(next, 10)+"\n"), 0o600, true); err != nil {
		return 0, fmt.Errorf("store incarnation: %w", err)
	}
	return next, nil
}

type epochJSON struct {
	Incarnation uint64 `json:"incarnation"`
	Gen         uint64 `json:"gen"`
}

func loadRefusals(dataDir string) (map[string]membership.Epoch, error) {
	path := filepath.Join(dataDir, refusalsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]membership.Epoch{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var raw map[string]epochJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make(map[string]membership.Epoch, len(raw))
	for k, v := range raw {
		out[k] = membership.Epoch{Incarnation: v.Incarnation, Gen: v.Gen}
	}
	return out, nil
}

// saveRefusals makes refusals durable (fsync + rename) before the heartbeat that
// announces them leaves: a refusal is a promise the coordinator relies on.
func saveRefusals(dataDir string, refused map[string]membership.Epoch) error {
	raw := make(map[string]epochJSON, len(refused))
	for k, v := range refused {
		raw[k] = epochJSON{Incarnation: v.Incarnation, Gen: v.Gen}
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("encode refusals: %w", err)
	}
	if err := pki.WriteFile(filepath.Join(dataDir, refusalsFile), data, 0o600, true); err != nil {
		return fmt.Errorf("store refusals: %w", err)
	}
	return nil
}
