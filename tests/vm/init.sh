#!/bin/sh
# PID 1 of the test VM (installed as /init by mkinitramfs.sh).
#
# Mounts the pseudo filesystems, prints the NUMA topology, runs /suite.sh and always ends with
# the NB-VM-END marker and a forced power-off: the host treats a log without the marker as a
# crash or hang, so nothing after this point may be skipped. PID 1 must never exit (that
# panics the kernel), hence the loop at the bottom.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
exec </dev/console >/dev/console 2>&1

. /lib/nb/lib.sh

echo "NB-VM-BEGIN kernel $(uname -r)"
echo "cmdline: $(cat /proc/cmdline)"
nb_print_topology

# Debug hook: boot with --append nb_shell=1 to get a shell instead of the suite.
if grep -qw nb_shell=1 /proc/cmdline; then
	setsid cttyhack sh
elif [ -f /suite.sh ]; then
	cd /tmp && sh /suite.sh
	rc=$?
	cd /
	# A suite that dies half-way must not look like one whose remaining tests were optional.
	[ "$rc" -eq 0 ] || nb_fail suite-exit "suite.sh exited with status $rc"
else
	echo "NB-VM: /suite.sh is missing, nothing to run"
fi

echo "NB-VM-UPTIME $(cut -d' ' -f1 /proc/uptime)"
sync
echo "NB-VM-END"
poweroff -f
# Only reached if the power-off request failed; keep PID 1 alive so the host times out cleanly.
while :; do sleep 3600; done
