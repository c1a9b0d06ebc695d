// Package agent wires one node together: heartbeats, the membership core, the replicated log and the API.
package agent
