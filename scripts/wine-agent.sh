#!/usr/bin/env bash
# scripts/wine-agent.sh ARGS…  runs the Windows agent under Wine:
#
#   scripts/wine-agent.sh scan --json
#
# It builds build/wine/bonafide-agent.exe (windows/amd64, no cgo) and runs it
# with ARGS in a Wine prefix: $WINEPREFIX when set, otherwise
# build/wine/prefix, created on first use (wineboot, no display needed).
#
#   scripts/wine-agent.sh --run PROGRAM.exe ARGS…
#
# runs another Windows program in the same prepared prefix instead (make
# test-windows runs the agent's test binaries this way), and
#
#   scripts/wine-agent.sh --prepare
#
# only prepares the prefix (the MSI test installs the agent into one of its
# own this way).
#
# Go's runtime loads ProcessPrng from bcryptprimitives.dll, which Wine only
# has from 9.0 on (Debian 12's Wine 8 has no bcryptprimitives.dll at all).
# When the prefix lacks it, a stand-in built from the few lines of assembly
# below with binutils-mingw-w64 goes into the prefix's system32.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/wine
export WINEPREFIX="${WINEPREFIX:-$build/prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
# No prompts to download Mono or Gecko while the prefix is created.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"

need() { command -v "$1" >/dev/null || { echo "wine-agent.sh: $1 not found: install the Debian package $2" >&2; exit 127; }; }
need wine "wine and wine64"
need wineboot "wine and wine64"
mkdir -p "$build"

# One caller at a time builds and prepares; the programs then run side by
# side. Wine never inherits the lock (wineserver outlives this script).
exec 9>"$build/.lock"
flock 9

if [ ! -f "$WINEPREFIX/system.reg" ]; then
	wineboot -i >/dev/null 2>&1 9>&- || { echo "wine-agent.sh: wineboot -i failed for $WINEPREFIX" >&2; exit 1; }
	# Let the new prefix settle (services, registry flushed) before using it.
	wineserver -w 9>&-
fi

sys32=$WINEPREFIX/drive_c/windows/system32
# A Wine that has ProcessPrng puts its bcryptprimitives.dll, export names
# included, into system32 when it creates or updates the prefix.
if ! grep -qa ProcessPrng "$sys32/bcryptprimitives.dll" 2>/dev/null; then
	need x86_64-w64-mingw32-as binutils-mingw-w64-x86-64
	shim=$build/shim
	mkdir -p "$shim"
	# BOOL ProcessPrng(PBYTE data, SIZE_T len) fills data with len random
	# bytes and always returns TRUE: it calls advapi32's RtlGenRandom
	# (exported as SystemFunction036(PVOID, ULONG); Go asks for far less
	# than 4 GiB at a time). Microsoft x64 calling convention: data in rcx
	# and len in rdx are passed on unchanged; 40 bytes keep the callee's
	# 32-byte shadow space and re-align the stack to 16.
	cat >"$shim/bcryptprimitives.s" <<-'EOF'
		.text
		.globl ProcessPrng
	ProcessPrng:
		subq $40, %rsp
		call *__imp_SystemFunction036(%rip)
		movl $1, %eax
		addq $40, %rsp
		ret
		.globl DllMain
	DllMain:
		movl $1, %eax
		ret
	EOF
	printf 'LIBRARY bcryptprimitives.dll\nEXPORTS\nProcessPrng\n' >"$shim/bcryptprimitives.def"
	printf 'LIBRARY advapi32.dll\nEXPORTS\nSystemFunction036\n' >"$shim/advapi32.def"
	x86_64-w64-mingw32-as -o "$shim/bcryptprimitives.o" "$shim/bcryptprimitives.s"
	x86_64-w64-mingw32-dlltool -d "$shim/advapi32.def" -l "$shim/libadvapi32.a"
	x86_64-w64-mingw32-ld -shared -s --no-insert-timestamp --entry DllMain -o "$shim/bcryptprimitives.dll" \
		"$shim/bcryptprimitives.def" "$shim/bcryptprimitives.o" "$shim/libadvapi32.a"
	cp "$shim/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
fi

if [ "${1:-}" = --prepare ]; then
	exit 0
fi
if [ "${1:-}" = --run ]; then
	shift
	[ $# -gt 0 ] || { echo "usage: wine-agent.sh --run PROGRAM.exe [ARGS…]" >&2; exit 2; }
	flock -u 9
	exec wine "$@" 9>&-
fi

(cd "$root" && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -o "$build/bonafide-agent.exe" ./agent)
flock -u 9
exec wine "$build/bonafide-agent.exe" "$@" 9>&-
