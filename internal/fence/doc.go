// Package fence turns nodes off through fence agents (the fence-agents key=value protocol on standard input).
package fence
