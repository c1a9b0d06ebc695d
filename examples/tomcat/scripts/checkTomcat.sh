#!/bin/sh
# Steps checkTomcat and normalEnd, and the group's check: exit 0 when Tomcat
# answers, 1 when it does not.
. "$(dirname "$0")/tomcat.env.sh"

if answers; then
	exit 0
fi
echo "Tomcat does not answer on $TOMCAT_URL"
exit 1
