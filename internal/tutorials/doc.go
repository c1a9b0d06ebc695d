// Package tutorials checks that every configuration shown in docs/tutorials loads without a problem.
package tutorials
