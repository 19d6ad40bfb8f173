#!/bin/bash
# keeper.sh - the FUSE connection outlives the serving process.  zsd as
# started is a keeper that holds the /dev/fuse fd: a server killed with
# SIGKILL is replaced within a second, and the mount goes on working,
# even for the I/O that was in flight when it died (the successor replays
# FUSE INIT and has the kernel resend what its predecessor had read).
# zsctl restart replaces the server the same way.  A clean stop (SIGTERM
# to the keeper) still unmounts and exits 0; the keeper and the server
# killed together leave a dead mount that the next zsd cleans up.
# What was written before the kills and restarts reads back the same
# after them: the pool outlives its servers.
. "${srcdir:-.}/tests/lib.sh"
# Servers die here with requests in flight, which only /dev/fuse can have
# resent (zsd.conf(5), transport): this runs on it whatever $ZSD_TRANSPORT
# says.
ZSD_TRANSPORT=dev

ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}
NR_LOOPS=4

require_root
require_fuse
require_prog python3 dd
[ -x "$ZSCTL" ] || skip "no zsctl at $ZSCTL"
setup_cleanup

zsctl()
{
	"$ZSCTL" -s "$TEST_DIR/control" "$@"
}

# Wait up to $2 tenths of a second for a server other than pid $1 to
# answer; its pid on stdout.
new_server()
{
	local old=$1 tenths=$2 pid

	while [ "$tenths" -gt 0 ]; do
		pid=$(zsd_status pid)
		if [ -n "$pid" ] && [ "$pid" != "$old" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
		tenths=$((tenths - 1))
	done
	return 1
}

# I/O loops: each writes and reads back its own 1 MiB of the file with
# O_DIRECT, 128 KiB at a time, until $TEST_DIR/io.stop exists; a failed
# dd is written to $TEST_DIR/io.N.err.
io_start()
{
	local n

	rm -f "$TEST_DIR/io.stop" "$TEST_DIR"/io.*.err "$TEST_DIR"/io.*.count
	IO_PIDS=
	for ((n = 0; n < NR_LOOPS; n++)); do
		(
			i=0
			while [ ! -e "$TEST_DIR/io.stop" ]; do
				at=$((n * 8 + i % 8))
				dd if="$TEST_DIR/pattern" of="$F" bs=128k \
				    count=1 seek=$at oflag=direct \
				    conv=notrunc status=none ||
				    echo "write $i at $at: status $?" \
				    >>"$TEST_DIR/io.$n.err"
				dd if="$F" of=/dev/null bs=128k count=1 \
				    skip=$at iflag=direct status=none ||
				    echo "read $i at $at: status $?" \
				    >>"$TEST_DIR/io.$n.err"
				i=$((i + 1))
			done
			echo "$i" >"$TEST_DIR/io.$n.count"
		) 2>>"$TEST_DIR/io.$n.err" &
		IO_PIDS="$IO_PIDS $!"
	done
	TEST_PIDS="$TEST_PIDS $IO_PIDS"
}

# Stop the loops; 1 if one hangs (a request nobody answers) or failed.
io_stop()
{
	local pid hung=0 n total=0

	touch "$TEST_DIR/io.stop"
	for pid in $IO_PIDS; do
		pid_wait_gone "$pid" 30 || hung=1
	done
	for ((n = 0; n < NR_LOOPS; n++)); do
		total=$((total + $(cat "$TEST_DIR/io.$n.count" 2>/dev/null ||
		    echo 0)))
	done
	IO_ROUNDS=$total
	if [ "$hung" -ne 0 ]; then
		tap_diag "an I/O loop hangs"
		return 1
	fi
	if [ -n "$(cat "$TEST_DIR"/io.*.err 2>/dev/null)" ]; then
		tap_diag "$(cat "$TEST_DIR"/io.*.err)"
		return 1
	fi
	return 0
}

head -c $((128 << 10)) /dev/urandom >"$TEST_DIR/pattern"

zsd_start --no-swapon -o disksize=64M || tap_bail "zsd did not start"
F=$ZSD_MNT/swap0
keeper=$ZSD_PID
server=$ZSD_SERVER
[ -n "$server" ] && [ "$(zsd_status pid)" = "$server" ] &&
    [ "$(zsd_status keeper_pid)" = "$keeper" ] &&
    [ "$(zsd_status restarts)" = 0 ]
tap_ok $? "status: server pid $server, keeper_pid $keeper, restarts 0"
# (The sanitizers make mlockall a silent no-op.)
if grep -q -- '-fsanitize=\(address\|thread\)' "$builddir/Makefile" \
    2>/dev/null; then
	tap_skip 1 "the sanitizers ignore mlockall"
else
	grep -q "^VmLck:.* [1-9][0-9]* kB" "/proc/$keeper/status" ||
	    grep -q "keeper: mlockall" "$ZSD_LOG"
	tap_ok $? "the keeper's memory is locked, or it said why not"
fi

# SIGKILL of the server, idle.
t0=$(date +%s%N)
kill -KILL "$server"
new=$(new_server "$server" 10)
ms=$((($(date +%s%N) - t0) / 1000000))
[ -n "$new" ] && [ "$ms" -lt 1000 ]
tap_ok $? "killed server $server: server ${new:-none} answers $ms ms" \
    "later (want < 1 s)"
[ "$(zsd_status restarts)" = 1 ] &&
    [ "$(zsd_status keeper_pid)" = "$keeper" ] && pid_alive "$keeper"
tap_ok $? "restarts 1, the same keeper_pid"
grep -q "server pid $server was killed by signal 9" "$ZSD_LOG"
tap_ok $? "the keeper logged the restart and its cause"
is_mounted "$ZSD_MNT" && [ "$(stat -c %s "$F")" = $((64 << 20)) ] &&
    dd if="$TEST_DIR/pattern" of="$F" bs=128k count=1 oflag=direct \
    conv=notrunc status=none &&
    dd if="$F" of=/dev/null bs=128k count=1 iflag=direct status=none
tap_ok $? "the mount works: stat, a write and a read of the file"

# 1 MiB of other bytes, written once, must read back the same after
# every kill and restart below.
head -c $((1 << 20)) /dev/urandom >"$TEST_DIR/kept"
dd if="$TEST_DIR/kept" of="$F" bs=1M seek=8 oflag=direct conv=notrunc \
    status=none || tap_bail "cannot write $F"
kept_same()
{
	dd if="$F" bs=1M skip=8 count=1 iflag=direct status=none |
	    cmp -s - "$TEST_DIR/kept"
}

# SIGKILL while I/O runs: nothing in flight may fail or hang.
io_start
sleep 0.5
kills=0
for _ in 1 2 3; do
	server=$(zsd_status pid)
	[ -n "$server" ] || break
	kill -KILL "$server"
	new_server "$server" 100 >/dev/null || break
	kills=$((kills + 1))
	sleep 0.5
done
tap_ok $((kills != 3)) "killed 3 servers while I/O ran ($kills replaced)"
io_stop
tap_ok $? "$NR_LOOPS O_DIRECT read/write loops saw no error and no" \
    "hang ($IO_ROUNDS rounds)"
[ "$(zsd_status restarts)" = 4 ] && pid_alive "$keeper"
tap_ok $? "restarts 4, the keeper the same"
kept_same
tap_ok $? "1 MiB written before the kills reads back the same"

# zsctl restart while I/O runs.
io_start
sleep 0.3
ok=0
for n in 1 2 3 4 5 6 7 8 9 10; do
	old=$(zsd_status pid)
	out=$(zsctl restart 2>&1)
	st=$?
	new=$(zsd_status pid)
	if [ $st -ne 0 ] || [ -z "$new" ] || [ "$new" = "$old" ] ||
	    [ "$out" != "zsd restarted: server pid $old replaced by pid $new" ]
	then
		tap_diag "restart $n: exit $st: $out"
		ok=1
	fi
	sleep 0.2
done
tap_ok $ok "zsctl restart, 10 times: each waits for the new server, names it"
io_stop
tap_ok $? "no I/O error or hang across the restarts ($IO_ROUNDS rounds)"
[ "$(zsd_status restarts)" = 14 ] && [ "$(grep -c \
    "exited with status 0 after a restart was asked" "$ZSD_LOG")" = 10 ]
tap_ok $? "restarts 14, 10 of them asked for, each old server exiting 0"
kept_same
tap_ok $? "1 MiB written before the restarts reads back the same"
for ((b = 0; b < NR_LOOPS * 8; b++)); do
	dd if="$F" bs=128k skip=$b count=1 iflag=direct status=none |
	    cmp -s - "$TEST_DIR/pattern" || break
done
[ "$b" -eq $((NR_LOOPS * 8)) ]
tap_ok $? "the I/O loops' blocks hold what they wrote ($b of $((NR_LOOPS * 8)))"

# A clean stop: SIGTERM to the keeper goes to the server.
server=$(zsd_status pid)
zsd_stop
tap_ok $? "SIGTERM to the keeper: zsd exits 0"
! pid_alive "$server" && ! is_mounted "$ZSD_MNT" && [ ! -e "$TEST_DIR/control" ]
tap_ok $? "the server is gone, the mount and the socket too"

# The keeper and the server killed together: the next zsd cleans up.
zsd_start --no-swapon -o disksize=64M || tap_bail "zsd did not start again"
kill -KILL "$ZSD_PID" "$ZSD_SERVER"
wait "$ZSD_PID" 2>/dev/null
pid_wait_gone "$ZSD_SERVER" 10
ZSD_PID=
is_mounted "$ZSD_MNT" && ! stat "$ZSD_MNT" >/dev/null 2>&1
tap_ok $? "both killed: the mount is left, and dead"
zsd_start --no-swapon -o disksize=64M
tap_ok $? "a new zsd starts on the same mountpoint"
grep -q "the mount of a zsd that is gone" "$ZSD_LOG" &&
    [ "$(awk -v m="$ZSD_MNT" '$5 == m' /proc/self/mountinfo | wc -l)" -eq 1 ]
tap_ok $? "it cleaned up the dead mount; one mount is left"
dd if="$F" of=/dev/null bs=128k count=1 iflag=direct status=none
tap_ok $? "and it serves the file"

# The keeper alone killed: the server says so and goes on serving.
server=$ZSD_SERVER
kill -KILL "$ZSD_PID"
wait "$ZSD_PID" 2>/dev/null
ZSD_PID=
TEST_PIDS="$TEST_PIDS $server"	# if the test stops before it does
for _ in $(seq 50); do
	grep -q "the keeper (pid [0-9]*) is gone" "$ZSD_LOG" && break
	sleep 0.1
done
grep -q "the keeper (pid [0-9]*) is gone" "$ZSD_LOG" && pid_alive "$server" &&
    dd if="$F" of=/dev/null bs=128k count=1 iflag=direct status=none
tap_ok $? "keeper killed: the server warns and still serves"
out=$(zsctl restart 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "no keeper"
tap_ok $? "zsctl restart without a keeper is refused: $out"
kill -TERM "$server"
pid_wait_gone "$server" 30 && ! is_mounted "$ZSD_MNT"
tap_ok $? "that server still stops cleanly on SIGTERM"

# A new server runs the file at the path zsd was started as, as it is on
# disk then: a script there that records each run, then another put in
# its place (an upgrade).  (Past libtool's wrapper, to the binary itself.)
real=$builddir/daemon/.libs/zsd
if [ -x "$real" ]; then
	export LD_LIBRARY_PATH=$builddir/libzs/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
	real=$ZSD
fi
mkdir "$TEST_DIR/bin"
printf '#!/bin/bash\necho %s >>"%s"\nexec -a "$0" "%s" "$@"\n' old \
    "$TEST_DIR/bin/runs" "$real" >"$TEST_DIR/bin/zsd"
chmod +x "$TEST_DIR/bin/zsd"
ZSD=$TEST_DIR/bin/zsd zsd_start --no-swapon -o disksize=64M ||
    tap_bail "zsd did not start from $TEST_DIR/bin/zsd"
printf '#!/bin/bash\necho %s >>"%s"\nexec -a "$0" "%s" "$@"\n' new \
    "$TEST_DIR/bin/runs" "$real" >"$TEST_DIR/bin/zsd.new"
chmod +x "$TEST_DIR/bin/zsd.new"
mv "$TEST_DIR/bin/zsd.new" "$TEST_DIR/bin/zsd"
out=$(zsctl restart 2>&1)
st=$?
[ $st -eq 0 ] && [ "$(tr '\n' ' ' <"$TEST_DIR/bin/runs")" = "old old new " ]
tap_ok $? "zsctl restart runs the file now at the path zsd was started" \
    "as (runs: $(tr '\n' ' ' <"$TEST_DIR/bin/runs"))"
zsd_stop
tap_ok $? "and that zsd stops"

# A write the dying server had read and not answered is resent to its
# successor (FUSE_NOTIFY_RESEND) and answered.  Debug builds only: there
# the first server holds every write it reads (ZSD_FAULT_HOLD_WRITES).
if grep -q '^#define ZS_DEBUG 1' "$builddir/config.h" 2>/dev/null; then
	ZSD_FAULT_HOLD_WRITES=1 zsd_start --no-swapon -o disksize=64M ||
	    tap_bail "zsd did not start with ZSD_FAULT_HOLD_WRITES"
	server=$ZSD_SERVER
	dd if="$TEST_DIR/pattern" of="$F" bs=128k count=1 seek=3 \
	    oflag=direct conv=notrunc status=none 2>"$TEST_DIR/dd.err" &
	dd=$!
	TEST_PIDS="$TEST_PIDS $dd"
	for _ in $(seq 100); do
		grep -q "ZSD_FAULT_HOLD_WRITES: not answering" "$ZSD_LOG" &&
		    break
		sleep 0.1
	done
	grep -q "ZSD_FAULT_HOLD_WRITES: not answering" "$ZSD_LOG" &&
	    pid_alive "$dd"
	tap_ok $? "server $server read a write and holds it; dd waits"
	kill -KILL "$server"
	pid_wait_gone "$dd" 20
	gone=$?
	tap_ok $gone "once it is killed, its successor answers the write"
	# A write nobody answers cannot be killed: the stop ends it.
	zsd_stop
	tap_ok $? "zsd stops"
	wait "$dd"
	st=$?
	[ $gone -eq 0 ] && [ $st -eq 0 ]
	tap_ok $? "dd succeeded (status $st) $(cat "$TEST_DIR/dd.err")"
else
	tap_skip 4 "not a debug build (configure --enable-debug)"
fi
tap_done
