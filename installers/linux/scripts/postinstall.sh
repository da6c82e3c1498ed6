#!/bin/sh
# bonafide-agent postinstall: the deb postinst and the rpm %post.
#   deb: "configure" with the previously configured version ("" on a first
#        install), or "abort-upgrade|abort-remove|abort-deconfigure".
#   rpm: the number of installed instances of the package: 1 on a first
#        install, 2 or more on an upgrade.
# Paths are under $DPKG_ROOT (set by dpkg --root; empty otherwise).
set -e

R="${DPKG_ROOT:-}"
CONFIG="$R/etc/bonafide/agent.yaml"
STATE="$R/var/lib/bonafide"
UNIT=bonafide-agent.service

case "$1" in
configure) if [ -n "$2" ]; then action=upgrade; else action=install; fi ;;
abort-upgrade | abort-remove | abort-deconfigure) action=upgrade ;;
1) action=install ;;
[0-9]*) action=upgrade ;;
*) exit 0 ;;
esac

# The file holds the enrollment secret: root-only, whoever wrote it.
if [ -f "$CONFIG" ]; then
	chown root:root "$CONFIG"
	chmod 0600 "$CONFIG"
fi

# has KEY: the configuration sets the top-level KEY to a non-empty value.
has() {
	[ -f "$CONFIG" ] && grep -Eq "^$1:[[:space:]]*[^[:space:]#]" "$CONFIG"
}

# ready: the agent can run: it knows its collector and either can enroll
# (enroll_secret) or already did (enrollment.json in the default state_dir).
ready() {
	has collector && { has enroll_secret || [ -f "$STATE/enrollment.json" ]; }
}

# systemd runs the target system (not so in a chroot or an image build).
running() { [ -d "$R/run/systemd/system" ]; }

# enable works without a running systemd (it only writes symlinks).
enable() {
	if [ -n "$R" ]; then systemctl --root="$R" enable "$UNIT"; else systemctl enable "$UNIT"; fi
}

if ! command -v systemctl >/dev/null 2>&1; then
	echo "bonafide-agent: systemd is not installed; run '/usr/bin/bonafide-agent run' under your init system."
	exit 0
fi
if running; then
	systemctl daemon-reload || true
fi

if [ "$action" = upgrade ]; then
	# Restart only what runs: an agent the administrator stopped stays stopped.
	if running; then
		systemctl try-restart "$UNIT" || true
	fi
	exit 0
fi

# First install: enable at boot in every case (the unit is conditioned on
# the configuration file, so it stays idle until that exists), and start
# now when the agent can enroll or is enrolled. Enrollment happens in the
# service (`run` enrolls by itself and retries), so an unreachable
# collector never fails the installation.
enable || true
if ready; then
	if running; then
		if systemctl start "$UNIT"; then
			echo "bonafide-agent: started; it enrolls with its collector by itself (journalctl -u bonafide-agent)."
		else
			echo "bonafide-agent: could not start; see: journalctl -u bonafide-agent"
		fi
	fi
	exit 0
fi

cat <<'EOM'
bonafide-agent is installed and enabled but not configured yet. Write
/etc/bonafide/agent.yaml (mode 0600; /etc/bonafide/agent.yaml.sample shows
every key), for example:

    collector: collector.example.com:8443
    enroll_secret: "<bonafide-collector secret create>"
    ca_fingerprint: "<bonafide-collector ca fingerprint>"

then start it:  systemctl restart bonafide-agent
EOM
exit 0
