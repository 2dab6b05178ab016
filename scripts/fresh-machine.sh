#!/usr/bin/env bash
# fresh-machine.sh [--only demo | --run CMD] [--copy PATH]... [--keep] [--workdir DIR] -
# what a newcomer on a brand-new Debian 12 machine sees. Builds a root with `debootstrap
# --variant=minbase bookworm` plus git and make (nothing else), from the Debian mirror this
# machine's apt sources name; clones this repository's current commit into it; mounts /proc,
# /sys and /dev; and runs the README's two commands inside, in order, as root: `make demo`,
# then `make test`. A package the Makefile forgot to install fails here, as it would for the
# newcomer.
#
#   --only demo     stop after `make demo` (a quicker check of the demo's package set)
#   --run CMD       run CMD (bash, in the clone, as the same newcomer) instead of both commands;
#                   its log is build/fresh-machine/run.log and its status the script's
#   --copy PATH     copy PATH, relative to the repository (build outputs such as the debs),
#                   into the clone at the same place before anything runs
#   --keep          leave the root in place afterwards (it is unmounted either way)
#   --workdir DIR   where the root is made (default /var/tmp); it needs ~8 GB
#
# Needs root (debootstrap, chroot, mounts) and installs debootstrap on the host if missing.
# Logs: build/fresh-machine/{debootstrap,demo,test,run}.log. Ends with one line of timings.
# Every mount is undone on every exit path; the root is deleted only when findmnt shows
# nothing mounted under it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
only='' run='' copies=() keep=0 workdir=/var/tmp
while [ $# -gt 0 ]; do
	case "$1" in
	--only) only=$2; shift 2;;
	--run) run=$2; shift 2;;
	--copy) copies+=("$2"); shift 2;;
	--keep) keep=1; shift;;
	--workdir) workdir=$2; shift 2;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2;;
	esac
done
case "$only" in ""|demo) ;; *) echo "fresh-machine: --only takes demo" >&2; exit 2;; esac
[ -z "$only" ] || [ -z "$run" ] || { echo "fresh-machine: --only or --run, not both" >&2; exit 2; }
for c in "${copies[@]}"; do
	case "$c" in /*|*..*) echo "fresh-machine: --copy wants a path inside the repository: $c" >&2; exit 2;; esac
	[ -e "$repo/$c" ] || { echo "fresh-machine: --copy: no $repo/$c" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
logs=$repo/build/fresh-machine
mkdir -p "$logs"
commit=$(git -C "$repo" rev-parse HEAD)
say() { echo "fresh-machine: $*"; }

sources=$("$repo/scripts/debian-sources.sh" | awk '$2 ~ /^bookworm(-updates|-security)?$/' | sort -u)
mirror=$(awk '$2 == "bookworm" { print $1; exit }' <<<"$sources")
[ -n "$mirror" ] || { echo "fresh-machine: no bookworm entry in this machine's apt sources" >&2; exit 1; }

if ! command -v debootstrap >/dev/null; then
	say "installing debootstrap on this machine"
	export DEBIAN_FRONTEND=noninteractive
	lock=(-o DPkg::Lock::Timeout=1800)
	apt-get "${lock[@]}" install -y -qq --no-install-recommends debootstrap >/dev/null ||
		{ apt-get "${lock[@]}" update -qq &&
		  apt-get "${lock[@]}" install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi

root=$(mktemp -d "$workdir/numabuddy-fresh.XXXXXX")
chmod 0755 "$root" # a root directory, not a private temp dir: apt's _apt user walks it
mounts=()

# under_root: what is still mounted at or below the root (one mount point a line).
under_root() { findmnt -rn -o TARGET | awk -v r="$root" '$0 == r || index($0, r "/") == 1'; }

cleanup() {
	local rc=$? i p
	trap - EXIT INT TERM HUP
	# Whatever still runs inside the root (a QEMU of an interrupted test) holds its mounts.
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
	done
	sleep 1
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount -R "${mounts[i]}" 2>/dev/null || umount -R -l "${mounts[i]}" 2>/dev/null || true
	done
	local left
	left=$(under_root)
	if [ -n "$left" ]; then
		echo "fresh-machine: still mounted, NOT deleting $root:" >&2
		echo "$left" >&2
		exit 1
	fi
	if [ "$keep" -eq 1 ]; then
		say "root kept in $root (nothing mounted under it)"
	else
		# --one-file-system: even a mount findmnt missed would be skipped, not emptied.
		rm -rf --one-file-system "$root"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

t0=$(date +%s)
say "debootstrap --variant=minbase bookworm from $mirror into $root"
debootstrap --variant=minbase --include=git,make bookworm "$root" "$mirror" \
	>"$logs/debootstrap.log" 2>&1 || { tail -n 20 "$logs/debootstrap.log"; exit 1; }
[ -s "$root/etc/resolv.conf" ] || cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# A Debian 12 install's sources: the release, its updates and its security suite, main only.
awk '{ print "deb", $1, $2, "main" }' <<<"$sources" >"$root/etc/apt/sources.list"
say "apt sources in the root:"
sed 's/^/  /' "$root/etc/apt/sources.list"
t1=$(date +%s)

# mount_into DIR: the root's DIR from the host's, recorded before anything else can fail.
mount_into() {
	mounts+=("$root$1")
	case "$1" in
	/proc) mount -t proc proc "$root/proc";;
	*) mount --rbind "$1" "$root$1" && mount --make-rslave "$root$1";;
	esac
}
mount_into /proc
mount_into /sys
mount_into /dev
# The debug kernel of `make test-debug` is cached per machine, outside any clone
# (/var/cache/numabuddy): a new root on this machine shares the host's, as `make test` on
# the host would. A machine without one builds it inside `make test` (over an hour).
if [ -d /var/cache/numabuddy ]; then
	mkdir -p "$root/var/cache/numabuddy"
	mount_into /var/cache/numabuddy
fi

git clone -q "$repo" "$root/root/numabuddy"
git -C "$root/root/numabuddy" checkout -q --detach "$commit"
say "cloned $commit into /root/numabuddy"
for c in "${copies[@]}"; do
	mkdir -p "$root/root/numabuddy/$(dirname "$c")"
	cp -a "$repo/$c" "$root/root/numabuddy/$c"
	say "copied $c"
done

# newcomer CMD: run CMD in the clone as a fresh login would: a clean environment.
newcomer() {
	chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		bash -c "cd /root/numabuddy && $1"
}

# step CMD LOG: run CMD as the newcomer, output to the terminal and LOG. In the background
# with `wait`, because bash runs a trap only after a foreground child ends: a signal must
# reach cleanup (which stops what runs in the root) while make test is still running.
step() {
	say "$1"
	{ newcomer "$1" 2>&1 | tee "$logs/$2"; } &
	wait $!
}

if [ -n "$run" ]; then
	run_rc=0
	step "$run" run.log || run_rc=$?
	t2=$(date +%s)
	say "debootstrap $((t1 - t0)) s, $run $((t2 - t1)) s (exit $run_rc), total $((t2 - t0)) s"
	exit "$run_rc"
fi

demo_rc=0
step 'make demo' demo.log || demo_rc=$?
t2=$(date +%s)
test_rc=0 t3=$t2
if [ "$demo_rc" -eq 0 ] && [ -z "$only" ]; then
	step 'make test' test.log || test_rc=$?
	t3=$(date +%s)
fi
say "debootstrap $((t1 - t0)) s, make demo $((t2 - t1)) s (exit $demo_rc)," \
	"make test $((t3 - t2)) s (exit $test_rc), total $((t3 - t0)) s"
[ "$demo_rc" -eq 0 ] && [ "$test_rc" -eq 0 ]
