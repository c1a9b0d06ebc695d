// Package sync implements the sync resource: directories replicated with rsync from the node running the group to the group's other nodes.
package sync
