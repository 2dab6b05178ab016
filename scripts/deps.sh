#!/usr/bin/env bash
# Installs every Debian package numabuddy needs to build, test, benchmark and DKMS-install.
# Idempotent: does nothing when everything is already there. Called by the Makefile targets
# that need it; safe to run by hand.
set -euo pipefail

pkgs=(
  build-essential make gcc g++ clang lld llvm cmake pkg-config
  linux-image-amd64 linux-headers-amd64
  linux-image-6.12-amd64 linux-headers-6.12-amd64
  linux-image-6.12-rt-amd64 linux-headers-6.12-rt-amd64
  qemu-system-x86 busybox-static cpio kmod dkms rsync xz-utils zstd
  libnuma-dev numactl libbenchmark-dev libgtest-dev libclang-rt-14-dev
  python3 python3-matplotlib
  stress-ng
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
