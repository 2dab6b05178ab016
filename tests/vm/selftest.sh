#!/usr/bin/env bash
# Proves run.sh fails when it must and passes when it should:
#   warn     a module whose init WARNs          -> run fails, kernel-log failure reported
#   hang     a suite that never ends             -> run fails on the timeout, in time
#   pass     one passing test                    -> run passes with "1 passed, 0 failed"
#   fail     one NB-TEST-FAIL line               -> run fails with "1 passed, 1 failed"
#   skip     a pass and a skip                   -> run fails with "1 passed, 1 failed, 1 skipped"
#   skipok   the same with --allow-skip          -> run passes with "1 passed, 0 failed, 1 skipped"
#   empty    a suite that reports nothing        -> run fails (zero tests)
#   nosuite  an initramfs without /suite.sh      -> says so, still ends, run fails (zero tests)
#   crash1   QEMU itself dies of SIGSEGV once    -> booted again, says so, run passes
#   crash2   QEMU dies of SIGSEGV twice          -> run fails with QEMU's exit status
#   boot1    the kernel panics before /init once -> booted again, says so, run passes
#   boot2    it panics before /init twice        -> run fails on the kernel log
#   hang1    the kernel hangs before /init once  -> stopped at --boot-timeout, booted again,
#                                                   run passes
#   hang2    it hangs before /init twice         -> run fails with vm:boot-hang, in time
#
#   selftest.sh [--kver VER] [--topology NAME] [--hang-timeout SEC]
#
# Prints NB-TEST-PASS/FAIL per case and "N passed, N failed"; exits non-zero when the harness
# misbehaved. Work files go to build/vm/selftest/.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

kver=${KVER:-} topo=2node hang_timeout=45
while [ $# -gt 0 ]; do
	case "$1" in
	--kver) kver=$2; shift 2;;
	--topology) topo=$2; shift 2;;
	--hang-timeout) hang_timeout=$2; shift 2;;
	-h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
	*) echo "selftest: unknown option '$1'" >&2; exit 2;;
	esac
done
[ -n "$kver" ] || kver=$("$root/scripts/kver.sh" --boot) || exit 2
work=$root/build/vm/selftest
mkdir -p "$work"

passed=0 failed=0
ok() { echo "NB-TEST-PASS selftest-$1"; passed=$((passed + 1)); }
bad() { echo "NB-TEST-FAIL selftest-$1 $2"; failed=$((failed + 1)); }

# run_case NAME SUITE-BODY [run.sh args...]: writes the suite, runs the VM; leaves the exit
# status in $rc, the output in $outp and the wall time in $secs.
run_case() {
	local name=$1 body=$2; shift 2
	printf '. /lib/nb/lib.sh\n%s\n' "$body" >"$work/$name.sh"
	local t0=$SECONDS
	outp=$("$here/run.sh" --topology "$topo" --kver "$kver" --log "$work/$name.log" "$@" 2>&1)
	rc=$?
	secs=$((SECONDS - t0))
	printf '%s\n' "$outp" | sed "s/^/  [$name] /" | grep -v '\] vm: qemu'
}
last_line() { printf '%s\n' "$outp" | tail -n1; }

# warn: needs a module built against the kernel we boot.
ko=$work/$kver/nb_warn.ko
if make -s -C "$here/selftest" KVER="$kver" OUT="$work/$kver" >"$work/build-$kver.txt" 2>&1 && [ -f "$ko" ]; then
	run_case warn 'nb_insmod /lib/nb/nb_warn.ko; nb_pass survived-warn' --timeout 120 \
		--suite "$work/warn.sh" --ko "$ko"
	if [ "$rc" -ne 0 ] && grep -q 'FAIL vm:kernel-log.*WARNING:' <<<"$outp"; then ok warn
	else bad warn "run.sh exit $rc; kernel WARN not reported as a failure"; fi
else
	cat "$work/build-$kver.txt"
	bad warn "cannot build nb_warn.ko for $kver"
fi

run_case hang 'nb_pass before-hang; while :; do sleep 1; done' --timeout "$hang_timeout" \
	--suite "$work/hang.sh"
if [ "$rc" -ne 0 ] && grep -q 'FAIL vm:timeout' <<<"$outp" && [ "$secs" -le $((hang_timeout + 15)) ]; then
	ok hang
else
	bad hang "run.sh exit $rc after ${secs}s (timeout ${hang_timeout}s); hang not caught in time"
fi

run_case pass 'nb_pass trivial' --timeout 120 --suite "$work/pass.sh"
if [ "$rc" -eq 0 ] && [ "$(last_line)" = "1 passed, 0 failed" ]; then ok pass
else bad pass "run.sh exit $rc, last line '$(last_line)'"; fi

run_case fail 'nb_pass fine; nb_fail deliberate "selftest failure"' --timeout 120 --suite "$work/fail.sh"
if [ "$rc" -ne 0 ] && [ "$(last_line)" = "1 passed, 1 failed" ]; then ok fail
else bad fail "run.sh exit $rc, last line '$(last_line)'"; fi

run_case skip 'nb_pass fine; nb_skip wanted "cannot run here"' --timeout 120 --suite "$work/skip.sh"
if [ "$rc" -ne 0 ] && [ "$(last_line)" = "1 passed, 1 failed, 1 skipped" ] &&
   grep -q 'FAIL vm:required-skip wanted' <<<"$outp"; then ok skip
else bad skip "run.sh exit $rc, last line '$(last_line)'; a skipped case was not a failure"; fi
run_case skipok 'nb_pass fine; nb_skip wanted "cannot run here"' --timeout 120 \
	--suite "$work/skipok.sh" --allow-skip '^want'
if [ "$rc" -eq 0 ] && [ "$(last_line)" = "1 passed, 0 failed, 1 skipped" ]; then ok skipok
else bad skipok "run.sh exit $rc, last line '$(last_line)'"; fi

run_case empty 'echo "this suite reports nothing"' --timeout 120 --suite "$work/empty.sh"
if [ "$rc" -ne 0 ] && grep -q 'FAIL vm:no-tests' <<<"$outp"; then ok empty
else bad empty "run.sh exit $rc; a suite without tests passed"; fi

"$here/mkinitramfs.sh" --out "$work/nosuite.cpio.gz" >/dev/null || bad nosuite "mkinitramfs failed"
run_case nosuite '' --timeout 120 --initrd "$work/nosuite.cpio.gz"
if [ "$rc" -ne 0 ] && grep -q 'FAIL vm:no-tests' <<<"$outp" &&
   tr -d '\r' <"$work/nosuite.log" | grep -q '^NB-VM-END$' &&
   grep -q 'suite.sh is missing' "$work/nosuite.log"; then ok nosuite
else bad nosuite "run.sh exit $rc; missing /suite.sh not reported or VM did not end"; fi

# crash1/crash2/boot1/boot2: a stand-in QEMU first in PATH fails its first NB_FAKE_TIMES runs
# as NB_FAKE says, then runs the real one. crash: it dies of SIGSEGV (QEMU 7.2's TCG once did
# in CI). panic: rdinit=/nb-missing joins the kernel command line: no /init, no root, "Kernel
# panic - not syncing: VFS" before NB-VM-BEGIN, as a boot-time oops of the kernel would.
# hang: the same and root=/dev/nb-missing rootwait: the kernel waits for that disk forever.
fake=$work/fake-qemu
mkdir -p "$fake"
cat >"$fake/qemu-system-x86_64" <<EOF
#!/bin/bash
n=\$(cat "$fake/count" 2>/dev/null || echo 0)
echo \$((n + 1)) >"$fake/count"
args=("\$@")
if [ "\$n" -lt "\$NB_FAKE_TIMES" ]; then
	[ "\$NB_FAKE" = crash ] && kill -SEGV \$\$
	extra=" rdinit=/nb-missing"
	[ "\$NB_FAKE" = hang ] && extra+=" root=/dev/nb-missing rootwait"
	for i in "\${!args[@]}"; do
		[ "\${args[i]}" = -append ] && args[i + 1]+="\$extra"
	done
fi
exec $(command -v qemu-system-x86_64) "\${args[@]}"
EOF
chmod +x "$fake/qemu-system-x86_64"
# fake_case NAME crash|panic|hang TIMES SUITE-BODY [run.sh args...]; boots says how often
# QEMU was started.
fake_case() {
	local name=$1 mode=$2 times=$3 body=$4
	shift 4
	rm -f "$fake/count"
	PATH=$fake:$PATH NB_FAKE=$mode NB_FAKE_TIMES=$times run_case "$name" "$body" --timeout 120 \
		--suite "$work/$name.sh" "$@"
	boots=$(cat "$fake/count")
}

fake_case crash1 crash 1 'nb_pass after-crash'
if [ "$rc" -eq 0 ] && [ "$(last_line)" = "1 passed, 0 failed" ] &&
   grep -q 'QEMU itself died of signal 11' <<<"$outp" && [ "$boots" = 2 ]; then ok crash1
else bad crash1 "run.sh exit $rc, last line '$(last_line)'; one QEMU crash not booted again"; fi
fake_case crash2 crash 2 'nb_pass never-runs'
if [ "$rc" -ne 0 ] && grep -q 'FAIL vm:qemu-exit QEMU exited with status 139' <<<"$outp" &&
   [ "$boots" = 2 ]; then ok crash2
else bad crash2 "run.sh exit $rc; a QEMU crashing twice was not a failure (or booted $boots times)"; fi

fake_case boot1 panic 1 'nb_pass after-boot-panic'
if [ "$rc" -eq 0 ] && [ "$(last_line)" = "1 passed, 0 failed" ] &&
   grep -q 'kernel crashed while booting, before /init ran' <<<"$outp" &&
   grep -q 'Kernel panic' "$work/boot1.log.boot-failed" && [ "$boots" = 2 ]; then ok boot1
else bad boot1 "run.sh exit $rc, last line '$(last_line)'; one boot-time panic not booted again"; fi
fake_case boot2 panic 2 'nb_pass never-runs'
if [ "$rc" -ne 0 ] && grep -q 'FAIL vm:kernel-log.*Kernel panic' <<<"$outp" && [ "$boots" = 2 ]; then ok boot2
else bad boot2 "run.sh exit $rc; a kernel panicking at every boot was not a failure (or booted $boots times)"; fi

fake_case hang1 hang 1 'nb_pass after-boot-hang' --boot-timeout 20
if [ "$rc" -eq 0 ] && [ "$(last_line)" = "1 passed, 0 failed" ] &&
   grep -q 'did not reach /init within 20s' <<<"$outp" && [ "$boots" = 2 ] && [ "$secs" -lt 90 ]; then ok hang1
else bad hang1 "run.sh exit $rc after ${secs}s, last line '$(last_line)'; a boot hang not stopped and booted again"; fi
fake_case hang2 hang 2 'nb_pass never-runs' --boot-timeout 20
if [ "$rc" -ne 0 ] && grep -q 'FAIL vm:boot-hang' <<<"$outp" && [ "$boots" = 2 ] && [ "$secs" -lt 90 ]; then ok hang2
else bad hang2 "run.sh exit $rc after ${secs}s; a kernel hanging at every boot was not a failure in time (or booted $boots times)"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
