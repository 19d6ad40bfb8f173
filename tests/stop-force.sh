#!/bin/bash
# stop-force.sh - zsctl stop, refused, then forced.  Debug builds only
# (--enable-debug): there zsd honours ZSD_FAULT_MEMFIT_REFUSE, which makes
# it refuse every stop as if the swapped pages would not fit in memory.
# zsctl stop must report the refusal and leave zsd serving its swap;
# zsctl stop --force must swap off anyway and wait until zsd is gone.
. "${srcdir:-.}/tests/lib.sh"

prio=32000
ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}

grep -q '^#define ZS_DEBUG 1' "$builddir/config.h" 2>/dev/null ||
    skip "not a debug build (configure --enable-debug)"
[ -x "$ZSCTL" ] || tap_bail "no zsctl at $ZSCTL"
require_root
require_fuse
require_loop
require_prog swapoff losetup python3
swap_lock || tap_bail "cannot take $builddir/tests/swap.lock"
other=$(awk -v p="$prio" 'NR > 1 && $5 >= p { print $1 " (" $5 ")" }' \
    /proc/swaps)
[ -z "$other" ] || skip "other swap at priority >= $prio: $other"
setup_cleanup

zsctl()
{
	timeout 120 "$ZSCTL" -s "$TEST_DIR/control" "$@"
}

# status_get KEY: that key of zsctl --json status's first record.
status_get()
{
	zsctl --json status | python3 -c 'import json, sys
print(json.load(sys.stdin)[0][sys.argv[1]])' "$1"
}

ZSD_FAULT_MEMFIT_REFUSE=1 zsd_start --swapon -o disksize=64M \
    -o priority=$prio || tap_bail "zsd --swapon did not start"
loop=$(our_loops)
[ -n "$loop" ] || tap_bail "no loop device"
pid=$ZSD_SERVER		# the server, which zsctl names

[ "$(status_get pid)" = "$pid" ] && [ "$(status_get stopping)" = no ] &&
    [ "$(status_get stops_failed)" = 0 ]
tap_ok $? "status: pid $pid, not stopping, no stop failed yet"

out=$(zsctl stop 2>&1)
st=$?
tap_diag "$out"
[ $st -eq 1 ] && echo "$out" | grep -q "^zsd (pid $pid) is stopping$" &&
    echo "$out" | grep -q "did not stop and still serves its swap: \
ZSD_FAULT_MEMFIT_REFUSE is set" && echo "$out" | grep -q "stop --force"
tap_ok $? "zsctl stop: exit $st, refused, with the reason and --force"
pid_alive "$pid" && swap_priority "$loop" >/dev/null &&
    [ "$(status_get swap)" = on ]
tap_ok $? "zsd still runs and $loop is still its swap"
[ "$(status_get stops_failed)" = 1 ] &&
    [ "$(status_get stop_failed)" = "ZSD_FAULT_MEMFIT_REFUSE is set" ]
tap_ok $? "status: one stop failed, and why"

out=$(zsctl --json stop 2>/dev/null)
st=$?
[ $st -eq 1 ] && echo "$out" | python3 -c 'import json, sys
j = json.loads(sys.stdin.readline())
assert j["pid"] == int(sys.argv[1]) and j["stopped"] is False, j
assert j["reason"] == "ZSD_FAULT_MEMFIT_REFUSE is set", j' "$pid"
tap_ok $? "zsctl --json stop: exit $st, {pid, stopped: false, reason}: $out"

out=$(zsctl stop --force 2>&1)
st=$?
[ $st -eq 0 ] && [ "$out" = "zsd (pid $pid) is stopping, forced
zsd stopped" ]
tap_ok $? "zsctl stop --force: exit $st: $out"
! pid_alive "$pid" && pid_wait_gone "$ZSD_PID" 10
tap_ok $? "zsd is gone"
wait "$ZSD_PID"
st=$?
ZSD_PID=
[ $st -eq 0 ] && grep -q "control: stop --force, by pid" "$ZSD_LOG"
tap_ok $? "it exited with status $st, the forced stop logged"
! swap_priority "$loop" >/dev/null && [ -z "$(our_loops)" ] &&
    ! is_mounted "$ZSD_MNT"
tap_ok $? "no swap, loop device or mount of it is left"
tap_done
