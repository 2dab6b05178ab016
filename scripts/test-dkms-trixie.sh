#!/usr/bin/env bash
# test-dkms-trixie.sh - DKMS on Debian 13, inside the trixie root (scripts/trixie-root.sh):
# `scripts/dkms.sh install` for Debian 13's own kernel, then what apt does when a new
# kernel's headers arrive: trixie-backports' headers are installed again (apt-get install
# --reinstall, from the root's package cache), dpkg runs DKMS's header_postinst.d hook, and
# AUTOINSTALL must build the module for that kernel with nobody asking. The module DKMS built
# for the new kernel then runs the 2node smoke suite there. Prints NB-TEST lines and closes
# with "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/summary.sh
troot=build/trixie/root
log=build/dkms-trixie.log
pass() { echo "NB-TEST-PASS $1"; passed=$((passed + 1)); }
fail() { echo "NB-TEST-FAIL $*"; failed=$((failed + 1)); }

scripts/trixie-root.sh || { fail trixie-root see build/trixie/setup.log; summary_line; exit 1; }
first=$(scripts/kver.sh trixie) && second=$(scripts/kver.sh "${NB_DKMS_NEW_KERNEL:-trixie-bpo}") || exit 1
# The version the module is registered under, read from dkms.conf as dkms.sh does.
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)

mkdir -p "$troot/nb/src"
rsync -a --delete Kbuild dkms.conf module mm_core uapi scripts "$troot/nb/src/"
: >"$log"
if scripts/in-root.sh /nb/src/scripts/dkms.sh install "$first" >>"$log" 2>&1; then
	pass "dkms-install-$first"
else
	fail "dkms-install-$first see $log"
fi
# Only the first kernel has it now: the rebuild below must be DKMS's own doing.
scripts/in-root.sh dkms remove -m numabuddy -v "$ver" -k "$second" >>"$log" 2>&1 || true
rm -f "$troot/lib/modules/$second/updates/dkms/numabuddy.ko"*
if scripts/in-root.sh apt-get install -y -qq --reinstall --no-install-recommends \
	"linux-headers-$second" >>"$log" 2>&1; then
	pass "apt-reinstall-headers-$second"
else
	fail "apt-reinstall-headers-$second see $log"
fi
ko=$(find "$troot/lib/modules/$second/updates/dkms" -name 'numabuddy.ko*' 2>/dev/null | head -n 1)
if [ -n "$ko" ]; then
	pass "dkms-autoinstall-$second"
else
	fail "dkms-autoinstall-$second no numabuddy.ko* under /lib/modules/$second/updates/dkms (see $log)"
fi
scripts/in-root.sh dkms status -m numabuddy | tee -a "$log"

if [ -n "$ko" ]; then
	mkdir -p build/vm/dkms-trixie
	case "$ko" in
	*.xz) xz -dc "$ko" >build/vm/dkms-trixie/numabuddy.ko;;
	*.zst) zstd -dqc "$ko" >build/vm/dkms-trixie/numabuddy.ko;;
	*) cp "$ko" build/vm/dkms-trixie/numabuddy.ko;;
	esac
	counted "dkms-2node-$second" env KVER="$second" KO="$root/build/vm/dkms-trixie/numabuddy.ko" \
		TOPOLOGIES=2node NB_EXTRA_KERNELS= NB_SKIP_SELFTEST=1 NB_SKIP_BIG=1 NB_SKIP_FUZZ=1 \
		NB_SKIP_DKMS=1 NB_SKIP_BENCH=1 scripts/test-vm.sh
fi
summary_line
summary_ok
