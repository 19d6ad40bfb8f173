#!/bin/bash
# stop.sh - a stop that would OOM-kill is refused.  A program in a 64 MiB
# memory cgroup fills 256 MiB, so that most of it is in zsd's swap, and
# waits.  SIGTERM: zsd must refuse (those pages would not fit back under
# the cgroup's limit), keep serving, and the program must live.  Then the
# limit is raised: the stop, tried again by zsd itself, must go through,
# and the program must find every page right.  Last, a stop after
# someone else turned zsd's swap off goes through.
. "${srcdir:-.}/tests/lib.sh"

prio=32000
ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}

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

# wait_for TENTHS CMD...: until CMD succeeds, at most TENTHS tenths of a s.
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

zsd_start --swapon -o disksize=512M -o priority=$prio ||
    tap_bail "zsd --swapon did not start"
loop=$(our_loops)
[ -n "$loop" ] || tap_bail "no loop device"
pid=$ZSD_PID		# the keeper; zsctl names the server

cgroup_create stop $((64 << 20)) || tap_bail "cannot make a memory cgroup"
cg=$(cgroup_path stop)
cgroup_run stop "$SWAPPER" -m 256 -s 5 -w 128 -p "$TEST_DIR/go" \
    >"$TEST_DIR/swapper.out" 2>&1 &
swapper=$!
TEST_PIDS=$swapper
wait_for 1800 grep -q "waiting for" "$TEST_DIR/swapper.out"
tap_ok $? "swapper filled 256 MiB in a 64 MiB cgroup and waits"
tap_diag "$(cat "$TEST_DIR/swapper.out")"
tap_diag "/proc/swaps: $(awk -v d="$loop" '$1 == d' /proc/swaps)"

kill -TERM "$pid"
wait_for 600 grep -q "not stopping: memory cgroup" "$ZSD_LOG"
tap_ok $? "SIGTERM: zsd refuses, naming the memory cgroup"
tap_diag "$(grep -A1 "not stopping" "$ZSD_LOG")"
grep -q "not stopping: memory cgroup /zsd-test\.$$\.stop " "$ZSD_LOG"
tap_ok $? "the cgroup named is the test's"
sleep 1
pid_alive "$pid"
tap_ok $? "zsd is still running"
swap_priority "$loop" >/dev/null
tap_ok $? "$loop is still swap"
pid_alive "$swapper"
tap_ok $? "the program whose pages are in swap is alive"
[ -n "$(our_loops)" ] && is_mounted "$ZSD_MNT"
tap_ok $? "the loop device and the mount are still there"

# zsctl stop waits for the stop, and says it was refused, and why.
out=$(timeout 120 "$ZSCTL" -s "$TEST_DIR/control" stop 2>&1)
st=$?
tap_diag "$out"
[ $st -eq 1 ] && echo "$out" | grep -q "^zsd (pid $ZSD_SERVER) is stopping$" &&
    echo "$out" | grep -q "zsd did not stop and still serves its swap: \
memory cgroup /zsd-test\.$$\.stop " && echo "$out" | grep -q "stop --force"
tap_ok $? "zsctl stop: exit $st, refused, the cgroup named, --force offered"
pid_alive "$pid" && pid_alive "$swapper" && swap_priority "$loop" >/dev/null
tap_ok $? "zsd, its swap and the program are all still there"

# Make room: the stop that was asked for goes through by itself.
if [ "$CG_VERSION" = 1 ]; then
	echo $((1 << 30)) >"$cg/memory.limit_in_bytes"
else
	echo $((1 << 30)) >"$cg/memory.max"
fi
tap_ok $? "raised the cgroup's limit to 1 GiB"
t0=$(date +%s)
pid_wait_gone "$pid" 180
gone=$?
tap_ok $gone "zsd stopped by itself $(($(date +%s) - t0)) s after the" \
    "limit was raised"
if [ "$gone" -eq 0 ]; then
	wait "$pid"
	status=$?
	ZSD_PID=
	[ "$status" -eq 0 ]
	tap_ok $? "zsd exited with status 0 (got $status)"
else
	tap_diag "$(tail -n 20 "$ZSD_LOG")"
	tap_ok 1 "zsd exited with status 0"
fi
! swap_priority "$loop" >/dev/null
tap_ok $? "swap on $loop is off"
[ -z "$(our_loops)" ] && ! is_mounted "$ZSD_MNT"
tap_ok $? "$loop is detached and the mount is gone"

touch "$TEST_DIR/go"
wait "$swapper"
status=$?
TEST_PIDS=
tap_diag "$(cat "$TEST_DIR/swapper.out")"
tap_ok "$status" "the program found every one of its pages right"
cgroup_remove stop
tap_ok $? "removed the cgroup"

# Swap turned off by hand: zsd's own swapoff fails (EINVAL), and the stop
# must go on all the same, not keep serving a device that is no swap.
zsd_start --swapon -o disksize=64M -o priority=$prio ||
    tap_bail "zsd --swapon did not start again"
loop=$(our_loops)
swapoff "$loop"
tap_ok $? "swapoff $loop by hand"
zsd_stop
status=$?
tap_ok $status "zsd stops after a swapoff by hand (status $status)"
[ "$status" -eq 0 ] || tap_diag "$(tail -n 5 "$ZSD_LOG")"
grep -q "no longer swap" "$ZSD_LOG" && ! grep -q "cannot tell" "$ZSD_LOG"
tap_ok $? "zsd says the swap was turned off by someone else (and no" \
    "more: nothing to fit back)"
[ -z "$(our_loops)" ] && ! is_mounted "$ZSD_MNT"
tap_ok $? "$loop is detached and the mount is gone"
tap_done
