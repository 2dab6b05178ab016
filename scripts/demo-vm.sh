#!/usr/bin/env bash
# demo-vm.sh - boot a 2-node VM, load numabuddy, show the pools and live allocations per node.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exec tests/vm/run.sh --topology "${TOPOLOGY:-2node}" --timeout 300 --verbose \
	--ko "${KO:-build/module/$(scripts/kver.sh)/numabuddy.ko}" --file build/userspace/numabuddy-static:/bin/numabuddy \
	--suite tests/vmsuite/demo.sh
