#!/usr/bin/env bash
# test-vm.sh - the VM half of `make test`: the harness self-test, the suite on every topology,
# and the DKMS-built module. Needs `make module userspace` first (the Makefile does that).
# Prints every test line and closes with one summary line over all runs (scripts/summary.sh).
#
#   TOPOLOGIES="2node 4node cpuless"  which topologies to boot (set but empty: none)
#   NB_EXTRA_KERNELS="6.12 6.12-rt"    Debian kernel flavours that also get the 2node,
#                                      big, pool, in-place and fuzz runs (scripts/kver.sh
#                                      names them; trixie, trixie-bpo and trixie-bpo-rt
#                                      come from the trixie root, scripts/trixie-root.sh,
#                                      made here on first use)
#   NB_SKIP_{SELFTEST,BIG,POOL,FUZZ,DKMS,BENCH,EXEC}=1  skip those parts (quick local runs)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p build/vm
kver=${KVER:-$(scripts/kver.sh)} || exit 1
topologies=${TOPOLOGIES-2node 4node cpuless}
ko=${KO:-$root/build/module/$kver/numabuddy.ko}
vmbin=$root/build/vm-bin
. scripts/summary.sh

make -s -C tests/vmsuite BUILD="$vmbin" || exit 1

# payload KO [SUITE]: the module, the in-VM test programs, the static CLI and library test.
payload() {
	local args=(--ko "$1" --suite "${2:-tests/vmsuite/smoke.sh}" --kmod brd --kmod null_blk --kmod vgem --kmod vivid)
	for b in "$vmbin"/* build/userspace/nb_vm_test; do [ -x "$b" ] && args+=(--bin "$b"); done
	[ -x build/userspace/numabuddy-static ] &&
		args+=(--file build/userspace/numabuddy-static:/bin/numabuddy)
	echo "${args[@]}"
}

# kernel_args KVER: run.sh's --kernel/--moddir for a kernel that is not installed on this
# machine but in the trixie root (scripts/trixie-root.sh); nothing for one in /boot.
troot=$root/build/trixie/root
kernel_args() {
	[ -e "/boot/vmlinuz-$1" ] || [ ! -e "$troot/boot/vmlinuz-$1" ] ||
		echo "--kernel $troot/boot/vmlinuz-$1 --moddir $troot/lib/modules/$1"
}

# run_vm LABEL KVER RUN.SH-ARGS...
run_vm() {
	local label=$1 k=$2
	shift 2
	# shellcheck disable=SC2046
	counted "$label" tests/vm/run.sh --kver "$k" $(kernel_args "$k") "$@"
}

if [ -z "${NB_SKIP_SELFTEST:-}" ]; then
	counted harness-selftest tests/vm/selftest.sh
fi

for t in $topologies; do
	# shellcheck disable=SC2046
	run_vm "$t" "$kver" --topology "$t" --log "build/vm/$t-$kver.log" $(payload "$ko")
done

# The 1 GiB + 6 MiB + 12 KiB block mapped as 1G/2M/4K entries needs a node with a pool that
# holds an aligned GiB: node 0 of `big`. init_on_alloc=0 only makes reserving that pool
# quicker under TCG (numabuddy zeroes what it hands out either way).
# run_big LABEL KVER KO: that suite, with the 1 GiB cases of nb_mapper and nb_kpaths.
run_big() {
	# shellcheck disable=SC2046
	run_vm "$1" "$2" --topology big --timeout 400 \
		--log "build/vm/big-$2.log" \
		--append "nb_pool_mb=2200 nb_nodes_mask=1 nb_mapper_args=--mixed init_on_alloc=0" \
		$(payload "$3")
}
[ -n "${NB_SKIP_BIG:-}" ] || run_big big-1g "$kver" "$ko"
# MIGRATE of 1 GiB frames that stay mapped (PUD and PMD entries): an aligned GiB per pool.
run_inplace_gib() {
	# shellcheck disable=SC2046
	run_vm "$1" "$2" --topology big2 --timeout 600 --log "build/vm/big2-$2.log" \
		--append "nb_pool_mb=2200 init_on_alloc=0" $(payload "$3" tests/vmsuite/inplace.sh)
}
[ -n "${NB_SKIP_BIG:-}" ] || run_inplace_gib inplace-1g "$kver" "$ko"

# Pools resized at run time under load (2node: migrations between the nodes), and GiB runs
# taken on purpose at load (big) before the same resize cases.
# run_pool LABEL KVER KO: both boots of tests/vmsuite/pool.sh.
run_pool() {
	# shellcheck disable=SC2046
	run_vm "$1-2node" "$2" --topology 2node --log "build/vm/pool-2node-$2.log" \
		$(payload "$3" tests/vmsuite/pool.sh)
	# shellcheck disable=SC2046
	[ -n "${NB_SKIP_BIG:-}" ] || run_vm "$1-big" "$2" --topology big --timeout 400 \
		--log "build/vm/pool-big-$2.log" \
		--append "nb_pool_mb=2200 nb_nodes_mask=1 nb_aligned_runs=2 init_on_alloc=0" \
		$(payload "$3" tests/vmsuite/pool.sh)
}
[ -n "${NB_SKIP_POOL:-}" ] || run_pool pool "$kver" "$ko"

# numabuddy exec: unmodified third-party programs (Debian's stress-ng, numactl for the paired
# bandwidth rows) and a C++ program on pool memory, placement read from the page tables.
# run_exec LABEL TOPOLOGY [APPEND]: that suite (tests/vmsuite/exec.sh).
run_exec() {
	local bin b args=(--ko "$ko" --suite tests/vmsuite/exec.sh
		--file build/userspace/numabuddy-static:/bin/numabuddy
		--file build/userspace/libnumabuddy-preload.so:/lib/libnumabuddy-preload.so
		--file build/vm-exec/nb_exec_walk.so:/lib/nb/nb_exec_walk.so
		--bin build/vm-exec/nb_exec_cxx --bin build/userspace/nb_preload_target)
	for b in stress-ng numactl; do
		bin=$(command -v "$b") || { echo "NB-TEST-FAIL $1:$b not installed (scripts/deps.sh)"; failed=$((failed + 1)); return; }
		args+=(--bin "$bin")
	done
	run_vm "$1" "$kver" --topology "$2" --timeout 420 --log "build/vm/$1-$kver.log" \
		--append "${3:-}" "${args[@]}"
}
if [ -z "${NB_SKIP_EXEC:-}" ]; then
	if make -s -C userspace BUILD="$root/build/userspace" preload "$root/build/userspace/nb_preload_target" &&
		make -s -C tests/vmsuite/exec BUILD="$root/build/vm-exec"; then
		# One paired stream round keeps it exercised; make bench's own boot runs five.
		run_exec exec-2node 2node nb_exec_stream_rounds=1
	else
		echo "NB-TEST-FAIL exec-2node:build"; failed=$((failed + 1))
	fi
fi

# Reliability: a bounded fuzz run (the pools must come back exactly, rmmod must succeed)
# and the hostile cases (rmmod while in use, signals mid-allocation, memory pressure...).
if [ -z "${NB_SKIP_FUZZ:-}" ]; then
	# shellcheck disable=SC2046
	run_vm fuzz-4node "$kver" --topology 4node --timeout 420 --log "build/vm/fuzz-4node-$kver.log" \
		--append "nb_fuzz_ops=20000 nb_fuzz_seconds=100 nb_fuzz_max_block=4194304" \
		$(payload "$ko" tests/vmsuite/fuzz.sh)
	# shellcheck disable=SC2046
	run_vm hostile-4node "$kver" --topology 4node --timeout 900 --log "build/vm/hostile-4node-$kver.log" \
		$(payload "$ko" tests/vmsuite/hostile.sh)
fi

# Portability smoke: the same suite on the other supported kernels (make test-kernels runs
# every topology on each).
for flavour in ${NB_EXTRA_KERNELS-6.12 6.12-rt}; do
	case "$flavour" in
	trixie*) scripts/trixie-root.sh || { echo "NB-TEST-FAIL trixie-root see build/trixie/setup.log"; failed=$((failed + 1)); continue; };;
	esac
	xkver=$(scripts/kver.sh "$flavour") || { echo "NB-TEST-FAIL kernel-$flavour not installed"; failed=$((failed + 1)); continue; }
	if make -s --no-print-directory module KVER="$xkver" >"build/module-$xkver.log" 2>&1; then
		if grep -q 'warning:' "build/module-$xkver.log"; then
			grep 'warning:' "build/module-$xkver.log" | head -n 5
			echo "NB-TEST-FAIL build-warnings-$flavour see build/module-$xkver.log"
			failed=$((failed + 1))
		fi
		# shellcheck disable=SC2046
		run_vm "2node-$flavour" "$xkver" --topology 2node \
			--log "build/vm/2node-$xkver.log" $(payload "build/module/$xkver/numabuddy.ko")
		# 1 GiB mappings meet each kernel's own mprotect/mremap/split code.
		[ -n "${NB_SKIP_BIG:-}" ] || run_big "big-1g-$flavour" "$xkver" "build/module/$xkver/numabuddy.ko"
		[ -n "${NB_SKIP_POOL:-}" ] || run_pool "pool-$flavour" "$xkver" "build/module/$xkver/numabuddy.ko"
		[ -n "${NB_SKIP_BIG:-}" ] ||
			run_inplace_gib "inplace-1g-$flavour" "$xkver" "build/module/$xkver/numabuddy.ko"
		# The fuzzer is where compaction's in-place moves meet vmsplice, O_DIRECT and
		# move_pages (op_kpath beside op_compact): each kernel's own paths, not only 6.1's.
		# shellcheck disable=SC2046
		[ -n "${NB_SKIP_FUZZ:-}" ] || run_vm "fuzz-4node-$flavour" "$xkver" --topology 4node \
			--timeout 420 --log "build/vm/fuzz-4node-$xkver.log" \
			--append "nb_fuzz_ops=20000 nb_fuzz_seconds=100 nb_fuzz_max_block=4194304" \
			$(payload "build/module/$xkver/numabuddy.ko" tests/vmsuite/fuzz.sh)
	else
		tail -n 20 "build/module-$xkver.log"
		echo "NB-TEST-FAIL build-$flavour see build/module-$xkver.log"
		failed=$((failed + 1))
	fi
done

# dkms_sh ARGS: scripts/dkms.sh where KVER's headers are: here, or inside the trixie root
# (the sources copied to its /nb/src first). Paths it prints are the machine's.
dkms_sh() {
	if [ -e "/lib/modules/$kver/build/Makefile" ] || [ ! -e "$troot/usr/src/linux-headers-$kver" ]; then
		scripts/dkms.sh "$@"
		return
	fi
	mkdir -p "$troot/nb/src"
	rsync -a --delete Kbuild dkms.conf module mm_core uapi scripts "$troot/nb/src/" &&
		scripts/in-root.sh /nb/src/scripts/dkms.sh "$@" |
		{ [ "$1" = path ] && sed "s|^/|$troot/|" || cat; }
}
if [ -z "${NB_SKIP_DKMS:-}" ]; then
	echo "=== dkms build"
	if dkms_sh install "$kver" >build/dkms.log 2>&1; then
		dko=$(dkms_sh path "$kver")
		mkdir -p build/vm/dkms
		case "$dko" in
		*.xz) xz -dc "$dko" >build/vm/dkms/numabuddy.ko;;
		*.zst) zstd -dqc "$dko" >build/vm/dkms/numabuddy.ko;;
		*) cp "$dko" build/vm/dkms/numabuddy.ko;;
		esac
		echo "NB-TEST-PASS dkms-build ($dko)"
		passed=$((passed + 1))
		# shellcheck disable=SC2046
		run_vm dkms-2node "$kver" --topology 2node --log "build/vm/dkms-2node-$kver.log" \
			$(payload "$root/build/vm/dkms/numabuddy.ko")
	else
		tail -n 30 build/dkms.log
		echo "NB-TEST-FAIL dkms-build see build/dkms.log"
		failed=$((failed + 1))
	fi
fi

# A few iterations of every benchmark, so the suite never rots (make bench is the real run).
if [ -z "${NB_SKIP_BENCH:-}" ]; then
	counted bench-smoke scripts/bench-vm.sh --smoke
fi

summary_line
summary_ok
