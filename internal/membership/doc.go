// Package membership is the pure core that turns heartbeats and time into peer liveness, leases and quorum.
package membership
