#!/bin/bash
# crash.sh - zsd survives its own crash with swap on: a program in a
# memory cgroup holds hundreds of MiB in zsd's swap, the serving process
# is killed with SIGKILL at several moments (mid-fill, idle, during a
# compaction, during a shrink, with the pool's pages pushed out while no
# server runs, mid-read-back), and each time the keeper starts a new
# server that recovers the pool and serves again; the program must
# finish with every page right, killed by nothing (no SIGBUS, no OOM
# kill).  Prints how long each new server took to answer.
. "${srcdir:-.}/tests/lib.sh"
# Servers die here with requests in flight, which only /dev/fuse can have
# resent (zsd.conf(5), transport): this runs on it whatever $ZSD_TRANSPORT
# says.
ZSD_TRANSPORT=dev

prio=32000
keeper=
ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}
MIB=${CRASH_MIB:-640}		# the program's memory
LIMIT=${CRASH_LIMIT:-160}	# its cgroup's, MiB

require_root
require_fuse
require_loop
require_cgroup_memory
require_prog swapoff losetup
[ -x "$ZSCTL" ] || skip "no zsctl at $ZSCTL"
swap_lock || tap_bail "cannot take $builddir/tests/swap.lock"
other=$(swaps_from "$prio")
[ -z "$other" ] || skip "other swap at priority >= $prio: $other"
setup_cleanup

# A keeper left stopped by kill_paged_out would never stop.
cleanup_hook()
{
	[ -n "$keeper" ] && kill -CONT "$keeper" 2>/dev/null
	return 0
}

zsctl()
{
	"$ZSCTL" -s "$TEST_DIR/control" "$@"
}

now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

# new_server OLD: the pid of the server that answers after OLD, waiting
# up to 5 s; nothing if none does.
new_server()
{
	local new tries

	for ((tries = 0; tries < 100; tries++)); do
		new=$(zsd_status pid)
		[ -n "$new" ] && [ "$new" != "$1" ] && { echo "$new"; return; }
		sleep 0.05
	done
}

# kill_server WHAT: SIGKILL the server, wait for another to answer; a
# test point with the time it took.
kills=0
kill_server()
{
	local what=$1 old new t0 t1

	old=$(zsd_status pid)
	[ -n "$old" ] || { tap_ok 1 "$what: no server answers"; return; }
	t0=$(now_ms)
	kill -KILL "$old"
	kills=$((kills + 1))
	new=$(new_server "$old")
	t1=$(now_ms)
	[ -n "$new" ]
	tap_ok $? "$what: server $old killed, $new answers after" \
	    "$((t1 - t0)) ms"
	[ -n "$new" ] || tap_diag "$(tail -15 "$ZSD_LOG")"
	echo "$((t1 - t0))" >>"$TEST_DIR/gaps"
}

# pool_files: the keeper's descriptors of the pool's memory (the arena
# and the state), one /proc path a line.
pool_files()
{
	local f

	for f in /proc/"$keeper"/fd/*; do
		case $(readlink "$f") in
		"/#"*" (deleted)" | "/memfd:zsd-"*) echo "$f" ;;
		esac
	done
}

# fuse_abort: abort our mount's FUSE connection, so that whatever waits
# on it fails instead.
fuse_abort()
{
	local dev

	dev=$(awk -v m="$ZSD_MNT" '$5 == m { print $3 }' /proc/self/mountinfo)
	[ -n "$dev" ] && echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort"
}

# kill_paged_out: SIGKILL the server while the keeper is stopped, so that
# nobody has the pool's memory mapped; page every page of it out, as
# reclaim may then, before the keeper starts the next server.  On a
# noswap tmpfs they stay; in a memfd they would go to zsd's own swap,
# and the next server would hang on them.
kill_paged_out()
{
	local old f pages=0 kept=0 arena=0 n a t0 t1 new used0 used1

	old=$(zsd_status pid)
	if [ "$(zsd_status pool_memory)" != noswap ]; then
		tap_skip 3 "pool in a memfd (kernel before 6.4, or no" \
		    "CAP_SYS_ADMIN): its pages could be swapped to zsd"
		return
	fi
	kill -STOP "$keeper"
	t0=$(now_ms)
	kill -KILL "$old"
	kills=$((kills + 1))
	# Its parent is stopped: dead once a zombie.
	for ((n = 0; n < 100; n++)); do
		pid_alive "$old" || break
		sleep 0.05
	done
	used0=$(swap_used_kib "$loop")
	for f in $(pool_files); do
		# A page gone to zsd's swap with no server to take it stops
		# MADV_PAGEOUT (and everyone after) for good: unblock them.
		"$builddir/tests/pageout" "$f" >"$TEST_DIR/pageout" &
		for ((n = 0; n < 300; n++)); do
			pid_alive $! || break
			sleep 0.1
		done
		if pid_alive $!; then
			tap_ok 1 "MADV_PAGEOUT of $f hangs: the pool's pages" \
			    "went to zsd's swap"
			stuck_bail
		fi
		wait $! || { tap_diag "pageout $f failed"; pages=-1; break; }
		read -r _ n _ a <"$TEST_DIR/pageout"
		pages=$((pages + n))
		kept=$((kept + a))
		# The arena is the larger file: the state is one page.
		[ "$n" -gt "$arena" ] && arena=$n
	done
	used1=$(swap_used_kib "$loop")
	kill -CONT "$keeper"
	# mincore counts a page under writeback to swap as in memory: the
	# swap's use tells whether any left.
	[ "$arena" -gt 1 ] && [ "$kept" -eq "$pages" ] &&
	    [ "$used1" -le "$used0" ]
	tap_ok $? "no server: $kept of the pool's $pages pages in memory" \
	    "after MADV_PAGEOUT; $loop's use $used0 KiB then $used1 KiB"
	new=$(new_server "$old")
	t1=$(now_ms)
	[ -n "$new" ]
	tap_ok $? "pool paged out: server $old killed, $new answers after" \
	    "$((t1 - t0)) ms"
	[ -n "$new" ] || stuck_bail
	echo "$((t1 - t0))" >>"$TEST_DIR/gaps"
	grep "recovered" "$ZSD_LOG" | tail -1 | grep -q ", 0 pages lost"
	tap_ok $? "that server recovered the pool, no page lost"
}

# stuck_bail: a server or pageout waits on zsd's own swap for good (the
# pool was paged out): abort the connection so that everything waiting
# fails instead, and stop here.
stuck_bail()
{
	tap_diag "$(tail -15 "$ZSD_LOG")"
	fuse_abort
	kill -CONT "$keeper"
	tap_bail "the FUSE connection is aborted"
}

# swap_used_kib DEV: KiB in use on swap device DEV.
swap_used_kib()
{
	awk -v d="$1" '$1 == d { print $4 }' /proc/swaps
}

# swapped: KiB of the program's memory in swap.
swapped()
{
	local kib

	kib=$(awk '/^VmSwap:/ { print $2 }' "/proc/$swapper/status" \
	    2>/dev/null)
	echo "${kib:-0}"
}

zsd_start --swapon -o disksize=1G -o priority=$prio ||
    tap_bail "zsd --swapon did not start"
keeper=$(zsd_status keeper_pid)
[ -n "$keeper" ] || tap_bail "zsd reports no keeper_pid"
loop=$(our_loops)
[ -n "$loop" ] || tap_bail "no loop device"

cgroup_create crash $((LIMIT << 20)) || tap_bail "cannot make a memory cgroup"
rm -f "$TEST_DIR/go"
cgroup_run crash "$SWAPPER" -m "$MIB" -s 23 -w $((MIB - LIMIT - 80)) \
    -p "$TEST_DIR/go" >"$TEST_DIR/swapper.out" 2>&1 &
bg=$!
TEST_PIDS=$bg
# The swapper itself: the process of its cgroup, once it has exec'd it
# (before, a subshell, whose VmSwap stays 0).
swapper=
for ((i = 0; i < 100; i++)); do
	for c in $(cat "$(cgroup_path crash)/cgroup.procs" 2>/dev/null); do
		[ "$(cat "/proc/$c/comm" 2>/dev/null)" = swapper ] && swapper=$c
	done
	[ -n "$swapper" ] && break
	sleep 0.1
done
[ -n "$swapper" ] || tap_bail "the swapper did not start"

# Mid-fill: once 100 MiB are in swap.
for ((i = 0; i < 1200; i++)); do
	pid_alive "$swapper" && [ "$(swapped)" -lt $((100 << 10)) ] || break
	sleep 0.1
done
kill_server "mid-fill ($(($(swapped) >> 10)) MiB swapped)"

# Idle: the fill done, the program waiting.
for ((i = 0; i < 600; i++)); do
	grep -q "waiting for" "$TEST_DIR/swapper.out" && break
	pid_alive "$swapper" || break
	sleep 0.1
done
sw=$(($(swapped) >> 10))
[ "$sw" -ge 400 ] || tap_diag "only $sw MiB swapped (want 400)"
kill_server "idle with $sw MiB swapped"
held=$sw

# During a compaction, and during a shrink, each started by zsctl.
zsctl compact >/dev/null 2>&1 &
sleep 0.05
kill_server "during zsctl compact"
wait $! 2>/dev/null
zsctl shrink 64M >/dev/null 2>&1 &
sleep 0.05
kill_server "during zsctl shrink"
wait $! 2>/dev/null
kill_paged_out

# Mid-read-back: let the program verify, kill twice while it reads.
touch "$TEST_DIR/go"
sleep 1
kill_server "mid-read-back ($(($(swapped) >> 10)) MiB still swapped)"
sleep 1
pid_alive "$swapper" && kill_server "mid-read-back, again"

wait "$bg"
status=$?
TEST_PIDS=
tap_diag "$(cat "$TEST_DIR/swapper.out")"
[ "$status" -eq 0 ]
tap_ok $? "swapper -m $MIB in a $LIMIT MiB cgroup, $held MiB swapped:" \
    "every page right across $kills kills of the server (status $status)"
! grep -q "oom_kill [1-9]" "$(cgroup_path crash)/memory.events" 2>/dev/null
tap_ok $? "no process of the cgroup was OOM-killed"
[ "$(zsd_status restarts)" = "$kills" ]
tap_ok $? "zsctl status: restarts $(zsd_status restarts) (want $kills)"
[ "$(zsd_status keeper_pid)" = "$keeper" ]
tap_ok $? "the keeper ($keeper) is the same"
[ "$(swap_priority "$loop")" = "$prio" ]
tap_ok $? "$loop is still swap at priority $prio"
tap_diag "new server answered after (ms): $(tr '\n' ' ' <"$TEST_DIR/gaps")"
grep -h "recovered" "$ZSD_LOG" | sed 's/^/# /' | head -8

cgroup_remove crash
zsd_stop
tap_ok $? "zsd stops on SIGTERM with status 0"
! swap_priority "$loop" >/dev/null
tap_ok $? "swap on $loop is off"
! is_mounted "$ZSD_MNT"
tap_ok $? "the mount is gone"
tap_done
