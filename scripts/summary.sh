# summary.sh - sourced by the test drivers: the closing line every one of them prints,
# "N passed, N failed" with ", N skipped" when something was skipped, and `counted`, which
# runs a driver that prints such a line and adds it to this one's totals.
#
# A skipped case is reported, never counted as passed. The drivers here run only cases this
# machine and its VMs can run, so any skip is also counted as a failure by the VM harness
# (tests/vm/run.sh), which says which case did not run.

NB_SUMMARY_RE='^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$'
passed=0 failed=0 skipped=0

# summary_add LINE: add one closing line's counts to the totals.
summary_add() {
	local p f s=0
	p=${1%% passed*}
	f=${1#*, }; f=${f%% failed*}
	case "$1" in *skipped) s=${1##*, }; s=${s%% skipped};; esac
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

# summary_line: the totals as a closing line.
summary_line() {
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
}

# summary_ok: the run passed: something passed, nothing failed.
summary_ok() { [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; }

# counted LABEL CMD...: run CMD (which closes with a summary line), print its output but
# that line, and add it to the totals; no summary line is a failure of LABEL.
counted() {
	local label=$1 out line
	shift
	echo "=== $label"
	out=$("$@" 2>&1)
	echo "$out" | grep -vE "$NB_SUMMARY_RE"
	line=$(echo "$out" | grep -E "$NB_SUMMARY_RE" | tail -n 1)
	if [ -z "$line" ]; then
		echo "NB-TEST-FAIL $label:harness no summary line"
		failed=$((failed + 1))
		return
	fi
	echo "--- $label: $line"
	summary_add "$line"
}
