package ip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names of the nftables objects. Every VIP of the process shares them; each
// VIP only ever adds or deletes its own set elements.
const (
	TableName = "vigil"
	SetVIPs   = "vips"   // every VIP this node manages: traffic to them is gated
	SetLeased = "leased" // VIPs whose lease is current, each with a timeout
	ChainName = "input"
	// ChainOut gates what the node sends from the VIP: packets with the VIP
	// as source, and ARP with the VIP as sender address. Without it, a node
	// whose lease ran out while it was paused (a frozen VM, SIGSTOP) would,
	// on resuming, retransmit a TCP segment from the VIP before its agent
	// could remove the address, and the ARP request that goes with it (who
	// has CLIENT, tell VIP) would point the client's neighbour entry for the
	// VIP back at this node: a black hole of several seconds for that client.
	ChainOut = "output"

	// chainPriority runs before conntrack (-200), so that packets of
	// connections established while the lease was valid are dropped too.
	chainPriority = -300
	// nfARPIn is NF_ARP_IN: the arp family numbers its hooks differently
	// from the inet families (where 0 is prerouting).
	nfARPIn = 0
	// nfARPOut is NF_ARP_OUT.
	nfARPOut = 1
)

// family is one nftables table that gates a VIP.
type family struct {
	name  string // as nft prints it: ip, arp, ip6
	fam   nftables.TableFamily
	hook  nftables.ChainHook
	key   nftables.SetDatatype
	rules func(vips, leased *nftables.Set) [][]expr.Any
	// outHook and outRules make the output chain (ChainOut).
	outHook  nftables.ChainHook
	outRules func(vips, leased *nftables.Set) [][]expr.Any
}

var (
	famIP = family{
		name: "ip", fam: nftables.TableFamilyIPv4, hook: *nftables.ChainHookInput, key: nftables.TypeIPAddr,
		rules: func(vips, leased *nftables.Set) [][]expr.Any {
			// ip daddr @vips ip daddr != @leased drop
			return [][]expr.Any{gate(nil, expr.PayloadBaseNetworkHeader, 16, 4, vips, leased)}
		},
		outHook: *nftables.ChainHookOutput,
		outRules: func(vips, leased *nftables.Set) [][]expr.Any {
			// ip saddr @vips ip saddr != @leased drop
			return [][]expr.Any{gate(nil, expr.PayloadBaseNetworkHeader, 12, 4, vips, leased)}
		},
	}
	famARP = family{
		name: "arp", fam: nftables.TableFamilyARP, hook: nfARPIn, key: nftables.TypeIPAddr,
		rules: func(vips, leased *nftables.Set) [][]expr.Any {
			// arp daddr ip @vips arp daddr ip != @leased drop: requests
			// (and replies) whose target is the VIP; offset 24 is the
			// target protocol address of an Ethernet/IPv4 ARP packet.
			return [][]expr.Any{gate(nil, expr.PayloadBaseNetworkHeader, 24, 4, vips, leased)}
		},
		outHook: nfARPOut,
		outRules: func(vips, leased *nftables.Set) [][]expr.Any {
			// arp saddr ip @vips arp saddr ip != @leased drop: requests and
			// replies whose sender is the VIP (offset 14, the sender
			// protocol address), which would update neighbour caches.
			return [][]expr.Any{gate(nil, expr.PayloadBaseNetworkHeader, 14, 4, vips, leased)}
		},
	}
	famIP6 = family{
		name: "ip6", fam: nftables.TableFamilyIPv6, hook: *nftables.ChainHookInput, key: nftables.TypeIP6Addr,
		rules: func(vips, leased *nftables.Set) [][]expr.Any {
			// Neighbour solicitations go to the VIP's solicited-node
			// multicast group, not to the VIP, so the daddr rule does not
			// see them; the second rule matches their target address
			// (ICMPv6 bytes 8-23): meta l4proto ipv6-icmp icmpv6 type
			// nd-neighbor-solicit @th,64,128 @vips @th,64,128 != @leased drop.
			ns := []expr.Any{
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{135}}, // ND_NEIGHBOR_SOLICIT
			}
			return [][]expr.Any{
				gate(nil, expr.PayloadBaseNetworkHeader, 24, 16, vips, leased),
				gate(ns, expr.PayloadBaseTransportHeader, 8, 16, vips, leased),
			}
		},
		outHook: *nftables.ChainHookOutput,
		outRules: func(vips, leased *nftables.Set) [][]expr.Any {
			// ip6 saddr @vips ip6 saddr != @leased drop: neighbour
			// solicitations from the VIP carry its MAC too.
			return [][]expr.Any{gate(nil, expr.PayloadBaseNetworkHeader, 8, 16, vips, leased)}
		},
	}
	allFamilies = []family{famIP, famARP, famIP6}
)

// gate is "<prefix> <field> @vips <field> != @leased drop".
func gate(prefix []expr.Any, base expr.PayloadBase, off, n uint32, vips, leased *nftables.Set) []expr.Any {
	return append(prefix,
		&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: vips.Name, SetID: vips.ID},
		&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: leased.Name, SetID: leased.ID, Invert: true},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
}

func familiesFor(a netip.Addr) []family {
	if a.Is4() {
		return []family{famIP, famARP}
	}
	return []family{famIP6}
}

func (f family) table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: f.fam}
}

func (f family) vipsSet() *nftables.Set {
	return &nftables.Set{Table: f.table(), Name: SetVIPs, KeyType: f.key}
}

func (f family) leasedSet() *nftables.Set {
	return &nftables.Set{Table: f.table(), Name: SetLeased, KeyType: f.key, HasTimeout: true}
}

func (f family) chain() *nftables.Chain { return f.chainAt(ChainName, f.hook) }

func (f family) outChain() *nftables.Chain { return f.chainAt(ChainOut, f.outHook) }

func (f family) chainAt(name string, hook nftables.ChainHook) *nftables.Chain {
	prio := nftables.ChainPriority(chainPriority)
	policy := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name: name, Table: f.table(), Type: nftables.ChainTypeFilter,
		Hooknum: &hook, Priority: &prio, Policy: &policy,
	}
}

// gateChain is one chain of a family's table with the rules it must hold.
type gateChain struct {
	chain *nftables.Chain
	rules func(vips, leased *nftables.Set) [][]expr.Any
}

// gates lists the family's chains: input, then output.
func (f family) gates() []gateChain {
	return []gateChain{{f.chain(), f.rules}, {f.outChain(), f.outRules}}
}

// isNotExist reports a missing table, set, chain or element. The
// library's Get* calls format the netlink error with %v (v0.3.0), which
// loses the errno, hence the fallback on its text.
func isNotExist(err error) bool {
	return err != nil && (errors.Is(err, unix.ENOENT) || strings.HasSuffix(err.Error(), unix.ENOENT.Error()))
}

// ensureTables makes the tables, sets, chains and rules of fams exist,
// without touching what is already there: the tables are shared by every
// VIP, and flushing or recreating them would drop other VIPs' leases. Rules
// are added only to a chain that does not hold the expected number; a chain
// with another number of rules (hand edits, an older version) is flushed
// and refilled in the same batch, so the gate is never missing in between.
// With vip valid, the batch also adds it to @vips, before any caller adds
// the address, so that the VIP never answers unchecked.
func ensureTables(c *nftables.Conn, fams []family, vip netip.Addr) error {
	have := make([][]int, len(fams))
	for i, f := range fams {
		for _, g := range f.gates() {
			rules, err := c.GetRules(f.table(), g.chain)
			switch {
			case isNotExist(err):
				have[i] = append(have[i], 0)
			case err != nil:
				return fmt.Errorf("list rules of %s %s chain %s: %w", f.name, TableName, g.chain.Name, err)
			default:
				have[i] = append(have[i], len(rules))
			}
		}
	}
	for i, f := range fams {
		c.AddTable(f.table())
		vips, leased := f.vipsSet(), f.leasedSet()
		if err := c.AddSet(vips, nil); err != nil {
			return fmt.Errorf("add set %s %s %s: %w", f.name, TableName, SetVIPs, err)
		}
		if err := c.AddSet(leased, nil); err != nil {
			return fmt.Errorf("add set %s %s %s: %w", f.name, TableName, SetLeased, err)
		}
		for j, g := range f.gates() {
			ch := c.AddChain(g.chain)
			want := g.rules(vips, leased)
			if have[i][j] != len(want) {
				if have[i][j] > 0 {
					c.FlushChain(ch)
				}
				for _, exprs := range want {
					c.AddRule(&nftables.Rule{Table: f.table(), Chain: ch, Exprs: exprs})
				}
			}
		}
		if vip.IsValid() {
			if err := c.SetAddElements(vips, []nftables.SetElement{{Key: vip.AsSlice()}}); err != nil {
				return fmt.Errorf("add %s to %s %s %s: %w", vip, f.name, TableName, SetVIPs, err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("create nftables %s tables: %w", TableName, err)
	}
	return nil
}

// msCeil rounds d up to whole milliseconds, the unit of nftables timeouts
// (the library truncates). Never 0: a zero timeout means "no timeout" to the
// kernel, a lease that would never end.
func msCeil(d time.Duration) time.Duration {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return max(ms, 1) * time.Millisecond
}

// queueRenew queues, for every family, add + delete + add of the VIP in
// @leased with the fresh timeout. Kernels before 6.10 (or so) keep an
// existing element's timeout when it is added again; deleting and re-adding
// in the same transaction resets it on every kernel, and the first add makes
// the delete succeed when the element is absent or expired. The transaction
// is atomic: packets see the old element or the new one, never neither.
func queueRenew(c *nftables.Conn, fams []family, vip netip.Addr, timeout time.Duration) error {
	key := vip.AsSlice()
	for _, f := range fams {
		s := f.leasedSet()
		if err := c.SetAddElements(s, []nftables.SetElement{{Key: key, Timeout: timeout}}); err != nil {
			return err
		}
		if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: key}}); err != nil {
			return err
		}
		if err := c.SetAddElements(s, []nftables.SetElement{{Key: key, Timeout: timeout}}); err != nil {
			return err
		}
	}
	return nil
}

// queueRemove queues the removal of the VIP from the named set of every
// family, absent or not (add then delete, in one transaction).
func queueRemove(c *nftables.Conn, fams []family, vip netip.Addr, set string) error {
	key := vip.AsSlice()
	for _, f := range fams {
		s := f.vipsSet()
		add := nftables.SetElement{Key: key}
		if set == SetLeased {
			s = f.leasedSet()
			// Short-lived in case the delete were ever dropped from the
			// transaction: a stray element must not grant a lease.
			add.Timeout = time.Millisecond
		}
		if err := c.SetAddElements(s, []nftables.SetElement{add}); err != nil {
			return err
		}
		if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: key}}); err != nil {
			return err
		}
	}
	return nil
}

// element looks the VIP up in a set; ok is false when the set or the
// element does not exist (an expired element still listed counts as absent).
func element(c *nftables.Conn, s *nftables.Set, vip netip.Addr) (nftables.SetElement, bool, error) {
	els, err := c.GetSetElements(s)
	if isNotExist(err) {
		return nftables.SetElement{}, false, nil
	}
	if err != nil {
		return nftables.SetElement{}, false, fmt.Errorf("list %s %s %s: %w", familyName(s.Table.Family), TableName, s.Name, err)
	}
	key := vip.AsSlice()
	for _, e := range els {
		if bytes.Equal(e.Key, key) {
			if s.HasTimeout && e.Timeout > 0 && e.Expires <= 0 {
				return e, false, nil
			}
			return e, true, nil
		}
	}
	return nftables.SetElement{}, false, nil
}

func familyName(f nftables.TableFamily) string {
	for _, x := range allFamilies {
		if x.fam == f {
			return x.name
		}
	}
	return fmt.Sprint(f)
}

// Cleanup undoes what an earlier life of the agent left in this process's
// network namespace: it removes every address listed in a vigil @vips set
// from whatever interface holds it, then deletes the vigil tables of the
// ip, ip6 and arp families. The addresses go first because, without the
// tables, they would answer unchecked, and an agent that has just started
// holds no lease. Other tables are not touched. It is meant for agent
// start-up (after a crash) and for tests. ctx is checked between steps.
func Cleanup(ctx context.Context) error { return CleanupNetNS(ctx, "") }

// CleanupNetNS is Cleanup for the network namespace at path (e.g.
// /run/netns/NAME; "" is the current one).
func CleanupNetNS(ctx context.Context, path string) error {
	var (
		addrs  []netip.Addr
		tables []family
	)
	err := withNft(ctx, path, func(c *nftables.Conn) error {
		for _, f := range allFamilies {
			els, err := c.GetSetElements(f.vipsSet())
			if isNotExist(err) {
				// The set may be gone while the table stays (hand edits).
				if _, terr := c.ListTableOfFamily(TableName, f.fam); terr == nil {
					tables = append(tables, f)
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("list %s %s %s: %w", f.name, TableName, SetVIPs, err)
			}
			tables = append(tables, f)
			for _, e := range els {
				if a, ok := netip.AddrFromSlice(e.Key); ok {
					addrs = append(addrs, a)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cleanup%s: %w", inNS(path), err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cleanup%s: %w", inNS(path), err)
	}
	if len(addrs) > 0 {
		if err := removeAddrsEverywhere(ctx, path, addrs); err != nil {
			return fmt.Errorf("cleanup%s: %w", inNS(path), err)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cleanup%s: %w", inNS(path), err)
	}
	err = withNft(ctx, path, func(c *nftables.Conn) error {
		for _, f := range tables {
			c.DelTable(f.table())
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("delete %s tables: %w", TableName, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cleanup%s: %w", inNS(path), err)
	}
	return nil
}
