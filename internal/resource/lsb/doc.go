// Package lsb manages services through LSB init scripts and their exit codes.
package lsb
