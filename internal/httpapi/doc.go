// Package httpapi serves the /v1 JSON API to operators (bearer token) and to peer nodes (mutual TLS).
package httpapi
