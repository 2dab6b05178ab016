#!/bin/sh
# check-cxx-object.sh - mm_core's C++ objects must be safe in the kernel: no constructor or
# destructor tables (the 6.1 module loader ignores .init_array, so a global constructor would
# silently never run), and nothing from outside but env.h (nb_env_*), mem*, and the hooks the
# kernel's own compiler flags emit (stack protector, fentry, retpoline/return thunks; since
# 6.13 x86-64's canary is a per-CPU variable that -mstack-protector-guard-symbol names
# __ref_stack_chk_guard; __asan_*: KASAN's checks, on a KASAN kernel only, where Kbuild
# instruments the core too). The one allow-list for Kbuild, the top Makefile and the hosted
# freestanding build.
#
#   check-cxx-object.sh NM OBJDUMP FILE.o   one object as Kbuild builds it; it may also use
#                                           other mm_core objects (nbc_*, namespace nb)
#   check-cxx-object.sh --core OBJ|DIR...   all of mm_core linked into one object: env and
#                                           mem* only (DIR: every *.o in it)
hooks='memcpy|memset|memmove|__stack_chk_fail|__ref_stack_chk_guard|__fentry__|__x86_return_thunk|__x86_indirect_thunk_[a-z0-9]+|__x86_indirect_call_thunk_[a-z0-9]+|__asan_[a-z0-9_]+'
status=0

# check OBJ ALLOWED-REGEX: tables and undefined symbols of one object.
check() {
	tables=$($objdump -h "$1" | awk '{print $2}' | grep -E '^\.(init_array|fini_array|ctors|dtors)' || true)
	if [ -n "$tables" ]; then
		echo "$1: constructor/destructor tables are not allowed: $tables" >&2
		status=1
	fi
	bad=$($nm -u "$1" | awk '{print $2}' | grep -vE "^($2)$" || true)
	if [ -n "$bad" ]; then
		echo "$1: references symbols outside env.h, mm_core and mem*:" $bad >&2
		status=1
	fi
}

if [ "$1" = --core ]; then
	shift
	nm=nm objdump=objdump
	objs=$(for a in "$@"; do if [ -d "$a" ]; then ls "$a"/*.o 2>/dev/null; else echo "$a"; fi; done)
	[ -n "$objs" ] || { echo "check-cxx-object: no mm_core objects in $*" >&2; exit 1; }
	tmp=$(mktemp --suffix=.o)
	trap 'rm -f "$tmp"' EXIT
	ld -r -o "$tmp" $objs
	check "$tmp" "nb_env_[a-z_]+|$hooks"
	[ "$status" -eq 0 ] &&
		echo "check-cxx-object: mm_core needs only:" $(nm -u "$tmp" | awk '{print $2}' | sort -u)
	exit $status
fi
nm=$1 objdump=$2
check "$3" "nbc_[A-Za-z0-9_]+|nb_env_[a-z_]+|_ZN2nb.*|_ZNK2nb.*|$hooks"
exit $status
