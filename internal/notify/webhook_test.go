package notify

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/model"
)

// hookReceiver records signed deliveries; fail decides the answer per request.
type hookReceiver struct {
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	got      []Payload // successful deliveries, in arrival order
	attempts []uint64  // every request's event index
	badSig   int
	fail     func(p Payload, n int) int // status code for the n-th request (0-based); nil: 200
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	r := &hookReceiver{secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		sig := req.Header.Get(SignatureHeader)
		if (r.secret != "" && sig != Sign([]byte(r.secret), body)) || (r.secret == "" && sig != "") ||
			req.Header.Get("Content-Type") != "application/json" || req.Header.Get("X-Team") != "ops" {
			r.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		n := len(r.attempts)
		r.attempts = append(r.attempts, p.Event.Index)
		if r.fail != nil {
			if code := r.fail(p, n); code != 0 && code != 200 {
				http.Error(w, "try later", code)
				return
			}
		}
		r.got = append(r.got, p)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) delivered() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, p := range r.got {
		out = append(out, p.Event.Index)
	}
	return out
}

func webhookTarget(name, url, secret string) Target {
	return Target{Name: name, Type: TypeWebhook, URL: url, Secret: secret, Headers: map[string]string{"X-Team": "ops"}}
}

func TestWebhookSignedRetriedInOrder(t *testing.T) {
	rcv := newHookReceiver(t, "s3cret")
	// The receiver is down for its first three requests (all for event 1).
	rcv.fail = func(p Payload, n int) int {
		if n < 3 {
			return http.StatusInternalServerError
		}
		return 200
	}
	d := start(t, allTo(webhookTarget("hook", rcv.srv.URL, "s3cret")), Options{})
	for i := uint64(1); i <= 5; i++ {
		d.Notify(event(i, model.EventNodeDead, model.SeverityCritical))
	}
	waitFor(t, "five deliveries", func() bool { return status(d.Dispatcher, "hook").Delivered == 5 })
	if got := rcv.delivered(); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("delivered %v, want 1..5 in order", got)
	}
	rcv.mu.Lock()
	attempts, badSig, first := rcv.attempts, rcv.badSig, rcv.got[0]
	rcv.mu.Unlock()
	if !slices.Equal(attempts[:4], []uint64{1, 1, 1, 1}) || badSig != 0 {
		t.Fatalf("attempts %v, bad signatures %d", attempts, badSig)
	}
	if first.Attempt != 4 || first.ID != "test/1" || first.Sender != "a" || first.Event.Kind != model.EventNodeDead ||
		!slices.Equal(first.Routes, []string{"all"}) {
		t.Fatalf("payload %+v", first)
	}
	st := status(d.Dispatcher, "hook")
	if st.Queued != 0 || st.Failed != 0 || st.LastSuccess.IsZero() || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}

func TestWebhookRefusalIsNotRetried(t *testing.T) {
	rcv := newHookReceiver(t, "right")
	d := start(t, allTo(webhookTarget("hook", rcv.srv.URL, "wrong")), Options{})
	d.Notify(event(1, model.EventNodeDead, model.SeverityCritical))
	waitFor(t, "given up", func() bool { return status(d.Dispatcher, "hook").Failed == 1 })
	time.Sleep(100 * time.Millisecond)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.badSig != 1 {
		t.Fatalf("a 401 was retried: %d requests", rcv.badSig)
	}
	if st := status(d.Dispatcher, "hook"); st.Queued != 0 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}

// A receiver that accepts connections and never answers must not slow Notify
// down, and must not hold more than queue_size notifications.
func TestDeadReceiverDoesNotBlockNotify(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	stopHang := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				<-stopHang // read nothing, answer nothing
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(stopHang)
		conns.Wait()
	})
	ok := newHookReceiver(t, "")
	hung := webhookTarget("hung", "http://"+ln.Addr().String()+"/hook", "")
	hung.Timeout = dur(time.Hour) // only Close ends the attempt
	cfg := allTo(hung, webhookTarget("ok", ok.srv.URL, ""))
	cfg.QueueSize = 10
	// At the agent's usual level: per-drop lines are debug.
	d := start(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})

	const n = 2000
	var slowest time.Duration
	began := time.Now()
	for i := uint64(1); i <= n; i++ {
		t0 := time.Now()
		d.Notify(event(i, model.EventGroupFailed, model.SeverityWarning))
		slowest = max(slowest, time.Since(t0))
	}
	total := time.Since(began)
	t.Logf("%d Notify calls: %v in all, slowest %v", n, total, slowest)
	if slowest > 100*time.Millisecond || total > 2*time.Second {
		t.Fatalf("Notify blocked: slowest %v, total %v", slowest, total)
	}
	// The healthy target is not held up by the hung one.
	waitFor(t, "the healthy target delivers", func() bool {
		s := status(d.Dispatcher, "ok")
		return s.Queued == 0 && s.Delivered+s.Dropped == n
	})
	st := status(d.Dispatcher, "hung")
	if st.Queued > cfg.QueueSize+1 || st.Dropped < n-uint64(cfg.QueueSize)-1 || st.Delivered != 0 {
		t.Fatalf("hung target: %+v", st)
	}
	// Stopping does not wait for the hung receiver.
	t0 := time.Now()
	d.stop()
	if time.Since(t0) > 3*time.Second {
		t.Fatalf("stopping took %v", time.Since(t0))
	}
}

func TestMaxAgeGivesUp(t *testing.T) {
	rcv := newHookReceiver(t, "")
	rcv.fail = func(Payload, int) int { return http.StatusServiceUnavailable }
	cfg := allTo(webhookTarget("hook", rcv.srv.URL, ""))
	cfg.MaxAge = dur(300 * time.Millisecond)
	d := start(t, cfg, Options{})
	d.Notify(event(1, model.EventNodeDead, model.SeverityCritical))
	waitFor(t, "given up after max_age", func() bool { return status(d.Dispatcher, "hook").Failed == 1 })
	st := status(d.Dispatcher, "hook")
	rcv.mu.Lock()
	tries := len(rcv.attempts)
	rcv.mu.Unlock()
	if st.Queued != 0 || tries < 3 {
		t.Fatalf("status %+v after %d attempts", st, tries)
	}
}
