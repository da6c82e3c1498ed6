#!/bin/sh
# The enrollment stampede (issue 16), end to end on loopback: a simulated
# world of DEVICES laptops, one collector on SQLite serving it, every laptop
# enrolling and reporting at once through bonafide-fleetsim; then the
# collector's orphan agents, peak RSS and CPU time, and the machine's load.
# `make loadtest` builds the binaries and runs this; see
# docs/fleet-simulator.md (A stampede).
#
# Environment: DEVICES (10000), BIN (bin: bonafide-collector and
# bonafide-fleetsim), DIR (a new temporary directory; kept with LOADTEST_KEEP=1
# or a failed run), GRPC (127.0.0.1:19520), HTTP (127.0.0.1:19521),
# DEADLINE (10m: how long a simulated laptop keeps retrying, as an agent
# never gives up; 0: fleetsim's ten attempts per call), SERVE_FLAGS (extra `serve` flags, e.g.
# "--metrics-listen 127.0.0.1:19522 --pprof"), RUN_FLAGS (extra `fleetsim
# run` flags, e.g. "--cpuprofile FILE").
set -eu
DEVICES=${DEVICES:-10000}
BIN=${BIN:-bin}
GRPC=${GRPC:-127.0.0.1:19520}
HTTP=${HTTP:-127.0.0.1:19521}
SERVE_FLAGS=${SERVE_FLAGS:-}
RUN_FLAGS=${RUN_FLAGS:-}
DEADLINE=${DEADLINE:-10m}
if [ -z "${DIR:-}" ]; then DIR=$(mktemp -d "${TMPDIR:-/tmp}/bonafide-loadtest.XXXXXX"); fi
collector=$BIN/bonafide-collector
fleetsim=$BIN/bonafide-fleetsim
for b in "$collector" "$fleetsim"; do
	[ -x "$b" ] || { echo "loadtest: $b missing: run make build (or set BIN)" >&2; exit 1; }
done
command -v sqlite3 >/dev/null || { echo "loadtest: needs the sqlite3 command (apt-get install sqlite3) to count orphans" >&2; exit 1; }

mkdir -p "$DIR"
"$fleetsim" world --out "$DIR/sim" --devices "$DEVICES" >/dev/null
# shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
"$collector" serve --data-dir "$DIR/data" --policies "$DIR/sim/policies" \
	--geoip "$DIR/sim/city.mmdb" --geoip "$DIR/sim/asn.mmdb" \
	--grpc-listen "$GRPC" --http-listen "$HTTP" $SERVE_FLAGS >"$DIR/collector.log" 2>&1 &
cpid=$!
trap 'kill $cpid 2>/dev/null || true' EXIT INT TERM
i=0
until grep -q 'msg="collector ready"' "$DIR/collector.log"; do
	if ! kill -0 $cpid 2>/dev/null; then echo "loadtest: the collector exited:" >&2; cat "$DIR/collector.log" >&2; exit 1; fi
	i=$((i + 1)); [ $i -lt 1200 ] || { echo "loadtest: the collector is not ready after 2 minutes; see $DIR/collector.log" >&2; exit 1; }
	sleep 0.1
done
secret=$("$collector" secret create --data-dir "$DIR/data" --name loadtest)
fp=$("$collector" ca fingerprint --data-dir "$DIR/data")

echo "loadtest: $DEVICES laptops enrolling and reporting at once against $GRPC (files in $DIR)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
rc=0
deadline="--deadline $DEADLINE"
if [ "$DEADLINE" = 0 ]; then deadline=; fi # fleetsim's own give-up (and older fleetsims)
# fleetsim's own CPU time: it shares the machine with the collector
timed() {
	if [ -x /usr/bin/time ]; then /usr/bin/time -f 'fleetsim: CPU %U s user, %S s system; peak RSS %M KiB' "$@"; else "$@"; fi
}
# shellcheck disable=SC2086 # RUN_FLAGS is a list of flags
timed "$fleetsim" run --collector "$GRPC" --secret "$secret" --ca-fingerprint "$fp" --state "$DIR/state" \
	--devices "$DEVICES" --concurrency "$DEVICES" $deadline $RUN_FLAGS || rc=$?
took=$(($(date +%s) - start))
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

hwm=$(awk '/^VmHWM/ {printf "%.0f MiB", $2 / 1024}' /proc/$cpid/status)
# utime + stime, in clock ticks
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f s", ($14 + $15) / hz}' /proc/$cpid/stat)
kill $cpid
wait $cpid 2>/dev/null || true
trap - EXIT INT TERM
sqlite3 "$DIR/data/bonafide.db" "SELECT 'agents ' || (SELECT count(*) FROM agents) || ', devices ' || (SELECT count(*) FROM devices)
	|| ', orphan agents ' || ((SELECT count(*) FROM agents) - (SELECT count(*) FROM devices))
	|| ', agents that never reported ' || (SELECT count(*) FROM agents WHERE last_seen = 0)"
echo "collector: peak RSS (VmHWM) $hwm, CPU $cpu; wall time ${took} s"
if [ $rc -ne 0 ] || [ -n "${LOADTEST_KEEP:-}" ]; then
	echo "files kept in $DIR"
else
	rm -rf "$DIR"
fi
exit $rc
