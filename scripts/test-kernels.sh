#!/usr/bin/env bash
# test-kernels.sh - the whole VM suite (every topology, DKMS build) on every supported kernel:
# Debian 12's default (6.1), 6.12 LTS and 6.12 PREEMPT_RT, and from the trixie root
# (scripts/trixie-root.sh, made on first use) Debian 13's 6.12 and trixie-backports' newest
# kernel and its PREEMPT_RT flavour. `make test` runs a 2node smoke on some; this is the full
# matrix (FLAVOURS="6.12 trixie-bpo" for a few; scripts/kver.sh names them). Closes with one
# "N passed, N failed" line.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p build
. scripts/summary.sh
for flavour in ${FLAVOURS:-default 6.12 6.12-rt trixie trixie-bpo trixie-bpo-rt}; do
	[ "$flavour" = default ] && arg= || arg=$flavour
	case "$flavour" in trixie*) scripts/trixie-root.sh || { echo "NB-TEST-FAIL trixie-root see build/trixie/setup.log"; failed=$((failed + 1)); continue; };; esac
	kver=$(scripts/kver.sh $arg) || { echo "NB-TEST-FAIL kernel-$flavour not installed"; failed=$((failed + 1)); continue; }
	echo "##### $flavour: $kver"
	if ! make -s --no-print-directory module KVER="$kver" >"build/module-$kver.log" 2>&1; then
		tail -n 20 "build/module-$kver.log"
		echo "NB-TEST-FAIL build-$flavour see build/module-$kver.log"
		failed=$((failed + 1))
		continue
	fi
	# The module builds with no warning on every kernel.
	if grep -q 'warning:' "build/module-$kver.log"; then
		grep 'warning:' "build/module-$kver.log" | head -n 5
		echo "NB-TEST-FAIL build-warnings-$flavour see build/module-$kver.log"
		failed=$((failed + 1))
	fi
	counted "$flavour" env KVER="$kver" NB_EXTRA_KERNELS= NB_SKIP_SELFTEST=1 NB_SKIP_BENCH=1 \
		scripts/test-vm.sh
done
summary_line
summary_ok
