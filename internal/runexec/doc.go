// Package runexec runs commands in their own process group, kills the whole tree on timeout and captures bounded output.
package runexec
