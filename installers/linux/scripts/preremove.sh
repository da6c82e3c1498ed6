#!/bin/sh
# bonafide-agent preremove: the deb prerm and the rpm %preun.
#   deb: "remove" when the package goes away; "upgrade <new-version>",
#        "deconfigure" or "failed-upgrade" otherwise.
#   rpm: the number of instances left after the operation: 0 on erase,
#        1 or more on an upgrade.
# On removal the agent is stopped and disabled; on an upgrade it keeps
# running and the new package's postinstall restarts it.
# Paths are under $DPKG_ROOT (set by dpkg --root; empty otherwise).
set -e

R="${DPKG_ROOT:-}"
UNIT=bonafide-agent.service

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

command -v systemctl >/dev/null 2>&1 || exit 0
if [ -d "$R/run/systemd/system" ]; then
	systemctl stop "$UNIT" || true
fi
if [ -n "$R" ]; then
	systemctl --root="$R" disable "$UNIT" || true
else
	systemctl disable "$UNIT" || true
fi
exit 0
