// Package hbimport translates a Heartbeat configuration (ha.cf, haresources, authkeys) into a vigil.yaml and lists every line it could not translate.
package hbimport
