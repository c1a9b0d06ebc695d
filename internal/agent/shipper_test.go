package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-ha/vigil/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type sink struct {
	mu       sync.Mutex
	failures int
	got      []model.Event
}

func (s *sink) deliver(_ context.Context, evs []model.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return errors.New("no coordinator")
	}
	s.got = append(s.got, evs...)
	return nil
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func TestShipperKeepsEventsUntilACoordinatorTakesThem(t *testing.T) {
	k := &sink{failures: 3}
	sh := newShipper(k.deliver, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sh.run(ctx) }()
	for i := 0; i < 5; i++ {
		sh.add(model.Event{Kind: model.EventLinkDown, Reporter: "a", Reason: string(rune('0' + i))})
	}
	deadline := time.Now().Add(10 * time.Second)
	for k.count() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if k.count() != 5 {
		t.Fatalf("delivered %d of 5", k.count())
	}
	for i, ev := range k.got {
		if ev.Reason != string(rune('0'+i)) {
			t.Fatalf("out of order: %d is %q", i, ev.Reason)
		}
	}
}

func TestShipperDropsOldestAndSaysSo(t *testing.T) {
	sh := newShipper(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := 0; i < maxPending+7; i++ {
		sh.add(model.Event{Kind: model.EventLinkUp, Reporter: "a"})
	}
	batch := sh.peek()
	if batch[0].Kind != model.EventEventsDropped || batch[0].Reason != "7 events dropped while no coordinator was reachable" {
		t.Fatalf("first pending event = %+v", batch[0])
	}
}
