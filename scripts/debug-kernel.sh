#!/usr/bin/env bash
# debug-kernel.sh - build (once per machine) the debug kernel `make test-debug` boots: Debian's
# own 6.1 source package and config, every module dropped, plus KASAN, lockdep, DEBUG_VM,
# DEBUG_PAGEALLOC, KFENCE, fault injection... (tests/vm/debug-kernel.config).
#
#   debug-kernel.sh build   install what the build needs, build unless cached, print the env
#   debug-kernel.sh env     print KVER=, KDIR=, VMLINUX= of the cached build (fails if none)
#
#   NB_DEBUG_KERNEL_CACHE   where trees live (default /var/cache/numabuddy/debug-kernel):
#                           outside the clone, so a CI clone on the same machine reuses it
#
# Cache key: the source package version and the sha256 of the final .config, one directory
# each: $CACHE/6.1-<version>-<hash12>/ (the O= build tree; KDIR for the module build). A tree
# is used only once its ".done" stamp exists, so an interrupted build is resumed by make.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${NB_DEBUG_KERNEL_CACHE:-/var/cache/numabuddy/debug-kernel}
series=6.1
frag=$root/tests/vm/debug-kernel.config
# What the build needs on top of scripts/deps.sh (which only test-debug pulls in).
pkgs=(linux-source-$series bc bison flex libelf-dev libssl-dev dwarves cpio rsync xz-utils)

die() { echo "debug-kernel.sh: $*" >&2; exit 1; }

deps() {
	local missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "debug-kernel.sh: installing ${missing[*]}"
	# Another apt run (scripts/deps.sh) may hold the lock: wait for it rather than fail.
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=1800 install -y \
		--no-install-recommends "${missing[@]}"
}

srcver() { dpkg-query -W -f='${Version}' "linux-source-$series"; }

# The Debian config the debug one starts from: that of the installed 6.1 image.
base_config() {
	local kver
	kver=$("$root/scripts/kver.sh")
	case "$kver" in "$series".*) ;; *) die "default kernel $kver is not $series";; esac
	[ -r "/boot/config-$kver" ] || die "no /boot/config-$kver"
	echo "/boot/config-$kver"
}

# src: the unpacked source package, one per version.
src() {
	local v dir
	v=$(srcver)
	dir=$cache/src-$v
	if [ ! -f "$dir/.done" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		tar -C "$dir" -xf "/usr/src/linux-source-$series.tar.xz"
		touch "$dir/.done"
	fi
	echo "$dir/linux-source-$series"
}

# mkconfig SRC OUT: Debian's config minus every module, plus the fragment; then check that
# Kconfig kept every line of the fragment.
mkconfig() {
	local s=$1 o=$2 line sym want got bad=0
	mkdir -p "$o"
	sed -E 's/^(CONFIG_[A-Za-z0-9_]+)=m$/# \1 is not set/' "$(base_config)" >"$o/.config"
	grep -E '^(CONFIG_|# CONFIG_)' "$frag" >>"$o/.config"
	make -s -C "$s" O="$o" olddefconfig >"$o/olddefconfig.log" 2>&1 ||
		{ cat "$o/olddefconfig.log" >&2; die "olddefconfig failed"; }
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*) sym=${line%%=*} want=$line;;
		"# CONFIG_"*) sym=${line#\# }; sym=${sym%% *}; want=$line;;
		*) continue;;
		esac
		got=$(grep -E "^($sym=|# $sym is not set)" "$o/.config" || true)
		[ -z "$got" ] && case "$want" in "#"*) continue;; esac
		if [ "$got" != "$want" ]; then
			echo "debug-kernel.sh: Kconfig refused '$want' (got '${got:-nothing}')" >&2
			bad=1
		fi
	done <"$frag"
	[ "$bad" -eq 0 ] || die "fix $frag"
}

tree() {
	local s stage hash
	s=$(src)
	stage=$cache/stage
	rm -rf "$stage"
	mkconfig "$s" "$stage"
	hash=$(sha256sum "$stage/.config" | cut -c1-12)
	echo "$cache/$series-$(srcver)-$hash"
	mkdir -p "$cache/$series-$(srcver)-$hash"
	[ -f "$cache/$series-$(srcver)-$hash/.config" ] ||
		cp "$stage/.config" "$cache/$series-$(srcver)-$hash/.config"
	rm -rf "$stage"
}

print_env() {
	local o=$1
	echo "KVER=$(cat "$o/include/config/kernel.release")"
	echo "KDIR=$o"
	# The bzImage: QEMU's PVH entry into this KASAN vmlinux dies before the first console
	# line (seen with 6.1.192, not debugged); the decompressor costs a few seconds a boot.
	echo "KIMAGE=$o/arch/x86/boot/bzImage"
}

build() {
	local s o t0 t1
	deps >&2
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9
	s=$(src)
	o=$(tree)
	if [ -f "$o/.done" ]; then
		echo "debug-kernel.sh: cached $o (built in $(cat "$o/build-seconds" 2>/dev/null || echo ?) s)" >&2
	else
		echo "debug-kernel.sh: building $o (67 min on 2 busy cores here; log $o/build.log)" >&2
		t0=$(date +%s)
		# vmlinux (booted through its PVH entry), bzImage, and the Module.symvers and scripts
		# an external module build needs. nice: the machine is shared with VM runs.
		if ! nice -n 15 make -C "$s" O="$o" -j"$(nproc)" all >"$o/build.log" 2>&1; then
			tail -n 30 "$o/build.log" >&2
			die "kernel build failed, see $o/build.log"
		fi
		t1=$(date +%s)
		echo $((t1 - t0)) >"$o/build-seconds"
		touch "$o/.done"
		echo "debug-kernel.sh: built in $((t1 - t0)) s" >&2
	fi
	ln -sfn "$o" "$cache/current"
	print_env "$o"
}

case "${1:-}" in
build) build;;
env)
	[ -f "$cache/current/.done" ] || die "no debug kernel built yet (debug-kernel.sh build)"
	print_env "$(readlink -f "$cache/current")"
	;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2;;
esac
