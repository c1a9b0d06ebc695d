// Package whatif replays the coordinator's placement core on a hypothetical failure, for vigil simulate.
package whatif
