#!/usr/bin/env bash
# test-hosted.sh - the host half of `make test`: mm_core under ASan+UBSan, TSan and clang's
# thread-safety analysis, the core fuzzer for a bounded time, and the user-space library and
# CLI tests. Each part prints its own runner's summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
make -C "$root/tests" all
make -C "$root/userspace" BUILD="$root/build/userspace" test
