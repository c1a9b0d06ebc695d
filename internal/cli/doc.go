// Package cli implements the vigil command line, one file per verb; it reaches agents only through apiclient.
package cli
