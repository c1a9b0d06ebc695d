#!/bin/sh
# Step shutdownTomcat (gracefulShutdown, restartWorkFlow): ask Tomcat to stop and
# wait for its process to go. Exit 0: stopped (or was not running). Exit 1: still
# running; the workflow's next step (forceKill) deals with it.
. "$(dirname "$0")/tomcat.env.sh"

stopped() { ! running; }

shutdown() {
	if ! running; then
		rm -f "$TOMCAT_PIDFILE"
		echo "Tomcat is not running"
		return 0
	fi
	if [ -n "$TOMCAT_STANDIN" ]; then
		kill "$(cat "$TOMCAT_PIDFILE")"
	else
		CATALINA_PID=$TOMCAT_PIDFILE "$CATALINA_HOME/bin/shutdown.sh"
	fi
	if waitfor stopped "$TOMCAT_STOP_WAIT"; then
		rm -f "$TOMCAT_PIDFILE"
		echo "Tomcat stopped"
		return 0
	fi
	echo "Tomcat still running after ${TOMCAT_STOP_WAIT}s"
	return 1
}

shutdown
exit $?
