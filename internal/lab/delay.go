package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Delay holds every IPv4 packet that the host sends or receives on the
// network for d before it goes on, so a round trip through that cable
// takes 2d longer (0 removes the delay); Heal removes every delay. It is
// what `tc qdisc ... netem delay` does, done another way because these
// machines' kernels lack sch_netem: iptables' NFQUEUE target hands the
// packets (prerouting in, postrouting out, in the host's namespace) to this
// process, which lets each one go d after it arrived. The queue bypasses
// userspace when nobody listens, so a crashed test cannot black-hole the
// host. ARP is not delayed.
func (l *Lab) Delay(host, network string, d time.Duration) error {
	h, n := l.Host(host), l.net(network)
	switch {
	case h == nil:
		return fmt.Errorf("delay %s/%s: no host %q", host, network, host)
	case n == nil:
		return fmt.Errorf("delay %s/%s: no network %q", host, network, network)
	case d < 0 || d > 10*time.Second:
		return fmt.Errorf("delay %s/%s: %v: want 0 to 10s", host, network, d)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("delay %s/%s: lab is closed", host, network)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	k := lossKey{host, network}
	if q := l.delays[k]; q != nil {
		delete(l.delays, k)
		if err := l.undelay(ctx, h, n, q); err != nil {
			return fmt.Errorf("delay %s/%s: %w", host, network, err)
		}
	}
	if d == 0 {
		return nil
	}
	q, err := startQueue(h, queueNum(h, n), d)
	if err != nil {
		return fmt.Errorf("delay %s/%s: %w", host, network, err)
	}
	l.delays[k] = q
	for _, rule := range queueRules(h, n) {
		if _, err := run(ctx, "ip", append([]string{"netns", "exec", h.netns, "iptables", "-w", "-t", "mangle", "-A"}, rule...)...); err != nil {
			return errors.Join(fmt.Errorf("delay %s/%s: %w", host, network, err), l.undelayLocked(ctx, k))
		}
	}
	return nil
}

// queueNum is unique per host and network within the namespace.
func queueNum(h *Host, n *network) uint16 { return uint16(100 + n.idx) }

func queueRules(h *Host, n *network) [][]string {
	q := strconv.Itoa(int(queueNum(h, n)))
	return [][]string{
		{"PREROUTING", "-i", h.iface(n), "-j", "NFQUEUE", "--queue-num", q, "--queue-bypass"},
		{"POSTROUTING", "-o", h.iface(n), "-j", "NFQUEUE", "--queue-num", q, "--queue-bypass"},
	}
}

// undelayLocked removes the delay of k. Callers hold l.mu.
func (l *Lab) undelayLocked(ctx context.Context, k lossKey) error {
	q := l.delays[k]
	if q == nil {
		return nil
	}
	delete(l.delays, k)
	return l.undelay(ctx, l.Host(k.host), l.net(k.network), q)
}

// undelay deletes the rules (the namespace may be gone with a power cycle:
// then so are they) and stops the queue, which releases the packets it
// still holds.
func (l *Lab) undelay(ctx context.Context, h *Host, n *network, q *queue) error {
	var errs []error
	if !h.off {
		for _, rule := range queueRules(h, n) {
			out, err := run(ctx, "ip", append([]string{"netns", "exec", h.netns, "iptables", "-w", "-t", "mangle", "-D"}, rule...)...)
			if err != nil && !containsAny(out, "does a matching rule exist", "No chain/target/match", "Cannot open network namespace") {
				errs = append(errs, err)
			}
		}
	}
	q.stop()
	return errors.Join(errs...)
}

func containsAny(out []byte, subs ...string) bool {
	for _, s := range subs {
		if strings.Contains(string(out), s) {
			return true
		}
	}
	return false
}

// undelayAll removes every delay. Callers hold l.mu.
func (l *Lab) undelayAll(ctx context.Context) []error {
	var errs []error
	for k := range l.delays {
		if err := l.undelayLocked(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// queue is one NFQUEUE listener: a netlink socket in the host's namespace,
// a reader that notes each packet's arrival and a releaser that accepts it
// once its delay is over. Packets come and go in order, so a FIFO is
// enough.
type queue struct {
	fd    int
	num   uint16
	delay time.Duration
	done  chan struct{}
	wg    sync.WaitGroup
	held  chan heldPacket
}

type heldPacket struct {
	id  uint32
	due time.Time
}

// Netfilter netlink constants (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue    = 3
	nfqnlMsgPacket     = 0
	nfqnlMsgVerdict    = 1
	nfqnlMsgConfig     = 2
	nfqaCfgCmd         = 1
	nfqaCfgParams      = 2
	nfqaPacketHdr      = 1
	nfqaVerdictHdr     = 2
	nfqnlCfgCmdBind    = 1
	nfqnlCopyMeta      = 1
	nfAccept           = 1
	queueReadTimeoutMs = 100
)

func startQueue(h *Host, num uint16, d time.Duration) (*queue, error) {
	q := &queue{fd: -1, num: num, delay: d, done: make(chan struct{}), held: make(chan heldPacket, 65536)}
	err := h.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("netfilter netlink socket: %w", err)
		}
		q.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*queue, error) {
		unix.Close(q.fd)
		return nil, fmt.Errorf("nfqueue %d on %s: %w", num, h.name, err)
	}
	if err := unix.Bind(q.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail(err)
	}
	_ = unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	tv := unix.NsecToTimeval(int64(queueReadTimeoutMs * time.Millisecond))
	if err := unix.SetsockoptTimeval(q.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail(err)
	}
	// Bind the queue, then ask for packet metadata only.
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET}
	if err := q.request(nfqnlMsgConfig, attr(nfqaCfgCmd, cmd)); err != nil {
		return fail(fmt.Errorf("bind: %w", err))
	}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0xffff)
	params[4] = nfqnlCopyMeta
	if err := q.request(nfqnlMsgConfig, attr(nfqaCfgParams, params)); err != nil {
		return fail(fmt.Errorf("set copy mode: %w", err))
	}
	q.wg.Add(2)
	go q.read()
	go q.release()
	return q, nil
}

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, val []byte) []byte {
	b := make([]byte, (4+len(val)+3)&^3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(val)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], val)
	return b
}

// message builds a netfilter netlink message to this queue.
func (q *queue) message(msg uint16, flags uint16, attrs []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+4+len(attrs))
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], nfnlSubsysQueue<<8|msg)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	b[16] = unix.AF_UNSPEC
	b[17] = 0 // NFNETLINK_V0
	binary.BigEndian.PutUint16(b[18:], q.num)
	copy(b[20:], attrs)
	return b
}

// request sends a config message and waits for the kernel's ack.
func (q *queue) request(msg uint16, attrs []byte) error {
	if err := unix.Sendto(q.fd, q.message(msg, unix.NLM_F_ACK, attrs), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(q.fd, buf, 0)
	if err != nil {
		return fmt.Errorf("read ack: %w", err)
	}
	if n < unix.NLMSG_HDRLEN+4 || binary.NativeEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return fmt.Errorf("unexpected answer of %d bytes", n)
	}
	if code := int32(binary.NativeEndian.Uint32(buf[16:])); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}

// read notes when each queued packet arrived.
func (q *queue) read() {
	defer q.wg.Done()
	defer close(q.held)
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-q.done:
			return
		default:
		}
		n, _, err := unix.Recvfrom(q.fd, buf, 0)
		if err != nil {
			// Timeouts let us look at done; ENOBUFS means the kernel
			// dropped messages (and packets) under load, as a real
			// congested link would.
			continue
		}
		now := time.Now()
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				break
			}
			typ := binary.NativeEndian.Uint16(b[4:])
			if typ == nfnlSubsysQueue<<8|nfqnlMsgPacket {
				if id, ok := packetID(b[unix.NLMSG_HDRLEN+4 : l]); ok {
					q.held <- heldPacket{id: id, due: now.Add(q.delay)}
				}
			}
			b = b[(l+3)&^3:]
		}
	}
}

func packetID(attrs []byte) (uint32, bool) {
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs))
		typ := binary.NativeEndian.Uint16(attrs[2:]) & 0x3fff
		if l < 4 || l > len(attrs) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(attrs[4:]), true
		}
		attrs = attrs[(l+3)&^3:]
	}
	return 0, false
}

// release accepts each packet when its time comes, and every packet still
// held at once when the queue stops.
func (q *queue) release() {
	defer q.wg.Done()
	for p := range q.held {
		select {
		case <-q.done:
		case <-time.After(time.Until(p.due)):
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint32(v, nfAccept)
		binary.BigEndian.PutUint32(v[4:], p.id)
		_ = unix.Sendto(q.fd, q.message(nfqnlMsgVerdict, 0, attr(nfqaVerdictHdr, v)), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	}
}

// stop ends both goroutines and closes the socket; packets still queued
// in the kernel are then accepted (the queue is bypassed without a
// listener).
func (q *queue) stop() {
	close(q.done)
	q.wg.Wait()
	unix.Close(q.fd)
}
