// Package config loads vigil.yaml strictly and reports every problem as file:line: field: message.
package config
