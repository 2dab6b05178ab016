#!/bin/sh
# kver.sh [FLAVOUR] - print the kernel version numabuddy builds and tests against.
#   (none)   the one Debian's linux-headers-amd64 metapackage depends on (Debian 12: 6.1)
#   6.12     the one linux-headers-6.12-amd64 depends on
#   6.12-rt  the one linux-headers-6.12-rt-amd64 depends on
#   trixie, trixie-bpo, trixie-bpo-rt
#            Debian 13's kernel, and trixie-backports' newest and its PREEMPT_RT flavour:
#            the ones the trixie root holds (scripts/trixie-root.sh writes build/trixie/kernels)
#   --boot   the kernel the VM tests boot by default: $KVER when set, else the default above,
#            which must then be installed in /boot
# Debian moves the ABI number, so no version is ever written down anywhere. Without the
# metapackage, falls back to the newest installed headers; with no headers at all it fails
# (never uname -r: the running kernel may have no headers, and a build for it would land in
# another build/module/KVER/ than the one the tests look in).
if [ "${1:-}" = --boot ]; then
	[ -z "${KVER:-}" ] || { echo "$KVER"; exit 0; }
	v=$("$0") || exit 1
	[ -e "/boot/vmlinuz-$v" ] || {
		echo "kver.sh: the default kernel is $v but /boot/vmlinuz-$v is missing" >&2
		exit 1
	}
	echo "$v"
	exit 0
fi
case "${1:-}" in
trixie | trixie-bpo | trixie-bpo-rt)
	v=$(awk -v f="$1" '$1 == f { print $2 }' "$(dirname "$0")/../build/trixie/kernels" 2>/dev/null)
	[ -n "$v" ] || { echo "kver.sh: no $1 kernel: run scripts/trixie-root.sh" >&2; exit 1; }
	echo "$v"
	exit 0
	;;
esac
meta=linux-headers-${1:+$1-}amd64
v=$(dpkg-query -W -f='${Depends}' "$meta" 2>/dev/null |
	sed -n 's/^linux-headers-\([^ ,]*\).*/\1/p')
if [ -z "$v" ] && [ -n "$1" ]; then
	echo "kver.sh: $meta is not installed" >&2
	exit 1
fi
if [ -z "$v" ]; then
	v=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sed 's|.*/linux-headers-||' |
		sort -V | tail -n 1)
fi
if [ -z "$v" ]; then
	echo "kver.sh: no kernel headers installed (scripts/deps.sh build installs them)" >&2
	exit 1
fi
echo "$v"
