#!/bin/sh
# Prints the kernel version the VM tests boot by default.
#
# $KVER wins when set. Otherwise the version is the one Debian's linux-image-amd64 metapackage
# currently depends on ("linux-image-6.1.0-56-amd64 (= ...)" -> "6.1.0-56-amd64"), so an
# upgrade of the metapackage moves the default without touching this tree. Never hard-code one.
set -eu

if [ -n "${KVER:-}" ]; then
	echo "$KVER"
	exit 0
fi

dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null || true)
# First alternative of the first dependency that names a linux-image package.
ver=$(printf '%s\n' "$dep" | tr ',|' '\n\n' | sed -n 's/^ *linux-image-\([^ ]*\).*/\1/p' | head -n1)

if [ -z "$ver" ]; then
	echo "kver.sh: cannot derive a version from linux-image-amd64 (is it installed?); set KVER=" >&2
	exit 1
fi
if [ ! -e "/boot/vmlinuz-$ver" ]; then
	echo "kver.sh: linux-image-amd64 points at $ver but /boot/vmlinuz-$ver is missing" >&2
	exit 1
fi
echo "$ver"
