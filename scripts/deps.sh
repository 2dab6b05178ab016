#!/usr/bin/env bash
# deps.sh SET... - install the Debian packages a make target needs. Each SET includes the
# ones before it on its line:
#
#   build   compilers, Debian's default kernel headers, libnuma: `make module userspace`
#   demo    build + Debian's default kernel image, QEMU, busybox: `make demo`, `make fuzz`
#   test    demo + clang and sanitizer runtimes, Google Test and Benchmark, python3-matplotlib,
#           DKMS, the 6.12 and 6.12-rt kernels with headers: `make test`, `make test-kernels`
#   bench   demo + Google Benchmark, python3-matplotlib, valgrind (callgrind): `make bench`
#   dkms    build + DKMS: `make dkms-install`
#   deb     build + debhelper, dh-dkms, lintian: `make deb`
#   all     everything above
#
# Idempotent: does nothing when every package of the sets is installed. The Makefile runs it
# before it computes anything from the installed packages (the kernel version); safe to run
# by hand. Waits for another apt/dpkg to finish instead of failing on its lock.
set -euo pipefail

build=(build-essential linux-headers-amd64 libnuma-dev rsync kmod)
# file: mkinitramfs.sh checks busybox is static; bc: run.sh's wall time; xz/zstd: Debian's
# compressed kernels and modules.
demo=(linux-image-amd64 qemu-system-x86 busybox-static cpio xz-utils zstd file bc)
test=(clang llvm libclang-rt-14-dev libgtest-dev libbenchmark-dev python3 python3-matplotlib valgrind
	dkms linux-image-6.12-amd64 linux-headers-6.12-amd64
	linux-image-6.12-rt-amd64 linux-headers-6.12-rt-amd64 stress-ng numactl)
bench=(libbenchmark-dev python3 python3-matplotlib stress-ng numactl valgrind)
dkms=(dkms)
deb=(debhelper dh-dkms lintian)

[ $# -gt 0 ] || set -- all
pkgs=()
for set in "$@"; do
	case "$set" in
	build) pkgs+=("${build[@]}");;
	demo) pkgs+=("${build[@]}" "${demo[@]}");;
	test) pkgs+=("${build[@]}" "${demo[@]}" "${test[@]}");;
	bench) pkgs+=("${build[@]}" "${demo[@]}" "${bench[@]}");;
	dkms) pkgs+=("${build[@]}" "${dkms[@]}");;
	deb) pkgs+=("${build[@]}" "${deb[@]}");;
	all) pkgs+=("${build[@]}" "${demo[@]}" "${test[@]}" "${bench[@]}" "${dkms[@]}" "${deb[@]}");;
	none) ;;
	*) echo "usage: deps.sh build|demo|test|bench|dkms|deb|all|none..." >&2; exit 2;;
	esac
done

missing=()
for p in $(printf '%s\n' "${pkgs[@]}" | sort -u); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null; then
	SUDO=(sudo)
else
	echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
	exit 1
fi
echo "deps ($*): installing ${missing[*]}" >&2
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
lock=(-o DPkg::Lock::Timeout=1800)
"${SUDO[@]}" apt-get "${lock[@]}" update -qq
"${SUDO[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps ($*): done in $(($(date +%s) - start)) s" >&2
