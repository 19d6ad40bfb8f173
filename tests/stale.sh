#!/bin/bash
# stale.sh - a zsd killed with SIGKILL leaves a dead mount, a loop device
# and swap on it.  A new zsd on the same mountpoint must find them, say
# what was lost, clean them up (swapoff of the dead device, detach, lazy
# unmount) and start as swap again.  The program whose pages were lost
# must get SIGBUS when it touches them, never wrong data.
. "${srcdir:-.}/tests/lib.sh"

prio=32000

require_root
require_fuse
require_loop
require_cgroup_memory
require_prog swapoff losetup
swap_lock || tap_bail "cannot take $builddir/tests/swap.lock"
other=$(awk -v p="$prio" 'NR > 1 && $5 >= p { print $1 " (" $5 ")" }' \
    /proc/swaps)
[ -z "$other" ] || skip "other swap at priority >= $prio: $other"
setup_cleanup

wait_for()
{
	local tenths=$1

	shift
	until "$@"; do
		[ "$tenths" -gt 0 ] || return 1
		sleep 0.1
		tenths=$((tenths - 1))
	done
}

zsd_start --swapon -o disksize=256M -o priority=$prio ||
    tap_bail "zsd --swapon did not start"
old_loop=$(our_loops)
[ -n "$old_loop" ] || tap_bail "no loop device"

cgroup_create stale $((32 << 20)) || tap_bail "cannot make a memory cgroup"
# The swapper must die of the SIGBUS itself; a sanitizer build would
# otherwise catch it and exit 1.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_sigbus=0 \
UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}handle_sigbus=0 \
cgroup_run stale "$SWAPPER" -m 96 -s 3 -w 32 -p "$TEST_DIR/go" \
    >"$TEST_DIR/swapper.out" 2>&1 &
swapper=$!
TEST_PIDS=$swapper
wait_for 1200 grep -q "waiting for" "$TEST_DIR/swapper.out"
tap_ok $? "swapper filled 96 MiB in a 32 MiB cgroup and waits"
used=$(awk -v d="$old_loop" '$1 == d { print $4 }' /proc/swaps)
tap_diag "/proc/swaps: $old_loop uses ${used:-?} KiB"

# The keeper and the server together: nothing holds the connection.
kill -KILL "$ZSD_PID" "$ZSD_SERVER"
wait "$ZSD_PID" 2>/dev/null
pid_wait_gone "$ZSD_SERVER" 10
ZSD_PID=
is_mounted "$ZSD_MNT" && ! stat "$ZSD_MNT" >/dev/null 2>&1
tap_ok $? "after SIGKILL the mount is still there, and dead"
swap_priority "$old_loop" >/dev/null
tap_ok $? "and $old_loop is still swap"

# swapoff charges every page it reads back, even a lost one, to the
# page's cgroup: give the cgroup room, as zsd's message says.
if [ "$CG_VERSION" = 1 ]; then
	echo $((1 << 30)) >"$(cgroup_path stale)/memory.limit_in_bytes"
else
	echo $((1 << 30)) >"$(cgroup_path stale)/memory.max"
fi
# The same mountpoint, written another way: through a symbolic link to
# its parent, with a trailing slash.
ln -s "$TEST_DIR" "$TEST_DIR/link"
zsd_start --swapon -o disksize=256M -o priority=$prio \
    -o mountpoint="$TEST_DIR/link/mnt/"
tap_ok $? "a new zsd starts on the same mountpoint (as link/mnt/)"
tap_diag "$(grep -E "gone|lost|unmounted" "$ZSD_LOG")"
grep -q "the mount of a zsd that is gone" "$ZSD_LOG"
tap_ok $? "it says it found the dead mount"
grep -qE "$old_loop, backed by .* is still swap with [0-9]+ MiB in use: those pages are lost" \
    "$ZSD_LOG"
tap_ok $? "it says $old_loop was still swap and how much was lost"
new_loop=$(our_loops)
[ -n "$new_loop" ] && [ "$(echo "$new_loop" | wc -l)" -eq 1 ]
tap_ok $? "one loop device of ours is attached: ${new_loop:-none}"
[ "$(awk -v p="$prio" 'NR > 1 && $5 == p' /proc/swaps | wc -l)" -eq 1 ] &&
    swap_priority "$new_loop" >/dev/null
tap_ok $? "one swap at priority $prio, the new zsd's $new_loop"
[ "$(awk -v m="$ZSD_MNT" '$5 == m' /proc/self/mountinfo | wc -l)" -eq 1 ]
tap_ok $? "one mount on $ZSD_MNT"

# The program's pages that were in the dead swap are gone: it must die
# of SIGBUS when it reads one, not see other data.
touch "$TEST_DIR/go"
wait "$swapper"
status=$?
TEST_PIDS=
[ "$status" -eq $((128 + 7)) ]
tap_ok $? "the program touching a lost page got SIGBUS (status $status)"
grep -q "not ok" "$TEST_DIR/swapper.out"
[ $? -ne 0 ]
tap_ok $? "and never reported a wrong page"
cgroup_remove stale
tap_ok $? "removed the cgroup"

zsd_stop
tap_ok $? "the new zsd stops on SIGTERM with status 0"
[ -z "$(our_loops)" ] && ! is_mounted "$ZSD_MNT"
tap_ok $? "no loop device of ours and no mount are left"
tap_done
