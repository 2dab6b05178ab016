#!/usr/bin/env bash
# bench-vm.sh - `make bench`: numabuddy against the kernel's page allocator, side by side in
# QEMU/TCG VMs, then a report. Everything lands in build/bench/:
#   *.json       Google Benchmark output, one file per program and boot
#   report.md    one row per case: numabuddy, kernel, ratio
#   latency.png  latency vs size, one line per allocator
#   exec-stream.txt  stress-ng --stream under numabuddy exec / numactl, paired rounds
#   vm-*.log     serial logs
#
#   scripts/bench-vm.sh            the full run (~15-25 minutes on a 2-core host)
#   scripts/bench-vm.sh --smoke    a few iterations of everything, for CI (a few minutes)
#
# Two boots of the 4node topology: the main one (Debian's defaults, init_on_alloc=1) runs
# every program; a second one with init_on_alloc=0 repeats the in-kernel and user benches
# (not contiguity), so that alloc_pages, THP faults and move_pages targets are also measured
# without the extra zeroing init_on_alloc adds (like for like with numabuddy). Its JSON
# files end in -noinit. Every numabuddy-vs-kernel ratio is paired inside one process
# (userspace/bench/paired.h): median of per-pair ratios, 95% bootstrap interval, verdict.
# Ends with "N passed, N failed" like the other harness scripts.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
smoke=0
case "${1:-}" in
--smoke) smoke=1;;
"") ;;
*) echo "usage: $0 [--smoke]" >&2; exit 2;;
esac
kver=${KVER:-$(scripts/kver.sh)}
ko=${KO:-$root/build/module/$kver/numabuddy.ko}
out=$root/build/bench
. scripts/summary.sh
t_start=$(date +%s)

pass() { echo "NB-TEST-PASS $1"; passed=$((passed + 1)); }
fail() { echo "NB-TEST-FAIL $1 ${2:-failed}"; failed=$((failed + 1)); }
finish() {
	echo "bench: $(($(date +%s) - t_start)) s wall"
	summary_line
	summary_ok
	exit
}

# counted LABEL CMD...: as summary.sh's, but the bench keeps each run's whole output in
# $out/LABEL.out (bench-report.py reads it) and shows only the test lines.
counted() {
	local label=$1 line
	shift
	echo "=== $label"
	"$@" 2>&1 | tee "$out/$label.out" | grep -E 'NB-TEST-FAIL|^(PASS|FAIL|SKIP) |passed,'
	line=$(grep -E "$NB_SUMMARY_RE" "$out/$label.out" | tail -n 1)
	if [ -z "$line" ]; then
		fail "$label:harness" "no summary line (see $out/$label.out)"
		return
	fi
	summary_add "$line"
}

# The module and library (the Makefile's bench target has built them already: no-ops then).
if [ ! -f "$ko" ] || [ ! -f build/userspace/libnumabuddy.a ]; then
	make -s module userspace || { fail build "make module userspace"; finish; }
fi
make -s -C userspace/bench BUILD="$out" || { fail build "make -C userspace/bench"; finish; }
mkdir -p "$out"
rm -f "$out"/*.json "$out/exec-stream.txt" "$out/core-instructions.txt"


# extract LOG PREFIX: the JSON blocks of a serial log into $out/PREFIX-NAME.json (validated).
extract() {
	python3 - "$1" "$out" "$2" <<'PY'
import json, re, sys
log, out, prefix = sys.argv[1:]
name, buf, bad = None, [], 0
for line in open(log, errors="replace"):
    line = line.rstrip("\r\n")
    m = re.search(r"NB-BENCH-JSON-BEGIN (\S+)", line)
    if m:
        name, buf = m.group(1), []
        continue
    if name and "NB-BENCH-JSON-END" in line:
        tag = f"{prefix}-{name}" if prefix else name
        path = f"{out}/{tag}.json"
        try:
            data = json.loads("\n".join(buf))
            json.dump(data, open(path, "w"), indent=1)
            print(f"NB-TEST-PASS json-{tag}")
        except ValueError as e:
            print(f"NB-TEST-FAIL json-{tag} invalid JSON: {e}")
        name = None
        continue
    if name:
        buf.append(line)
PY
}

# The hosted mm_core bench (tests/Makefile) first, while the host is not yet busy with the
# VMs: pinned to one CPU, five repetitions of 0.2 s per case (the report takes the median),
# then the instructions per operation under callgrind, which no host load moves.
core_cpu=$(($(nproc) - 1))
core_flags="--benchmark_out=$out/core.json --benchmark_out_format=json"
if [ "$smoke" = 1 ]; then
	core_flags="$core_flags --benchmark_min_time=0.001"
	core_ops=2000
else
	core_flags="$core_flags --benchmark_min_time=0.2 --benchmark_repetitions=5"
	core_ops=100000
fi
if make -s -C tests bench BENCH_PIN="taskset -c $core_cpu" BENCH_FLAGS="$core_flags" >"$out/core.out" 2>&1 &&
	[ -s "$out/core.json" ]; then
	pass core-bench
else
	tail -n 20 "$out/core.out"
	fail core-bench "see $out/core.out"
fi
if scripts/core-instructions.sh "$root/build/hosted/bench/core_bench" "$out/core-instructions.txt" \
	"$core_ops" >"$out/core-instructions.out" 2>&1; then
	pass core-instructions
else
	tail -n 20 "$out/core-instructions.out"
	fail core-instructions "see $out/core-instructions.out"
fi

bins=(--bin "$out/nb_kernel_bench" --bin "$out/nb_user_bench" --bin "$out/nb_contig_bench")
if [ "$smoke" = 1 ]; then
	append="nb_bench_smoke=1" timeout=900
else
	append="" timeout=3600
fi

counted vm-main tests/vm/run.sh --topology 4node --kver "$kver" --ko "$ko" "${bins[@]}" --kmod brd \
	--suite tests/vmsuite/bench.sh --timeout "$timeout" --log "$out/vm-main.log" \
	--append "nb_pool_mb=512 $append"
counted vm-noinit tests/vm/run.sh --topology 4node --kver "$kver" --ko "$ko" --kmod brd \
	--bin "$out/nb_kernel_bench" --bin "$out/nb_user_bench" --suite tests/vmsuite/bench.sh \
	--timeout "$timeout" --log "$out/vm-noinit.log" \
	--append "nb_pool_mb=512 init_on_alloc=0 nb_bench_only=paired nb_bench_tag=noinit $append"

# numabuddy exec vs numactl --membind (THP off, then on): Debian's stress-ng --stream, the
# three one after the other in each round of one 2node boot (tests/vmsuite/exec.sh).
exec_rounds=5
[ "$smoke" = 1 ] && exec_rounds=1
if sng=$(command -v stress-ng) && nctl=$(command -v numactl); then
	if make -s -C userspace BUILD="$root/build/userspace" preload static &&
		make -s -C tests/vmsuite/exec BUILD="$out/exec"; then
		counted vm-exec tests/vm/run.sh --topology 2node --kver "$kver" --ko "$ko" \
			--suite tests/vmsuite/exec.sh --timeout "$timeout" --log "$out/vm-exec.log" \
			--file build/userspace/numabuddy-static:/bin/numabuddy \
			--file build/userspace/libnumabuddy-preload.so:/lib/libnumabuddy-preload.so \
			--file "$out/exec/nb_exec_walk.so:/lib/nb/nb_exec_walk.so" \
			--bin "$sng" --bin "$nctl" \
			--append "nb_exec_stream_only=1 nb_exec_stream_rounds=$exec_rounds"
		sed -n 's/.*\(NB-EXEC-STREAM\)/\1/p' "$out/vm-exec.log" | tr -d '\r' >"$out/exec-stream.txt"
	else
		fail build-exec "make -C userspace preload static, make -C tests/vmsuite/exec"
	fi
else
	echo "NB-TEST-SKIP vm-exec stress-ng or numactl not installed (scripts/deps.sh)"
fi

for run in main noinit; do
	[ -f "$out/vm-$run.log" ] || continue
	while read -r line; do
		case "$line" in
		NB-TEST-PASS*) pass "${line#NB-TEST-PASS }";;
		NB-TEST-FAIL*) r=${line#NB-TEST-FAIL }; fail "${r%% *}" "${r#* }";;
		esac
	done < <(extract "$out/vm-$run.log" "")
done

# Debian's python3 (python3-matplotlib), not whatever python3 comes first in PATH.
if /usr/bin/python3 scripts/bench-report.py --self-test; then pass bench-report-self-test
else fail bench-report-self-test "the goal judgement of scripts/bench-report.py"; fi
if /usr/bin/python3 scripts/bench-report.py "$out" && [ -s "$out/report.md" ] && [ -s "$out/latency.png" ]; then
	pass bench-report
	if [ -s "$out/exec-stream.txt" ]; then
		# One row per round: bogo ops/s (one op = 20 MiB moved), numabuddy over each numactl.
		{
			echo
			echo "## numabuddy exec vs numactl: stress-ng --stream, node 1 of 2node, paired rounds"
			echo
			echo "| round | numabuddy exec --huge 2M | numactl --membind | numactl --membind, THP | vs numactl | vs THP |"
			echo "|---|---|---|---|---|---|"
			awk '$1 == "NB-EXEC-STREAM" { split($4, kv, "="); r[$3, $2] = kv[2]; if (!($3 in seen)) { seen[$3] = 1; order[++n] = $3 } }
				END { for (i = 1; i <= n; i++) { k = order[i]; a = r[k, "numabuddy"]; b = r[k, "numactl"]; c = r[k, "numactl-thp"]
					printf "| %s | %s ops/s | %s ops/s | %s ops/s | %.2f | %.2f |\n", substr(k, 7), a, b, c, (b > 0 ? a / b : 0), (c > 0 ? a / c : 0) } }' \
				"$out/exec-stream.txt"
			echo
			grep '^NB-EXEC-STREAM-RATIO' "$out/exec-stream.txt" | sed 's/^NB-EXEC-STREAM-RATIO /Median of the per-round ratios: /'
		} >>"$out/report.md"
	fi
	echo "bench: report $out/report.md, plot $out/latency.png"
else
	fail bench-report "scripts/bench-report.py failed"
fi
finish
