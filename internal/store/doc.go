// Package store is Vigil's replicated, append-only event log: hashicorp/raft with an on-disk raft-wal store, spoken over mutual TLS between the cluster's voters.
package store
