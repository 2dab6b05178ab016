#!/bin/sh
# check-cxx-object.sh NM OBJDUMP FILE.o - fail if a C++ object of mm_core could misbehave in the
# kernel: constructor/destructor tables (the 6.1 module loader ignores .init_array, so a global
# constructor would silently never run) or an undefined symbol the kernel does not provide.
# Allowed: env.h functions (nb_env_*), other mm_core objects (nb_*, namespace nb = _ZN2nb /
# _ZNK2nb), mem* and the hooks the kernel's own flags make the compiler emit.
# (__asan_*: KASAN reports and checks, on a KASAN kernel only).
nm=$1 objdump=$2 obj=$3
status=0
bad_sections=$($objdump -h "$obj" | awk '{print $2}' | grep -E '^\.(init_array|fini_array|ctors|dtors)' || true)
if [ -n "$bad_sections" ]; then
	echo "$obj: constructor/destructor tables are not allowed: $bad_sections" >&2
	status=1
fi
bad_syms=$($nm -u "$obj" | awk '{print $2}' | grep -vE \
	'^(nb_[A-Za-z0-9_]+|_ZN2nb.*|_ZNK2nb.*|memcpy|memset|memmove|__stack_chk_fail|__fentry__|__x86_return_thunk|__x86_indirect_thunk_[a-z0-9]+|__x86_indirect_call_thunk_[a-z0-9]+|__asan_[a-z0-9_]+)$' || true)
if [ -n "$bad_syms" ]; then
	echo "$obj: references symbols outside env/mm_core/mem*:" $bad_syms >&2
	status=1
fi
exit $status
