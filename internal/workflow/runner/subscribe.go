package runner

import "github.com/vigil-ha/vigil/internal/workflow/history"

// Update is a change in a run: its header after the change and the attempts the
// change started or ended (one transition may end a step and start the next).
type Update struct {
	Run      history.Run
	Attempts []history.Attempt
}

type subscriber struct {
	ch     chan Update
	closed bool
}

func (s *subscriber) closeLocked() {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// Subscribe returns a channel of run updates and a function to cancel. The engine
// never waits for a subscriber: one whose buffer is full is dropped and its channel
// closed; it can subscribe again and read the history to catch up.
func (e *Engine) Subscribe(buffer int) (<-chan Update, func()) {
	if buffer <= 0 {
		buffer = 64
	}
	s := &subscriber{ch: make(chan Update, buffer)}
	e.subsMu.Lock()
	if e.subsClosed {
		s.closeLocked()
	} else {
		e.subs[s] = struct{}{}
	}
	e.subsMu.Unlock()
	return s.ch, func() {
		e.subsMu.Lock()
		defer e.subsMu.Unlock()
		delete(e.subs, s)
		s.closeLocked()
	}
}

func (e *Engine) publish(run history.Run, atts []history.Attempt) {
	u := Update{Run: run}
	if len(atts) > 0 {
		u.Attempts = append([]history.Attempt(nil), atts...)
	}
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	for s := range e.subs {
		select {
		case s.ch <- u:
		default:
			delete(e.subs, s)
			s.closeLocked()
		}
	}
}
