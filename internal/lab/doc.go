// Package lab builds test hosts in Linux network namespaces joined by private bridges, runs real processes in them, and injects faults: kill -9, freeze, power loss, cut links and partitions.
package lab
