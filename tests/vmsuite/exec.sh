# exec.sh - `numabuddy exec` with unmodified third-party programs (busybox sh, as /suite.sh).
# Run by scripts/test-vm.sh on 2node. Every program runs bound to node 1 (the suite itself
# runs wherever the scheduler puts it), and placement is read from the kernel's side, never
# from numabuddy: nb_exec_walk.so (preloaded ahead of libnumabuddy-preload.so) records, at
# each munmap, how much of the range /proc/self/maps shows as /dev/numabuddy or anonymous,
# and the node of every frame from NB_IOC_WALK's page-table entry and the sysfs memory
# blocks; nb_exec_cxx and nb_preload_target check their own buffers the same way.
#
# Knobs (run.sh --append): nb_exec_stream_rounds=N (paired bench rounds, default 3, 0 = none),
# nb_exec_seconds=S (stress-ng run time, default 4), nb_exec_stream_only=1 (only the paired
# rounds: scripts/bench-vm.sh).
. /lib/nb/lib.sh
KO=/lib/nb/numabuddy.ko
POOL_MB=256
N=1
ROUNDS=$(nb_cmdline_get nb_exec_stream_rounds || echo 3)
SECS=$(nb_cmdline_get nb_exec_seconds || echo 4)
STREAM_ONLY=$(nb_cmdline_get nb_exec_stream_only || echo 0)
WALK=/lib/nb/nb_exec_walk.so

nb_check_topology
nb_dmesg_mark
nb_insmod "$KO" pool_mb=$POOL_MB fd_quota_pct=100 || { nb_fail insmod "see log"; exit 1; }
echo "exec: THP $(cat /sys/kernel/mm/transparent_hugepage/enabled)"

# walk_check NAME LOG MIN_DEV_MB HUGE: the walk log says at least MIN_DEV_MB of pool memory,
# all of it on node $N, no large anonymous memory, and 2 MiB entries when HUGE is 1.
walk_check() {
	name=$1 log=$2 min=$3 huge=$4
	if [ ! -s "$log" ]; then nb_fail "$name" "no walk records"; return; fi
	r=$(awk -v n="$N" -v min="$min" -v huge="$huge" '
		{ for (i = 2; i <= NF; i++) { split($i, kv, "="); s[kv[1]] += kv[2] } }
		END {
			mapped = s["pte"] + s["pmd"] + s["pud"]
			printf "dev=%dM anon=%dM mapped=%dM on-node%d=%dM pmd=%dM other-nodes=%dM", \
				s["dev"] / 1048576, s["anon"] / 1048576, mapped / 1048576, n, \
				s["node" n] / 1048576, s["pmd"] / 1048576, (mapped - s["node" n]) / 1048576
			ok = s["dev"] >= min * 1048576 && s["anon"] == 0 && mapped > 0 && \
				s["node" n] == mapped && (!huge || s["pmd"] > 0)
			print ok ? " ok" : " BAD"
		}' "$log")
	echo "exec: $name: $r"
	case "$r" in *" ok") nb_pass "$name";; *) nb_fail "$name" "$r";; esac
}

if [ "$STREAM_ONLY" != 1 ]; then
# 1. The preload's own cases on the real device (fork privacy, realloc, mmap, threads...).
numabuddy exec --node $N -- nb_preload_target malloc calloc realloc memalign mmap madvise fork \
	forkhole threads exec
rc=$?
[ $rc -eq 0 ] && nb_pass exec-preload-cases || nb_fail exec-preload-cases "exit $rc"

# 2. stress-ng --vm: each worker maps, writes and verifies its buffer, unmaps, again.
rm -f /tmp/walk-vm
NB_WALK_LOG=/tmp/walk-vm LD_PRELOAD=$WALK numabuddy exec --node $N --huge 2M --stats -- \
	stress-ng --vm 2 --vm-bytes 96M --verify -t "$SECS" --metrics-brief >/tmp/vm.out 2>&1
rc=$?
cat /tmp/vm.out
if [ $rc -eq 0 ] && grep -q 'successful run' /tmp/vm.out; then nb_pass exec-stress-vm
else nb_fail exec-stress-vm "exit $rc"; fi
walk_check exec-stress-vm-placement /tmp/walk-vm 32 1
grep 'numabuddy-stats' /tmp/vm.out | grep -qv 'fallbacks=0 ' && nb_fail exec-stress-vm-nofallback "a fallback" ||
	nb_pass exec-stress-vm-nofallback

# 3. stress-ng --stream, verified: a, b, c arrays of 4 x the given L3 size each.
rm -f /tmp/walk-stream
NB_WALK_LOG=/tmp/walk-stream LD_PRELOAD=$WALK numabuddy exec --node $N --huge 2M -- \
	stress-ng --stream 1 --stream-l3-size 2M --verify -t "$SECS" --metrics-brief >/tmp/st.out 2>&1
rc=$?
cat /tmp/st.out
if [ $rc -eq 0 ] && grep -q 'successful run' /tmp/st.out; then nb_pass exec-stress-stream
else nb_fail exec-stress-stream "exit $rc"; fi
walk_check exec-stress-stream-placement /tmp/walk-stream 16 1

# 4. A C++ program on std::vector and std::map, checking its own buffers, and fork.
numabuddy exec --node $N --huge 2M -- nb_exec_cxx $N 1
rc=$?
[ $rc -eq 0 ] && nb_pass exec-cxx || nb_fail exec-cxx "exit $rc"

# 5. More than the pool holds: one warning line, normal memory, the run still succeeds.
# One bogo op (one pass over the buffer), so that the worker gets to munmap it (a worker
# still running at the time limit is killed, and the walker never sees its buffer).
rm -f /tmp/walk-fb
NB_WALK_LOG=/tmp/walk-fb LD_PRELOAD=$WALK numabuddy exec --node $N --stats -- \
	stress-ng --vm 1 --vm-bytes 300M --vm-ops 1 -t 60 >/tmp/fb.out 2>&1
rc=$?
cat /tmp/fb.out
warnings=$(grep -c '^numabuddy: no pool memory' /tmp/fb.out)
if [ $rc -eq 0 ] && [ "$warnings" = 1 ] && grep -q ' dev=0 anon=314572800 ' /tmp/walk-fb; then
	nb_pass exec-fallback
else
	nb_fail exec-fallback "exit $rc, $warnings warnings, walk: $(cat /tmp/walk-fb 2>/dev/null)"
fi
numabuddy exec --node $N --strict -- stress-ng --vm 1 --vm-bytes 300M --vm-keep -t 2 \
	>/tmp/strict.out 2>&1
grep -q 'failing such allocations (--strict)' /tmp/strict.out && nb_pass exec-strict ||
	nb_fail exec-strict "no refusal: $(tail -n 3 /tmp/strict.out)"

fi # STREAM_ONLY

# 6. Paired bandwidth: numabuddy exec vs numactl --membind (THP off) vs numactl with THP,
# one after the other in each round, so host noise hits all three alike. Arrays of 2 MiB
# (4 x the L3 size given), above --min-size. NUMA balancing off, as in scripts/bench-vm.sh: its scans
# flush the TLB of anonymous memory only, and under TCG a flush changes later speeds.
# stream_rate MADVISE CMD...: stress-ng's bogo ops per second of real time. One op is one
# pass of copy, scale, add and triad over the arrays (10 x 2 MiB moved), so ops/s is
# bandwidth / 20 MiB; runs under 4.5 s get no "memory rate" line from stress-ng itself.
stream_rate() {
	madv=$1
	shift
	"$@" stress-ng --stream 1 --stream-l3-size 512K --stream-madvise "$madv" -t 4 \
		--verify --metrics-brief >/tmp/rate.out 2>&1 || { echo "failed"; return 1; }
	awk '$4 == "stream" && $5 ~ /^[0-9]+$/ { printf "ops_per_s=%.2f ops=%d secs=%s\n", $5 / $6, $5, $6 }' \
		/tmp/rate.out
}
balancing=$(cat /proc/sys/kernel/numa_balancing 2>/dev/null)
[ -n "$balancing" ] && echo 0 >/proc/sys/kernel/numa_balancing
ok=1
round=1
while [ "$round" -le "$ROUNDS" ]; do
	for cfg in numabuddy numactl numactl-thp; do
		case $cfg in
		numabuddy) r=$(stream_rate normal numabuddy exec --node $N --huge 2M --);;
		numactl) r=$(stream_rate nohugepage numactl --membind=$N);;
		numactl-thp) r=$(stream_rate hugepage numactl --membind=$N);;
		esac || ok=0
		echo "NB-EXEC-STREAM $cfg round=$round $r" | tee -a /tmp/stream.txt
	done
	round=$((round + 1))
done
# Per round, numabuddy's rate over each numactl rate; the median of those ratios.
[ -s /tmp/stream.txt ] && awk '
	{ split($4, kv, "="); rate[$3, $2] = kv[2]; rounds[$3] = 1 }
	END {
		for (r in rounds) {
			if (rate[r, "numactl"] > 0) a[++na] = rate[r, "numabuddy"] / rate[r, "numactl"]
			if (rate[r, "numactl-thp"] > 0) b[++nb] = rate[r, "numabuddy"] / rate[r, "numactl-thp"]
		}
		printf "NB-EXEC-STREAM-RATIO numabuddy/numactl median %.2f over %d rounds; ", med(a, na), na
		printf "numabuddy/numactl-thp median %.2f over %d rounds\n", med(b, nb), nb
	}
	function med(v, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return n ? (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) : 0
	}' /tmp/stream.txt
[ -n "$balancing" ] && echo "$balancing" >/proc/sys/kernel/numa_balancing
[ "$ROUNDS" -gt 0 ] && { [ $ok = 1 ] && nb_pass exec-stream-bench || nb_fail exec-stream-bench "a run failed"; }

grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass exec-core-check ||
	nb_fail exec-core-check "$(cat /sys/kernel/debug/numabuddy/check)"
nb_check exec-rmmod rmmod numabuddy
nb_dmesg_clean
