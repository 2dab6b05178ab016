# hostile.sh - VM suite: hostile and edge cases (busybox sh, run as /suite.sh). Needs
# nb_hostile and nb_fuzz (for --pool-check) in the image. Every case ends with the pools
# checked wholly free from a fresh file; the run ends with rmmod, MemFree back and no splat.
#
# Knobs on the kernel command line:
#   nb_hostile_pool_mb=M   pool per node for the main load (default: as large as the
#                          smallest node allows, keeping its 1/8 margin plus 64 MiB)
#   nb_hostile_floor_mb=F  the hog stops when MemAvailable reaches F MiB (default 32)
. /lib/nb/lib.sh
KO=/lib/nb/numabuddy.ko
FLOOR_MB=$(nb_cmdline_get nb_hostile_floor_mb || echo 32)

nb_check_topology
nb_dmesg_mark
# The suite must survive memory pressure: the OOM killer takes the hog, never this shell.
echo -1000 >/proc/self/oom_score_adj

pools_free() { nb_check "$1" nb_fuzz --pool-check; }
loaded() { grep -q '^numabuddy ' /proc/modules; }

before=$(nb_free_snapshot)

# --- rmmod while a file, then only a mapping, is open ------------------------------------
nb_insmod "$KO" pool_mb=64 || { nb_fail hostile-insmod "see log"; exit 1; }
nb_hostile rmmod-busy
if loaded; then nb_fail rmmod-busy-unloaded "module still loaded"; rmmod numabuddy; fi

# --- loads that must fail cleanly: refused, a log line saying why, nothing left behind ----
for params in pool_mb=1000000 pool_mb=0 max_order=21 nodes=0; do
	name=bad-load-${params%%=*}-${params#*=}
	lines=$(dmesg | wc -l)
	if insmod "$KO" $params 2>/dev/null; then
		nb_fail "$name" "insmod $params succeeded"
		rmmod numabuddy
		continue
	fi
	nb_pass "$name-refused"
	why=$(dmesg | tail -n +$((lines + 1)) | grep numabuddy | grep -v 'taints kernel\|verification failed')
	if [ -n "$why" ]; then echo "$why" | tail -n 2; nb_pass "$name-logged"
	else nb_fail "$name-logged" "insmod $params failed without a numabuddy log line"; fi
done
if r=$(nb_free_restored "$before"); then nb_pass bad-loads-no-leak
else nb_fail bad-loads-no-leak "$r"; fi

# --- the main load: pools taking most of every node, no per-file quota ---------------------
pool=$(nb_cmdline_get nb_hostile_pool_mb) || {
	pool=
	for n in $(nb_nodes); do
		total=$(nb_node_mem_kb "$n")
		[ "$total" -gt 0 ] || continue
		# The module keeps 1/8 of the node's pages, not of MemTotal: on the debug kernel
		# KASAN's shadow and page_owner take 1/4 of node 0 out of MemTotal. The node's span
		# is never below its pages.
		r=$(nb_node_range "$n")
		span=$(((${r#*-} - ${r%-*}) / 1024))
		[ "$span" -gt "$total" ] && total=$span
		mb=$((($(nb_node_free_kb "$n") - total / 8) / 1024 - 64))
		if [ -z "$pool" ] || [ "$mb" -lt "$pool" ]; then pool=$mb; fi
	done
}
echo "hostile.sh: pool_mb=$pool per node"
# The cases below allocate 8 MiB per node and interrupt allocations of half a pool: a
# smaller pool fails them all for want of room, which says nothing about the module.
if [ "$pool" -lt 16 ]; then
	nb_fail hostile-pool-room "pool_mb=$pool per node: the smallest node leaves too little (set nb_hostile_pool_mb)"
	exit 1
fi
nb_check hostile-insmod-big nb_insmod "$KO" pool_mb="$pool" fd_quota_pct=100 || exit 1
pools_free pools-free-after-load

nb_hostile mmap-edges
pools_free pools-free-after-mmap-edges

nb_hostile exit-with-blocks
pools_free pools-free-after-exit-with-blocks

nb_hostile signal-alloc $((pool / 2))
pools_free pools-free-after-signal-alloc
# A 1/8-pool MIGRATE copies for ~20 s under TCG: plenty of time to be killed in.
nb_hostile signal-migrate $((pool / 8))
pools_free pools-free-after-signal-migrate

# Reproducers of the VM_FAULT_OOM retry loop (they fail until nb_errno_to_fault is fixed).
nb_hostile fault-over-quota
nb_hostile fault-pool-empty
pools_free pools-free-after-fault-tests

grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass hostile-core-check ||
	nb_fail hostile-core-check "$(cat /sys/kernel/debug/numabuddy/check)"
nb_check hostile-rmmod rmmod numabuddy
after=$(nb_free_snapshot)
echo "hostile.sh: MemFree per node before the first insmod: $(echo $before); after rmmod: $(echo $after)"
if r=$(nb_free_restored "$before"); then nb_pass hostile-memfree-restored
else nb_fail hostile-memfree-restored "$r"; fi

# --- memory pressure, last: pools taking most of every node, then a hog ------------------------
nb_check hostile-insmod-pressure nb_insmod "$KO" pool_mb="$pool" fd_quota_pct=100 || exit 1
p_before=$(nb_free_snapshot)
nb_hostile pressure "$FLOOR_MB"
pools_free pools-free-after-pressure
grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass pressure-core-check ||
	nb_fail pressure-core-check "$(cat /sys/kernel/debug/numabuddy/check)"
p_after=$(nb_free_snapshot)
nb_check pressure-rmmod rmmod numabuddy
p_unloaded=$(nb_free_snapshot)
echo "hostile.sh: MemFree per node: before the hog $(echo $p_before); after it $(echo $p_after); after rmmod $(echo $p_unloaded)"
# rmmod gave back each node's pool: free+kernel rose by at least the pool less NB_FREE_TOL_KB.
bad=$(echo "$p_after" | while read -r n kb; do
	un=$(echo "$p_unloaded" | awk -v n="$n" '$1 == n { print $2 }')
	[ $((un - kb)) -ge $((pool * 1024 - NB_FREE_TOL_KB)) ] || echo "node$n: +$((un - kb)) kB"
done)
if [ -z "$bad" ]; then nb_pass pressure-pools-returned; else nb_fail pressure-pools-returned "$bad"; fi
# And after the hog, the pools and everything else: as at the start.
if r=$(nb_free_restored "$before"); then nb_pass pressure-memfree-restored
else nb_fail pressure-memfree-restored "$r"; fi
nb_dmesg_clean hostile-dmesg-clean
