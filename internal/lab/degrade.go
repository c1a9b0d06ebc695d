package lab

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// lossKey names one host's cable on one network.
type lossKey struct{ host, network string }

// Degrade makes the host's cable on the network lose percent of the frames
// it carries, in each direction, at random (0 makes it clean again); Heal
// cleans every cable. It is what `tc qdisc ... netem loss` does, done with
// nftables instead: the kernels of small VMs often lack sch_netem (this
// lab's machines have neither the module nor module loading), while
// nftables' numgen is everywhere the lab already needs nft. Frames are
// dropped on arrival, as Partition drops them: the host's own ingress loses
// what it receives, its peers' ingress what it sends (matched by its MAC).
// ARP is dropped too, as on a bad cable.
func (l *Lab) Degrade(host, network string, percent int) error {
	h, n := l.Host(host), l.net(network)
	switch {
	case h == nil:
		return fmt.Errorf("degrade %s/%s: no host %q", host, network, host)
	case n == nil:
		return fmt.Errorf("degrade %s/%s: no network %q", host, network, network)
	case percent < 0 || percent > 100:
		return fmt.Errorf("degrade %s/%s: loss %d%%: want 0 to 100", host, network, percent)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("degrade %s/%s: lab is closed", host, network)
	}
	if percent == 0 {
		delete(l.loss, lossKey{host, network})
	} else {
		l.loss[lossKey{host, network}] = percent
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var errs []error
	for _, x := range l.hosts {
		if err := l.applyRules(ctx, x); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("degrade %s/%s: %w", host, network, err)
	}
	return nil
}

// lossRules renders the random-drop rules of h's ingress chain on n: the
// loss of h's own cable, then that of each lossy sender's. Callers hold
// l.mu.
func (l *Lab) lossRules(h *Host, n *network) string {
	var b strings.Builder
	if p := l.loss[lossKey{h.name, n.name}]; p > 0 {
		fmt.Fprintf(&b, "    %sdrop\n", chance(p))
	}
	for _, x := range l.hosts {
		if p := l.loss[lossKey{x.name, n.name}]; p > 0 && x != h {
			fmt.Fprintf(&b, "    ether saddr %s %sdrop\n", x.mac(n), chance(p))
		}
	}
	return b.String()
}

// chance is the match for percent of the packets ("" for all of them: nft
// refuses "< 100" in "mod 100").
func chance(percent int) string {
	if percent >= 100 {
		return ""
	}
	return fmt.Sprintf("numgen random mod 100 < %d ", percent)
}
