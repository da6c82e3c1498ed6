#!/bin/sh
# bonafide-collector postremove: the deb postrm and the rpm %postun.
# The data directory (database, CA key, first-run credentials) is never
# deleted by the package, not even on purge: losing the CA means every
# agent must enroll again. Delete it by hand when it is no longer needed:
#   rm -rf /var/lib/bonafide-collector
# Paths are under $DPKG_ROOT (set by dpkg --root; empty otherwise).
set -e

R="${DPKG_ROOT:-}"

case "$1" in
purge)
	rm -f "$R/etc/bonafide/collector.env" "$R/etc/bonafide/collector.env.dpkg-old" \
		"$R/etc/bonafide/collector.env.dpkg-dist"
	# Kept when the agent's package still has files there.
	rmdir "$R/etc/bonafide" 2>/dev/null || true
	if [ -d "$R/var/lib/bonafide-collector" ]; then
		echo "bonafide-collector: kept /var/lib/bonafide-collector (database and CA); remove it by hand if it is no longer needed."
	fi
	;;
esac

if [ -d "$R/run/systemd/system" ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	case "$1" in
	remove | purge | 0) systemctl reset-failed bonafide-collector.service 2>/dev/null || true ;;
	esac
fi
exit 0
