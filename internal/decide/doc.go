// Package decide is the coordinator's pure placement core: cluster state and node views in, assignment events out.
package decide
