#!/bin/bash
# sched.sh - zsd's threads run at the real-time priority rt_priority asks
# for (SCHED_FIFO 10 by default), and at normal priority with
# rt_priority=0.  (Bad values: tests/badinput.sh.)
. "${srcdir:-.}/tests/lib.sh"

require_root
require_fuse
require_prog chrt
setup_cleanup

# "POLICY PRIORITY" of every thread of pid $1, one line each.
thread_sched()
{
	local t

	for t in /proc/"$1"/task/*; do
		chrt -p "${t##*/}" 2>/dev/null | awk -F': ' '
		    /policy/ { p = $2 } /priority/ { print p, $2 }'
	done
}

# check OPTION WANT LABEL: zsd with -o OPTION (none: the defaults);
# every thread's "POLICY PRIORITY" must be WANT, and there must be at
# least two threads (the loop and a worker).
check()
{
	local opt=$1 want=$2 label=$3 lines

	if ! zsd_start --no-swapon -o disksize=16M ${opt:+-o "$opt"}; then
		tap_ok 1 "$label: zsd started"
		return
	fi
	lines=$(thread_sched "$ZSD_PID")
	tap_diag "$lines"
	[ "$(echo "$lines" | wc -l)" -ge 2 ] &&
	    ! echo "$lines" | grep -qvx "$want"
	tap_ok $? "$label: every thread is $want"
	zsd_stop
	tap_ok $? "$label: zsd stops cleanly"
}

check "" "SCHED_FIFO 10" "default"
check rt_priority=0 "SCHED_OTHER 0" "rt_priority=0"
check rt_priority=42 "SCHED_FIFO 42" "rt_priority=42"

tap_done
