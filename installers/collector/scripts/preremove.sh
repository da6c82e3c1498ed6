#!/bin/sh
# bonafide-collector preremove: the deb prerm and the rpm %preun.
#   deb: "remove" when the package goes away, else "upgrade ...",
#        "deconfigure", "failed-upgrade".
#   rpm: 0 on erase, 1 or more on an upgrade.
# Stop and disable on removal only; after an upgrade postinstall restarts.
# Paths are under $DPKG_ROOT (set by dpkg --root; empty otherwise).
set -e

R="${DPKG_ROOT:-}"
UNIT=bonafide-collector.service

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
