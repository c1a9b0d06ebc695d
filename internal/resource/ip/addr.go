package ip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dumpRetries bounds retries of a netlink dump the kernel reports as
// interrupted (the address list changed while it was being read).
const dumpRetries = 5

func addrList(h *netlink.Handle, link netlink.Link, family int) ([]netlink.Addr, error) {
	for i := 0; ; i++ {
		addrs, err := h.AddrList(link, family)
		if errors.Is(err, netlink.ErrDumpInterrupted) && i < dumpRetries {
			continue
		}
		return addrs, err
	}
}

func linkByName(h *netlink.Handle, name string) (netlink.Link, bool, error) {
	l, err := h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("look up interface %s: %w", name, err)
	}
	return l, true, nil
}

// findAddr returns the address entry of link whose IP is ip, whatever its
// prefix length (an operator may have added it by hand with another one).
func findAddr(h *netlink.Handle, link netlink.Link, ip netip.Addr) (*netlink.Addr, error) {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := addrList(h, link, fam)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	for i := range addrs {
		if a, ok := netip.AddrFromSlice(addrs[i].IP); ok && a.Unmap() == ip {
			return &addrs[i], nil
		}
	}
	return nil, nil
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// linkUp reports whether the interface can carry the VIP's traffic: up by
// the administrator and with a carrier. Operational state "unknown" counts
// as up, since drivers without carrier reporting (dummy, some virtual
// devices) always show it.
func linkUp(l netlink.Link) (bool, string) {
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false, "administratively down"
	}
	switch a.OperState {
	case netlink.OperDown, netlink.OperLowerLayerDown, netlink.OperNotPresent:
		return false, "no carrier (operstate " + a.OperState.String() + ")"
	}
	return true, ""
}

// removeAddrsEverywhere deletes each IP from every interface that holds it.
func removeAddrsEverywhere(ctx context.Context, nsPath string, ips []netip.Addr) error {
	h, err := openNetlink(ctx, nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	want := map[netip.Addr]bool{}
	for _, ip := range ips {
		want[ip] = true
	}
	addrs, err := addrList(h, nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	var errs []error
	for i := range addrs {
		a, ok := netip.AddrFromSlice(addrs[i].IP)
		if !ok || !want[a.Unmap()] {
			continue
		}
		link, err := h.LinkByIndex(addrs[i].LinkIndex)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s: look up interface %d: %w", addrs[i].IPNet, addrs[i].LinkIndex, err))
			continue
		}
		if err := h.AddrDel(link, &addrs[i]); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", addrs[i].IPNet, link.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}
