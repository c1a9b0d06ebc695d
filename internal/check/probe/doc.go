// Package probe runs one health check against the network or a script: icmp, tcp, http, https and script probes.
package probe
