#!/usr/bin/env bash
# dkms.sh install|uninstall|path [KVER...] - put numabuddy under DKMS for the given kernels
# (default: every kernel with headers installed), so upgrades rebuild it (AUTOINSTALL).
# `path KVER` prints where DKMS installed the module for KVER.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"/\1/p' "$root/dkms.conf")
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$root/dkms.conf")
src=/usr/src/$name-$ver
cmd=${1:-install}; shift || true
kvers=("$@")
if [ ${#kvers[@]} -eq 0 ]; then
	for d in /lib/modules/*/build; do [ -e "$d/Makefile" ] && kvers+=("$(basename "$(dirname "$d")")"); done
fi

case "$cmd" in
install)
	dkms remove -m "$name" -v "$ver" --all >/dev/null 2>&1 || true
	rm -rf "$src"
	mkdir -p "$src/scripts"
	# Only what Kbuild needs: the source of the module, never build outputs.
	cp -r "$root/Kbuild" "$root/dkms.conf" "$root/module" "$root/mm_core" "$root/uapi" "$src/"
	cp "$root/scripts/check-cxx-object.sh" "$src/scripts/"
	find "$src" \( -name '*.o' -o -name '*.ko' -o -name '.*.cmd' -o -name '*.mod*' \) -delete
	dkms add -m "$name" -v "$ver"
	for k in "${kvers[@]}"; do
		dkms build -m "$name" -v "$ver" -k "$k"
		dkms install -m "$name" -v "$ver" -k "$k" --force
	done
	dkms status -m "$name"
	;;
uninstall)
	dkms remove -m "$name" -v "$ver" --all || true
	rm -rf "$src"
	;;
path)
	find "/lib/modules/${kvers[0]}/updates/dkms" -name "$name.ko*" | head -n 1
	;;
*)
	echo "usage: dkms.sh install|uninstall|path [KVER...]" >&2
	exit 2
	;;
esac
