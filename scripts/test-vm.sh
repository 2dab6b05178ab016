#!/usr/bin/env bash
# test-vm.sh - the VM half of `make test`: the harness self-test, the suite on every topology,
# and the DKMS-built module. Needs `make module userspace` first (the Makefile does that).
# Prints every test line and closes with one "N passed, N failed" line over all runs.
#
#   TOPOLOGIES="2node 4node cpuless"  which topologies to boot
#   NB_EXTRA_KERNELS="6.12 6.12-rt"    Debian kernel flavours that also get a 2node smoke run
#   NB_SKIP_{SELFTEST,BIG,FUZZ,DKMS,BENCH}=1  skip those parts (quick local runs)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p build/vm
kver=${KVER:-$(scripts/kver.sh)} || exit 1
topologies=${TOPOLOGIES:-2node 4node cpuless}
ko=${KO:-$root/build/module/$kver/numabuddy.ko}
vmbin=$root/build/vm-bin
passed=0 failed=0

make -s -C tests/vmsuite BUILD="$vmbin" || exit 1

# counted LABEL CMD... : run a command that ends with "N passed, N failed"; add to the totals.
counted() {
	local label=$1 out
	shift
	echo "=== $label"
	out=$("$@" 2>&1)
	echo "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed$'
	local line p f
	line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
	if [ -z "$line" ]; then
		echo "NB-TEST-FAIL $label:harness no summary line"
		failed=$((failed + 1))
		return
	fi
	p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
	echo "--- $label: $line"
	passed=$((passed + p)); failed=$((failed + f))
}

# payload KO [SUITE]: the module, the in-VM test programs, the static CLI and library test.
payload() {
	local args=(--ko "$1" --suite "${2:-tests/vmsuite/smoke.sh}" --kmod brd)
	for b in "$vmbin"/* build/userspace/nb_vm_test; do [ -x "$b" ] && args+=(--bin "$b"); done
	[ -x build/userspace/numabuddy-static ] &&
		args+=(--file build/userspace/numabuddy-static:/bin/numabuddy)
	echo "${args[@]}"
}

run_vm() { local label=$1; shift; counted "$label" tests/vm/run.sh --kver "$kver" "$@"; }

if [ -z "${NB_SKIP_SELFTEST:-}" ]; then
	counted harness-selftest tests/vm/selftest.sh
fi

for t in $topologies; do
	# shellcheck disable=SC2046
	run_vm "$t" --topology "$t" --log "build/vm/$t-$kver.log" $(payload "$ko")
done

# The 1 GiB + 6 MiB + 12 KiB block mapped as 1G/2M/4K entries needs a node with a pool that
# holds an aligned GiB: node 0 of `big`. init_on_alloc=0 only makes reserving that pool
# quicker under TCG (numabuddy zeroes what it hands out either way).
# run_big LABEL KVER KO: that suite, with the 1 GiB cases of nb_mapper and nb_kpaths.
run_big() {
	# shellcheck disable=SC2046
	counted "$1" tests/vm/run.sh --kver "$2" --topology big --timeout 400 \
		--log "build/vm/big-$2.log" \
		--append "nb_pool_mb=2200 nb_nodes_mask=1 nb_mapper_args=--mixed init_on_alloc=0" \
		$(payload "$3")
}
[ -n "${NB_SKIP_BIG:-}" ] || run_big big-1g "$kver" "$ko"

# Reliability: a bounded fuzz run (the pools must come back exactly, rmmod must succeed)
# and the hostile cases (rmmod while in use, signals mid-allocation, memory pressure...).
if [ -z "${NB_SKIP_FUZZ:-}" ]; then
	# shellcheck disable=SC2046
	run_vm fuzz-4node --topology 4node --timeout 420 --log "build/vm/fuzz-4node-$kver.log" \
		--append "nb_fuzz_ops=20000 nb_fuzz_seconds=100 nb_fuzz_max_block=4194304" \
		$(payload "$ko" tests/vmsuite/fuzz.sh)
	# shellcheck disable=SC2046
	run_vm hostile-4node --topology 4node --timeout 900 --log "build/vm/hostile-4node-$kver.log" \
		$(payload "$ko" tests/vmsuite/hostile.sh)
fi

# Portability smoke: the same suite on the other supported kernels (make test-kernels runs
# every topology on each).
for flavour in ${NB_EXTRA_KERNELS-6.12 6.12-rt}; do
	xkver=$(scripts/kver.sh "$flavour") || { echo "NB-TEST-FAIL kernel-$flavour not installed"; failed=$((failed + 1)); continue; }
	if make -s --no-print-directory module KVER="$xkver" >"build/module-$xkver.log" 2>&1; then
		# shellcheck disable=SC2046
		run_vm "2node-$flavour" --kver "$xkver" --topology 2node \
			--log "build/vm/2node-$xkver.log" $(payload "build/module/$xkver/numabuddy.ko")
		# 1 GiB mappings meet each kernel's own mprotect/mremap/split code.
		[ -n "${NB_SKIP_BIG:-}" ] || run_big "big-1g-$flavour" "$xkver" "build/module/$xkver/numabuddy.ko"
	else
		tail -n 20 "build/module-$xkver.log"
		echo "NB-TEST-FAIL build-$flavour see build/module-$xkver.log"
		failed=$((failed + 1))
	fi
done

if [ -z "${NB_SKIP_DKMS:-}" ]; then
	echo "=== dkms build"
	if scripts/dkms.sh install "$kver" >build/dkms.log 2>&1; then
		dko=$(scripts/dkms.sh path "$kver")
		mkdir -p build/vm/dkms
		case "$dko" in
		*.xz) xz -dc "$dko" >build/vm/dkms/numabuddy.ko;;
		*.zst) zstd -dqc "$dko" >build/vm/dkms/numabuddy.ko;;
		*) cp "$dko" build/vm/dkms/numabuddy.ko;;
		esac
		echo "NB-TEST-PASS dkms-build ($dko)"
		passed=$((passed + 1))
		# shellcheck disable=SC2046
		run_vm dkms-2node --topology 2node --log "build/vm/dkms-2node-$kver.log" \
			$(payload "$root/build/vm/dkms/numabuddy.ko")
	else
		tail -n 30 build/dkms.log
		echo "NB-TEST-FAIL dkms-build see build/dkms.log"
		failed=$((failed + 1))
	fi
fi

# A few iterations of every benchmark, so the suite never rots (make bench is the real run).
if [ -z "${NB_SKIP_BENCH:-}" ]; then
	counted bench-smoke scripts/bench.sh --smoke
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
