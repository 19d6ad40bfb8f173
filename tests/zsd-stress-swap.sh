#!/bin/bash
# zsd-stress-swap.sh - zsd-stress swap --spawn --quick --chaos passes: its
# workers in a memory cgroup of its own swap to a zsd it spawned, every
# page comes back right while chaos runs; and at the end, as after a
# SIGINT, its cgroup, swap, loop device, mount and directory are gone.
. "${srcdir:-.}/tests/lib.sh"

prio=32000
ZSD_STRESS=${ZSD_STRESS:-$builddir/stress/zsd-stress}
[ -x "$ZSD_STRESS" ] || tap_bail "no zsd-stress at $ZSD_STRESS"
require_root
require_fuse
require_loop
require_cgroup_memory
require_prog swapoff losetup
swap_lock || tap_bail "cannot take $builddir/tests/swap.lock"
other=$(swaps_from "$prio")
[ -z "$other" ] || skip "other swap at priority >= $prio: $other"
setup_cleanup
export TMPDIR=$TEST_DIR ZSD

# run NAME ARGS...: zsd-stress in the background, its output in
# $TEST_DIR/NAME.out; sets pid and, once it is gone, status.  Notes
# whether its cgroup and its swap were there while it ran.
run()
{
	local name=$1

	shift
	"$ZSD_STRESS" "$@" >"$TEST_DIR/$name.out" 2>"$TEST_DIR/$name.err" 9>&- &
	pid=$!
	TEST_PIDS=$pid
	cg_seen=0 swap_seen=0
}

watch_run()
{
	if [ -d "$CG_ROOT/zsd-stress.$pid" ]; then
		cg_seen=1
	fi
	if [ -n "$(our_loops)" ] && swap_priority "$(our_loops | head -1)" \
	    >/dev/null; then
		swap_seen=1
	fi
}

finish_run()
{
	while pid_alive "$pid"; do
		watch_run
		sleep 0.2
	done
	wait "$pid"
	status=$?
	TEST_PIDS=
}

nothing_left()
{
	local left

	left=$(ls -d "$TEST_DIR"/zsd-stress.* 2>/dev/null)
	[ "$cg_seen" -eq 1 ] && [ ! -e "$CG_ROOT/zsd-stress.$pid" ]
	tap_ok $? "$1: its cgroup $CG_ROOT/zsd-stress.$pid was there" \
	    "(seen $cg_seen) and is gone"
	[ "$swap_seen" -eq 1 ] && [ -z "$(our_loops)" ] &&
	    [ -z "$(our_mounts)" ] && [ -z "$left" ]
	tap_ok $? "$1: its swap was on (seen $swap_seen); no swap, loop" \
	    "device, mount or directory of it is left${left:+ ($left)}"
}

run quick swap --spawn --quick --chaos --json
finish_run
tap_diag "$(cat "$TEST_DIR/quick.err")"
tap_ok "$status" "swap --spawn --quick --chaos: exit $status"
grep -q '"result": "pass"' "$TEST_DIR/quick.out" &&
    grep -q '"wrong_pages": 0,' "$TEST_DIR/quick.out"
tap_ok $? "the JSON says pass, 0 wrong pages"
served=$(sed -n 's/.*"zsd": { "pages_written": \([0-9]*\),.*/\1/p' \
    "$TEST_DIR/quick.out")
verified=$(sed -n 's/^  "pages_verified": \([0-9]*\),/\1/p' \
    "$TEST_DIR/quick.out")
[ "${served:-0}" -ge 8192 ] && [ "${verified:-0}" -ge 32768 ]
tap_ok $? "zsd took ${served:-no} pages (want >= 8192, the working set" \
    "beyond the limit); ${verified:-no} pages verified (want >= 32768)"
nothing_left "after the quick run"

# Interrupted while the workers swap.
run int swap --spawn --duration 60
tenths=300
while ! grep -q "zsd: spawned" "$TEST_DIR/int.out" && [ $tenths -gt 0 ]; do
	watch_run
	sleep 0.1
	tenths=$((tenths - 1))
done
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
	watch_run
	sleep 0.2
done
kill -INT "$pid"
finish_run
tap_diag "$(tail -n 20 "$TEST_DIR/int.out")"
[ "$status" -eq 130 ] && grep -q "INTERRUPTED" "$TEST_DIR/int.out"
tap_ok $? "SIGINT: exit $status (want 130) and the summary"
nothing_left "after SIGINT"
tap_done
