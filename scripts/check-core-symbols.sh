#!/bin/sh
# check-core-symbols.sh DIR - link every C++ object of mm_core into one relocatable object and
# fail unless what it still needs from outside is only env.h (nb_env_*), mem*, and the hooks
# that the kernel's own compiler flags emit (stack protector, fentry, retpoline/return thunks,
# KASAN's __asan_* on a KASAN kernel).
set -e
dir=${1:-mm_core}
objs=$(ls "$dir"/*.o 2>/dev/null || true)
[ -n "$objs" ] || { echo "check-core-symbols: no objects in $dir" >&2; exit 1; }
tmp=$(mktemp --suffix=.o)
trap 'rm -f "$tmp"' EXIT
ld -r -o "$tmp" $objs
bad=$(nm -u "$tmp" | awk '{print $2}' | grep -vE \
	'^(nb_env_[a-z_]+|memcpy|memset|memmove|__stack_chk_fail|__fentry__|__x86_return_thunk|__x86_indirect_thunk_[a-z0-9]+|__x86_indirect_call_thunk_[a-z0-9]+|__asan_[a-z0-9_]+)$' || true)
if [ -n "$bad" ]; then
	echo "check-core-symbols: mm_core needs symbols outside env.h and mem*:" $bad >&2
	exit 1
fi
echo "check-core-symbols: mm_core needs only:" $(nm -u "$tmp" | awk '{print $2}' | sort -u)
