// Package duration is the YAML duration type shared by the config and the workflow definitions.
package duration
