// Package process supervises a long-running command as a resource: started in its own process group, stopped by signal then SIGKILL, and adopted again after an agent restart through a pid file.
package process
