// Package ip manages virtual IP addresses (the ip resource type): the address through netlink, gratuitous ARP or unsolicited neighbour advertisements on start, and the kernel-enforced lease in nftables that makes a frozen node stop answering on the VIP by itself.
package ip
