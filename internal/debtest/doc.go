// Package debtest tests the Debian package that packaging/build-deb.sh (`make deb`) builds:
// it installs the package into a throwaway dpkg root and runs the installed binary.
package debtest
