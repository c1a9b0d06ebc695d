package notify

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vigil-ha/vigil/internal/model"
)

// SpoolFile is the bbolt file in StateDir that keeps undelivered notifications.
const SpoolFile = "notify.db"

var (
	bucketMeta  = []byte("meta")  // keyLastIndex -> 8 bytes BE
	bucketQueue = []byte("queue") // target -> bucket: id (8 bytes BE) -> item (JSON)
	bucketStats = []byte("stats") // target -> counters (JSON)

	keyLastIndex = []byte("last_index")
)

// item is one notification waiting for its target.
type item struct {
	ID        uint64      `json:"id"`
	Target    string      `json:"target"`
	Routes    []string    `json:"routes"`
	Event     model.Event `json:"event"`
	Created   time.Time   `json:"created"`
	Attempts  int         `json:"attempts"`
	NextTry   time.Time   `json:"next_try,omitzero"`
	LastError string      `json:"last_error,omitempty"`
}

// counters survive restarts so that the console's totals mean "since the spool began".
type counters struct {
	Delivered   uint64    `json:"delivered"`
	Failed      uint64    `json:"failed"`
	Dropped     uint64    `json:"dropped"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// op is one change to the spool, recorded under the dispatcher's lock and
// written later by the persister in order.
type op struct {
	target string
	id     uint64
	data   []byte // nil: delete
}

// spoolLockTimeout bounds the wait for the spool's file lock (a variable for tests).
var spoolLockTimeout = 5 * time.Second

type spool struct {
	db *bolt.DB
}

func openSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notification spool: %w", err)
	}
	// A second agent on the same directory must fail, not wait for ever on the lock.
	db, err := bolt.Open(filepath.Join(dir, SpoolFile), 0o600, &bolt.Options{Timeout: spoolLockTimeout})
	if err != nil {
		return nil, fmt.Errorf("notification spool %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketQueue, bucketStats} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("notification spool %s: %w", dir, err)
	}
	return &spool{db: db}, nil
}

// loaded is what a previous run left behind.
type loaded struct {
	lastIndex uint64
	queues    map[string][]*item
	stats     map[string]counters
	corrupt   int // records that did not decode; they are deleted
}

func (s *spool) load() (loaded, error) {
	l := loaded{queues: map[string][]*item{}, stats: map[string]counters{}}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyLastIndex); len(v) == 8 {
			l.lastIndex = binary.BigEndian.Uint64(v)
		}
		q := tx.Bucket(bucketQueue)
		var bad [][2][]byte
		err := q.ForEachBucket(func(name []byte) error {
			return q.Bucket(name).ForEach(func(k, v []byte) error {
				var it item
				if len(k) != 8 || json.Unmarshal(v, &it) != nil {
					bad = append(bad, [2][]byte{append([]byte(nil), name...), append([]byte(nil), k...)})
					return nil
				}
				it.ID, it.Target = binary.BigEndian.Uint64(k), string(name)
				l.queues[it.Target] = append(l.queues[it.Target], &it)
				return nil
			})
		})
		if err != nil {
			return err
		}
		for _, b := range bad {
			if err := q.Bucket(b[0]).Delete(b[1]); err != nil {
				return err
			}
		}
		l.corrupt = len(bad)
		return tx.Bucket(bucketStats).ForEach(func(k, v []byte) error {
			var c counters
			if json.Unmarshal(v, &c) == nil {
				l.stats[string(k)] = c
			}
			return nil
		})
	})
	if err != nil {
		return loaded{}, fmt.Errorf("read notification spool: %w", err)
	}
	return l, nil
}

// apply writes ops, the last dispatched index and the counters in one transaction,
// so the index on disk never runs ahead of the notifications it accounts for.
func (s *spool) apply(ops []op, lastIndex uint64, stats map[string]counters) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		q := tx.Bucket(bucketQueue)
		for _, o := range ops {
			if err := applyOp(q, o); err != nil {
				return err
			}
		}
		return writeMeta(tx, lastIndex, stats)
	})
	if err != nil {
		return fmt.Errorf("write notification spool: %w", err)
	}
	return nil
}

func applyOp(q *bolt.Bucket, o op) error {
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], o.id)
	if o.data == nil {
		b := q.Bucket([]byte(o.target))
		if b == nil {
			return nil
		}
		return b.Delete(key[:])
	}
	b, err := q.CreateBucketIfNotExists([]byte(o.target))
	if err != nil {
		return err
	}
	return b.Put(key[:], o.data)
}

// rewrite replaces the whole queue with queues: after a failed write the
// dispatcher no longer knows which ops reached the disk.
func (s *spool) rewrite(queues map[string][]op, lastIndex uint64, stats map[string]counters) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketQueue); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		q, err := tx.CreateBucket(bucketQueue)
		if err != nil {
			return err
		}
		for _, ops := range queues {
			for _, o := range ops {
				if err := applyOp(q, o); err != nil {
					return err
				}
			}
		}
		return writeMeta(tx, lastIndex, stats)
	})
	if err != nil {
		return fmt.Errorf("rewrite notification spool: %w", err)
	}
	return nil
}

func writeMeta(tx *bolt.Tx, lastIndex uint64, stats map[string]counters) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], lastIndex)
	if err := tx.Bucket(bucketMeta).Put(keyLastIndex, v[:]); err != nil {
		return err
	}
	sb := tx.Bucket(bucketStats)
	for name, c := range stats {
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if err := sb.Put([]byte(name), data); err != nil {
			return err
		}
	}
	return nil
}

// dropTarget forgets the queue of a target that is no longer configured.
func (s *spool) dropTarget(name string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketQueue).DeleteBucket([]byte(name)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		return tx.Bucket(bucketStats).Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("notification spool: forget target %s: %w", name, err)
	}
	return nil
}

func (s *spool) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close notification spool: %w", err)
	}
	return nil
}
