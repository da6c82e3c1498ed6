#!/bin/sh
# bonafide-agent postremove: the deb postrm and the rpm %postun.
#   deb: "remove", "purge", "upgrade", "disappear", "abort-install",
#        "abort-upgrade", "failed-upgrade".
#   rpm: the number of instances left: 0 on erase, 1 or more on an upgrade.
# deb purge removes everything the agent keeps: its state directory (key,
# certificates, queue) and /etc/bonafide/agent.yaml. rpm has no purge: an
# erase removes the state directory and leaves a changed agent.yaml as
# agent.yaml.rpmsave, as rpm does with configuration.
# Paths are under $DPKG_ROOT (set by dpkg --root; empty otherwise).
set -e

R="${DPKG_ROOT:-}"
STATE="$R/var/lib/bonafide"

case "$1" in
purge)
	rm -rf "$STATE"
	rm -f "$R/etc/bonafide/agent.yaml" "$R/etc/bonafide/agent.yaml.sample" \
		"$R/etc/bonafide/agent.yaml.dpkg-old" "$R/etc/bonafide/agent.yaml.dpkg-dist"
	# Kept when the collector's package still has files there.
	rmdir "$R/etc/bonafide" 2>/dev/null || true
	;;
0)
	rm -rf "$STATE"
	;;
esac

if [ -d "$R/run/systemd/system" ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	case "$1" in
	remove | purge | 0) systemctl reset-failed bonafide-agent.service 2>/dev/null || true ;;
	esac
fi
exit 0
