#!/bin/sh
# Removes the bonafide agent installed by the macOS package.
#
#   sudo /usr/local/share/bonafide/uninstall.sh [--purge]
#
# It stops the LaunchDaemon and removes the daemon's plist, the agent binary,
# this script and the package receipt (pkgutil --forget). --purge also
# removes /Library/Application Support/Bonafide (agent.yaml, and the state:
# the agent's key and certificate and its queue of unsent reports) and the
# logs in /Library/Logs/Bonafide. Without --purge they are kept, so that a
# reinstall resumes as the same enrolled device.
set -eu

label=com.bonafide.agent
purge=no

case ${1:-} in
--purge) purge=yes ;;
"") ;;
*)
	echo "usage: $0 [--purge]" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "$0: run as root: sudo $0 $*" >&2
	exit 1
fi

launchctl bootout "system/$label" 2>/dev/null || true
rm -f "/Library/LaunchDaemons/$label.plist" /usr/local/bin/bonafide-agent
pkgutil --forget "$label" >/dev/null 2>&1 || true
if [ "$purge" = yes ]; then
	rm -rf "/Library/Application Support/Bonafide" /Library/Logs/Bonafide
	echo "removed the bonafide agent, its configuration, state and logs"
else
	echo "removed the bonafide agent; kept /Library/Application Support/Bonafide and /Library/Logs/Bonafide (--purge removes them)"
fi
rm -f /usr/local/share/bonafide/uninstall.sh
rmdir /usr/local/share/bonafide 2>/dev/null || true
