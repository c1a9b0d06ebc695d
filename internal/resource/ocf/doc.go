// Package ocf runs Open Cluster Framework resource agents (such as Debian's resource-agents) unchanged, validating their parameters and timeouts from meta-data.
package ocf
