package store

import (
	"context"
	"sync"

	"github.com/vigil-ha/vigil/internal/model"
)

// subscriberBuffer is how many events a subscriber may fall behind before it
// is cut off. Large enough to absorb a burst (a node death produces a handful
// of events per group), small enough to bound memory per subscriber.
const subscriberBuffer = 1024

// hub fans committed events out to subscribers without ever blocking the
// FSM: a subscriber whose buffer is full has its channel closed instead, and
// re-reads what it missed with Store.Events (indexes are contiguous, so it
// knows where it stopped). Closing rather than silently skipping events means
// a consumer can never mistake a gap for a quiet period.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{} // guarded by mu
	closed bool                     // guarded by mu
}

type subscriber struct {
	ch   chan model.Event
	stop func() bool // stops the context.AfterFunc; set under hub.mu
}

func newHub() *hub { return &hub{subs: make(map[*subscriber]struct{})} }

// subscribe registers a subscriber that lasts until ctx is done, the hub is
// closed, or the subscriber falls subscriberBuffer events behind.
func (h *hub) subscribe(ctx context.Context) <-chan model.Event {
	sub := &subscriber{ch: make(chan model.Event, subscriberBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
		return sub.ch
	}
	h.subs[sub] = struct{}{}
	// Registered under mu, so the callback (which takes mu) cannot run before
	// the subscriber is in the map, and removal can always read sub.stop.
	sub.stop = context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.removeLocked(sub)
	})
	return sub.ch
}

func (h *hub) removeLocked(sub *subscriber) {
	if _, ok := h.subs[sub]; !ok {
		return
	}
	delete(h.subs, sub)
	sub.stop()
	close(sub.ch)
}

// publish hands evs to every subscriber, in order, without blocking.
func (h *hub) publish(evs []model.Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		for _, ev := range evs {
			select {
			case sub.ch <- ev:
				continue
			default:
			}
			h.removeLocked(sub) // lagging: cut off rather than skip events
			break
		}
	}
}

// closeAll ends every current subscription; the hub stays usable.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		h.removeLocked(sub)
	}
}

// close ends every subscription; later subscriptions get a closed channel.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.removeLocked(sub)
	}
}
