// Package runner executes workflows on this node: it drives the pure workflow.Run with real commands and timers, enforces which runs may coexist, and records every transition in the run history.
package runner
