#!/usr/bin/env bash
# trixie-root.sh [--print] - the cached Debian 13 (trixie) root that builds, DKMS-installs and
# supplies the kernels Debian 12 cannot: trixie's 6.12 and trixie-backports' 7.x (and -rt).
# A 7.x kernel's headers need trixie's gcc and linux-kbuild, so the module is built inside.
#
#   build/trixie/root    debootstrap --variant=minbase trixie, from the mirror this machine's
#                        apt sources name (no host name is written down anywhere), with
#                        trixie-backports added; gcc, make, kmod, dkms, rsync, and every
#                        kernel in build/trixie/kernels: its image, headers and modules
#   build/trixie/kernels one "FLAVOUR KVER" a line: trixie (Debian 13's own), trixie-bpo and
#                        trixie-bpo-rt (what trixie-backports' linux-image-amd64 and
#                        linux-image-rt-amd64 point at)
#
# Made once; later calls do nothing (delete build/trixie to start again). --print prints the
# root's path. Needs root (debootstrap, chroot). Log: build/trixie/setup.log.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
top=$repo/build/trixie
root=$top/root
log=$top/setup.log
[ "${1:-}" = --print ] && { echo "$root"; exit 0; }
[ -e "$top/.done" ] && exit 0
[ "$(id -u)" -eq 0 ] || { echo "trixie-root: needs root (debootstrap, chroot)" >&2; exit 2; }
mkdir -p "$top"
say() { echo "trixie-root: $*" | tee -a "$log"; }

# The URI of the machine's Debian archive: the first deb entry whose suite is a Debian release
# (not -security, and no third-party repository).
mirror=$("$repo/scripts/debian-sources.sh" | awk '$2 ~ /^(bullseye|bookworm|trixie|forky|sid|oldstable|stable|testing|unstable)(-updates)?$/ {
		print $1; exit }')
[ -n "$mirror" ] || { echo "trixie-root: no Debian archive in this machine's apt sources" >&2; exit 1; }

if [ ! -x "$root/usr/bin/apt-get" ]; then
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap on this machine"
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=1800 install -y -qq \
			--no-install-recommends debootstrap >>"$log" 2>&1
	fi
	rm -rf --one-file-system "$root"
	say "debootstrap --variant=minbase trixie from $mirror"
	nice -n 10 debootstrap --variant=minbase --include=ca-certificates trixie "$root" "$mirror" \
		>>"$log" 2>&1 || { tail -n 20 "$log"; exit 1; }
fi
chmod 0755 "$root"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
printf 'deb %s %s main\n' "$mirror" trixie "$mirror" trixie-updates "$mirror" trixie-backports \
	>"$root/etc/apt/sources.list"
rm -f "$root/etc/apt/sources.list.d/"*
# A chroot must not start services (dkms, kmod triggers) on the host.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

in_root() { chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
	PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_root apt-get update -qq >>"$log" 2>&1

# image_of META [SUITE]: the versioned kernel image the metapackage depends on in that suite
# (trixie-backports' also depend on linux-base-* and linux-modules-* metapackages).
image_of() {
	in_root apt-cache show "$1" 2>/dev/null | awk -v s="${2:-}" '
		/^Version:/ { v = $2 } /^Depends:/ { d = $0 }
		/^$/ { if (d != "" && (s == "" ? v !~ /bpo/ : v ~ /bpo/)) { print d; exit } d = "" }' |
		grep -o 'linux-image-[0-9][^ ,]*' | head -n 1
}
: >"$top/kernels.new"
# apt_install [SUITE] PKG...: --no-install-recommends: no initramfs-tools or firmware (the VM
# boots its own initramfs). A backports kernel is installed the way backports are: -t, so its
# dependencies (linux-base, linux-kbuild) come from trixie-backports too.
apt_install() {
	local t=$1
	shift
	in_root apt-get install -y -qq --no-install-recommends ${t:+-t "$t"} "$@" >>"$log" 2>&1 ||
		{ tail -n 30 "$log"; exit 1; }
}
# A kernel package's postinst builds an initrd with update-initramfs: minutes of compression
# for an image nothing boots. The root's own update-initramfs is diverted to true.
if [ ! -e "$root/usr/sbin/update-initramfs.distrib" ]; then
	in_root dpkg-divert --local --rename --add /usr/sbin/update-initramfs >>"$log" 2>&1
	ln -sf /bin/true "$root/usr/sbin/update-initramfs"
fi
apt_install "" gcc g++ make kmod dkms dwarves rsync xz-utils zstd
for spec in trixie:amd64: trixie-bpo:amd64:trixie-backports trixie-bpo-rt:rt-amd64:trixie-backports; do
	IFS=: read -r flavour meta suite <<<"$spec"
	img=$(image_of "linux-image-$meta" "$suite")
	[ -n "$img" ] || { say "no linux-image-$meta in ${suite:-trixie}"; exit 1; }
	kver=${img#linux-image-}
	kver=${kver%-unsigned}
	say "$flavour: $kver"
	apt_install "$suite" "$img" "linux-headers-$kver"
	echo "$flavour $kver" >>"$top/kernels.new"
done
mv "$top/kernels.new" "$top/kernels"
touch "$top/.done"
say "ready: $(tr '\n' ' ' <"$top/kernels")"
