package lab

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// nftTable is the lab's own table inside each namespace. Processes under
// test may add tables of their own next to it, but must not flush the
// whole ruleset.
const nftTable = "vigil_lab"

// CutLink unplugs the host's cable on the network: the bridge-side end of
// its veth goes down, so the host sees NO-CARRIER and no frame passes
// either way. The host keeps its address and routes, as a server with a
// pulled cable does, so processes can still bind to it.
func (l *Lab) CutLink(host, network string) error {
	return l.setCut(host, network, true)
}

// RestoreLink plugs the cable back in. A link of a frozen or powered-off
// host stays down until Thaw or PowerOn. Neighbour caches then recover as
// on a real network: a peer whose ARP entry for the host went stale may
// need up to a second (one ARP probe interval) before its packets flow.
func (l *Lab) RestoreLink(host, network string) error {
	return l.setCut(host, network, false)
}

func (l *Lab) setCut(host, network string, cut bool) error {
	verb := "restore"
	if cut {
		verb = "cut"
	}
	h, n := l.Host(host), l.net(network)
	switch {
	case h == nil:
		return fmt.Errorf("%s link %s/%s: no host %q", verb, host, network, host)
	case n == nil:
		return fmt.Errorf("%s link %s/%s: no network %q", verb, host, network, network)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%s link %s/%s: lab is closed", verb, host, network)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	h.cut[network] = cut
	if err := l.applyLink(ctx, h, n); err != nil {
		return fmt.Errorf("%s link %s/%s: %w", verb, host, network, err)
	}
	return nil
}

// applyLink sets the bridge port to the state the host's faults call for.
// Several faults may hold a link down at once; it comes up only when none
// does. Callers hold l.mu.
func (l *Lab) applyLink(ctx context.Context, h *Host, n *network) error {
	state := "up"
	if h.cut[n.name] || h.frozen || h.off {
		state = "down"
	}
	if err := ip(ctx, "link", "set", "dev", h.veth(n), state); err != nil {
		return fmt.Errorf("set link %s of host %s on network %s %s: %w", h.veth(n), h.name, n.name, state, err)
	}
	return nil
}

func (l *Lab) applyLinks(ctx context.Context, h *Host) []error {
	var errs []error
	for _, n := range l.nets {
		if err := l.applyLink(ctx, h, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Partition drops all traffic between the hosts of a and those of b, on
// every network. With oneWay, only frames that a-hosts send to b-hosts are
// dropped (b's UDP still reaches a; TCP fails both ways since the answers
// are lost). Partitions add up until Heal.
//
// Frames are dropped on arrival, in the receiving namespace's ingress hook,
// and matched by the sender's MAC rather than its IP: the sender's send
// calls succeed as on a real network, and traffic from addresses the
// sender added later, such as a virtual IP, is cut too.
func (l *Lab) Partition(a, b []string, oneWay bool) error {
	if len(a) == 0 || len(b) == 0 {
		return fmt.Errorf("partition %v | %v: both sides need hosts", a, b)
	}
	inA := map[string]bool{}
	for _, x := range a {
		if l.Host(x) == nil {
			return fmt.Errorf("partition %v | %v: no host %q", a, b, x)
		}
		inA[x] = true
	}
	for _, y := range b {
		if l.Host(y) == nil {
			return fmt.Errorf("partition %v | %v: no host %q", a, b, y)
		}
		if inA[y] {
			return fmt.Errorf("partition %v | %v: host %s is on both sides", a, b, y)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("partition %v | %v: lab is closed", a, b)
	}
	for _, x := range a {
		for _, y := range b {
			l.drops[pair{x, y}] = true
			if !oneWay {
				l.drops[pair{y, x}] = true
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var errs []error
	for _, h := range l.hosts {
		if err := l.applyRules(ctx, h); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("partition %v | %v: %w", a, b, err)
	}
	return nil
}

// Heal removes every partition and restores every link cut with CutLink.
// Frozen and powered-off hosts stay dark until Thaw or PowerOn.
func (l *Lab) Heal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("heal: lab is closed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	clear(l.drops)
	clear(l.loss)
	errs := l.undelayAll(ctx)
	for _, h := range l.hosts {
		if err := l.applyRules(ctx, h); err != nil {
			errs = append(errs, err)
		}
		clear(h.cut)
		errs = append(errs, l.applyLinks(ctx, h)...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	return nil
}

// applyRules replaces the host's table with one that matches l.drops, in
// one nft transaction so that no frame slips through mid-change. Hosts
// that never had a rule are left alone, so a lab without partitions needs
// no nft. Callers hold l.mu.
func (l *Lab) applyRules(ctx context.Context, h *Host) error {
	script := l.rules(h)
	if script == "" && !h.ruled {
		return nil
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("set partition rules on %s: nft: %w (%s)", h.name, err, packageHint("nft"))
	}
	var b strings.Builder
	// "add" then "delete" makes the delete succeed whether or not the table
	// exists yet.
	fmt.Fprintf(&b, "add table netdev %s\ndelete table netdev %s\n", nftTable, nftTable)
	b.WriteString(script)
	if _, err := runStdin(ctx, b.String(), "ip", "netns", "exec", h.netns, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("set partition rules on %s: %w", h.name, err)
	}
	h.ruled = script != ""
	return nil
}

// rules renders the host's drop rules, or "" if it receives from everyone.
func (l *Lab) rules(h *Host) string {
	var senders []*Host
	lossy := false
	for _, x := range l.hosts {
		if l.drops[pair{x.name, h.name}] {
			senders = append(senders, x)
		}
		for _, n := range l.nets {
			lossy = lossy || l.loss[lossKey{x.name, n.name}] > 0
		}
	}
	if len(senders) == 0 && !lossy {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table netdev %s {\n", nftTable)
	for _, n := range l.nets {
		var all, notARP []string
		for _, x := range senders {
			// When h may still send to x, x's ARP replies must get through,
			// or h could not resolve x and the open direction would be
			// closed too.
			if l.drops[pair{h.name, x.name}] {
				all = append(all, x.mac(n))
			} else {
				notARP = append(notARP, x.mac(n))
			}
		}
		sort.Strings(all)
		sort.Strings(notARP)
		// Priority -500 runs before any ingress chain a process under test
		// might add.
		fmt.Fprintf(&b, "  chain in_%s {\n    type filter hook ingress device %q priority -500; policy accept;\n", h.iface(n), h.iface(n))
		if len(all) > 0 {
			fmt.Fprintf(&b, "    ether saddr { %s } drop\n", strings.Join(all, ", "))
		}
		if len(notARP) > 0 {
			fmt.Fprintf(&b, "    ether saddr { %s } ether type != arp drop\n", strings.Join(notARP, ", "))
		}
		b.WriteString(l.lossRules(h, n))
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}
