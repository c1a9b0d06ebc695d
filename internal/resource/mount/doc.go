// Package mount mounts a file system with an optional fsck first, and unmounts it by force, ending the processes that keep it busy.
package mount
