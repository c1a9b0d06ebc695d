// Package systemd manages a systemd unit as a resource through systemd's D-Bus API.
package systemd
