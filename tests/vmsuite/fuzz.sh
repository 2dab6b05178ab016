# fuzz.sh - VM suite: load numabuddy, run nb_fuzz for a bounded time, then prove that nothing
# leaked or broke: every pool wholly free again (NB_IOC_STATS from a fresh file, mm_core's
# own check), rmmod succeeds, every node's MemFree back to its value before insmod, and no
# kernel splat. Busybox sh, run as /suite.sh.
#
# Knobs on the kernel command line (run.sh --append), so one suite serves CI and `make fuzz`:
#   nb_fuzz_ops=N        operations in total            (default 20000)
#   nb_fuzz_seconds=S    time limit for the fuzzer      (default 100)
#   nb_fuzz_seed=X       seed (default: time and pid, printed either way)
#   nb_fuzz_procs=P      processes                      (default 3)
#   nb_fuzz_threads=T    threads per process            (default 3)
#   nb_fuzz_max_block=B  largest random block, bytes    (default 8388608)
#   nb_fuzz_pool_mb=M    pool per node, MiB             (default 64)
#   nb_fuzz_quota_pct=Q  fd_quota_pct                   (default 75, the module's default)
#   nb_fuzz_max_order=O  max_order                      (default: the module's, 18)
. /lib/nb/lib.sh
KO=/lib/nb/numabuddy.ko
OPS=$(nb_cmdline_get nb_fuzz_ops || echo 20000)
SECS=$(nb_cmdline_get nb_fuzz_seconds || echo 100)
SEED=$(nb_cmdline_get nb_fuzz_seed || echo)
PROCS=$(nb_cmdline_get nb_fuzz_procs || echo 3)
THREADS=$(nb_cmdline_get nb_fuzz_threads || echo 3)
MAX_BLOCK=$(nb_cmdline_get nb_fuzz_max_block || echo 8388608)
POOL_MB=$(nb_cmdline_get nb_fuzz_pool_mb || echo 64)
QUOTA=$(nb_cmdline_get nb_fuzz_quota_pct || echo 75)
MAX_ORDER=$(nb_cmdline_get nb_fuzz_max_order || echo)

nb_check_topology
nb_dmesg_mark
nb_ramdisk

# Processes called nb_fuzz still alive (forked children included).
fuzz_alive() {
	for c in /proc/[0-9]*/comm; do
		[ "$(cat "$c" 2>/dev/null)" = nb_fuzz ] && echo "${c%/comm}"
	done
}

before=$(nb_free_snapshot)
params="pool_mb=$POOL_MB fd_quota_pct=$QUOTA"
[ -n "$MAX_ORDER" ] && params="$params max_order=$MAX_ORDER"
# shellcheck disable=SC2086 # params are words on purpose
nb_check fuzz-insmod nb_insmod "$KO" $params || exit 1
nb_check fuzz-pools-free-before nb_fuzz --pool-check
QPARAM=/sys/module/numabuddy/parameters/fd_quota_pct
# pool_shape: each pool's free blocks, taken apart by a file without quota (see fuzz/pools.c).
pool_shape() {
	old=$(cat $QPARAM)
	echo 100 >$QPARAM
	nb_fuzz --pool-shape
	echo "$old" >$QPARAM
}
shape_before=$(pool_shape)
echo "$shape_before"

args="--ops $OPS --seconds $SECS --procs $PROCS --threads $THREADS --max-block $MAX_BLOCK"
[ -n "$SEED" ] && args="$args --seed $SEED"
echo "fuzz.sh: nb_fuzz $args"
t0=$(cut -d. -f1 /proc/uptime)
# shellcheck disable=SC2086
nb_fuzz $args
rc=$?
echo "fuzz.sh: nb_fuzz exited $rc after $(($(cut -d. -f1 /proc/uptime) - t0)) s"
[ "$rc" -eq 0 ] && nb_pass fuzz-exit || nb_fail fuzz-exit "nb_fuzz exited $rc"

# Every process gone (the launcher reaps its workers, workers their forks; be sure).
i=0
while [ -n "$(fuzz_alive)" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
left=$(fuzz_alive)
if [ -z "$left" ]; then nb_pass fuzz-all-exited
else
	for p in $left; do echo "$p: $(cat "$p/status" 2>/dev/null | grep -E 'State|Name')"; cat "$p/stack" 2>/dev/null; done
	nb_fail fuzz-all-exited "still alive: $left"
fi

cat /sys/kernel/debug/numabuddy/counters
cat /sys/kernel/debug/numabuddy/buddyinfo
nb_check fuzz-pools-free-after nb_fuzz --pool-check
shape_after=$(pool_shape)
echo "$shape_after"
# Free is not enough: the same blocks must be free (nothing lost to fragmentation or caches).
if [ -n "$shape_before" ] && [ "$shape_before" = "$shape_after" ]; then nb_pass fuzz-pools-same-shape
else nb_fail fuzz-pools-same-shape "before: $(echo $shape_before) / after: $(echo $shape_after)"; fi
grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass fuzz-core-check ||
	nb_fail fuzz-core-check "$(cat /sys/kernel/debug/numabuddy/check)"

nb_check fuzz-rmmod rmmod numabuddy
sync
echo 3 >/proc/sys/vm/drop_caches
if r=$(nb_free_restored "$before"); then nb_pass fuzz-memfree-restored
else nb_fail fuzz-memfree-restored "$r"; fi

nb_dmesg_clean fuzz-dmesg-clean
# A fault that returns VM_FAULT_OOM is retried by the kernel forever (since 5.16 it no longer
# invokes the OOM killer): the faulting thread spins until someone else frees memory, and for
# a quota refusal nobody ever will. Not in bad-patterns.txt (the kernel only warns), so here.
n=$(dmesg | tail -n +$((NB_DMESG_MARK + 1)) | grep -c 'VM_FAULT_OOM leaked out')
if [ "$n" -eq 0 ]; then nb_pass fuzz-no-fault-oom-loop
else nb_fail fuzz-no-fault-oom-loop "$n kernel warnings 'Huh VM_FAULT_OOM leaked out to the #PF handler. Retrying PF' (numabuddy faults return VM_FAULT_OOM)"; fi
