// Package finding is what a validator says about a definition (a check, a
// workflow): one thing wrong, or with Warning suspicious, at a field path the
// config loader turns into file:line. The check and workflow packages
// validate their own definitions and share this type, so the loader reports
// both the same way.
package finding
