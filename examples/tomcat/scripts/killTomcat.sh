#!/bin/sh
# Step forceKill (gracefulShutdown, restartWorkFlow): Tomcat did not stop when
# asked; kill it. Exit 0: gone.
. "$(dirname "$0")/tomcat.env.sh"

if running; then
	kill -9 "$(cat "$TOMCAT_PIDFILE")"
	sleep 0.2
fi
if running; then
	echo "Tomcat survived SIGKILL"
	exit 1
fi
rm -f "$TOMCAT_PIDFILE"
echo "Tomcat killed"
exit 0
