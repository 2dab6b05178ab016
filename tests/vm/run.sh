#!/usr/bin/env bash
# Boots one NUMA topology under QEMU/TCG, runs the initramfs' suite and judges the serial log.
#
#   run.sh --topology NAME [--kver VER [--kernel FILE] [--moddir DIR]] [--timeout SEC]
#          [--initrd FILE] [--log FILE] [--append "extra cmdline"] [--allow REGEX]... [--verbose]
#          [--suite FILE] [--ko FILE]... [--bin FILE]... [--file SRC:DST]... [--kmod NAME]...
#
#   --topology NAME  one of tests/vm/topologies.sh (2node 4node cpuless big)
#   --kver VER       kernel to boot from /boot (default: $KVER, else scripts/kver.sh --boot)
#   --timeout SEC    wall-clock limit for the whole VM run (default 300); QEMU is killed after
#   --boot-timeout SEC  the guest must reach /init (NB-VM-BEGIN) within SEC (default 240, or
#                    $NB_BOOT_TIMEOUT), else QEMU is stopped and the boot counts as hung
#   --initrd FILE    initramfs from mkinitramfs.sh. Without it, the --suite/--ko/--bin/--file/
#                    --kmod options build one first, named after the log (LOG minus .log,
#                    plus .cpio.gz), so runs with distinct logs never share an image
#   --log FILE       serial log (default build/vm/<topology>-<kver>.log)
#   --append STR     extra kernel command line
#   --allow REGEX    ignore kernel-log lines matching REGEX (known-benign); repeatable
#   --allow-skip RE  a case whose name matches RE may skip; any other NB-TEST-SKIP fails the
#                    run (a case that did not run proves nothing); repeatable
#   --verbose        stream the console while it runs
#   --bzimage        boot /boot/vmlinuz-VER itself. By default run.sh boots the ELF vmlinux
#                    inside it (extracted once to build/vm/vmlinux-VER) through QEMU's PVH
#                    entry: same kernel, but TCG no longer spends ~5 s decompressing it
#   --kernel FILE    boot FILE (an ELF vmlinux with a PVH entry, booted as is, or a bzImage,
#                    booted like /boot's) instead of anything in /boot, e.g. a kernel built
#                    from source; --kver must then be its release (modules are checked
#                    against it, logs are named after it)
#   --moddir DIR     that kernel's module tree (what /lib/modules/VER is on its own system),
#                    for --kmod; e.g. a kernel unpacked into build/trixie/root
#   NB_VM_CPU        environment override of the QEMU -cpu model (default "max")
#
# Exit status 0 only when the VM reached NB-VM-END in time, printed at least one
# NB-TEST-PASS, no NB-TEST-FAIL, and the log has no line matching bad-patterns.txt.
# The last line printed is always the summary line (scripts/summary.sh); harness-level failures (timeout,
# kernel splat, missing end marker, no tests) are counted as failed tests named vm:*.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/topologies.sh"

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "run.sh: $*" >&2; exit 2; }

topo='' kver=${KVER:-} kimage='' timeout=300 boot_timeout=${NB_BOOT_TIMEOUT:-240} initrd='' log='' append='' verbose=0 bzimage=0 allows=() skips_ok=() mkargs=()
while [ $# -gt 0 ]; do
	case "$1" in
	--topology) topo=$2; shift 2;;
	--kver) kver=$2; shift 2;;
	--timeout) timeout=$2; shift 2;;
	--boot-timeout) boot_timeout=$2; shift 2;;
	--initrd) initrd=$2; shift 2;;
	--log) log=$2; shift 2;;
	--append) append=$2; shift 2;;
	--allow) allows+=("$2"); shift 2;;
	--allow-skip) skips_ok+=("$2"); shift 2;;
	--verbose|-v) verbose=1; shift;;
	--bzimage) bzimage=1; shift;;
	--kernel) kimage=$2; shift 2;;
	--moddir) mkargs+=("$1" "$2"); shift 2;;
	--suite|--ko|--bin|--file|--kmod) mkargs+=("$1" "$2"); shift 2;;
	-h|--help) usage; exit 0;;
	*) die "unknown option '$1' (see --help)";;
	esac
done
[ -n "$topo" ] || die "--topology is required (one of: $NB_TOPOLOGIES)"
nb_topology "$topo" || exit 2
[ -n "$kver" ] || kver=$("$root/scripts/kver.sh" --boot) || die "cannot determine the default kernel"
kernel=${kimage:-/boot/vmlinuz-$kver}
[ -r "$kernel" ] || die "no readable $kernel"
# A --kernel that is an ELF vmlinux (a source build's) is booted as given; a bzImage (a Debian
# kernel unpacked elsewhere) like /boot's, through its vmlinux: the decompressor would also
# place the kernel at a random physical address, and a kernel inside the aligned GiB that the
# big topology's pool needs fails the 1 GiB cases at random.
[ -n "$kimage" ] && readelf -h "$kimage" >/dev/null 2>&1 && bzimage=1
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout wants seconds"
[[ "$boot_timeout" =~ ^[0-9]+$ ]] || die "--boot-timeout wants seconds"

out=$root/build/vm
mkdir -p "$out"

# extract_vmlinux BZIMAGE DST: find the compressed payload by its magic (xz or zstd, the two
# Debian uses) and keep the first candidate that decompresses to an ELF image with a PVH entry
# note (Xen note type 0x12). Writes DST atomically so concurrent runs can share the cache.
extract_vmlinux() {
	local src=$1 dst=$2 tmp pos
	tmp=$(mktemp "$dst.XXXXXX")
	for pos in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00|\x28\xb5\x2f\xfd' "$src" | cut -d: -f1 | head -n 8); do
		{ tail -c +$((pos + 1)) "$src" | xz -dcq 2>/dev/null ||
		  tail -c +$((pos + 1)) "$src" | zstd -qdc 2>/dev/null; } >"$tmp"
		if readelf -n "$tmp" 2>/dev/null | grep -q 'Unknown note type: (0x00000012)'; then
			mv "$tmp" "$dst"
			return 0
		fi
	done
	rm -f "$tmp"
	return 1
}
if [ "$bzimage" -eq 0 ]; then
	vmlinux=$out/vmlinux-$kver
	if [ ! -s "$vmlinux" ] || [ "$kernel" -nt "$vmlinux" ]; then
		extract_vmlinux "$kernel" "$vmlinux" ||
			echo "vm: cannot extract a PVH vmlinux from $kernel, booting it as a bzImage" >&2
	fi
	[ -s "$vmlinux" ] && kernel=$vmlinux
fi
[ -n "$log" ] || log=$out/$topo-$kver.log
mkdir -p "$(dirname "$log")"
if [ -z "$initrd" ]; then
	[ ${#mkargs[@]} -gt 0 ] || die "give --initrd FILE or --suite FILE (and --ko/--bin/...)"
	initrd=${log%.log}.cpio.gz
	# A module built for another kernel only fails inside the VM as "Invalid module format";
	# catch that before spending a boot on it.
	for ((i = 0; i < ${#mkargs[@]}; i += 2)); do
		[ "${mkargs[i]}" = --ko ] || continue
		vm=$(modinfo -F vermagic "${mkargs[i + 1]}" 2>/dev/null | cut -d' ' -f1)
		[ "$vm" = "$kver" ] || die "${mkargs[i + 1]} is built for '${vm:-?}', booting $kver"
	done
	"$here/mkinitramfs.sh" --out "$initrd" --kver "$kver" "${mkargs[@]}" || die "initramfs build failed"
elif [ ${#mkargs[@]} -gt 0 ]; then
	die "--initrd excludes --suite/--ko/--bin/--file/--kmod/--moddir"
fi
[ -r "$initrd" ] || die "no readable initrd $initrd"

# panic_on_warn/oops=panic/softlockup_panic turn the first splat into a panic, panic=-1
# reboots at once and -no-reboot turns that into a QEMU exit: a broken kernel ends the run
# quickly instead of limping on to the timeout. The nb_* words tell the guest the topology.
# no_timer_check: early boot waits a few ms of guest time for a timer interrupt through the
# IO-APIC; a TCG vCPU starved by a busy host misses that window and the kernel panics with
# "IO-APIC + timer doesn't work!" (2 of ~100 boots during a 10x suite run on a host at load
# 13-17). KVM guests skip the check for the same reason.
cmdline="console=ttyS0,115200 panic_on_warn=1 oops=panic softlockup_panic=1 panic=-1"
cmdline+=" no_timer_check"
cmdline+=" $TOPO_EXPECT${append:+ $append}"

qemu=(qemu-system-x86_64 -accel tcg -machine pc -cpu "${NB_VM_CPU:-max}" -m "${TOPO_MEM_MB}M"
      "${TOPO_ARGS[@]}" -nographic -no-reboot -net none
      -kernel "$kernel" -initrd "$initrd" -append "$cmdline")

echo "vm: $topo ($TOPO_DESC) kernel $kver, timeout ${timeout}s"
echo "vm: $(printf '%q ' "${qemu[@]}")"
: >"$log"
rm -f "$log.boot-failed"
start=$(date +%s.%N)
# boot_once: one QEMU run into $log; sets qrc, and hung=1 when the guest did not reach /init
# within $boot_timeout (QEMU stopped then).
boot_once() {
	# -k: QEMU ignoring SIGTERM (stuck in TCG) still dies. stdin from /dev/null so the
	# -nographic monitor multiplexer never steals the terminal.
	timeout -k 5 "$timeout" "${qemu[@]}" </dev/null >"$log" 2>&1 &
	qpid=$!
	rm -f "$log.hung"
	(
		for ((t = 0; t < boot_timeout; t++)); do
			kill -0 "$qpid" 2>/dev/null && ! grep -q 'NB-VM-BEGIN' "$log" || exit 0
			sleep 1
		done
		: >"$log.hung"
		kill "$qpid" 2>/dev/null # timeout passes SIGTERM on to QEMU
	) &
	wdpid=$!
	# If we are interrupted, take the VM down with us instead of leaving it to its timeout.
	trap 'kill "$qpid" 2>/dev/null; echo "vm: interrupted, QEMU stopped; log $log" >&2; exit 130' INT TERM HUP
	tailpid=
	if [ "$verbose" -eq 1 ]; then
		tail -n +1 -f --pid="$qpid" "$log" &
		tailpid=$!
	fi
	wait "$qpid"
	qrc=$?
	kill "$wdpid" 2>/dev/null
	wait "$wdpid" 2>/dev/null
	trap - INT TERM HUP
	[ -n "$tailpid" ] && wait "$tailpid" 2>/dev/null
	hung=0
	[ -e "$log.hung" ] && hung=1
	rm -f "$log.hung"
}
boot_once
# A failed boot that says nothing about the module is booted again, once, said loudly, its
# first log kept:
# - QEMU 7.2's TCG itself once died of SIGSEGV 3 s into a boot, the guest still enumerating
#   PCI (CI, bench smoke; host dmesg: "qemu-system-x86[...]: segfault"). The guest's own
#   splats and hangs end QEMU normally (panic -> -no-reboot -> exit 0) or by the timeout
#   (124/137): only SIGSEGV/SIGBUS/SIGABRT/SIGILL of QEMU counts here.
# - The kernel oopsed before /init printed NB-VM-BEGIN, so before any module or test ran:
#   the debug kernel under multi-threaded TCG died of "int3: 0000" in boot-time static-key
#   patching (a DO_ONCE key turned off by a workqueue while another vCPU ran the site), in
#   CI and in a local run of test-debug: the emulator does not keep x86's cross-modifying
#   code rules (text_poke_bp) as hardware does. Any splat after NB-VM-BEGIN still fails.
# - The kernel hung before /init: the debug kernel under TCG stopped at "Running RCU-tasks
#   wait API self tests", 4 s into its boot, in CI; without this it waited out the whole
#   run's timeout (20 min).
retry=
[ "$hung" = 1 ] && retry="the kernel did not reach /init within ${boot_timeout}s (a hang while booting, before any module or test ran)"
case "$qrc" in
132 | 134 | 135 | 139) retry="QEMU itself died of signal $((qrc - 128)) (an emulator crash, not a guest failure)";;
0)
	if [ -z "$retry" ] && ! tr -d '\r' <"$log" | grep -q '^NB-VM-BEGIN' &&
		first=$(tr -d '\r' <"$log" | grep -m1 -E -f "$here/bad-patterns.txt"); then
		retry="the kernel crashed while booting, before /init ran (no module or test had run): $first"
	fi;;
esac
if [ -n "$retry" ]; then
	mv "$log" "$log.boot-failed"
	echo "vm: $retry; booting once more, first log $log.boot-failed"
	boot_once
fi
elapsed=$(echo "$(date +%s.%N) - $start" | bc)

# Judge a CR-free copy: the serial console ends lines with \r\n.
clean=$(tr -d '\r' <"$log")
. "$root/scripts/summary.sh"
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
# skip_allowed NAME: the run was told this case may skip.
skip_allowed() {
	local re
	for re in "${skips_ok[@]}"; do [[ "$1" =~ $re ]] && return 0; done
	return 1
}

while IFS= read -r line; do
	case "$line" in
	NB-TEST-PASS\ *) echo "PASS ${line#NB-TEST-PASS }"; passed=$((passed + 1));;
	NB-TEST-FAIL\ *) fail "${line#NB-TEST-FAIL }";;
	NB-TEST-SKIP\ *)
		line=${line#NB-TEST-SKIP }
		echo "SKIP $line"
		skipped=$((skipped + 1))
		skip_allowed "${line%% *}" || fail "vm:required-skip ${line%% *} did not run: ${line#* }";;
	esac
done < <(grep -o 'NB-TEST-\(PASS\|FAIL\|SKIP\) .*' <<<"$clean")

if [ "$hung" = 1 ]; then
	fail "vm:boot-hang the kernel did not reach /init within ${boot_timeout}s"
elif [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	fail "vm:timeout QEMU killed after ${timeout}s (hang)"
elif [ "$qrc" -ne 0 ]; then
	fail "vm:qemu-exit QEMU exited with status $qrc: $(grep -m1 '^qemu-system' <<<"$clean")"
fi

bad=$(grep -E -f "$here/bad-patterns.txt" <<<"$clean")
for re in "${allows[@]}"; do
	[ -n "$bad" ] && bad=$(grep -Ev -- "$re" <<<"$bad")
done
if [ -n "$bad" ]; then
	fail "vm:kernel-log $(wc -l <<<"$bad") bad line(s), first: $(head -n1 <<<"$bad")"
	head -n 10 <<<"$bad" | sed 's/^/  | /'
fi

grep -q '^NB-VM-END$' <<<"$clean" || fail "vm:no-end-marker NB-VM-END never printed (crash, panic or hang)"
[ $((passed + failed)) -gt 0 ] || fail "vm:no-tests the suite reported no test"

uptime=$(sed -n 's/^NB-VM-UPTIME //p' <<<"$clean" | tail -n1)
printf 'vm: wall %.1fs (QEMU start to exit), guest uptime at end %ss\n' "$elapsed" "${uptime:-?}"
echo "vm: log $log"
summary_line
[ "$failed" -eq 0 ]
