// Package sim runs the real membership and placement cores for a whole cluster on a simulated clock, driven by a timed scenario.
package sim
