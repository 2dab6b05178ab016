# shellcheck shell=sh
# Test helpers for VM suites (busybox ash). Installed as /lib/nb/lib.sh; a suite starts with
#   . /lib/nb/lib.sh
#
# Protocol: one line per test on the console, parsed by the host (run.sh):
#   NB-TEST-PASS <name>
#   NB-TEST-FAIL <name> <reason>
#   NB-TEST-SKIP <name> <reason>      (reported, counted neither as passed nor failed)
# Names contain no whitespace. The host fails the run on any FAIL line.

NB_LIB=/lib/nb
NB_BAD_PATTERNS=$NB_LIB/bad-patterns.txt
NB_DMESG_MARK=0

nb_pass() { echo "NB-TEST-PASS $1"; }

nb_fail() {
	_n=$1; shift
	echo "NB-TEST-FAIL $_n ${*:-failed}"
}

nb_skip() {
	_n=$1; shift
	echo "NB-TEST-SKIP $_n ${*:-skipped}"
}

# nb_check NAME CMD...: pass when CMD exits 0. CMD's own output goes to the console.
nb_check() {
	_n=$1; shift
	"$@"
	_rc=$?
	if [ "$_rc" -eq 0 ]; then nb_pass "$_n"; else nb_fail "$_n" "exit $_rc: $*"; fi
	return "$_rc"
}

# nb_ramdisk: /dev/ram0 (4 MiB, brd) for the O_DIRECT cases, written through once so that its
# pages exist before any free-memory snapshot is taken. A kernel without the brd module (the
# debug kernel has no modules) skips it, and the O_DIRECT cases skip with it: the harness
# fails a run on any skip it was not told to allow.
nb_ramdisk() {
	if ! modprobe brd rd_nr=1 rd_size=4096 2>/dev/null; then
		nb_skip ramdisk "this kernel has no brd module"
		return 1
	fi
	nb_pass ramdisk
	dd if=/dev/zero of=/dev/ram0 bs=64k count=64 2>/dev/null
}

# nb_check_fails NAME CMD...: pass when CMD exits non-zero (expected refusals).
nb_check_fails() {
	_n=$1; shift
	if "$@"; then nb_fail "$_n" "unexpected success: $*"; return 1; fi
	nb_pass "$_n"
}

# nb_insmod PATH [PARAM=VALUE...]: load a module; on failure show why and return non-zero.
nb_insmod() {
	_ko=$1
	# Not "if insmod; then ...; fi; _rc=$?": after an if without else, $? is 0, and a failed
	# load returned success (the hostile suite's big load on the debug kernel "passed").
	insmod "$@" && return 0
	_rc=$?
	echo "nb_insmod: insmod $* failed ($_rc); last kernel messages:"
	dmesg | tail -n 20
	return "$_rc"
}

nb_rmmod() { rmmod "$1"; }

# Node helpers: nodes are named by their sysfs directory; ids need not be contiguous.
nb_nodes() {
	for _d in /sys/devices/system/node/node[0-9]*; do
		[ -d "$_d" ] && echo "${_d##*/node}"
	done
}

nb_node_count() { nb_nodes | wc -l; }

nb_node_cpus() { cat "/sys/devices/system/node/node$1/cpulist"; }

nb_node_mem_kb() { sed -n 's/.*MemTotal: *\([0-9]*\) kB/\1/p' "/sys/devices/system/node/node$1/meminfo"; }

# nb_node_range N: "0xSTART-0xEND" (end exclusive): the span of the node's populated zones in
# /proc/zoneinfo. Holes inside the span are included, so this is the extent, not the size.
nb_node_range() {
	# awk only finds the pfns: busybox awk formats %x through a 32-bit int.
	# shellcheck disable=SC2046 # two numbers, split on purpose
	set -- $(awk -v node="$1" '
		$1 == "Node" { cur = $2; sub(",", "", cur); next }
		cur != node { next }
		$1 == "spanned" { spanned = $2 }
		$1 == "start_pfn:" && spanned > 0 {
			end = $2 + spanned
			if (lo == "" || $2 < lo) lo = $2
			if (hi == "" || end > hi) hi = end
		}
		END { if (lo != "") print lo, hi }' /proc/zoneinfo)
	[ $# -eq 2 ] || { echo none; return 1; }
	printf '0x%x-0x%x\n' $(($1 * 4096)) $(($2 * 4096))
}

nb_print_topology() {
	echo "NB-VM topology: $(nb_node_count) node(s), cpus online $(cat /sys/devices/system/cpu/online)"
	for _n in $(nb_nodes); do
		echo "  node$_n: cpus=[$(nb_node_cpus "$_n")] MemTotal=$(nb_node_mem_kb "$_n") kB" \
		     "phys=$(nb_node_range "$_n") distance=[$(cat /sys/devices/system/node/node"$_n"/distance)]"
	done
	cat /sys/devices/system/node/node*/meminfo | grep MemTotal
}

# nb_cmdline_get KEY: value of KEY=... on the kernel command line (empty when absent).
nb_cmdline_get() {
	for _w in $(cat /proc/cmdline); do
		case "$_w" in "$1"=*) echo "${_w#*=}"; return 0;; esac
	done
	return 1
}

# nb_check_topology: compare what the kernel sees with what run.sh asked QEMU for
# (nb_nodes=, nb_cpuless=, nb_high=, nb_dist= on the command line). One test line per property.
nb_check_topology() {
	_want=$(nb_cmdline_get nb_nodes) || { nb_skip topology "no nb_nodes= on cmdline"; return 0; }
	_got=$(nb_node_count)
	if [ "$_got" = "$_want" ]; then nb_pass topology-nodes
	else nb_fail topology-nodes "want $_want nodes, kernel sees $_got"; fi

	_cpuless=$(nb_cmdline_get nb_cpuless | tr ',' ' ')
	_bad=
	for _n in $(nb_nodes); do
		_c=$(nb_node_cpus "$_n")
		case " $_cpuless " in
		*" $_n "*) [ -z "$_c" ] || _bad="$_bad node$_n(should be cpuless, has $_c)";;
		*) [ -n "$_c" ] || _bad="$_bad node$_n(no cpus)";;
		esac
	done
	if [ -z "$_bad" ]; then nb_pass topology-cpus; else nb_fail topology-cpus "$_bad"; fi

	for _n in $(nb_cmdline_get nb_high | tr ',' ' '); do
		_r=$(nb_node_range "$_n")
		if [ $((${_r%-*})) -ge $((1 << 32)) ]; then nb_pass "topology-node$_n-above-4g"
		else nb_fail "topology-node$_n-above-4g" "node$_n spans $_r"; fi
	done

	_dist=$(nb_cmdline_get nb_dist) || return 0
	_n=0 _bad=
	for _row in $(echo "$_dist" | tr '/' ' '); do
		_want=$(echo "$_row" | tr ',' ' ')
		_got=$(cat /sys/devices/system/node/node$_n/distance)
		[ "$_got" = "$_want" ] || _bad="$_bad node$_n:[$_got]!=[$_want]"
		_n=$((_n + 1))
	done
	if [ -z "$_bad" ]; then nb_pass topology-distance; else nb_fail topology-distance "$_bad"; fi
}

# nb_dmesg_mark: later nb_dmesg_clean calls look only at messages logged after this point.
nb_dmesg_mark() { NB_DMESG_MARK=$(dmesg | wc -l); }

# nb_dmesg_clean [NAME]: fail when the kernel log (since nb_dmesg_mark) has a line matching
# any pattern the host also fails on (bad-patterns.txt).
nb_dmesg_clean() {
	_n=${1:-dmesg-clean}
	_hits=$(dmesg | tail -n +$((NB_DMESG_MARK + 1)) | grep -E -f "$NB_BAD_PATTERNS")
	if [ -z "$_hits" ]; then nb_pass "$_n"; return 0; fi
	echo "$_hits" | head -n 20
	nb_fail "$_n" "kernel log: $(echo "$_hits" | head -n 1)"
	return 1
}

# Free memory per node, for checks that pools really go back to the kernel.
# nb_node_free_kb N: MemFree of node N in kB.
nb_node_free_kb() { sed -n 's/.*MemFree: *\([0-9]*\) kB/\1/p' "/sys/devices/system/node/node$1/meminfo"; }

# nb_node_free_or_kernel_kb N: MemFree plus free pages in per-CPU lists plus what the kernel
# keeps for itself per node (slab, page tables, kernel stacks). A test that forks and opens
# thousands of files grows those caches by megabytes and SLUB keeps them; a pool page that
# was never given back is in none of them, so this sum tells a leaked pool from cache growth.
# The per-CPU lists are the "count:" lines under each zone's pagesets in /proc/zoneinfo:
# free, but not in MemFree, and they grow with allocation traffic (after a fuzz run they held
# 40-70 MiB more than before insmod, which once looked like a leak: docs/reliability.md,
# finding 7).
# MemFree and the per-CPU counts are two reads, and pages moved between the buddy and the
# per-CPU lists in between are counted twice (a refill) or not at all (a drain). Drains come
# in bulk: sampling the sum in a loop around the hostile suite's memory hog caught one read
# 28 MiB below its neighbours (MemFree read before a drain, count: after it), and CI once
# failed a check 33 MiB short. So: the median of three reads, which one move cannot spoil.
nb_node_free_or_kernel_kb() {
	for _try in 1 2 3; do
		awk -v node="$1" '
			FILENAME != "/proc/zoneinfo" {
				if ($3 ~ /^(MemFree|Slab|PageTables|KernelStack):$/) kb += $4
				next
			}
			$1 == "Node" { cur = $2; sub(",", "", cur); next }
			cur == node && $1 == "count:" { kb += $2 * 4 }
			END { print kb }' "/sys/devices/system/node/node$1/meminfo" /proc/zoneinfo
	done | sort -n | sed -n 2p
}

# nb_free_snapshot: "node kB" lines of nb_node_free_or_kernel_kb; caches are dropped first so
# page-cache noise is not measured.
nb_free_snapshot() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for _n in $(nb_nodes); do echo "$_n $(nb_node_free_or_kernel_kb "$_n")"; done
}

# How far a node's free+kernel memory may be from its pre-insmod value after rmmod, in kB.
# With per-CPU lists counted, three fuzz rounds in one boot left <= 200 kB on any node; the
# rest is kernel noise (a direct-map page table split per module load, slab churn).
# Override with nb_free_tol_kb= on the kernel command line.
NB_FREE_TOL_KB=$(nb_cmdline_get nb_free_tol_kb || echo 2048)

# nb_free_taken SNAPSHOT KB NODE...: each NODE's free+kernel memory is at least KB less
# NB_FREE_TOL_KB below the snapshot: what taking a KB pool from it must do. MemFree alone
# cannot say this: it moves by megabytes while nothing is taken, as the per-CPU lists drain
# into it (on 6.12 they hold 5-10 MiB after the snapshot's drop_caches and decay into MemFree
# within seconds: a 64 MiB pool once looked like 58140 kB) and as SLUB frees RCU-deferred
# slabs. Both moves stay inside the sum; the pool leaves it. What else can leave or enter it
# in between (module text, a process's stack) is far below the tolerance.
nb_free_taken() {
	_snap=$1 _kb=$2
	shift 2
	_rc=0
	for _n in "$@"; do
		_was=$(echo "$_snap" | awk -v n="$_n" '$1 == n { print $2 }')
		_now=$(nb_node_free_or_kernel_kb "$_n")
		echo "node$_n: free+kernel $_was kB before, $_now kB now" >&2
		if [ $((_was - _now)) -lt $((_kb - NB_FREE_TOL_KB)) ]; then
			echo "node$_n: free+kernel dropped by $((_was - _now)) kB, want $_kb kB"
			_rc=1
		fi
	done
	return $_rc
}

# nb_free_restored SNAPSHOT: every node's free+kernel memory is back within NB_FREE_TOL_KB of
# the snapshot; otherwise says which node is short (stdout) and fails.
nb_free_restored() {
	echo "$1" | {
		_rc=0
		while read -r _n _kb; do
			_now=$(nb_node_free_or_kernel_kb "$_n")
			echo "node$_n: free+kernel $_kb kB before, $_now kB now" >&2
			if [ $((_kb - _now)) -gt "$NB_FREE_TOL_KB" ]; then
				echo "node$_n: free+kernel $_kb kB before, $_now kB after"
				_rc=1
			fi
		done
		return $_rc
	}
}
