// Package history keeps workflow runs and their step attempts in a bbolt file on the node, so a run's trace survives restarts and a run cut off by a crash is marked interrupted.
package history
