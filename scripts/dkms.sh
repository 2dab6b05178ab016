#!/usr/bin/env bash
# dkms.sh install|uninstall|path [KVER...] - put numabuddy under DKMS for the given kernels
# (default: every kernel with headers installed), so upgrades rebuild it (AUTOINSTALL).
# `path KVER` prints where DKMS installed the module for KVER. `source DIR` copies the
# module's source tree (what DKMS builds from) into DIR; the numabuddy-dkms package uses it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"/\1/p' "$root/dkms.conf")
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$root/dkms.conf")
src=/usr/src/$name-$ver
cmd=${1:-install}; shift || true
kvers=("$@")
if [ ${#kvers[@]} -eq 0 ] && [ "$cmd" != source ]; then
	for d in /lib/modules/*/build; do [ -e "$d/Makefile" ] && kvers+=("$(basename "$(dirname "$d")")"); done
fi

# copy_source DIR: only what Kbuild needs, the source of the module, never build outputs.
copy_source() {
	mkdir -p "$1/scripts"
	cp -r "$root/Kbuild" "$root/dkms.conf" "$root/module" "$root/mm_core" "$root/uapi" "$1/"
	cp "$root/scripts/check-cxx-object.sh" "$1/scripts/"
	find "$1" \( -name '*.o' -o -name '*.ko' -o -name '.*.cmd' -o -name '*.mod*' \) -delete
}

case "$cmd" in
source)
	[ -n "${1:-}" ] || { echo "usage: dkms.sh source DIR" >&2; exit 2; }
	copy_source "$1"
	;;
install)
	dkms remove -m "$name" -v "$ver" --all >/dev/null 2>&1 || true
	rm -rf "$src"
	copy_source "$src"
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
	echo "usage: dkms.sh install|uninstall|path [KVER...] | source DIR" >&2
	exit 2
	;;
esac
