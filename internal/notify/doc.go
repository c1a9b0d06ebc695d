// Package notify routes committed cluster events to people: webhooks, e-mail, scripts, syslog and files, with a persistent retry queue per target.
package notify
