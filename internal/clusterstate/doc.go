// Package clusterstate projects the replicated event log into the current assignments, flags and requests.
package clusterstate
