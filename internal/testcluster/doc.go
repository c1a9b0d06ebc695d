// Package testcluster runs several agents in one process on loopback addresses, for tests.
package testcluster
