#!/bin/sh
# Step startupTomcat (normalPrimer, takeControl, restartWorkFlow): start Tomcat
# and wait until it answers. Exit 0: it answers. Exit 1: it did not come up.
# One exit point, as the seed recommends, so that the exit code is the verdict.
. "$(dirname "$0")/tomcat.env.sh"

start() {
	if answers; then
		echo "Tomcat already answers on $TOMCAT_URL"
		return 0
	fi
	if [ -n "$TOMCAT_STANDIN" ]; then
		# The agent keeps what a step leaves running (kill_children is off).
		nohup $TOMCAT_STANDIN >/dev/null 2>&1 &
		echo $! >"$TOMCAT_PIDFILE"
	else
		CATALINA_PID=$TOMCAT_PIDFILE "$CATALINA_HOME/bin/startup.sh" || return 1
	fi
	if waitfor answers "$TOMCAT_START_WAIT"; then
		echo "Tomcat answers on $TOMCAT_URL (pid $(cat "$TOMCAT_PIDFILE" 2>/dev/null))"
		return 0
	fi
	echo "Tomcat did not answer on $TOMCAT_URL within ${TOMCAT_START_WAIT}s"
	return 1
}

start
exit $?
