# install.sh - the VM half of scripts/install-test.sh (busybox sh, run as /suite.sh): the
# module DKMS built on the installed system, then the README's C example and `numabuddy stats`,
# both as installed there, run by a user who is a member of group numabuddy and not root.
#
# The initramfs carries /lib/nb/99-numabuddy.rules (the udev rule as installed), /etc/passwd
# and /etc/group with the users nbuser (in group numabuddy) and nbother (not in it), and
# /bin/example, /bin/numabuddy with the libraries they were linked against.
. /lib/nb/lib.sh
RULE=/lib/nb/99-numabuddy.rules

nb_check_topology
nb_check insmod nb_insmod /lib/nb/numabuddy.ko pool_mb=128 || exit 1
mode=$(stat -c %a /dev/numabuddy)
if [ "$mode" = 600 ]; then nb_pass device-0600-before-rule; else nb_fail device-0600-before-rule "mode $mode"; fi

# No udev here: do what the installed rule says, read from the rule itself, so a rule that
# names another group or mode fails below instead of being papered over.
group=$(sed -n 's/^[^#]*KERNEL=="numabuddy".*GROUP="\([^"]*\)".*/\1/p' "$RULE")
mode=$(sed -n 's/^[^#]*KERNEL=="numabuddy".*MODE="\([^"]*\)".*/\1/p' "$RULE")
echo "udev is not in the initramfs; applying $RULE by hand: group '$group', mode '$mode'"
if [ -n "$group" ] && [ -n "$mode" ] && chgrp "$group" /dev/numabuddy && chmod "$mode" /dev/numabuddy; then
	nb_pass udev-rule-applied
else
	nb_fail udev-rule-applied "rule gives group '$group' mode '$mode'"
fi
ls -l /dev/numabuddy

# as USER CMD: CMD through sh as USER, with USER's groups from /etc/group (su sets them).
as() { _u=$1; shift; su -s /bin/sh "$_u" -c "$*"; }
echo "nbuser: $(as nbuser id)"
if [ "$(as nbuser id -u)" != 0 ]; then nb_pass user-not-root; else nb_fail user-not-root "uid 0"; fi
case " $(as nbuser id -Gn) " in
*" numabuddy "*) nb_pass user-in-group;;
*) nb_fail user-in-group "groups: $(as nbuser id -Gn)";;
esac

nb_check readme-example-as-member as nbuser /bin/example
nb_check stats-as-member as nbuser numabuddy stats
# The rule is what grants access: a user outside the group is still refused.
nb_check_fails stats-outside-group as nbother numabuddy stats

if grep -q '^ok' /sys/kernel/debug/numabuddy/check; then nb_pass core-check
else nb_fail core-check "$(cat /sys/kernel/debug/numabuddy/check)"; fi
nb_check rmmod rmmod numabuddy
