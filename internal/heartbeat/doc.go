// Package heartbeat encodes, authenticates and carries heartbeat packets over UDP, one socket per link, leaving every liveness and lease decision to its caller.
package heartbeat
