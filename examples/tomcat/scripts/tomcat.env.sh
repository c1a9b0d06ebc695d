# Sourced by the Tomcat scripts: where Tomcat lives and how to tell it answers.
# Override any of these in the workflow step's env (vigil.yaml) or the agent's
# environment; the defaults suit a stock /opt/tomcat on port 8080.
CATALINA_HOME=${CATALINA_HOME:-/opt/tomcat}
TOMCAT_URL=${TOMCAT_URL:-http://127.0.0.1:8080/}
TOMCAT_PIDFILE=${TOMCAT_PIDFILE:-/run/vigil-tomcat.pid}
TOMCAT_START_WAIT=${TOMCAT_START_WAIT:-60}  # seconds
TOMCAT_STOP_WAIT=${TOMCAT_STOP_WAIT:-60}    # seconds
# TOMCAT_STANDIN, when set, is a command line started instead of Tomcat (tests
# use `vigil demo-web`); it must serve TOMCAT_URL.

# answers: exit 0 when Tomcat serves TOMCAT_URL.
answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 2 "$TOMCAT_URL" 2>/dev/null
	else
		wget -q -O /dev/null -T 2 "$TOMCAT_URL" 2>/dev/null
	fi
}

# running: exit 0 when the process in the pid file is alive. An exited process
# its parent has not reaped yet (a zombie) is not.
running() {
	[ -s "$TOMCAT_PIDFILE" ] || return 1
	pid=$(cat "$TOMCAT_PIDFILE")
	kill -0 "$pid" 2>/dev/null || return 1
	[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" != Z ]
}

# waitfor CMD SECONDS: poll CMD five times a second.
waitfor() {
	n=$(($2 * 5))
	while [ "$n" -gt 0 ]; do
		if $1; then return 0; fi
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
