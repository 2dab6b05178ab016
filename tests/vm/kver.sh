#!/bin/sh
# Prints the kernel version the VM tests boot by default: $KVER when set, else the project's
# default kernel (scripts/kver.sh: what Debian's metapackage points at; never hard-coded).
set -eu
if [ -n "${KVER:-}" ]; then
	echo "$KVER"
	exit 0
fi
ver=$("$(dirname "$0")/../../scripts/kver.sh")
if [ ! -e "/boot/vmlinuz-$ver" ]; then
	echo "kver.sh: the default kernel is $ver but /boot/vmlinuz-$ver is missing" >&2
	exit 1
fi
echo "$ver"
