// Package runner schedules probes at their intervals, feeds their results to rise/fall trackers and reports state changes.
package runner
