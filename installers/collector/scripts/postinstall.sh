#!/bin/sh
# bonafide-collector postinstall: the deb postinst and the rpm %post.
#   deb: "configure" with the previously configured version ("" on a first
#        install), or "abort-upgrade|abort-remove|abort-deconfigure".
#   rpm: 1 on a first install, 2 or more on an upgrade.
# A first install enables the service but does not start it: the first
# start creates the CA and the server certificate, whose names come from
# --server-name in /etc/bonafide/collector.env, so that is set first.
# Paths are under $DPKG_ROOT (set by dpkg --root; empty otherwise).
set -e

R="${DPKG_ROOT:-}"
ENV="$R/etc/bonafide/collector.env"
UNIT=bonafide-collector.service

case "$1" in
configure) if [ -n "$2" ]; then action=upgrade; else action=install; fi ;;
abort-upgrade | abort-remove | abort-deconfigure) action=upgrade ;;
1) action=install ;;
[0-9]*) action=upgrade ;;
*) exit 0 ;;
esac

# A --db URL in it may hold a password.
if [ -f "$ENV" ]; then
	chown root:root "$ENV"
	chmod 0600 "$ENV"
fi

running() { [ -d "$R/run/systemd/system" ]; }

if ! command -v systemctl >/dev/null 2>&1; then
	echo "bonafide-collector: systemd is not installed; run 'bonafide-collector serve' under your init system."
	exit 0
fi
if running; then
	systemctl daemon-reload || true
fi

if [ "$action" = upgrade ]; then
	if running; then
		systemctl try-restart "$UNIT" || true
	fi
	exit 0
fi

if [ -n "$R" ]; then
	systemctl --root="$R" enable "$UNIT" || true
else
	systemctl enable "$UNIT" || true
fi
cat <<'EOM'
bonafide-collector is installed and enabled. Before the first start, set the
name agents reach it by in /etc/bonafide/collector.env, e.g.

    BONAFIDE_COLLECTOR_ARGS=--server-name collector.example.com

then:  systemctl start bonafide-collector
The first start writes an admin API token to
/var/lib/bonafide-collector/first-run-credentials.txt. Admin commands run as
the service user, e.g.:

    sudo -u bonafide bonafide-collector secret create --data-dir /var/lib/bonafide-collector
    sudo -u bonafide bonafide-collector ca fingerprint --data-dir /var/lib/bonafide-collector
EOM
exit 0
