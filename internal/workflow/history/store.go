package history

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vigil-ha/vigil/internal/workflow"
)

// Defaults for Options.
const (
	DefaultKeepRuns     = 1000
	DefaultKeepAttempts = 1000
)

// Errors callers test with errors.Is.
var (
	ErrNotFound = errors.New("no such run")
	ErrClosed   = errors.New("history is closed")
)

var (
	bucketRuns     = []byte("runs")     // id -> Run header (JSON, no Steps)
	bucketAttempts = []byte("attempts") // id -> bucket: seq (8 bytes BE) -> Attempt (JSON)
	bucketRunning  = []byte("running")  // id -> nothing: runs not yet final, for crash recovery
)

// idLayout sorts as text in time order; Store.NewID makes ids strictly increasing.
const idLayout = "20060102T150405.000000Z"

// Options bound what the history keeps.
type Options struct {
	// KeepRuns: finished runs beyond this many are deleted, oldest first.
	KeepRuns int
	// KeepAttempts: a run keeps its latest attempts only (a repair loop may cycle for days).
	KeepAttempts int
	// LockTimeout bounds the wait for the file lock (another agent on the same file); default 5s.
	LockTimeout time.Duration
}

// Store is the run history in one bbolt file. Writes from many runs are group
// committed by one writer goroutine: while a transaction syncs, the next requests
// queue and go into the following transaction, so one run pays one fsync per
// transition and many concurrent runs share them.
type Store struct {
	db   *bolt.DB
	opts Options

	reqs chan *writeReq
	quit chan struct{}
	done chan struct{} // closed when the writer has returned

	closeOnce sync.Once

	idMu   sync.Mutex
	lastID time.Time // guarded by idMu

	count int // runs in the bucket; owned by the writer goroutine after Open
}

type writeReq struct {
	id       string
	header   []byte
	final    bool
	attempts []encodedAttempt
	done     chan error
}

type encodedAttempt struct {
	seq  int
	data []byte
}

// Open opens (creating) the history at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.KeepRuns <= 0 {
		opts.KeepRuns = DefaultKeepRuns
	}
	if opts.KeepAttempts <= 0 {
		opts.KeepAttempts = DefaultKeepAttempts
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, fmt.Errorf("open run history %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, reqs: make(chan *writeReq), quit: make(chan struct{}), done: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketRuns, bucketAttempts, bucketRunning} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		runs := tx.Bucket(bucketRuns)
		s.count = runs.Stats().KeyN
		if k, _ := runs.Cursor().Last(); k != nil {
			if t, err := time.Parse(idLayout, string(k)); err == nil {
				s.lastID = t
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open run history %s: %w", path, err)
	}
	go s.writer()
	return s, nil
}

// Close stops the writer and closes the file. Writes after Close fail with ErrClosed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		if cerr := s.db.Close(); cerr != nil {
			err = fmt.Errorf("close run history: %w", cerr)
		}
	})
	return err
}

// NewID returns a run id: a UTC timestamp to the microsecond, pushed past the last id
// handed out or stored, so ids are unique and sort in start order even if the clock
// steps back across a restart.
func (s *Store) NewID(now time.Time) string {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	t := now.UTC().Truncate(time.Microsecond)
	if !t.After(s.lastID) {
		t = s.lastID.Add(time.Microsecond)
	}
	s.lastID = t
	return t.Format(idLayout)
}

// Put durably writes a run header and, in the same transaction, the given attempts
// (new or updated, by Seq). It returns once the transaction is synced.
func (s *Store) Put(run Run, attempts ...Attempt) error {
	run.Steps = nil
	req := &writeReq{id: run.ID, final: run.Result.Final(), done: make(chan error, 1)}
	var err error
	if req.header, err = json.Marshal(run); err != nil {
		return fmt.Errorf("encode run %s: %w", run.ID, err)
	}
	for _, a := range attempts {
		if a.Seq <= 0 {
			return fmt.Errorf("run %s: attempt of %s has no sequence number", run.ID, a.Step)
		}
		data, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode attempt %d of run %s: %w", a.Seq, run.ID, err)
		}
		req.attempts = append(req.attempts, encodedAttempt{seq: a.Seq, data: data})
	}
	select {
	case s.reqs <- req:
	case <-s.quit:
		return ErrClosed
	}
	// The writer answers every request it received before it looks at quit again.
	if err := <-req.done; err != nil {
		return fmt.Errorf("write run %s: %w", run.ID, err)
	}
	return nil
}

// maxBatch bounds one transaction, so one huge group commit cannot stall the others.
const maxBatch = 256

func (s *Store) writer() {
	defer close(s.done)
	for {
		var batch []*writeReq
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.quit:
			return
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, r := range batch {
				if err := s.apply(tx, r); err != nil {
					return err
				}
			}
			return s.prune(tx)
		})
		if err != nil {
			// One bad request must not fail its neighbours: retry them one by one.
			for _, r := range batch {
				r.done <- s.db.Update(func(tx *bolt.Tx) error { return s.apply(tx, r) })
			}
			s.recount()
			continue
		}
		for _, r := range batch {
			r.done <- nil
		}
	}
}

func (s *Store) apply(tx *bolt.Tx, r *writeReq) error {
	runs, running := tx.Bucket(bucketRuns), tx.Bucket(bucketRunning)
	key := []byte(r.id)
	if runs.Get(key) == nil {
		s.count++
	}
	if err := runs.Put(key, r.header); err != nil {
		return err
	}
	if r.final {
		if err := running.Delete(key); err != nil {
			return err
		}
	} else if err := running.Put(key, nil); err != nil {
		return err
	}
	if len(r.attempts) == 0 {
		return nil
	}
	ab, err := tx.Bucket(bucketAttempts).CreateBucketIfNotExists(key)
	if err != nil {
		return err
	}
	for _, a := range r.attempts {
		if err := ab.Put(seqKey(a.seq), a.data); err != nil {
			return err
		}
		if old := a.seq - s.opts.KeepAttempts; old > 0 {
			if err := ab.Delete(seqKey(old)); err != nil {
				return err
			}
		}
	}
	return nil
}

// prune deletes the oldest finished runs beyond KeepRuns.
func (s *Store) prune(tx *bolt.Tx) error {
	if s.count <= s.opts.KeepRuns {
		return nil
	}
	runs, running, attempts := tx.Bucket(bucketRuns), tx.Bucket(bucketRunning), tx.Bucket(bucketAttempts)
	var victims [][]byte
	c := runs.Cursor()
	for k, _ := c.First(); k != nil && s.count-len(victims) > s.opts.KeepRuns; k, _ = c.Next() {
		if running.Get(k) == nil {
			victims = append(victims, append([]byte(nil), k...))
		}
	}
	for _, k := range victims {
		if err := runs.Delete(k); err != nil {
			return err
		}
		if attempts.Bucket(k) != nil {
			if err := attempts.DeleteBucket(k); err != nil {
				return err
			}
		}
		s.count--
	}
	return nil
}

// recount resets count after a failed transaction left it ahead of the file.
func (s *Store) recount() {
	_ = s.db.View(func(tx *bolt.Tx) error {
		s.count = tx.Bucket(bucketRuns).Stats().KeyN
		return nil
	})
}

func seqKey(seq int) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(seq))
	return k[:]
}

// Recover marks every run that was still running as interrupted, with note, and any
// attempt it left open as cut off. Call it at startup before starting runs: whatever
// was running then was cut off by a crash or a kill, and must not stay "running".
func (s *Store) Recover(now time.Time, note string) ([]string, error) {
	var ids []string
	// Recover runs before any Put could race with it, but it goes through the db's
	// own lock anyway; count is untouched (headers are replaced, not added).
	err := s.db.Update(func(tx *bolt.Tx) error {
		runs, running := tx.Bucket(bucketRuns), tx.Bucket(bucketRunning)
		var keys [][]byte
		if err := running.ForEach(func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := running.Delete(k); err != nil {
				return err
			}
			data := runs.Get(k)
			if data == nil {
				continue
			}
			var r Run
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("decode run %s: %w", k, err)
			}
			last, err := closeOpenAttempt(tx, k, note)
			if err != nil {
				return err
			}
			r.Result, r.Phase, r.Until = workflow.ResultInterrupted, "", time.Time{}
			r.Note = fmt.Sprintf("%s (found at %s)", note, now.UTC().Format(time.RFC3339))
			// The last thing known to have happened; the crash itself is not timed.
			r.Ended = r.Started
			if last.After(r.Ended) {
				r.Ended = last
			}
			enc, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode run %s: %w", k, err)
			}
			if err := runs.Put(k, enc); err != nil {
				return err
			}
			ids = append(ids, r.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recover interrupted runs: %w", err)
	}
	return ids, nil
}

// closeOpenAttempt marks the run's last attempt as cut off if it never ended, and
// returns the last time the attempts show activity.
func closeOpenAttempt(tx *bolt.Tx, id []byte, note string) (time.Time, error) {
	ab := tx.Bucket(bucketAttempts).Bucket(id)
	if ab == nil {
		return time.Time{}, nil
	}
	k, v := ab.Cursor().Last()
	if k == nil {
		return time.Time{}, nil
	}
	var a Attempt
	if err := json.Unmarshal(v, &a); err != nil {
		return time.Time{}, fmt.Errorf("decode attempt of run %s: %w", id, err)
	}
	if !a.Ended.IsZero() {
		return a.Ended, nil
	}
	a.ExitCode, a.Error = -1, "interrupted: "+note
	enc, err := json.Marshal(a)
	if err != nil {
		return time.Time{}, err
	}
	return a.Started, ab.Put(k, enc)
}

// Run returns the run with its attempts, oldest first.
func (s *Store) Run(id string) (Run, error) {
	var r Run
	err := s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketRuns).Get([]byte(id))
		if data == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("decode run: %w", err)
		}
		ab := tx.Bucket(bucketAttempts).Bucket([]byte(id))
		if ab == nil {
			return nil
		}
		return ab.ForEach(func(_, v []byte) error {
			var a Attempt
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode attempt: %w", err)
			}
			r.Steps = append(r.Steps, a)
			return nil
		})
	})
	if err != nil {
		return Run{}, fmt.Errorf("run %s: %w", id, err)
	}
	return r, nil
}

// Runs lists run headers matching f, newest first, at most limit (0: no limit).
func (s *Store) Runs(f Filter, limit int) ([]Run, error) {
	var out []Run
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRuns).Cursor()
		var k, v []byte
		if f.Before != "" {
			k, v = c.Seek([]byte(f.Before))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && bytes.Compare(k, []byte(f.Before)) >= 0 {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var r Run
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode run %s: %w", k, err)
			}
			if f.match(&r) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}
