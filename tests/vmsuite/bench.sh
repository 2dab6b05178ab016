# bench.sh - the benchmark suite (busybox sh, run as /suite.sh by scripts/bench.sh).
# Loads numabuddy with large pools, reserves hugetlb pages, runs the Google Benchmark programs
# and prints each one's JSON between markers on the console (the VM has no shared disk):
#   NB-BENCH-JSON-BEGIN <name>
#   ...JSON...
#   NB-BENCH-JSON-END <name>
# One test line per program: NB-TEST-PASS bench-<name> when it exited 0 and wrote JSON.
#
# Knobs from the kernel command line (run.sh --append):
#   nb_pool_mb=N       pool per node in MiB (default 512: half of a 4node node)
#   nb_bench_only=paired   the in-kernel and user benches, no contiguity (init_on_alloc=0 boot)
#   nb_bench_tag=T     suffix "-T" on every JSON name (which boot it came from)
#   nb_bench_smoke=1   a few iterations of everything (CI)
#   nb_bench_filter=RE passed as --benchmark_filter ("contig": the contiguity bench alone)
#   nb_hugetlb=N       2 MiB hugetlb pages to reserve on the bench node (default 160)
. /lib/nb/lib.sh
KO=/lib/nb/numabuddy.ko
POOL_MB=$(nb_cmdline_get nb_pool_mb || echo 512)
ONLY=$(nb_cmdline_get nb_bench_only || echo all)
TAG=$(nb_cmdline_get nb_bench_tag || echo "")
SMOKE=$(nb_cmdline_get nb_bench_smoke || echo 0)
FILTER=$(nb_cmdline_get nb_bench_filter || echo .)
HUGE_LOCAL=$(nb_cmdline_get nb_hugetlb || echo 160)
# The single-threaded cases run on CPU 1 (node 1): node 0 also holds the kernel and initramfs.
BENCH_CPU=1
export NB_BENCH_CPU=$BENCH_CPU
if [ "$SMOKE" = 1 ]; then
	export NB_BENCH_SMOKE=1
	MIN_TIME=0.001
else
	MIN_TIME=0.2
	# The kernel and user benches pair numabuddy with the kernel inside each case (paired.h:
	# a warm-up pair, then 15-25 pairs A B A B); only the contiguity bench repeats.
	CONTIG_REPEAT="--benchmark_repetitions=3"
fi

nb_check_topology
nb_dmesg_mark
# odirect_read reads a 64 MiB RAM disk; written through once so its pages exist. Written from
# CPU 2 so its pages sit on node 2: node 1 (the bench node) already holds the pool and the
# hugetlb reserve, and a disk there too left too little for the anonymous side (OOM kill).
if modprobe brd rd_nr=1 rd_size=65536 2>/dev/null; then
	taskset -c 2 dd if=/dev/zero of=/dev/ram0 bs=1M count=64 2>/dev/null
else
	echo "bench: no brd module: odirect_read cases will fail"
fi

if ! nb_check insmod nb_insmod "$KO" pool_mb="$POOL_MB" fd_quota_pct=100; then
	exit 1
fi
echo "bench: pool_mb=$POOL_MB smoke=$SMOKE only=$ONLY cmdline: $(cat /proc/cmdline)"
echo "bench: THP $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
cat /sys/kernel/debug/numabuddy/buddyinfo

# hugetlb_set NODE COUNT: reserve 2 MiB pages on a node; prints what the kernel gave.
hugetlb_set() {
	f=/sys/devices/system/node/node$1/hugepages/hugepages-2048kB/nr_hugepages
	[ -w "$f" ] || return 0
	echo "$2" >"$f"
	echo "bench: node$1 hugetlb 2M pages: $(cat "$f") (asked $2)"
}

# run_bench NAME PROG [ARGS...]: run with JSON to a file, print it between markers.
run_bench() {
	name=$1${TAG:+-$TAG}; shift
	out=/tmp/$name.json
	rm -f "$out"
	echo "bench: running $name: $*"
	# shellcheck disable=SC2086 # REPEAT is a list of flags
	"$@" ${REPEAT:-} --benchmark_min_time="$MIN_TIME" --benchmark_filter="${RUN_FILTER:-$FILTER}" \
		--benchmark_out="$out" --benchmark_out_format=json --benchmark_color=false
	rc=$?
	if [ -s "$out" ]; then
		# Keep kernel messages off the console while the JSON goes out, so none lands inside it.
		old=$(awk '{print $1}' /proc/sys/kernel/printk)
		echo 1 >/proc/sys/kernel/printk
		echo "NB-BENCH-JSON-BEGIN $name"
		cat "$out"
		echo "NB-BENCH-JSON-END $name"
		echo "$old" >/proc/sys/kernel/printk
	fi
	if [ "$rc" -eq 0 ] && [ -s "$out" ]; then nb_pass "bench-$name"
	else nb_fail "bench-$name" "exit $rc, json $(wc -c <"$out" 2>/dev/null || echo 0) bytes"; fi
}

# Contiguity first, while the bench node's memory is as the boot left it: the pool is taken
# as aligned 256 MiB runs (max_order=16, aligned_runs), which alloc_contig_range gives only
# where no unmovable kernel page sits. When this came after the other cases (2026-12-01), it
# refused both runs of the bench node (-EBUSY; the other nodes got theirs) and no 256 MiB
# block could exist. 4 MiB chunks rarely lie 64 in a row, and without a whole aligned run no
# compaction can make a 256 MiB block (docs/compaction.md). Contiguity depends on the pool's
# history too (which big blocks earlier cases split and the per-CPU caches still pin), so each
# fill level starts from a freshly loaded pool: what is measured is the fragmenting workload
# alone. The other cases then get the standard pool back.
case "$ONLY/$FILTER" in all/.|all/contig)
	for pct in 25 50 90; do
		rmmod numabuddy && nb_insmod "$KO" pool_mb="$POOL_MB" fd_quota_pct=100 max_order=16 \
			aligned_runs=$((POOL_MB / 256)) ||
			{ nb_fail "bench-contig$pct" "module reload"; continue; }
		echo "bench: aligned 256 MiB runs per node:" \
			$(cat /sys/module/numabuddy/pools/node*/aligned_runs)
		NB_FRAG_PCT=$pct REPEAT=${CONTIG_REPEAT:-} run_bench "contig$pct" nb_contig_bench
	done
	if ! { rmmod numabuddy && nb_insmod "$KO" pool_mb="$POOL_MB" fd_quota_pct=100; }; then
		nb_fail bench-reload "the standard pool after the contiguity bench"
		exit 1
	fi;;
esac

# pool_grow needs room on its node: it runs on its own below, with small pools. The filter
# "contig" runs the contiguity bench alone.
case "$FILTER" in
.) RUN_FILTER=-pool_grow run_bench kernel nb_kernel_bench;;
pool_grow|contig) ;;
*) run_bench kernel nb_kernel_bench;;
esac
bench_node=$(ls -d /sys/devices/system/cpu/cpu$BENCH_CPU/node[0-9]* 2>/dev/null)
bench_node=${bench_node##*node}
for n in $(nb_nodes); do
	if [ "$n" = "$bench_node" ]; then
		hugetlb_set "$n" "$HUGE_LOCAL"
	else
		hugetlb_set "$n" 48
	fi
done
grep -E 'MemFree|HugePages_(Total|Free)|AnonHugePages' /proc/meminfo
# The TLB pairs each run in a fresh process, with NUMA balancing off. Its scans of
# anonymous memory flush the TLB, and QEMU's TCG grows its own TLB only at a flush, so
# once the anon buffer had been scanned every later read in the process ran up to 7x
# faster: that once made numabuddy's buffers (never scanned) look 2-14x slower
# (docs/benchmarks.md). Numabuddy and the kernel's buffer alternate within each process.
if [ "$FILTER" = contig ]; then
	:
elif [ "$FILTER" = . ]; then
	RUN_FILTER=-tlb_random_read run_bench user nb_user_bench
	balancing=$(cat /proc/sys/kernel/numa_balancing 2>/dev/null)
	[ -n "$balancing" ] && echo 0 >/proc/sys/kernel/numa_balancing
	for c in anon-4K hugetlb-2M; do
		RUN_FILTER="^tlb_random_read/[^/]*/$c" run_bench "tlb-$c" nb_user_bench
	done
	[ -n "$balancing" ] && echo "$balancing" >/proc/sys/kernel/numa_balancing
else
	run_bench user nb_user_bench
fi
grep -E 'AnonHugePages' /proc/meminfo
for n in $(nb_nodes); do hugetlb_set "$n" 0; done
cat /sys/kernel/debug/numabuddy/buddyinfo
# pool_grow (issue 22): the bench node's pool grows by 256 MiB against nr_hugepages growing by
# as much. A 1 GiB node with a 512 MiB pool keeps barely 256 MiB above its margin (1/8 free),
# so the case runs on a reload with 128 MiB pools (the contiguity runs reload their own).
case "$FILTER" in .|pool_grow)
	if rmmod numabuddy && nb_insmod "$KO" pool_mb=128 fd_quota_pct=100; then
		RUN_FILTER=pool_grow run_bench grow nb_kernel_bench
	else
		nb_fail bench-grow "module reload"
	fi;;
esac

grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass core-check-after-bench ||
	nb_fail core-check-after-bench "$(cat /sys/kernel/debug/numabuddy/check)"
nb_check rmmod rmmod numabuddy
nb_dmesg_clean
