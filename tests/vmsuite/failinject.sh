# failinject.sh - VM suite for the debug kernel (CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAILSLAB):
# kernel allocations fail on purpose, and every failure must come out as a clean errno or
# SIGBUS, the pools must come back exact and the log must stay clean.
#   1. nb_failinj: ALLOC, mmap, touch, RESERVE + first touch, MIGRATE, FREE with
#      fail_page_alloc and failslab failing a share of that process's allocations.
#   2. insmod with the Nth allocation of the module's init failing (init_fail_nth=N, the
#      counter behind /proc/self/fail-nth that syzkaller uses, started at init so the kernel
#      loader's own allocations are not hit: when one of those fails, 6.1's jump_label
#      notifier WARNs), for N from 1 up: a refused load leaves no module and every node's
#      memory as before; a load that succeeds passes mm_core's check and unloads.
# Knobs on the kernel command line: nb_fi_rounds=R (nb_failinj rounds, default 300),
# nb_fi_pct=P (injection probability in percent, default 5), nb_fi_max_nth=N (default 3000).
. /lib/nb/lib.sh
KO=/lib/nb/numabuddy.ko
ROUNDS=$(nb_cmdline_get nb_fi_rounds || echo 300)
PCT=$(nb_cmdline_get nb_fi_pct || echo 5)
MAX_NTH=$(nb_cmdline_get nb_fi_max_nth || echo 3000)
FI=/sys/kernel/debug

nb_check_topology
nb_dmesg_mark
if [ ! -d $FI/fail_page_alloc ] || [ ! -d $FI/failslab ]; then
	nb_fail failinject-available "no fail_page_alloc/failslab in debugfs (not the debug kernel?)"
	exit 1
fi

# fi_set PERCENT: both injectors fail PERCENT% of the allocations of marked tasks only
# (task-filter: /proc/PID/make-it-fail), sleeping and any-order allocations included;
# verbose 0 (a stack dump per injected failure would drown the console and match
# "Call Trace"). fail-nth works whatever the probability.
fi_set() {
	for d in fail_page_alloc failslab; do
		echo Y >$FI/$d/task-filter
		echo "$1" >$FI/$d/probability
		echo 1 >$FI/$d/interval
		echo -1 >$FI/$d/times
		echo 0 >$FI/$d/verbose
		echo N >$FI/$d/ignore-gfp-wait
	done
	echo N >$FI/fail_page_alloc/ignore-gfp-highmem
	echo 0 >$FI/fail_page_alloc/min-order
}
fi_set 0
loaded() { grep -q '^numabuddy ' /proc/modules; }
core_ok() { grep -q '^ok' /sys/kernel/debug/numabuddy/check; }

# --- 1. operations under probabilistic injection --------------------------------------------
# First, while node 0 is as the boot left it: KASAN's shadow leaves node 0 of the debug
# topology ~250 MiB free, 128 of which the module must leave. After part 2's ~40 loads and
# unloads (KASAN's quarantine holding freed slabs, page_owner's stacks) a 32 MiB load was
# refused in CI: "node 0: got 12 of 32 MiB". 32 MiB per node: blocks here are at most 4 MiB.
# Compacted first, as an admin would before a load; a refusal fails with the module's reason.
before=$(nb_free_snapshot)
echo 1 >/proc/sys/vm/compact_memory
if nb_insmod "$KO" pool_mb=32 fd_quota_pct=100; then
	nb_pass fi-insmod
else
	nb_fail fi-insmod "refused: $(dmesg | grep 'numabuddy:' | tail -n 2 | tr '\n' ' ')"
	cat /proc/buddyinfo
	exit 1
fi
shape_before=$(nb_fuzz --pool-shape)
fi_set "$PCT"
nb_failinj "$ROUNDS" "$(cut -d. -f1 /proc/uptime)"
rc=$?
fi_set 0
[ "$rc" -eq 0 ] && nb_pass fi-ops-clean || nb_fail fi-ops-clean "nb_failinj exited $rc"
nb_check fi-pools-free nb_fuzz --pool-check
shape_after=$(nb_fuzz --pool-shape)
if [ -n "$shape_before" ] && [ "$shape_before" = "$shape_after" ]; then nb_pass fi-pools-same-shape
else nb_fail fi-pools-same-shape "before: $(echo $shape_before) / after: $(echo $shape_after)"; fi
core_ok && nb_pass fi-core-check || nb_fail fi-core-check "$(cat /sys/kernel/debug/numabuddy/check)"
nb_check fi-rmmod rmmod numabuddy
if r=$(nb_free_restored "$before"); then nb_pass fi-memfree-restored; else nb_fail fi-memfree-restored "$r"; fi

# --- 2. insmod, failing the Nth allocation ---------------------------------------------------
before=$(nb_free_snapshot)
# The parameter exists only in a module built for a CONFIG_FAULT_INJECTION kernel.
nb_check fi-insmod-param nb_insmod "$KO" pool_mb=16 init_fail_nth=0 || exit 1
rmmod numabuddy
n=1 refused=0 loads=0 nodebugfs=0 bad=0
while [ "$n" -le "$MAX_NTH" ]; do
	if insmod $KO pool_mb=16 init_fail_nth=$n 2>/dev/null; then
		loads=$((loads + 1))
		# A failed debugfs file is not a failed load (the kernel's rule: debugfs errors are
		# ignored); the module then runs without its check file.
		if [ ! -e /sys/kernel/debug/numabuddy/check ]; then
			nodebugfs=$((nodebugfs + 1))
		elif ! core_ok; then
			nb_fail "fi-insmod-nth$n-core-check" "$(cat /sys/kernel/debug/numabuddy/check)"
			bad=1
		fi
		rmmod numabuddy || { nb_fail "fi-insmod-nth$n-rmmod" "rmmod failed"; bad=1; }
	else
		refused=$((refused + 1))
		if loaded; then
			nb_fail "fi-insmod-nth$n" "insmod failed but the module is loaded"
			rmmod numabuddy
			bad=1
		fi
	fi
	if ! r=$(nb_free_restored "$before"); then
		nb_fail "fi-insmod-nth$n-memory" "$r"
		bad=1
		before=$(nb_free_snapshot)
	fi
	# Every N up to 16, then steps of 1/4: the loader's allocations come first, the pools'
	# and mm_core's metadata after them.
	if [ "$n" -lt 16 ]; then n=$((n + 1)); else n=$((n + n / 4)); fi
done
echo "failinject.sh: insmod with fail-nth 1..$n: $refused refused, $loads loaded ($nodebugfs without debugfs files)"
# Every load, failed or not, left the module and memory as they must be; the early failures
# (mm_core's metadata, the device) refuse the load and the late ones (past the last
# allocation) do not, so both must have happened.
[ "$loads" -gt 0 ] && [ "$refused" -gt 0 ] && [ "$bad" -eq 0 ] && nb_pass fi-insmod-clean ||
	nb_fail fi-insmod-clean "refused $refused, loaded $loads, bad $bad"

# An allocation failure the kernel's own code does not mark __GFP_NOWARN prints warn_alloc's
# report: "<task>: vmalloc error: ..." or "page allocation failure", a "Call Trace:" and
# Mem-Info. Injected here on purpose (the loader's vmalloc of the .ko, seen first), so those
# "Call Trace:" lines are not failures of this run; every real report keeps its own header
# line (BUG:, WARNING:, Bad page state, ...) and still fails it. run.sh gets the same --allow
# (scripts/test-debug.sh, docs/reliability.md).
_hits=$(dmesg | tail -n +$((NB_DMESG_MARK + 1)) | grep -v '\] Call Trace:$' | grep -E -f "$NB_BAD_PATTERNS")
if [ -z "$_hits" ]; then nb_pass fi-dmesg-clean
else echo "$_hits" | head -n 20; nb_fail fi-dmesg-clean "kernel log: $(echo "$_hits" | head -n 1)"; fi
echo "failinject.sh: warn_alloc reports of injected failures: $(dmesg | grep -cE 'vmalloc error|page allocation failure')"
