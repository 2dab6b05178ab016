#!/usr/bin/env bash
# install-test.sh DEBDIR - the README's "Installing on a real server", both ways, end to end.
# `make test-install` runs it as root inside a fresh Debian 12 root (scripts/fresh-machine.sh);
# it installs and purges packages and users, so never run it on a machine you care about.
#
#   packages  apt install the server's kernel and headers, then DEBDIR's debs (apt resolves
#             their dependencies); DKMS built and installed the module for every kernel with
#             headers; the numabuddy group exists; the README's C example builds with
#             `pkg-config --cflags --libs numabuddy`; the 2node VM boots the DKMS-built module
#             and runs the example and `numabuddy stats` as a group member, not root
#             (tests/vmsuite/install.sh); apt purge + autoremove leaves nothing behind
#   make      the same with `make dkms-install`, `make -C userspace install` and the README's
#             groupadd, then `make dkms-uninstall`, `make -C userspace uninstall`, groupdel
#
# "Nothing left": no file that was not there before the install is left unless an installed
# package owns it (dpkg's file lists), no path names numabuddy, `dkms status` knows no
# numabuddy, and group numabuddy is gone. Ends with "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
debdir=${1:?usage: install-test.sh DEBDIR}
out=$root/build/install-test
mkdir -p "$out"
passed=0 failed=0
# Verdicts go to fd 3, the terminal, even from a check whose output goes to a log.
exec 3>&1
pass() { echo "PASS $1" >&3; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2" >&3; failed=$((failed + 1)); }
# check NAME CMD...: pass when CMD exits 0; CMD's output goes wherever check's goes.
check() {
	local n=$1 rc=0
	shift
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then pass "$n"; else fail "$n" "exit $rc: $*"; fi
	return "$rc"
}
export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q)
# The server's kernel, with headers for DKMS. The test boots the same one in QEMU.
kernel_pkgs=(linux-image-amd64 linux-headers-amd64)

# kernels: every kernel that has headers, i.e. every one DKMS can build for.
kernels() {
	local d
	for d in /lib/modules/*/build; do [ -e "$d/Makefile" ] && basename "$(dirname "$d")"; done
}

# snapshot: every path under the directories an install can write to, as "TYPE PATH" (find's
# %y: d, f, l...), with /lib, /bin and /sbin spelt /usr/... (merged /usr: dpkg's lists use
# either spelling).
snapshot() {
	find /etc /usr /boot /opt /var/lib/dkms -xdev -printf '%y %p\n' 2>/dev/null |
		sed -E 's#^(.) /(lib|lib64|bin|sbin)(/|$)#\1 /usr/\2\3#' | LC_ALL=C sort -u
}
# packages: the installed ones, by name.
packages() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }' | LC_ALL=C sort; }
owned() { cat /var/lib/dpkg/info/*.list | sed -E 's#^/(lib|lib64|bin|sbin)(/|$)#/usr/\1\2#'; }
# Written by maintainer scripts and triggers of packages installed along the way, owned by
# none of them: the linker cache, the passwd/group backups, alternatives, compiled caches,
# depmod's indexes.
noise='^/etc/(ld\.so\.cache|(passwd|group|shadow|gshadow|subuid|subgid)-)$|^/etc/alternatives/|/__pycache__(/|$)|^/usr/share/info/dir|^/etc/ssl/certs/|\.cache$|^/usr/lib/modules/[^/]+/modules\.'

# nothing_left LABEL BEFORE: no new file or symlink that no installed package owns (new
# directories nobody owns, left empty by an uninstall, are listed, not failed), no path
# naming numabuddy, no numabuddy in `dkms status`, no group numabuddy.
nothing_left() {
	local label=$1 before=$2 after orphans files named st
	after=$(snapshot)
	orphans=$(LC_ALL=C comm -13 "$before" <(echo "$after") |
		awk -v noise="$noise" 'NR == FNR { own[$0] = 1; next }
			{ p = substr($0, 3) } !(p in own) && p !~ noise' <(owned) -)
	files=$(grep -v '^d ' <<<"$orphans" | sed '/^$/d')
	if [ -z "$files" ]; then pass "$label-no-files-left"
	else
		fail "$label-no-files-left" "$(wc -l <<<"$files") new file(s) nobody owns:"
		# shellcheck disable=SC2001 # every line, not the first
		sed 's/^/    /' <<<"$files"
	fi
	grep '^d ' <<<"$orphans" | sed "s/^d /  $label: note: new empty directory left: /"
	named=$(grep -i numabuddy <<<"$after")
	if [ -z "$named" ]; then pass "$label-no-numabuddy-paths"
	else fail "$label-no-numabuddy-paths" "$(head -n 8 <<<"$named" | tr '\n' ' ')"; fi
	st=$(command -v dkms >/dev/null && dkms status 2>&1 | grep -i numabuddy)
	if [ -z "$st" ]; then pass "$label-dkms-status-clean"; else fail "$label-dkms-status-clean" "$st"; fi
	if getent group numabuddy >/dev/null; then fail "$label-group-gone" "$(getent group numabuddy)"
	else pass "$label-group-gone"; fi
}

# dkms_built LABEL: DKMS built and installed the module for every kernel with headers, for
# that kernel (vermagic), and says so.
dkms_built() {
	local label=$1 k ko n=0 vm
	for k in $(kernels); do
		n=$((n + 1))
		ko=$(find "/lib/modules/$k/updates/dkms" -name 'numabuddy.ko*' 2>/dev/null | head -n 1)
		vm=$([ -n "$ko" ] && modinfo -F vermagic "$ko" | cut -d' ' -f1)
		if dkms status -m numabuddy -k "$k" | grep -q ': installed' && [ "$vm" = "$k" ]; then
			pass "$label-dkms-$k"
		else
			fail "$label-dkms-$k" "dkms status '$(dkms status -m numabuddy -k "$k")', module '${ko:-none}' for '${vm:-?}'"
		fi
	done
	[ "$n" -gt 0 ] || fail "$label-dkms-any-kernel" "no kernel with headers installed"
}

# readme_example DIR: the README's C example (its only ```c block, under "Using it") as a
# program: its #include lines at the top, its statements in main(), every nb_* call checked.
readme_example() {
	local block
	block=$(sed -n '/^## Using it/,/^## /p' README.md | sed -n '/^```c$/,/^```$/p' | sed '1d;$d')
	{
		echo '#include <stdio.h>'
		echo '#include <stdlib.h>'
		grep '^#include' <<<"$block"
		cat <<-'EOF'
		/* install-test.sh: each call of the README's example exits non-zero when it fails. */
		static int nb_checked(int rc, const char *what)
		{
			printf("%s: %s\n", what, rc ? nb_strerror(rc) : "ok");
			if (rc)
				exit(1);
			return rc;
		}
		#define nb_open(...) nb_checked(nb_open(__VA_ARGS__), "nb_open")
		#define nb_alloc(...) nb_checked(nb_alloc(__VA_ARGS__), "nb_alloc")
		#define nb_free(...) nb_checked(nb_free(__VA_ARGS__), "nb_free")
		int main(void)
		{
		EOF
		grep -v '^#include' <<<"$block"
		echo 'return 0;'
		echo '}'
	} >"$1/example.c"
}

# build_example LABEL DIR LIBDIR: the example through pkg-config, linked against the
# installed shared library in LIBDIR.
build_example() {
	local label=$1 dir=$2 libdir=$3 flags lib
	mkdir -p "$dir"
	readme_example "$dir"
	flags=$(pkg-config --cflags --libs numabuddy) || { fail "$label-pkg-config" "pkg-config failed"; return 1; }
	echo "pkg-config --cflags --libs numabuddy: $flags"
	pass "$label-pkg-config"
	# shellcheck disable=SC2086 # flags are words
	check "$label-example-builds" cc -Wall -Wextra -Werror -o "$dir/example" "$dir/example.c" $flags || return 1
	# The loader may find it through /lib, merged /usr's other name for /usr/lib.
	lib=$(ldd "$dir/example" | awk '$1 == "libnumabuddy.so.2" { print $3 }')
	if [ -n "$lib" ] && [ "$(realpath "$lib")" = "$(realpath "$libdir/libnumabuddy.so.2")" ]; then
		pass "$label-example-links-installed-lib"
	else
		fail "$label-example-links-installed-lib" "$(ldd "$dir/example" | grep numabuddy)"
	fi
}

# vm LABEL CLI RULE: the 2node VM with the DKMS-built module of the default kernel, the
# example and CLI as installed, the rule as installed; users nbuser (in group numabuddy,
# with this system's gid) and nbother. The libraries keep their paths here, and this
# system's linker cache goes along: /usr/local/lib is found through it (the README's
# ldconfig), as on the installed system.
vm() {
	local label=$1 cli=$2 rule=$3 dir=$out/$1 kver ko gid line p f
	kver=$(scripts/kver.sh)
	ko=$(scripts/dkms.sh path "$kver")
	[ -n "$ko" ] || { fail "$label-vm" "no DKMS module for $kver"; return; }
	case "$ko" in
	*.xz) xz -dc "$ko" >"$dir/numabuddy.ko";;
	*.zst) zstd -dqc "$ko" >"$dir/numabuddy.ko";;
	*) cp "$ko" "$dir/numabuddy.ko";;
	esac
	gid=$(getent group numabuddy | cut -d: -f3)
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nbuser:x:1000:1000::/tmp:/bin/sh' \
		'nbother:x:1001:1001::/tmp:/bin/sh' >"$dir/passwd"
	printf '%s\n' 'root:x:0:' 'nbuser:x:1000:' 'nbother:x:1001:' "numabuddy:x:$gid:nbuser" >"$dir/group"
	tests/vm/run.sh --kver "$kver" --topology 2node --log "$root/build/vm/install-$label.log" \
		--suite tests/vmsuite/install.sh --ko "$dir/numabuddy.ko" \
		--bin "$dir/example" --bin "$cli" --file "$rule:/lib/nb/99-numabuddy.rules" \
		--file "$dir/passwd:/etc/passwd" --file "$dir/group:/etc/group" \
		--file /etc/ld.so.cache:/etc/ld.so.cache >"$dir/vm.out" 2>&1
	grep -E '^(PASS|FAIL|SKIP) |^vm: wall' "$dir/vm.out" | sed "s/^/  $label-vm: /"
	# The root and its logs go away after the run: a failure's evidence goes to the output.
	grep -q '^FAIL ' "$dir/vm.out" && tr -d '\r' <"$root/build/vm/install-$label.log" |
		sed -n '/NB-VM-BEGIN/,$p' | tail -n 40 | sed "s/^/  $label-vm| /"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$dir/vm.out" | tail -n 1)
	if [ -z "$line" ]; then
		tail -n 20 "$dir/vm.out"
		fail "$label-vm" "no summary line (see $dir/vm.out)"
		return
	fi
	p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
	passed=$((passed + p)); failed=$((failed + f))
}

tk=$(date +%s)
# The server's kernel and pkg-config, and what the VM needs: deps.sh's demo set without its
# build set (QEMU, busybox...), read from deps.sh. All of it before the first snapshot, so that
# what is left after a purge is the install's doing; the compilers, DKMS and libnuma-dev are
# for the debs' dependencies to bring.
vm_pkgs=$(sed -n 's/^demo=(\(.*\))$/\1/p' scripts/deps.sh)
echo "=== the server: Debian's kernel and its headers, pkg-config; QEMU and busybox: $vm_pkgs"
"${apt[@]}" update >/dev/null
# shellcheck disable=SC2086 # a list of package names
"${apt[@]}" install --no-install-recommends "${kernel_pkgs[@]}" pkgconf $vm_pkgs \
	>"$out/apt-server.log" 2>&1 || { tail -n 20 "$out/apt-server.log"; fail apt-server "see $out/apt-server.log"; }

t0=$(date +%s)
echo "=== packages: apt install $debdir/*.deb"
snapshot >"$out/before-deb"
packages >"$out/before-deb.pkgs"
# Absolute paths: apt takes them as files, not package names.
debs=("$(realpath "$debdir")"/{numabuddy-dkms,numabuddy-tools,libnumabuddy2,libnumabuddy-dev}_*.deb)
if check deb-apt-install "${apt[@]}" install "${debs[@]}" >"$out/apt-debs.log" 2>&1; then
	sed -n '/^Setting up numabuddy-dkms/,/^Setting up\|^Processing/p' "$out/apt-debs.log"
	dkms_built deb
	if getent group numabuddy >/dev/null; then pass deb-group-created
	else fail deb-group-created "no group numabuddy"; fi
	build_example deb "$out/deb" "/usr/lib/$(gcc -print-multiarch)"
else
	tail -n 30 "$out/apt-debs.log"
fi
t1=$(date +%s)
if [ -x "$out/deb/example" ]; then
	echo "=== packages: the 2node VM"
	vm deb /usr/bin/numabuddy /lib/udev/rules.d/99-numabuddy.rules
fi
t2=$(date +%s)

echo "=== packages: apt purge, autoremove"
check deb-apt-purge "${apt[@]}" purge numabuddy-dkms numabuddy-tools libnumabuddy2 libnumabuddy-dev \
	>"$out/apt-purge.log" 2>&1 || tail -n 20 "$out/apt-purge.log"
# Everything the debs brought in goes too: also what apt would keep only because a package
# still installed recommends or suggests it (a first run kept sudo, fakeroot, g++ that way,
# with their alternatives and rc.d links). sudo refuses to go while root has no password
# (this root has none) unless told.
SUDO_FORCE_REMOVE=yes check deb-apt-autoremove "${apt[@]}" -o APT::AutoRemove::RecommendsImportant=false \
	-o APT::AutoRemove::SuggestsImportant=false autoremove --purge >>"$out/apt-purge.log" 2>&1 ||
	tail -n 20 "$out/apt-purge.log"
left=$(LC_ALL=C comm -13 "$out/before-deb.pkgs" <(packages))
if [ -z "$left" ]; then pass deb-dependencies-removed
else fail deb-dependencies-removed "still installed: $(tr '\n' ' ' <<<"$left")"; fi
nothing_left deb "$out/before-deb"
t3=$(date +%s)

# What `make dkms-install` installs first (scripts/deps.sh dkms: compilers, headers, libnuma-dev,
# DKMS) comes before the snapshot: those packages are prerequisites, not the install.
check make-deps scripts/deps.sh dkms >"$out/deps-dkms.log" 2>&1 || tail -n 20 "$out/deps-dkms.log"
t4=$(date +%s)
echo "=== make: make dkms-install, make -C userspace install, groupadd"
snapshot >"$out/before-make"
if check make-dkms-install make dkms-install >"$out/make-dkms.log" 2>&1; then
	dkms_built make
else
	tail -n 30 "$out/make-dkms.log"
fi
check make-userspace-install make -C userspace install >"$out/make-install.log" 2>&1 ||
	tail -n 30 "$out/make-install.log"
ldconfig
check make-groupadd groupadd --system numabuddy
build_example make "$out/make" /usr/local/lib
t5=$(date +%s)
if [ -x "$out/make/example" ]; then
	echo "=== make: the 2node VM"
	vm make /usr/local/bin/numabuddy /etc/udev/rules.d/99-numabuddy.rules
fi
t6=$(date +%s)

echo "=== make: make dkms-uninstall, make -C userspace uninstall, groupdel"
check make-dkms-uninstall make dkms-uninstall >"$out/make-uninstall.log" 2>&1
check make-userspace-uninstall make -C userspace uninstall >>"$out/make-uninstall.log" 2>&1
check make-groupdel groupdel numabuddy
ldconfig
# The build tree is the user's clone, not the system: `make clean` is theirs to run.
nothing_left make "$out/before-make"
t7=$(date +%s)

echo "install-test: server packages $((t0 - tk)) s, debs $((t1 - t0)) s, deb VM $((t2 - t1)) s," \
	"purge $((t3 - t2)) s, make deps $((t4 - t3)) s, make install $((t5 - t4)) s," \
	"make VM $((t6 - t5)) s, uninstall $((t7 - t6)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
