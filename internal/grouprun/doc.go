// Package grouprun converges this node's resources to its assignments: start in order, stop in reverse, monitor and restart.
package grouprun
