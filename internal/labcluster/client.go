package labcluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Client is what a user of a group sees: from its own lab host, it sends an
// HTTP GET to the group's VIP every ClientInterval, each on a new TCP
// connection (so that every request follows the current ARP entry and the
// kernel lease), and records when it started and ended, and which node
// answered (demo-web's X-Vigil-Node header).
//
// Requests run on ClientWorkers goroutines, each locked for good to an OS
// thread that has entered the client host's namespace, so that sockets are
// made there without a namespace switch per request. A tick that finds every
// worker busy (all waiting for a timeout during an outage) is skipped: the
// client then starts a request about every ClientTimeout / ClientWorkers.
type Client struct {
	host *lab.Host
	addr string // VIP:port
	t0   time.Time

	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	samples []Sample
	skipped int
}

// Client tuning.
const (
	ClientInterval = 10 * time.Millisecond
	ClientTimeout  = 300 * time.Millisecond // connect + answer
	ClientWorkers  = 16
)

// Sample is one request.
type Sample struct {
	Start, End time.Time
	Node       string // who answered; "" on failure
	Err        string
}

// OK says whether the request got an answer.
func (s Sample) OK() bool { return s.Err == "" }

// StartClient starts a client on host that requests http://addr/ until the
// test ends (or Stop).
func (c *Cluster) StartClient(host, addr string) *Client {
	c.t.Helper()
	h := c.Lab.Host(host)
	if h == nil {
		c.t.Fatalf("labcluster: no lab host %q for a client", host)
	}
	cl := &Client{host: h, addr: addr, t0: time.Now(), stop: make(chan struct{})}
	slots := make(chan time.Time)
	ready := make(chan error, ClientWorkers)
	for i := 0; i < ClientWorkers; i++ {
		cl.wg.Add(1)
		go cl.worker(slots, ready)
	}
	for i := 0; i < ClientWorkers; i++ {
		if err := <-ready; err != nil {
			close(cl.stop)
			cl.wg.Wait()
			c.t.Fatalf("client on %s: %v", host, err)
		}
	}
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		defer close(slots)
		tick := time.NewTicker(ClientInterval)
		defer tick.Stop()
		for {
			select {
			case <-cl.stop:
				return
			case now := <-tick.C:
				select {
				case slots <- now:
				default:
					cl.mu.Lock()
					cl.skipped++
					cl.mu.Unlock()
				}
			}
		}
	}()
	c.t.Cleanup(cl.Stop)
	return cl
}

// worker enters the client's namespace on its own OS thread and never
// leaves it: when the goroutine returns, still locked, the runtime ends the
// thread instead of reusing it elsewhere.
func (cl *Client) worker(slots <-chan time.Time, ready chan<- error) {
	defer cl.wg.Done()
	runtime.LockOSThread()
	f, err := os.Open("/run/netns/" + cl.host.Netns())
	if err != nil {
		ready <- err
		return
	}
	err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
	f.Close()
	if err != nil {
		ready <- fmt.Errorf("enter netns %s: %w", cl.host.Netns(), err)
		return
	}
	ready <- nil
	for range slots {
		s := cl.once()
		cl.mu.Lock()
		cl.samples = append(cl.samples, s)
		cl.mu.Unlock()
	}
}

func (cl *Client) once() Sample {
	s := Sample{Start: time.Now()}
	deadline := s.Start.Add(ClientTimeout)
	fail := func(err error) Sample {
		s.End = time.Now()
		s.Err = err.Error()
		return s
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("tcp", cl.addr)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+cl.addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return fail(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body))))
	}
	s.End = time.Now()
	s.Node = resp.Header.Get("X-Vigil-Node")
	if s.Node == "" {
		s.Err = "no X-Vigil-Node header"
	}
	return s
}

// Stop ends the client and waits for its requests; it is idempotent.
func (cl *Client) Stop() {
	select {
	case <-cl.stop:
	default:
		close(cl.stop)
	}
	cl.wg.Wait()
}

// Samples returns the requests so far, in order of completion.
func (cl *Client) Samples() []Sample {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]Sample(nil), cl.samples...)
}

// FirstFrom returns the first answer from node (any node if "") that ended
// after t.
func (cl *Client) FirstFrom(node string, t time.Time) (Sample, bool) {
	var best Sample
	found := false
	for _, s := range cl.Samples() {
		if s.OK() && (node == "" || s.Node == node) && s.End.After(t) && (!found || s.End.Before(best.End)) {
			best, found = s, true
		}
	}
	return best, found
}

// LastFrom returns the last answer from node that ended before t.
func (cl *Client) LastFrom(node string, t time.Time) (Sample, bool) {
	var best Sample
	found := false
	for _, s := range cl.Samples() {
		if s.OK() && s.Node == node && s.End.Before(t) && (!found || s.End.After(best.End)) {
			best, found = s, true
		}
	}
	return best, found
}

// AnswersAfter counts the answers per node among requests started after t.
func (cl *Client) AnswersAfter(t time.Time) (byNode map[string]int, failed int) {
	byNode = map[string]int{}
	for _, s := range cl.Samples() {
		if !s.Start.After(t) {
			continue
		}
		if s.OK() {
			byNode[s.Node]++
		} else {
			failed++
		}
	}
	return byNode, failed
}

// WaitServedBy waits until a request started after now is answered by
// node, and returns that answer.
func (cl *Client) WaitServedBy(node string, timeout time.Duration) (Sample, error) {
	from := time.Now()
	deadline := from.Add(timeout)
	for {
		for _, s := range cl.Samples() {
			if s.OK() && s.Node == node && s.Start.After(from) {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			return Sample{}, fmt.Errorf("no answer from %s to %s within %v; since then: %s", node, cl.addr, timeout, cl.Describe(from, time.Now()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Describe summarises the requests that started between from and to: how
// many each node answered, how many failed and the last error.
func (cl *Client) Describe(from, to time.Time) string {
	by := map[string]int{}
	failed := 0
	lastErr := ""
	for _, s := range cl.Samples() {
		if s.Start.Before(from) || s.Start.After(to) {
			continue
		}
		if s.OK() {
			by[s.Node]++
		} else {
			failed++
			lastErr = s.Err
		}
	}
	var parts []string
	for n, k := range by {
		parts = append(parts, fmt.Sprintf("%d answered by %s", k, n))
	}
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed (last: %s)", failed, lastErr))
	}
	if len(parts) == 0 {
		return "no requests completed"
	}
	return strings.Join(parts, ", ")
}

// Gap is the client's view of a failover that began at t: the last answer
// from old before t, the first answer from new after t, and how many
// requests failed in between.
type Gap struct {
	LastOld, FirstNew Sample
	// Outage is from the last answer before t to the first from new after.
	Outage time.Duration
	// SinceFault is from t to the first answer from new.
	SinceFault time.Duration
	Failed     int
}

// GapAt measures the failover that began at t (see Gap).
func (cl *Client) GapAt(oldNode, newNode string, t time.Time) (Gap, error) {
	var g Gap
	first, ok := cl.FirstFrom(newNode, t)
	if !ok {
		return g, errors.New("no answer from " + newNode + " after the fault")
	}
	g.FirstNew = first
	g.SinceFault = first.End.Sub(t)
	if last, ok := cl.LastFrom(oldNode, t); ok {
		g.LastOld = last
		g.Outage = first.End.Sub(last.End)
	}
	for _, s := range cl.Samples() {
		if !s.OK() && s.Start.After(t) && s.Start.Before(first.Start) {
			g.Failed++
		}
	}
	return g, nil
}
