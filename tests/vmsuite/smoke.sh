# smoke.sh - the walking skeleton's VM suite (busybox sh, run as /suite.sh).
# Loads numabuddy, checks the pools, runs nb_smoke (allocate/map/verify on every node),
# checks refusals, unloads, and checks that every reserved page went back to the kernel.
. /lib/nb/lib.sh
KO=/lib/nb/numabuddy.ko
# Knobs from the kernel command line (run.sh --append): pool size, node mask, extra tests.
POOL_MB=$(nb_cmdline_get nb_pool_mb || echo 64)
NODES=$(nb_cmdline_get nb_nodes_mask || echo 0xffffffffffffffff)
MAPPER_ARGS=$(nb_cmdline_get nb_mapper_args | tr ',' ' ')

nb_check_topology
nb_dmesg_mark

with_mem_nodes() { for n in $(nb_nodes); do [ "$(nb_node_mem_kb "$n")" -gt 0 ] && echo "$n"; done; }

nb_ramdisk
before=$(nb_free_snapshot)
memfree_before=$(for n in $(nb_nodes); do echo "$n $(nb_node_free_kb "$n")"; done)
if ! nb_check insmod nb_insmod "$KO" pool_mb="$POOL_MB" nodes="$NODES" fd_quota_pct=100; then
	exit 1
fi
nb_check device-node test -c /dev/numabuddy
mode=$(stat -c %a /dev/numabuddy)
if [ "$mode" = 600 ]; then nb_pass device-mode-0600; else nb_fail device-mode-0600 "mode $mode"; fi

# Each node with memory in the mask gave its pool. numabuddy's own count is exact: the pool
# is POOL_MB MiB of frames, all free (in the buddy lists or the per-CPU caches) before any
# allocation. The kernel's side is measured independently, and with the tolerance its free
# figures need (nb_free_taken says why).
pool_nodes=$(for n in $(with_mem_nodes); do [ $(((NODES >> n) & 1)) -eq 1 ] && echo "$n"; done)
info=$(cat /sys/kernel/debug/numabuddy/buddyinfo)
for n in $pool_nodes; do
	# "Node N: total T free F pcp P ..." in 4 KiB frames
	# shellcheck disable=SC2046 # three numbers, split on purpose
	set -- $(echo "$info" | awk -v n="$n" '$1 == "Node" && $2 == n ":" { print $4, $6, $8 }')
	if [ $# -eq 3 ] && [ "$1" -eq $((POOL_MB * 256)) ] && [ $(($2 + $3)) -eq "$1" ]; then
		nb_pass "pool-exact-node$n"
	else
		nb_fail "pool-exact-node$n" "want total = free + pcp = $((POOL_MB * 256)) frames, got '$*'"
	fi
	if r=$(nb_free_taken "$before" $((POOL_MB * 1024)) "$n"); then nb_pass "pool-reserved-node$n"
	else nb_fail "pool-reserved-node$n" "$r"; fi
	# Not checked, shown for comparison: MemFree alone, the figure that once flaked.
	echo "node$n: MemFree dropped by" \
		"$(($(echo "$memfree_before" | awk -v n="$n" '$1 == n { print $2 }') - $(nb_node_free_kb "$n"))) kB"
done
cat /sys/kernel/debug/numabuddy/buddyinfo
grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass core-check-after-load ||
	nb_fail core-check-after-load "$(cat /sys/kernel/debug/numabuddy/check)"

progs="nb_smoke"
command -v nb_vm_test >/dev/null && progs="$progs nb_vm_test"
# nb_kpaths reads a RAM disk with O_DIRECT; its 1 GiB cases come with the mapper's.
case " $MAPPER_ARGS " in *" --mixed "*) KPATHS_ARGS=--gib;; *) KPATHS_ARGS=;; esac
for prog in $progs "nb_mapper $MAPPER_ARGS" "nb_kpaths $KPATHS_ARGS"; do
	$prog
	rc=$?
	if [ "$rc" -eq 0 ]; then nb_pass "${prog%% *}"; else nb_fail "${prog%% *}" "exit $rc"; fi
done
grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass core-check-after-use ||
	nb_fail core-check-after-use "$(cat /sys/kernel/debug/numabuddy/check)"

nb_check rmmod rmmod numabuddy
if r=$(nb_free_restored "$before"); then nb_pass pools-returned; else nb_fail pools-returned "$r"; fi

# A pool larger than any node can give: load must fail cleanly, leaving nothing behind.
before=$(nb_free_snapshot)
if insmod "$KO" pool_mb=1000000 2>/dev/null; then
	nb_fail oversize-pool-refused "insmod succeeded"
	rmmod numabuddy
else
	dmesg | tail -n 3
	nb_pass oversize-pool-refused
fi
if r=$(nb_free_restored "$before"); then nb_pass oversize-no-leak; else nb_fail oversize-no-leak "$r"; fi
dmesg | grep -q 'cannot spare' && nb_pass oversize-clear-log || nb_fail oversize-clear-log "no reason logged"

nb_dmesg_clean
