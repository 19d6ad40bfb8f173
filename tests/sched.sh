#!/bin/bash
# sched.sh - zsd's I/O threads (zsd-fuse, which reads /dev/fuse, the
# zsd-worker threads, and with io_uring the zsd-ring/N threads) run at the
# real-time priority rt_priority asks for (SCHED_FIFO 10 by default); the
# loop, which serves the control socket and timers, and the background
# threads (zs-free, zs-report) at normal priority; with rt_priority=0
# every thread is normal.  (Bad values: badinput.sh.)
. "${srcdir:-.}/tests/lib.sh"

require_root
require_fuse
require_prog chrt
setup_cleanup

# "NAME POLICY PRIORITY" of every thread of pid $1: the loop thread is
# named "loop"; POLICY as the kernel numbers it (0 normal, 1 SCHED_FIFO).
threads()
{
	local t name

	for t in /proc/"$1"/task/*; do
		if [ "${t##*/}" = "$1" ]; then
			name=loop
		else
			name=$(cat "$t/comm") || continue
		fi
		# Fields 40 and 41 (rt_priority, policy), counted after comm.
		sed 's/.*) //' "$t/stat" 2>/dev/null |
		    awk -v n="$name" '{ print n, $39, $38 }'
	done
}

# check OPTION IO BACKGROUND LABEL: zsd with -o OPTION (none: the
# defaults); zsd-fuse, every zsd-worker and zsd-ring/N must be "POLICY
# PRIORITY" IO, the loop, zs-free and zs-report BACKGROUND.
check()
{
	local opt=$1 io=$2 bg=$3 label=$4 list ok=0 n

	if ! zsd_start --no-swapon -o disksize=16M ${opt:+-o "$opt"}; then
		tap_ok 1 "$label: zsd started"
		return
	fi
	list=$(threads "$ZSD_SERVER")
	tap_diag "$list"
	n=$(echo "$list" | grep -c '^zsd-worker ')
	[ "$n" -ge 1 ] || ok=1
	echo "$list" | grep -q '^zsd-fuse ' || ok=1
	echo "$list" | awk '$1 == "zsd-fuse" || $1 == "zsd-worker" ||
	    $1 ~ /^zsd-ring\// { print $2, $3 }' | grep -qvx "$io" && ok=1
	for t in loop zs-free zs-report; do
		[ "$(echo "$list" | awk -v t="$t" '$1 == t { print $2, $3 }')" \
		    = "$bg" ] || ok=1
	done
	tap_ok $ok "$label: (policy priority) zsd-fuse and $n workers $io;" \
	    "the loop, zs-free and zs-report $bg"
	zsd_stop
	tap_ok $? "$label: zsd stops cleanly"
}

check rt_priority=0 "0 0" "0 0" "rt_priority=0"
if ! chrt -f 1 true 2>/dev/null; then
	tap_skip 8 "no real-time scheduling here (CAP_SYS_NICE, or the" \
	    "cgroup's budget)"
	tap_done
fi
check "" "1 10" "0 0" "default"
check rt_priority=42 "1 42" "0 0" "rt_priority=42"

# Started real-time (chrt, a unit's CPUSchedulingPolicy): rt_priority
# still decides, and the pool's threads are normal all the same.
wrapper=$TEST_DIR/zsd-chrt
printf '#!/bin/sh\nexec chrt -f 5 "%s" "$@"\n' \
    "$(cd "$(dirname "$ZSD")" && pwd)/$(basename "$ZSD")" >"$wrapper"
chmod +x "$wrapper"
if "$wrapper" -V >/dev/null 2>&1; then
	ZSD=$wrapper
	check rt_priority=0 "0 0" "0 0" "under chrt -f 5, rt_priority=0"
	check "" "1 10" "0 0" "under chrt -f 5, default"
else
	tap_skip 4 "cannot run a script from $TEST_DIR (noexec?)"
fi

# Not checked here: the threads that compact, shrink and turn swap on or
# off (they call sched_background() as they start) live for milliseconds.
tap_done
