# demo.sh - what `make demo` shows: per-node pools, and live allocations landing on each node.
. /lib/nb/lib.sh
say() { echo; echo "### $*"; }

say "numabuddy demo on $(nbl_node_count) NUMA nodes (kernel $(uname -r))"
say "insmod numabuddy.ko pool_mb=256   (256 MiB reserved on every node at load)"
nb_insmod /lib/nb/numabuddy.ko pool_mb=256 || { nb_fail demo-load "insmod failed"; exit 1; }
numabuddy version
say "pools before any allocation"
numabuddy stats

say "two processes allocate: 64 MiB of 2 MiB pages bound to node 0, 32 MiB bound to node 1"
numabuddy alloc --node 0 --policy bind --size 64M --huge 2M --touch --hold 20 &
p0=$!
numabuddy alloc --node 1 --policy bind --size 32M --touch --hold 20 &
p1=$!
sleep 4
say "pools while they hold their blocks"
numabuddy stats
for p in $p0 $p1; do
	for f in /proc/$p/fdinfo/*; do grep -q numabuddy "$f" 2>/dev/null && { echo "pid $p ${f##*/}:"; grep numabuddy "$f"; }; done
done
say "buddy allocator state (debugfs: the guide's buddy_debug_print)"
cat /sys/kernel/debug/numabuddy/buddyinfo

say "migrate a live block between nodes"
numabuddy migrate --size 4M --node 0 --to 1

kill $p0 $p1 2>/dev/null
wait
say "after the processes exit, every frame is back"
numabuddy stats
rmmod numabuddy && nb_pass demo || nb_fail demo "rmmod failed"
