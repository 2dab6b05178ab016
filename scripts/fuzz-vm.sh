#!/usr/bin/env bash
# fuzz-vm.sh - the in-VM fuzz run (`make fuzz`): builds the module and the in-VM programs, boots
# the 4node VM with tests/vmsuite/fuzz.sh, prints every test line and closes with one
# "N passed, N failed" line. Exit status 0 only if everything passed.
#
#   scripts/fuzz-vm.sh [--short] [--seed X] [--ops N] [--seconds S] [--timeout S] [--no-build]
#
#   (default)  the long run: 10^6 operations (time limit 3 h of VM time, VM timeout 4 h)
#   --short    the CI-sized run: 20000 operations or 100 s, VM timeout 420 s
#   NB_FUZZ_APPEND  extra kernel command line (e.g. "nb_fuzz_procs=4 nb_fuzz_threads=4")
#
# The hosted half (libFuzzer over mm_core) is scripts/test-hosted.sh's business.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/summary.sh
kver=${KVER:-$(scripts/kver.sh)}
ko=${KO:-$root/build/module/$kver/numabuddy.ko}
vmbin=$root/build/vm-bin
ops=1000000 seconds=10800 timeout=14400 seed='' build=1 label=long
# Small blocks in the long run: the point is many operations, and a 1 MiB block costs ~250
# faults under TCG when the fuzzer fills it.
max_block=1048576
while [ $# -gt 0 ]; do
	case "$1" in
	--short) ops=20000 seconds=100 timeout=420 label=short; shift;;
	--seed) seed=$2; shift 2;;
	--ops) ops=$2; shift 2;;
	--seconds) seconds=$2; shift 2;;
	--timeout) timeout=$2; shift 2;;
	--no-build) build=0; shift;;
	*) echo "usage: $0 [--short] [--seed X] [--ops N] [--seconds S] [--timeout S] [--no-build]" >&2
	   exit 2;;
	esac
done
[ -n "$seed" ] || seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')

if [ "$build" -eq 1 ]; then
	make -s module userspace || exit 1
	make -s -C tests/vmsuite BUILD="$vmbin" || exit 1
fi
mkdir -p build/vm
log=build/vm/fuzz-$label-4node-$kver.log
append="nb_fuzz_ops=$ops nb_fuzz_seconds=$seconds nb_fuzz_seed=$seed nb_fuzz_max_block=$max_block"
append+="${NB_FUZZ_APPEND:+ $NB_FUZZ_APPEND}"
echo "fuzz: $label run, seed $seed, $ops operations or $seconds s, log $log"
start=$(date +%s)
out=$(tests/vm/run.sh --kver "$kver" --topology 4node --timeout "$timeout" --log "$log" \
	--ko "$ko" --bin "$vmbin/nb_fuzz" --kmod brd --suite tests/vmsuite/fuzz.sh --append "$append" 2>&1)
rc=$?
# Everything but run.sh's closing count, then the fuzzer's own summary, then the count last.
echo "$out" | grep -vE "$NB_SUMMARY_RE"
echo "fuzz: wall $(($(date +%s) - start)) s; $(grep -a 'nb_fuzz: seed=.*elapsed' "$log" | tr -d '\r')"
summary=$(echo "$out" | grep -E "$NB_SUMMARY_RE" | tail -n 1)
echo "${summary:-0 passed, 1 failed}"
[ -n "$summary" ] || rc=1
exit "$rc"
