#!/bin/sh
# bonafide-collector preinstall: the deb preinst and the rpm %pre. Creates
# the bonafide system user and group the service runs as. They are kept on
# removal, as Debian policy and Fedora's packaging guidelines advise, so
# that files they owned never pass to a later account with the same id.
#   deb: "install" or "upgrade" (and "abort-upgrade").
#   rpm: 1 on a first install, 2 or more on an upgrade.
# Paths are under $DPKG_ROOT (set by dpkg --root; empty otherwise).
set -e

R="${DPKG_ROOT:-}"

case "$1" in
install | upgrade | [0-9]*) ;;
*) exit 0 ;;
esac

# known DB NAME: the passwd or group database has NAME.
known() {
	if [ -n "$R" ]; then
		grep -q "^$2:" "$R/etc/$1" 2>/dev/null
	else
		getent "$1" "$2" >/dev/null 2>&1
	fi
}

# in_root CMD ARGS: run a shadow-utils command on the target system.
in_root() {
	cmd=$1
	shift
	if [ -n "$R" ]; then "$cmd" --root "$R" "$@"; else "$cmd" "$@"; fi
}

NOLOGIN=/usr/sbin/nologin
[ -x "$R$NOLOGIN" ] || NOLOGIN=/sbin/nologin

if ! known group bonafide; then
	in_root groupadd --system bonafide
fi
if ! known passwd bonafide; then
	in_root useradd --system --gid bonafide --no-create-home \
		--home-dir /var/lib/bonafide-collector --shell "$NOLOGIN" \
		--comment "bonafide collector" bonafide
fi
exit 0
