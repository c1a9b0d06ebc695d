// Package bench measures a real local cluster of vigil agent processes on loopback: how fast a killed node is declared dead, and what an idle agent costs.
package bench
