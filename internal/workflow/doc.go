// Package workflow defines exit-code driven workflows and the pure state machine that decides, step by step, what a run does next.
package workflow
