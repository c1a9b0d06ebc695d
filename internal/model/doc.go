// Package model holds the plain values that every other package shares: events, node roles and states.
package model
