// Package availability reads the replicated event log for when each group served nowhere, its availability against an SLA target (seed 004), and its failovers.
package availability
