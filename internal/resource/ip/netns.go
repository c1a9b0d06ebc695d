package ip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netlinkTimeout bounds each netlink request when ctx has no deadline, so
// that a wedged kernel call fails the action instead of hanging the agent.
const netlinkTimeout = 10 * time.Second

// openNetlink opens an rtnetlink handle in the namespace at path ("" is the
// namespace of the calling thread, which is the process's own). The handle's
// sockets belong to that namespace for good, whichever thread uses them.
func openNetlink(ctx context.Context, path string) (*netlink.Handle, error) {
	var (
		h   *netlink.Handle
		err error
	)
	if path == "" {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		var ns netns.NsHandle
		ns, err = netns.GetFromPath(path)
		if err != nil {
			return nil, fmt.Errorf("open netns %s: %w", path, err)
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("open netlink socket%s: %w", inNS(path), err)
	}
	to := netlinkTimeout
	if dl, ok := ctx.Deadline(); ok {
		to = max(time.Until(dl), time.Millisecond)
	}
	if err := h.SetSocketTimeout(to); err != nil {
		h.Close()
		return nil, fmt.Errorf("set netlink socket timeout: %w", err)
	}
	return h, nil
}

// nftMu serialises every nftables exchange of this process (a one-slot
// channel rather than a sync.Mutex, so that waiting can follow ctx). The library
// buffers commands per Conn and allocates set IDs from a package global, and
// ensureTables reads the chain before deciding whether to add its rules:
// two VIPs doing that at once could both add them.
var nftMu = make(chan struct{}, 1)

// withNft runs fn with a lasting nftables connection in the namespace at
// path, holding nftMu. It gives up waiting for the lock when ctx ends.
func withNft(ctx context.Context, path string, fn func(c *nftables.Conn) error) error {
	// Checked first: select picks at random when the lock is free too.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wait for nftables lock: %w", err)
	}
	select {
	case nftMu <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for nftables lock: %w", ctx.Err())
	}
	defer func() { <-nftMu }()
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", path, err)
		}
		defer f.Close()
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("open nftables socket%s: %w", inNS(path), err)
	}
	defer c.CloseLasting()
	return fn(c)
}

// inNetNS runs fn on a locked OS thread that has entered the namespace at
// path ("" runs fn right here). Sockets fn opens (AF_PACKET, raw ICMPv6)
// stay in that namespace and may then be used from any goroutine.
func inNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get own netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the runtime then retires this thread with the
			// goroutine instead of reusing a thread stuck in the namespace.
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", path, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func inNS(path string) string {
	if path == "" {
		return ""
	}
	return " in netns " + path
}
