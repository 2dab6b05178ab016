#!/bin/sh
# kver.sh - print the kernel version numabuddy builds and tests against by default: the one
# Debian's linux-headers-amd64 metapackage depends on (Debian moves the ABI number, so it is
# never written down anywhere). Falls back to the newest installed headers, then uname -r.
v=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null |
	sed -n 's/^linux-headers-\([^ ,]*\).*/\1/p')
if [ -z "$v" ]; then
	v=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sed 's|.*/linux-headers-||' |
		sort -V | tail -n 1)
fi
echo "${v:-$(uname -r)}"
