package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// maxPending bounds events kept while no coordinator is reachable; the oldest
// are dropped first and the loss is itself recorded.
const maxPending = 10000

// shipper delivers this node's events to the replicated log. It never blocks the
// caller: a node without quorum keeps its events and sends them when it can.
type shipper struct {
	mu      sync.Mutex
	pending []model.Event // guarded by mu
	dropped int           // guarded by mu
	wake    chan struct{}
	deliver func(context.Context, []model.Event) error
	log     *slog.Logger
}

func newShipper(deliver func(context.Context, []model.Event) error, log *slog.Logger) *shipper {
	return &shipper{wake: make(chan struct{}, 1), deliver: deliver, log: log}
}

func (s *shipper) add(ev model.Event) {
	s.mu.Lock()
	if len(s.pending) >= maxPending {
		s.pending = s.pending[1:]
		s.dropped++
	}
	s.pending = append(s.pending, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shipper) run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		batch := s.peek()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
				continue
			}
		}
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := s.deliver(dctx, batch)
		cancel()
		if err == nil {
			s.commit(len(batch))
			backoff = 100 * time.Millisecond
			continue
		}
		s.log.Debug("events not delivered yet", "pending", len(batch), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// shutdownDrain bounds the last delivery attempt of a stopping agent.
const shutdownDrain = 2 * time.Second

// drain delivers what is pending, once, until it is empty or ctx ends.
func (s *shipper) drain(ctx context.Context) {
	for ctx.Err() == nil {
		batch := s.peek()
		if len(batch) == 0 {
			return
		}
		if err := s.deliver(ctx, batch); err != nil {
			s.log.Debug("events not delivered at shutdown", "pending", len(batch), "err", err)
			return
		}
		s.commit(len(batch))
	}
}

func (s *shipper) peek() []model.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped > 0 {
		s.pending = append([]model.Event{{Time: time.Now(), Kind: model.EventEventsDropped, Severity: model.SeverityWarning,
			Reporter: s.pending[0].Reporter, Reason: fmt.Sprintf("%d events dropped while no coordinator was reachable", s.dropped)}}, s.pending...)
		s.dropped = 0
	}
	n := min(len(s.pending), 200)
	return append([]model.Event(nil), s.pending[:n]...)
}

func (s *shipper) commit(n int) {
	s.mu.Lock()
	s.pending = s.pending[n:]
	s.mu.Unlock()
}
