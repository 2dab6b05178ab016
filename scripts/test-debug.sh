#!/usr/bin/env bash
# test-debug.sh - `make test-debug`: the VM suites on the debug kernel (KASAN, lockdep,
# DEBUG_VM, DEBUG_PAGEALLOC, KFENCE, fault injection: scripts/debug-kernel.sh builds it once
# per machine). A KASAN, lockdep, BUG, WARNING, bad pud/pmd or Bad page state line fails a run
# (tests/vm/bad-patterns.txt). Closes with one "N passed, N failed" line over all runs.
#
#   NB_DEBUG_RUNS="2node 4node hostile fuzz failinject"   which runs (default: all)
#   NB_DEBUG_TIMEOUT_SCALE=N   multiply every VM timeout (default 1)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p build/vm

env=$(scripts/debug-kernel.sh build) || { echo "NB-TEST-FAIL debug-kernel:build"; echo "0 passed, 1 failed"; exit 1; }
eval "$env" # KVER, KDIR, KIMAGE
echo "test-debug: kernel $KVER ($KIMAGE)"
# numabuddy.ko for that tree, with debug info so a report's module frames decode to lines
# (scripts/decode_stacktrace.sh in the kernel source, or addr2line on the .ko).
if ! make -s --no-print-directory module KVER="$KVER" KDIR="$KDIR" KCFLAGS=-g \
	>"build/module-$KVER.log" 2>&1; then
	tail -n 30 "build/module-$KVER.log"
	echo "NB-TEST-FAIL debug-module:build see build/module-$KVER.log"
	echo "0 passed, 1 failed"
	exit 1
fi
ko=$root/build/module/$KVER/numabuddy.ko
vmbin=$root/build/vm-bin
make -s -C tests/vmsuite BUILD="$vmbin" || exit 1
make -s --no-print-directory userspace >/dev/null || exit 1

scale=${NB_DEBUG_TIMEOUT_SCALE:-1}
allow=()
. scripts/summary.sh
# The checks that are built in but off by default, on: poisoned, unmapped free pages
# (use-after-free of a page faults at once) and the allocating stack of every page, which a
# "Bad page state" report then prints.
debug_cmdline="debug_pagealloc=on page_owner=on"


payload() {
	local args=(--ko "$ko" --suite "$1")
	for b in "$vmbin"/* build/userspace/nb_vm_test; do [ -x "$b" ] && args+=(--bin "$b"); done
	[ -x build/userspace/numabuddy-static ] &&
		args+=(--file build/userspace/numabuddy-static:/bin/numabuddy)
	echo "${args[@]}"
}

# run_vm LABEL TIMEOUT APPEND TOPOLOGY SUITE
run_vm() {
	local label=$1 timeout=$(($2 * scale)) append=$3 topo=$4 suite=$5 a allows=()
	for a in "${allow[@]}"; do allows+=(--allow "$a"); done
	# shellcheck disable=SC2046
	# --bzimage: QEMU's PVH entry into this KASAN vmlinux dies before any output. The kernel
	# has no modules, so no RAM disk and no vgem: the O_DIRECT and dma-buf import cases
	# cannot run here (they do on every Debian kernel), and say so.
	counted "debug-$label" tests/vm/run.sh --kver "$KVER" --kernel "$KIMAGE" --bzimage \
		--allow-skip '^(ramdisk|odirect-|dmabuf-vgem-|dmabuf-vivid-)' --topology "$topo" \
		--timeout "$timeout" --log "build/vm/debug-$label-$KVER.log" \
		--append "$debug_cmdline${append:+ $append}" "${allows[@]}" $(payload "$suite")
}

for r in ${NB_DEBUG_RUNS:-2node 4node hostile fuzz failinject}; do
	case "$r" in
	2node | 4node) run_vm "$r" 900 "" "$r" tests/vmsuite/smoke.sh;;
	# KASAN's shadow leaves node 0 about 250 of its 1024 MiB, so the suite's own sizing
	# (free memory minus the module's 1/8 reserve and 64 MiB) gives 3-20 MiB; 24 fits the
	# module's guard and the cases' 8 MiB allocations.
	hostile) run_vm hostile-4node 2400 "nb_hostile_pool_mb=24" 4node tests/vmsuite/hostile.sh;;
	# A short fuzz run: fewer operations than CI's 20000 on production kernels (KASAN and
	# lockdep under TCG run the same code several times slower).
	fuzz) run_vm fuzz-4node 1200 "nb_fuzz_ops=5000 nb_fuzz_seconds=200 nb_fuzz_max_block=1048576" \
		4node tests/vmsuite/fuzz.sh;;
	# warn_alloc's "Call Trace:" for failures injected on purpose (failinject.sh says why).
	failinject) allow=('^\[ *[0-9.]+\] Call Trace:$')
		run_vm failinject-2node 1200 "" 2node tests/vmsuite/failinject.sh; allow=();;
	*) echo "NB-TEST-FAIL debug:$r unknown run"; failed=$((failed + 1));;
	esac
done

summary_line
summary_ok
