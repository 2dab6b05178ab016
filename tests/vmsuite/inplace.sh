# inplace.sh - MIGRATE of 1 GiB frames keeps their mappings (nb_inplace --gib), on the big2
# topology: two nodes, each pool large enough to hold an aligned GiB (busybox sh, /suite.sh).
. /lib/nb/lib.sh
KO=/lib/nb/numabuddy.ko
POOL_MB=$(nb_cmdline_get nb_pool_mb || echo 2200)

nb_check_topology
nb_dmesg_mark
if ! nb_check insmod nb_insmod "$KO" pool_mb="$POOL_MB" fd_quota_pct=100; then
	exit 1
fi
nb_inplace --gib
rc=$?
if [ "$rc" -eq 0 ]; then nb_pass nb_inplace-gib; else nb_fail nb_inplace-gib "exit $rc"; fi
grep -q '^ok' /sys/kernel/debug/numabuddy/check && nb_pass core-check-after-use ||
	nb_fail core-check-after-use "$(cat /sys/kernel/debug/numabuddy/check)"
nb_check rmmod rmmod numabuddy
nb_dmesg_clean
