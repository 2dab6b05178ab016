#!/bin/sh
# in-root.sh CMD [ARG...] - run CMD inside the trixie root (scripts/trixie-root.sh) with a
# clean environment: its own PATH, gcc and headers, nothing of this machine's. The root's
# /nb is where the host puts what CMD works on (build trees, sources). /proc (objtool, dkms
# and apt read it) is mounted in a mount namespace of CMD's own, so it goes away with CMD
# and nothing is ever left mounted under build/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)/build/trixie/root
[ -x "$root/usr/bin/make" ] || { echo "in-root: no trixie root; run scripts/trixie-root.sh" >&2; exit 2; }
exec unshare --mount --propagation private sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' \
	"$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
	PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
