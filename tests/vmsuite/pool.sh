# pool.sh - pools taken on purpose and resized at run time (busybox sh, run as /suite.sh).
# Knobs from the kernel command line: nb_pool_mb (pool per node at load), nb_nodes_mask,
# nb_aligned_runs (aligned runs, 1 GiB at the default max_order, to aim for per node; 0 skips the GiB cases).
. /lib/nb/lib.sh
KO=/lib/nb/numabuddy.ko
POOL_MB=$(nb_cmdline_get nb_pool_mb || echo 64)
NODES=$(nb_cmdline_get nb_nodes_mask || echo 0xffffffffffffffff)
RUNS=$(nb_cmdline_get nb_aligned_runs || echo 0)

nb_check_topology
nb_dmesg_mark
nb_ramdisk # /dev/ram0 for nb_poolpin's O_DIRECT reads, before any free-memory snapshot

pool_nodes() {
	for n in $(nb_nodes); do
		[ "$(nb_node_mem_kb "$n")" -gt 0 ] && [ $(((NODES >> n) & 1)) -eq 1 ] && echo "$n"
	done
}
# free_blocks N ORDER: free blocks of ORDER on node N, from debugfs buddyinfo.
free_blocks() {
	awk -v n="$1" -v k="$2" '$1 == "Node" && $2 == n "," && $3 == "free" { print $(4 + k) }' \
		/sys/kernel/debug/numabuddy/buddyinfo
}
# total_frames N: node N's pool in 4 KiB frames, from debugfs buddyinfo.
total_frames() {
	awk -v n="$1" '$1 == "Node" && $2 == n ":" { print $4 }' /sys/kernel/debug/numabuddy/buddyinfo
}
core_ok() {
	grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass "$1" ||
		nb_fail "$1" "$(cat /sys/kernel/debug/numabuddy/check)"
}

# --- aligned GiB runs at load -----------------------------------------------------------------
if [ "$RUNS" -gt 0 ]; then
	before=$(nb_free_snapshot)
	# prezero_mb_s=0: the zeroer would split the fresh GiB block to clear it, 2 MiB at a
	# time, and the order-18 counts below would race it.
	nb_check insmod-gib nb_insmod "$KO" pool_mb="$POOL_MB" nodes="$NODES" aligned_runs="$RUNS" \
		max_order=18 fd_quota_pct=100 prezero_mb_s=0 || exit 1
	cat /sys/kernel/debug/numabuddy/buddyinfo
	dmesg | grep 'aligned runs' | tail -n 3
	for n in $(pool_nodes); do
		# Only nodes big enough for GiB runs within POOL_MB are asked for one.
		[ "$POOL_MB" -ge 1024 ] || continue
		g=$(free_blocks "$n" 18)
		if [ "${g:-0}" -ge 1 ]; then nb_pass "gib-block-node$n"
		else nb_fail "gib-block-node$n" "free order-18 blocks: '${g}'"; fi
		t=$(total_frames "$n")
		if [ "$t" -eq $((POOL_MB * 256)) ]; then nb_pass "gib-pool-exact-node$n"
		else nb_fail "gib-pool-exact-node$n" "total $t frames, want $((POOL_MB * 256))"; fi
		if [ -r "/sys/module/numabuddy/pools/node$n/gib_blocks" ]; then
			s=$(cat "/sys/module/numabuddy/pools/node$n/gib_blocks")
			if [ "$s" = "$g" ]; then nb_pass "gib-sysfs-node$n"
			else nb_fail "gib-sysfs-node$n" "sysfs says $s, buddyinfo $g"; fi
		fi
	done
	core_ok core-check-gib
	# A 1 GiB block really is handed out and mapped (nb_mapper's 1G/2M/4K case).
	nb_check gib-mapper nb_mapper --mixed
	# A pinnable GiB block, whose frames have alloc_contig_range's references, through
	# O_DIRECT and a vmsplice'd free; rmmod then gives the run back with free_contig_range.
	[ "$POOL_MB" -ge 1024 ] && nb_check gib-pinnable nb_poolpin gib "$(pool_nodes | head -n 1)"
	nb_check rmmod-gib rmmod numabuddy
	if r=$(nb_free_restored "$before"); then nb_pass gib-pools-returned
	else nb_fail gib-pools-returned "$r"; fi

	# Movable pages in the way: with 600 MiB of node 0 in a tmpfs file (spread over the node),
	# a GiB run needs alloc_contig_range to move the file's pages out of it; chunks alone find
	# no GiB block then. Shown, not judged: on 6.12 and 6.12-rt the only candidate run of
	# `big` ([1 GiB, 2 GiB); the next holds firmware pages) was refused (-EBUSY) in about half
	# of the boots, one page in it failing to migrate (an anonymous stack page), and with one
	# candidate that is luck again (6.1: taken every time). Judged: the load, the exact size, the file's contents
	# after its pages moved, and every page back after rmmod.
	mkdir -p /mnt/hog
	if mount -t tmpfs -o size=700m,mpol=bind:0 tmpfs /mnt/hog &&
		dd if=/dev/zero of=/mnt/hog/f count=600 bs=1M 2>/dev/null; then
		before=$(nb_free_snapshot)
		nb_check insmod-gib-fragmented nb_insmod "$KO" pool_mb=1100 nodes=1 aligned_runs=1 || exit 1
		echo "aligned_runs=1 over tmpfs pages: $(cat /sys/module/numabuddy/pools/node0/aligned_runs) run(s)," \
			"$(cat /sys/module/numabuddy/pools/node0/gib_blocks) free GiB block(s)"
		t=$(total_frames 0)
		[ "$t" -eq $((1100 * 256)) ] && nb_pass gib-fragmented-exact ||
			nb_fail gib-fragmented-exact "total $t frames"
		nb_check rmmod-gib-fragmented rmmod numabuddy
		if r=$(nb_free_restored "$before"); then nb_pass gib-fragmented-returned
		else nb_fail gib-fragmented-returned "$r"; fi
		if insmod "$KO" pool_mb=1100 nodes=1; then
			echo "chunks only over tmpfs pages: $(cat /sys/module/numabuddy/pools/node0/gib_blocks) free GiB block(s)"
			rmmod numabuddy
		fi
		cmp -n 629145600 /mnt/hog/f /dev/zero && nb_pass tmpfs-intact-after-migration ||
			nb_fail tmpfs-intact-after-migration "file changed"
		umount /mnt/hog
	else
		nb_fail gib-fragmented-setup "tmpfs on node 0 failed"
	fi
fi

# --- aligned runs below 1 GiB: a run is one block of the largest order (max_order=13: 32 MiB)
# Every topology: a 1 GiB node has 32 candidate runs, so both are expected on every pool node.
before=$(nb_free_snapshot)
# prezero_mb_s=0: the order-13 count must not race the zeroer splitting a fresh run.
nb_check insmod-runs-32m nb_insmod "$KO" pool_mb=64 nodes="$NODES" max_order=13 aligned_runs=2 \
	prezero_mb_s=0 || exit 1
for n in $(pool_nodes); do
	r=$(cat "/sys/module/numabuddy/pools/node$n/aligned_runs")
	b=$(free_blocks "$n" 13)
	t=$(total_frames "$n")
	if [ "$r" -eq 2 ] && [ "${b:-0}" -eq 2 ] && [ "$t" -eq $((64 * 256)) ]; then
		nb_pass "runs-32m-node$n"
	else
		nb_fail "runs-32m-node$n" "aligned_runs $r, free order-13 blocks '$b', total $t frames"
	fi
done
core_ok core-check-runs-32m
nb_check rmmod-runs-32m rmmod numabuddy
if r=$(nb_free_restored "$before"); then nb_pass runs-32m-returned
else nb_fail runs-32m-returned "$r"; fi

# --- resizing at run time, under load ---------------------------------------------------------
# Node A (the first pool node) is resized; node B (another, if any) is where the load migrates.
RESIZE_MB=$(nb_cmdline_get nb_resize_mb || echo 64)
set -- $(pool_nodes)
A=$1 B=${2:-$1}
SYS=/sys/module/numabuddy/pools/node$A
before=$(nb_free_snapshot)
nb_check insmod-resize nb_insmod "$KO" pool_mb="$RESIZE_MB" nodes="$NODES" fd_quota_pct=100 || exit 1
pool_is() { # pool_is NAME MB: sysfs, buddyinfo and the kernel's free memory agree on MB
	_t=$(total_frames "$A") _s=$(cat "$SYS/pool_mb")
	if [ "$_s" -eq "$2" ] && [ "$_t" -eq $(($2 * 256)) ]; then nb_pass "$1"
	else nb_fail "$1" "sysfs $_s MiB, buddyinfo $_t frames, want $2 MiB"; fi
}
pool_is pool-mb-reads-load-size "$RESIZE_MB"

# Q opens with fd_quota_pct=50: its quota on A must follow A's size.
echo 50 >/sys/module/numabuddy/parameters/fd_quota_pct
numabuddy alloc --size 4K --node "$A" --hold >/dev/null &
Q=$!
sleep 1
echo 100 >/sys/module/numabuddy/parameters/fd_quota_pct
quota_kb() { # quota_kb PID: the quota on node A in the fdinfo of PID's numabuddy file
	for _fd in /proc/$1/fd/*; do
		[ "$(readlink "$_fd")" = /dev/numabuddy ] || continue
		sed -n "s/^numabuddy-node$A:.*(quota \([0-9]*\) kB)/\1/p" "/proc/$1/fdinfo/${_fd##*/}"
	done
}
q=$(quota_kb $Q)
if [ "$q" = $((RESIZE_MB * 1024 / 2)) ]; then nb_pass quota-at-open
else nb_fail quota-at-open "quota '$q' kB, want $((RESIZE_MB * 1024 / 2))"; fi

# H holds nearly all of A's load-time pool: that region can never be given back while H lives.
numabuddy alloc --size $((RESIZE_MB - 8))M --node "$A" --touch --hold >/dev/null &
H=$!
sleep 2
nb_check holder-alive kill -0 $H

# The load: migrations between A and B and allocations on A, each verified by the CLI
# (a pattern that survives migration, zeroed frames at touch); "FAILED" means corruption.
rm -f /tmp/load.stop /tmp/load.log
load() {
	_n=0
	while [ ! -e /tmp/load.stop ]; do
		numabuddy migrate --size 2M --node "$B" --to "$A" >>/tmp/load.log 2>&1
		numabuddy migrate --size 1M --node "$A" --to "$B" >>/tmp/load.log 2>&1
		numabuddy alloc --size 6M --node "$A" --touch >>/tmp/load.log 2>&1
		numabuddy alloc --size 2M --node "$A" --pinnable --touch >>/tmp/load.log 2>&1
		_n=$((_n + 1))
	done
	echo "load rounds: $_n" >>/tmp/load.log
}
load &
L=$!

# Grow A by RESIZE_MB twice (two new regions), under the load.
if numabuddy pool --node "$A" --size $((RESIZE_MB * 2))M; then nb_pass grow-cli
else nb_fail grow-cli "exit $?"; fi
pool_is grow-exact $((RESIZE_MB * 2))
numabuddy pool --node "$A" --size $((RESIZE_MB * 3))M
pool_is grow-again-exact $((RESIZE_MB * 3))
r=$(nb_free_taken "$before" $((RESIZE_MB * 3 * 1024)) "$A") && nb_pass grow-taken-from-kernel ||
	nb_fail grow-taken-from-kernel "$r"
q=$(quota_kb $Q)
if [ "$q" = $((RESIZE_MB * 3 * 1024 / 2)) ]; then nb_pass quota-follows-grow
else nb_fail quota-follows-grow "quota '$q' kB, want $((RESIZE_MB * 3 * 1024 / 2))"; fi
numabuddy pool
[ "$(cat "$SYS/aligned_runs")" -eq 0 ] && nb_pass gib-runs-none || nb_fail gib-runs-none "$(cat "$SYS/aligned_runs")"
sleep 3
core_ok core-check-after-grow

# Shrink to nothing, under the load: the grown regions go back (maybe after a retry, when the
# load holds a block there at that moment); the load-time region holds H's blocks and stays.
# So: partial, never below what H uses, and exit status 1 (the size asked was not reached).
# The load-time pool may itself be several regions (chunks the page allocator did not hand
# out adjacent, as on `big`): one that holds none of H's blocks is free and goes back too, so
# the pool ends at or below the load-time size, never at 0. KEPT is where it ended.
# On `big` every load command allocates on A, mostly in the last grown region: it can take
# 10 s or more to find that region free (once 10.7 s with the load's pinnable blocks).
got=
for try in $(seq 30); do
	numabuddy pool --node "$A" --size 0 && { got=all; break; }
	[ "$(cat "$SYS/pool_mb")" -le "$RESIZE_MB" ] && { got=partial; break; }
	sleep 1
done
KEPT=$(cat "$SYS/pool_mb")
if [ "$got" = partial ] && [ "$KEPT" -gt 0 ]; then nb_pass shrink-partial
else nb_fail shrink-partial "pool $KEPT MiB after $try tries ('$got')"; fi
pool_is shrink-exact "$KEPT"
q=$(quota_kb $Q)
if [ "$q" = $((KEPT * 1024 / 2)) ]; then nb_pass quota-follows-shrink
else nb_fail quota-follows-shrink "quota '$q' kB, want $((KEPT * 1024 / 2))"; fi
# Nothing left that is free: refused with EBUSY, nothing changes.
if out=$(echo 0 2>&1 >"$SYS/pool_mb"); then nb_fail shrink-busy-refused "write succeeded"
else
	echo "$out"
	case "$out" in *busy*|*Busy*) nb_pass shrink-busy-refused;;
	*) nb_fail shrink-busy-refused "'$out'";; esac
fi
pool_is shrink-busy-unchanged "$KEPT"
numabuddy pool --node "$A" --size 0
[ $? -eq 1 ] && nb_pass shrink-busy-cli-exit || nb_fail shrink-busy-cli-exit "exit not 1"
# Bad input: a documented errno, nothing changes.
if echo nonsense >"$SYS/pool_mb" 2>/dev/null; then nb_fail pool-mb-bad-input "accepted"
else nb_pass pool-mb-bad-input; fi
# More than the node has: it grows by what the node can spare and keeps its margin (1/8 of its
# memory free; MemFree may dip below by the tolerance as per-CPU lists refill).
echo 1000000000 >"$SYS/pool_mb"
dmesg | tail -n 2
got_mb=$(cat "$SYS/pool_mb") free_kb=$(nb_node_free_kb "$A") total_kb=$(nb_node_mem_kb "$A")
echo "node$A: pool $got_mb MiB, MemFree $free_kb kB of $total_kb kB"
if [ "$got_mb" -gt "$RESIZE_MB" ] && [ "$got_mb" -lt 1000000000 ] &&
	[ "$free_kb" -ge $((total_kb / 8 - NB_FREE_TOL_KB)) ]; then nb_pass grow-beyond-node-keeps-margin
else nb_fail grow-beyond-node-keeps-margin "pool $got_mb MiB, MemFree $free_kb kB of $total_kb kB"; fi
# And once at the margin, a further grow gets nothing: ENOMEM, nothing changes.
if echo $((got_mb + 64)) >"$SYS/pool_mb" 2>/dev/null; then
	[ "$(cat "$SYS/pool_mb")" -gt "$got_mb" ] && nb_pass grow-at-margin ||
		nb_fail grow-at-margin "write succeeded, nothing added"
else
	[ "$(cat "$SYS/pool_mb")" -eq "$got_mb" ] && nb_pass grow-at-margin ||
		nb_fail grow-at-margin "refused, but the pool changed"
fi

touch /tmp/load.stop
wait $L
tail -n 1 /tmp/load.log
if grep -q FAILED /tmp/load.log; then nb_fail load-verified "$(grep FAILED /tmp/load.log | head -n 2)"
else nb_pass load-verified; fi
rounds=$(sed -n 's/^load rounds: //p' /tmp/load.log)
[ "${rounds:-0}" -gt 0 ] && nb_pass load-ran || nb_fail load-ran "no round"
grep -c '^migrated' /tmp/load.log
kill $H $Q
wait $H $Q 2>/dev/null
core_ok core-check-after-shrink
# With H gone, the load-time region can go too; then grow again and unload.
numabuddy pool --node "$A" --size 0
pool_is shrink-all-when-free 0
numabuddy pool --node "$A" --size "$RESIZE_MB"M
pool_is regrow "$RESIZE_MB"
# A grow comes in whole 4 MiB chunks: 1 MiB more is 4 MiB more, and that is success.
if numabuddy pool --node "$A" --size $((RESIZE_MB + 1))M; then nb_pass grow-rounds-to-chunk
else nb_fail grow-rounds-to-chunk "exit $?"; fi
pool_is grow-rounded-exact $((RESIZE_MB + 4))
# A pinnable block on grown memory does O_DIRECT; a shrink never gives back its frames while
# it is mapped or in flight (freed, a pipe holding its pages). Its file lives on B: needs two
# pool nodes (not `big`, whose pool is on node 0 alone).
if [ "$B" != "$A" ]; then
	nb_check poolpin-grown nb_poolpin grown "$A" "$B"
	pool_is poolpin-pool-back $((RESIZE_MB + 4))
fi
nb_check rmmod-resize rmmod numabuddy
if r=$(nb_free_restored "$before"); then nb_pass resize-pools-returned
else nb_fail resize-pools-returned "$r"; fi

nb_dmesg_clean
