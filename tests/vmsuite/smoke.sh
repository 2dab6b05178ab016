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
# A block device that completes reads 2 s late: nb_pinnable frees a block while an O_DIRECT
# read into it is in flight. Without it (the debug kernel has no modules) that case skips.
modprobe null_blk nr_devices=1 irqmode=2 completion_nsec=2000000000 2>/dev/null ||
	echo "no null_blk module"
# vgem imports nb_pinnable's dma-bufs (DRM PRIME), as a GPU driver would.
modprobe vgem 2>/dev/null || echo "no vgem module"
# vivid (one capture node, dma-contig buffers) imports them and draws frames into them.
modprobe vivid n_devs=1 node_types=0x1 allocators=1 multiplanar=1 2>/dev/null ||
	echo "no vivid module"
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
# nb_inplace migrates between two pools (big has one).
set -- $pool_nodes
[ "$#" -ge 2 ] && progs="$progs nb_inplace"
command -v nb_vm_test >/dev/null && progs="$progs nb_vm_test"
# nb_kpaths reads a RAM disk with O_DIRECT; its 1 GiB cases come with the mapper's.
case " $MAPPER_ARGS " in *" --mixed "*) KPATHS_ARGS=--gib;; *) KPATHS_ARGS=;; esac
# nb_pinnable sweeps whole pools and needs two of them: the small multi-node pools only.
case " $(echo $pool_nodes) " in
*" 0 1 "*) [ "$POOL_MB" -le 256 ] && progs="$progs nb_pinnable";;
esac
# nb_compact fills a whole pool with 16 KiB blocks and maps a third of them: small pools only.
[ "$POOL_MB" -le 256 ] && progs="$progs nb_compact"
for prog in $progs "nb_mapper $MAPPER_ARGS" "nb_kpaths $KPATHS_ARGS"; do
	$prog
	rc=$?
	if [ "$rc" -eq 0 ]; then nb_pass "${prog%% *}"; else nb_fail "${prog%% *}" "exit $rc"; fi
done
# The CLI's I/O commands against the module (with nb_pinnable: pools on nodes 0 and 1).
case " $progs " in *" nb_pinnable "*)
	if command -v numabuddy >/dev/null; then
		out=$(numabuddy query --size 64K --node 1 --pinnable 2>&1)
		case "$out" in *"mapping:  refcounted pages"*) nb_pass cli-query-pinnable;;
		*) nb_fail cli-query-pinnable "$out";; esac
		# shellcheck disable=SC2016 # expanded by the program numabuddy runs
		out=$(numabuddy export --size 1M --node 1 --contig -- sh -c \
			'grep "^name:" /proc/self/fdinfo/$NUMABUDDY_DMABUF_FD; echo size=$NUMABUDDY_DMABUF_SIZE' 2>&1)
		case "$out" in *"numabuddy-node1"*"size=1048576"*) nb_pass cli-export-dmabuf;;
		*) nb_fail cli-export-dmabuf "$out";; esac
	fi;;
esac
# The CLI's compact against the module: nothing to move on an idle pool, and stats say how many
# compactions ran (nb_compact ran some on the small pools).
if command -v numabuddy >/dev/null; then
	n=$(echo $pool_nodes | awk '{ print $1 }')
	out=$(numabuddy compact --node "$n" --order 9 2>&1)
	case "$out" in *"node $n: a free block of order 9 existed already"*) nb_pass cli-compact;;
	*) nb_fail cli-compact "$out";; esac
	out=$(numabuddy compact --node 63 2>&1); rc=$?
	if [ "$rc" -eq 1 ]; then nb_pass cli-compact-bad-node; else nb_fail cli-compact-bad-node "exit $rc: $out"; fi
	out=$(numabuddy stats --node "$n" 2>&1)
	case "$out" in *"compaction:"*) nb_pass cli-stats-compaction;;
	*) nb_fail cli-stats-compaction "$out";; esac
	# STATS zeroed_bytes through the CLI: present, and never more than the free bytes.
	out=$(numabuddy stats --node "$n" --json 2>&1)
	free=$(echo "$out" | sed -n 's/.*"free_bytes": \([0-9]*\).*/\1/p' | head -n 1)
	zeroed=$(echo "$out" | sed -n 's/.*"zeroed_bytes": \([0-9]*\).*/\1/p' | head -n 1)
	if [ -n "$free" ] && [ -n "$zeroed" ] && [ "$zeroed" -le "$free" ]; then nb_pass cli-stats-zeroed
	else nb_fail cli-stats-zeroed "free '$free' zeroed '$zeroed': $out"; fi
fi
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
