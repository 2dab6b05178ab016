#!/usr/bin/env bash
# core-instructions.sh CORE_BENCH OUT [OPS] - instructions per operation of the hosted mm_core,
# counted by valgrind's callgrind: deterministic, unlike wall time on a shared host (and
# `perf stat -e instructions` needs hardware counters this machine's VMs do not expose).
#
# For every case `CORE_BENCH --list-counted` names, runs `CORE_BENCH --count=CASE --ops=OPS`
# under callgrind collecting only inside nb_bench_counted_loop() (setup, warm-up and teardown
# are not counted), with its cache simulation (this host's cache sizes), and writes one line
# per case to OUT:
#   <case> <instructions> <L1 data misses> <last-level data misses> <operations>
# the first three per operation. An operation is one pair (alloc + free); the loop's own
# call adds ~5 instructions to it. Simulated misses are deterministic too: they show what a
# bigger pool costs beyond instructions (descriptors spread over more memory).
set -euo pipefail
bin=$1 out=$2 ops=${3:-100000}
command -v valgrind >/dev/null || { echo "core-instructions: valgrind not installed (scripts/deps.sh bench)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$out"
for c in $("$bin" --list-counted); do
	cg=$tmp/cg.out
	if ! valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file="$cg" \
		--toggle-collect=nb_bench_counted_loop "$bin" --count="$c" --ops="$ops" >"$tmp/log" 2>&1; then
		cat "$tmp/log" >&2
		echo "core-instructions: $c failed" >&2
		exit 1
	fi
	# events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw (absent trailing ones are 0)
	line=$(awk -v c="$c" -v n="$ops" '$1 == "totals:" {
		printf "%s %.1f %.3f %.3f %d\n", c, $2 / n, ($6 + $7) / n, ($9 + $10) / n, n; found = 1 }
		END { exit !found }' "$cg") || { echo "core-instructions: $c: no totals in callgrind output" >&2; exit 1; }
	echo "$line" >>"$out"
done
cat "$out"
