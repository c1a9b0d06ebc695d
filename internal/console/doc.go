// Package console serves the web console at / on every node: server-rendered pages over the node's own API, with token login, sessions, CSRF protection and live updates.
package console
