// Package clusterinit implements `vigil init`: it creates a cluster's CA, node certificates, secrets and starter vigil.yaml.
package clusterinit
