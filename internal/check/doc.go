// Package check is the pure part of health checking: check definitions, rise/fall state, multi-observer loss and public-network isolation.
package check
