#!/usr/bin/env bash
# scripts/wine-test.sh (make test-windows) proves the Windows agent under Wine:
#
#  1. every agent package's Windows test binary (go test -c, windows/amd64)
#     runs under Wine in its package directory; a failing test fails this
#     script unless scripts/wine-known-gaps.txt lists it as a Wine gap (the
#     agent's TestScanFindsFakeToolsUnderWine installs a fake AnyDesk and
#     TeamViewer in the prefix: programs, folders, Uninstall keys, services,
#     ports, client ids, and checks that scan --json finds them;
#     TestScanFindsPiKVMUnderWine writes a PiKVM's USB and monitor device
#     nodes, EDID included, into the registry where SetupAPI keeps them);
#  2. scan --json, with a Windows program named RustDesk.exe running in the
#     same prefix, reports the tool rustdesk;
#  3. run --once enrolls with a collector on loopback and delivers: the
#     device is os_family windows with the remote_tool_running alert (the
#     collector's TestWindowsAgentUnderWine, built for this machine);
#  4. the MSI built by `bonafide-collector package` installs the real agent
#     as a service in a prefix of its own, which starts, enrolls and
#     delivers; a higher version upgrades it and msiexec /x removes it
#     (the collector's TestMSIServiceUnderWine).
#
# It uses scripts/wine-agent.sh's prefix ($WINEPREFIX, or build/wine/prefix)
# and stops the Wine processes it started.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=$root/build/wine
wa=$root/scripts/wine-agent.sh
gaps=$root/scripts/wine-known-gaps.txt
user_prefix=${WINEPREFIX:-}
export WINEPREFIX="${WINEPREFIX:-$build/prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
export GOOS=windows GOARCH=amd64 CGO_ENABLED=0
mod=$(go list -m)

bg= cbuild=
cleanup() {
	[ -z "$bg" ] || kill "$bg" 2>/dev/null
	[ -z "$cbuild" ] || kill "$cbuild" 2>/dev/null
	# Our own prefix: stop its wineserver and every program it still runs.
	[ -n "$user_prefix" ] || wineserver -k 2>/dev/null
}
trap cleanup EXIT

echo "== the agent under Wine ($WINEPREFIX)"
version=$("$wa" version) || { echo "FAIL: the Windows agent does not start under Wine"; exit 1; }
echo "bonafide-agent.exe version $version"

echo "== the agent's Windows test binaries"
tests=$build/tests
rm -rf "$tests" && mkdir -p "$tests"
# -o DIR/ writes one PKG.test.exe per package that has tests.
go test -c -o "$tests/" ./agent/... >/dev/null || { echo "FAIL: go test -c"; exit 1; }

# The collector's test binary and the programs it builds (for this machine)
# compile while the Windows tests run: those mostly wait on Wine.
ctest=$build/collector.test
host() { env -u GOOS -u GOARCH -u CGO_ENABLED "$@"; }
(host go test -c -o "$ctest" ./collector && host go build ./agent ./collector) >"$build/collector-build.log" 2>&1 &
cbuild=$!

total=0 passed=0 skipped=0 known=0 failed=0 broken=0
while read -r pkg dir; do
	rel=${pkg#"$mod"/}
	name=${pkg##*/}
	exe=$tests/$name.test.exe
	[ -f "$exe" ] || continue
	log=$tests/$name.log
	# BONAFIDE_REQUIRE_ALL asks for the Linux tools the Linux suite compares
	# with (edid-decode, utmpdump, last); a Windows process under Wine cannot
	# run them, so those comparisons skip here as they would on Windows.
	(cd "$dir" && env -u BONAFIDE_REQUIRE_ALL timeout 600 "$wa" --run "$exe" -test.v -test.count=1 -test.timeout=5m </dev/null >"$log" 2>&1)
	rc=$?
	# Counts top-level tests and judges failures against the known gaps:
	# prints "FAIL test" and its first output lines ("OUT …") per failure,
	# "GAP call: tests" per Win32 call missing in Wine, then
	# "COUNTS ran passed skipped known failed".
	summary=$(awk -v pkg="$rel" -v gaps="$gaps" '
		BEGIN {
			while ((getline l < gaps) > 0) {
				if (l !~ /#/ || l ~ /^[ \t]*#/) continue
				w = l; sub(/^[^#]*#[ \t]*/, "", w)
				sub(/[ \t]*#.*/, "", l); sub(/^[ \t]+/, "", l)
				if (l ~ /^output[ \t]/) { sub(/^output[ \t]+/, "", l); nre++; re[nre] = l; rewhy[nre] = w }
				else { split(l, f, /[ \t]+/); if (f[1] == pkg) named[f[2]] = w }
			}
		}
		/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; sub(/\/.*/, "", cur); next }
		/^--- PASS: / { ran++; pass++; if ($3 in named) print "NOTE " $3 " is listed as a known Wine gap but passed"; next }
		/^--- SKIP: / { ran++; skip++; next }
		/^--- FAIL: / { ran++; fail[$3] = 1; next }
		/^ +--- (PASS|FAIL|SKIP): / { next }
		/^    / && cur != "" {
			if (++lines[cur] <= 20) out[cur] = out[cur] "\nOUT " $0
			for (i = 1; i <= nre; i++) if ($0 ~ re[i]) { matched[cur]++; why[cur] = rewhy[i]; next }
		}
		END {
			for (t in fail) {
				w = ""
				if (t in named) w = named[t]
				else if (lines[t] > 0 && matched[t] == lines[t]) w = why[t]
				if (w == "") { failed++; print "FAIL " t out[t]; continue }
				known++; sub(/:.*/, "", w); bywhy[w] = bywhy[w] " " t
			}
			for (w in bywhy) print "GAP " w ":" bywhy[w]
			printf "COUNTS %d %d %d %d %d\n", ran, pass, skip, known, failed
		}' "$log")
	read -r _ r p s k f <<<"$(grep '^COUNTS' <<<"$summary" || echo COUNTS 0 0 0 0 1)"
	total=$((total + r)) passed=$((passed + p)) skipped=$((skipped + s)) known=$((known + k)) failed=$((failed + f))
	status=ok
	# A binary that failed without a failing test (crash, panic, timeout)
	# or whose failures are not all known gaps fails the run.
	if [ "$f" -gt 0 ] || { [ "$rc" -ne 0 ] && ! { [ "$k" -gt 0 ] && [ "$(tail -n 1 "$log")" = FAIL ]; }; }; then
		status=FAIL broken=$((broken + 1))
	fi
	printf '%-4s %-40s %3d ran: %3d passed, %2d skipped, %2d known Wine gaps, %d failed\n' "$status" "$rel" "$r" "$p" "$s" "$k" "$f"
	grep '^NOTE ' <<<"$summary" | sed 's/^NOTE /     note: /'
	grep '^GAP ' <<<"$summary" | sed 's/^GAP /     known Wine gap, /' 
	if [ "$status" = FAIL ]; then
		grep -E '^(FAIL|OUT) ' <<<"$summary" | sed 's/^FAIL /     FAILED: /; s/^OUT /     | /'
		echo "     (exit status $rc; the whole output is in ${log#"$root"/})"
		[ "$f" -gt 0 ] || tail -n 25 "$log" | sed 's/^/     | /'
	fi
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./agent/...)
echo "Windows tests under Wine: $total ran, $passed passed, $skipped skipped, $known known Wine gaps (scripts/wine-known-gaps.txt), $failed failed"

echo "== scan --json finds RustDesk.exe running under the same prefix"
rd=$build/_rustdesk
mkdir -p "$rd"
printf 'package main\n\nimport "time"\n\nfunc main() { time.Sleep(time.Hour) }\n' >"$rd/main.go"
found=
if go build -o "$rd/RustDesk.exe" "$rd/main.go"; then
	"$wa" --run "$rd/RustDesk.exe" </dev/null >/dev/null 2>&1 &
	bg=$!
	# The scan sees the process once Wine has started it.
	for _ in $(seq 30); do
		# The agent built by "$wa version" above, not rebuilt for each try.
		if "$wa" --run "$build/bonafide-agent.exe" scan --json >"$rd/scan.json" 2>"$rd/scan.err" &&
			grep -q '"toolId": *"rustdesk"' "$rd/scan.json"; then
			found=1
			break
		fi
		sleep 1
	done
	kill "$bg" 2>/dev/null
	wait "$bg" 2>/dev/null
	bg=
fi
if [ -n "$found" ]; then
	echo "ok   scan --json reports rustdesk ($(grep -o '"path": *"[^"]*RustDesk.exe"' "$rd/scan.json" | head -n 1))"
else
	echo "FAIL scan --json did not report rustdesk (build/wine/_rustdesk/scan.json, scan.err)"
	broken=$((broken + 1))
fi

echo "== run --once under Wine enrolls with a collector on loopback; the MSI installs the agent as a service"
clog=$build/collector-wine.log
wait "$cbuild"
built=$? cbuild=
if [ "$built" -eq 0 ]; then
	(cd collector && host env BONAFIDE_WINE_AGENT="$wa" "$ctest" -test.count=1 -test.v -test.timeout=30m \
		-test.run '^(TestWindowsAgentUnderWine|TestMSIServiceUnderWine)$') >"$clog" 2>&1
else
	cp "$build/collector-build.log" "$clog"
fi
for t in TestWindowsAgentUnderWine TestMSIServiceUnderWine; do
	if grep -q "^--- PASS: $t" "$clog"; then
		echo "ok   $t"
		# The test's own summary lines (t.Logf).
		awk -v t="$t" '/^(=== RUN|--- )/ { cur = $3 } cur == t && /^ +[a-z0-9_]+_test\.go:[0-9]+: / { sub(/^ +[a-z0-9_]+_test\.go:[0-9]+: /, ""); print "     " $0 }' "$clog"
	else
		echo "FAIL $t (collector; the whole output is in ${clog#"$root"/})"
		tail -n 25 "$clog" | sed 's/^/     | /'
		broken=$((broken + 1))
	fi
done

if [ "$broken" -gt 0 ]; then
	echo "FAIL: $broken check(s) failed under Wine"
	exit 1
fi
echo "PASS"
