#!/usr/bin/env bash
# Builds the busybox initramfs (cpio.gz) the VM tests boot.
#
#   mkinitramfs.sh [--out FILE] [--kver VER] [--ko FILE]... [--bin FILE]... [--suite FILE]
#                  [--file SRC:DST]... [--kmod NAME]... [--moddir DIR]
#
#   --out FILE      output image (default: build/vm/initramfs.cpio.gz in the repo)
#   --kver VER      kernel whose modules --kmod takes (default: scripts/kver.sh --boot)
#   --ko FILE       our own module, installed as /lib/nb/<basename> (load with nb_insmod)
#   --bin FILE      executable, installed as /bin/<basename>, with the libraries ldd lists
#                   and the dynamic loader
#   --suite FILE    shell script installed as /suite.sh; /init runs it
#   --file SRC:DST  any extra file, installed at absolute path DST
#   --kmod NAME     a distro module and its dependencies from /lib/modules/VER, decompressed
#                   (busybox insmod cannot read .ko.xz); load with "modprobe NAME"
#   --moddir DIR    where --kmod finds kernel VER's modules (default /lib/modules/VER), for a
#                   kernel that is not installed here (one unpacked into build/trixie/root)
#
# Every option except --out/--kver is repeatable. Runs as any user; /dev/console is created
# when we may mknod, otherwise /init reopens it from devtmpfs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

die() { echo "mkinitramfs: $*" >&2; exit 1; }

out='' kver='' moddir='' kos=() bins=() suite='' files=() kmods=()
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2;;
	--kver) kver=$2; shift 2;;
	--ko) kos+=("$2"); shift 2;;
	--bin) bins+=("$2"); shift 2;;
	--suite) suite=$2; shift 2;;
	--file) files+=("$2"); shift 2;;
	--kmod) kmods+=("$2"); shift 2;;
	--moddir) moddir=$2; shift 2;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
	*) die "unknown option '$1' (see --help)";;
	esac
done
[ -n "$out" ] || out=$root/build/vm/initramfs.cpio.gz
case "$out" in "$root"/tests/*|tests/*) die "refusing to write a build output inside tests/: $out";; esac

busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || die "$busybox is not static (need busybox-static)"

mkdir -p "$(dirname "$out")"
stage=$(mktemp -d "$(dirname "$out")/.initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,mnt,lib/nb}
install -m 0755 "$busybox" "$stage/bin/busybox"
# --list-full gives each applet's canonical path (bin/sh, sbin/insmod, usr/bin/...).
for applet in $("$busybox" --list-full); do
	[ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done
mknod -m 0600 "$stage/dev/console" c 5 1 2>/dev/null || true
mknod -m 0666 "$stage/dev/null" c 1 3 2>/dev/null || true

install -m 0755 "$here/init.sh" "$stage/init"
install -m 0644 "$here/lib.sh" "$stage/lib/nb/lib.sh"
install -m 0644 "$here/bad-patterns.txt" "$stage/lib/nb/bad-patterns.txt"

# put SRC DST: copy SRC's content (following symlinks) to DST inside the stage. DST may be a
# busybox applet symlink pointing at the absolute /bin/busybox: remove it first, or cp would
# write through it into the host's busybox.
put() {
	[ -f "$1" ] || die "no such file: $1"
	mkdir -p "$stage$(dirname "$2")"
	rm -f "$stage$2"
	cp -L "$1" "$stage$2"
}

for f in "${kos[@]}"; do put "$f" "/lib/nb/$(basename "$f")"; done

for f in "${bins[@]}"; do
	put "$f" "/bin/$(basename "$f")"
	chmod 0755 "$stage/bin/$(basename "$f")"
	# Static binaries make ldd fail with "not a dynamic executable": nothing to copy then.
	libs=$(ldd "$f" 2>/dev/null) || continue
	if grep -q 'not found' <<<"$libs"; then
		die "$f: unresolved libraries:"$'\n'"$(grep 'not found' <<<"$libs")"
	fi
	# "libx.so => /path/libx.so (0x..)" and "/lib64/ld-linux-x86-64.so.2 (0x..)"; the vdso
	# has no path. Keep each library at its host path so the loader's default dirs work.
	for lib in $(sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p' <<<"$libs"); do
		[ -e "$stage$lib" ] || put "$lib" "$lib"
	done
done

if [ -n "$suite" ]; then
	put "$suite" /suite.sh
	chmod 0755 "$stage/suite.sh"
fi

for spec in "${files[@]}"; do
	src=${spec%%:*} dst=${spec#*:}
	[ "$src" != "$spec" ] && [ "${dst#/}" != "$dst" ] || die "--file wants SRC:/ABS/DST, got '$spec'"
	put "$src" "$dst"
done

if [ ${#kmods[@]} -gt 0 ]; then
	[ -n "$kver" ] || kver=$("$root/scripts/kver.sh" --boot)
	[ -n "$moddir" ] || moddir=/lib/modules/$kver
	[ -r "$moddir/modules.dep" ] || die "no $moddir/modules.dep"
	dst_dir=$stage/lib/modules/$kver
	mkdir -p "$dst_dir"
	cp "$moddir"/modules.builtin* "$moddir"/modules.order "$dst_dir"/ 2>/dev/null || true
	for m in "${kmods[@]}"; do
		# modules.dep: "kernel/x/NAME.ko.xz: every module it needs, transitively". Read
		# directly, so a module tree that is not this machine's works as well.
		deps=$(awk -v m="${m//-/_}" '{ n = $1; sub(/:$/, "", n); b = n; sub(/.*\//, "", b)
			sub(/\.ko.*/, "", b); gsub(/-/, "_", b)
			if (b == m) { $1 = n; print; exit } }' "$moddir/modules.dep")
		[ -n "$deps" ] || die "kernel $kver has no module '$m' in $moddir"
		for rel in $deps; do
			dst=$dst_dir/${rel%.xz}
			dst=${dst%.zst}
			[ -e "$dst" ] && continue
			mkdir -p "$(dirname "$dst")"
			case "$rel" in
			*.xz) xz -dc "$moddir/$rel" >"$dst";;
			*.zst) zstd -qdc "$moddir/$rel" >"$dst";;
			*) cp "$moddir/$rel" "$dst";;
			esac
		done
	done
	depmod -b "$stage" "$kver"
fi

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "mkinitramfs: $out ($(du -h "$out" | cut -f1))"
