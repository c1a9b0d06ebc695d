// Package availability computes, from the replicated event log, when each group served nowhere and its availability against an SLA target (seed 004).
package availability
