// Package resource defines the agent interface every resource type implements (start, stop, monitor).
package resource
