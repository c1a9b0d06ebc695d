// Package pki holds the cluster's certificate authority, node certificates, TLS configurations, operator tokens and heartbeat key.
package pki
