package clusterinit

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/vigil-ha/vigil/internal/config"
)

// NodeSpec describes one node for `vigil init`.
type NodeSpec struct {
	Name      string
	Addresses []string // one per link, in link order
	Witness   bool
}

// Options are the inputs of Run.
type Options struct {
	Dir     string // where the config and secrets go; created if missing
	Cluster string
	Nodes   []NodeSpec
	Force   bool // overwrite existing files
}

// Names end up in certificates (CN and DNS SAN), file names and YAML, so they
// are restricted to what is safe in all three: a DNS label. This is the rule
// config applies too, so init never writes a file that config rejects.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ParseNodeFlag parses the value of --node (or --witness when witness is set):
// "NAME=ADDR[,ADDR...]".
func ParseNodeFlag(s string, witness bool) (NodeSpec, error) {
	flag := "--node"
	if witness {
		flag = "--witness"
	}
	name, list, ok := strings.Cut(s, "=")
	if !ok {
		return NodeSpec{}, fmt.Errorf("%s %q: want NAME=ADDR[,ADDR...]", flag, s)
	}
	name = strings.TrimSpace(name)
	if err := checkName(name); err != nil {
		return NodeSpec{}, fmt.Errorf("%s %q: node %w", flag, s, err)
	}
	parts := strings.Split(list, ",")
	if len(parts) > config.MaxLinks {
		return NodeSpec{}, fmt.Errorf("%s %q: %d addresses, at most %d links are supported", flag, s, len(parts), config.MaxLinks)
	}
	var addrs []string
	for i, a := range parts {
		a = strings.TrimSpace(a)
		if a == "" {
			return NodeSpec{}, fmt.Errorf("%s %q: address %d is empty", flag, s, i+1)
		}
		ip, err := parseAddr(a)
		if err != nil {
			return NodeSpec{}, fmt.Errorf("%s %q: %w", flag, s, err)
		}
		addrs = append(addrs, ip.String())
	}
	return NodeSpec{Name: name, Addresses: addrs, Witness: witness}, nil
}

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("name %q is invalid: use 1 to 63 lower-case letters, digits and hyphens, not starting or ending with a hyphen", name)
	}
	return nil
}

// parseAddr accepts a plain IP address: no zone, since certificates cannot
// name one, and no prefix length, since these are node addresses, not networks.
func parseAddr(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q is not an IP address", s)
	}
	if ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q has a zone; use an address without %%zone", s)
	}
	if ip.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("address %q is unspecified; give the node's own address", s)
	}
	if ip.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("address %q is a multicast address; give the node's own address", s)
	}
	// 4-in-6 addresses would not match the plain IPv4 a peer dials.
	return ip.Unmap(), nil
}

// node is a validated NodeSpec.
type node struct {
	Name      string
	Addresses []netip.Addr
	Witness   bool
}

func validate(opt Options) ([]node, error) {
	if opt.Dir == "" {
		return nil, errors.New("no output directory given")
	}
	if opt.Cluster == "" {
		return nil, errors.New("no cluster name given")
	}
	if err := checkName(opt.Cluster); err != nil {
		return nil, fmt.Errorf("cluster %w", err)
	}
	if len(opt.Nodes) < 2 {
		return nil, fmt.Errorf("%d node(s) given, a cluster needs at least 2 (nodes and witnesses together)", len(opt.Nodes))
	}
	names := map[string]bool{}
	owner := map[netip.Addr]string{}
	var nodes []node
	workers := 0
	for _, spec := range opt.Nodes {
		if err := checkName(spec.Name); err != nil {
			return nil, fmt.Errorf("node %w", err)
		}
		if names[spec.Name] {
			return nil, fmt.Errorf("node %q is given twice", spec.Name)
		}
		names[spec.Name] = true
		if len(spec.Addresses) == 0 {
			return nil, fmt.Errorf("node %q has no address", spec.Name)
		}
		if len(spec.Addresses) > config.MaxLinks {
			return nil, fmt.Errorf("node %q has %d addresses, at most %d links are supported", spec.Name, len(spec.Addresses), config.MaxLinks)
		}
		n := node{Name: spec.Name, Witness: spec.Witness}
		for _, a := range spec.Addresses {
			ip, err := parseAddr(strings.TrimSpace(a))
			if err != nil {
				return nil, fmt.Errorf("node %q: %w", spec.Name, err)
			}
			// Peers find a node by address, so two nodes on one address could not be told apart.
			if prev, dup := owner[ip]; dup {
				if prev == spec.Name {
					return nil, fmt.Errorf("node %q: address %s is given twice", spec.Name, ip)
				}
				return nil, fmt.Errorf("node %q: address %s is already node %q's", spec.Name, ip, prev)
			}
			owner[ip] = spec.Name
			n.Addresses = append(n.Addresses, ip)
		}
		if !spec.Witness {
			workers++
		}
		nodes = append(nodes, n)
	}
	if workers == 0 {
		return nil, errors.New("every node is a witness; at least one must be able to run groups")
	}
	return nodes, nil
}
