// Package apiclient is the Go client of the /v1 API, used by the CLI and by nodes talking to each other.
package apiclient
