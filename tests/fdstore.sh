#!/bin/bash
# fdstore.sh - under a service manager with a file descriptor store, the
# keeper's death loses nothing either.  tests/fdstore-sim plays the part
# of systemd with zsd.service's settings (Type=notify, NotifyAccess=all,
# FileDescriptorStoreMax=, Restart=always, RestartPreventExitStatus=0 2,
# KillMode=control-group): zsd's keeper hands it the arena, the state and
# /dev/fuse (FDSTORE=1); when the keeper dies, alone or with its server,
# the service is started again with them ($LISTEN_FDS) and the new zsd
# takes the live mount and the pool over, even when its configuration
# has turned bad meanwhile.  zsctl restart --handover does the same on
# purpose; a stop still unmounts and takes the fds out of the store.
# What was written reads back the same after every one of these, and I/O
# running through them sees no error.
. "${srcdir:-.}/tests/lib.sh"
# Servers die here with requests in flight, which only /dev/fuse can have
# resent (zsd.conf(5), transport): this runs on it whatever $ZSD_TRANSPORT
# says.
ZSD_TRANSPORT=dev

ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}
SIM=${FDSTORE_SIM:-$builddir/tests/fdstore-sim}
NR_LOOPS=2

require_root
require_fuse
require_prog dd cmp
[ -x "$ZSCTL" ] || skip "no zsctl at $ZSCTL"
[ -x "$SIM" ] || skip "no fdstore-sim at $SIM"
setup_cleanup

zsctl()
{
	"$ZSCTL" -s "$TEST_DIR/control" "$@"
}

SIM_PID=
SIM_LOG=$TEST_DIR/sim.out
CONF=$TEST_DIR/zsd.conf
: >"$CONF"

# The EXIT trap's first part: stop the service manager, which stops zsd.
cleanup_hook()
{
	local pid

	[ -n "$SIM_PID" ] && pid_alive "$SIM_PID" || return 0
	kill -TERM "$SIM_PID" 2>/dev/null
	if ! pid_wait_gone "$SIM_PID" 60; then
		for pid in $(cat "/proc/$SIM_PID/task/$SIM_PID/children" \
		    2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		kill -KILL "$SIM_PID" 2>/dev/null
	fi
}

# sim_start [SIM OPTIONS] -- [ZSD OPTIONS]: zsd under fdstore-sim, its log
# in $ZSD_LOG and the sim's events in $SIM_LOG; 0 once zsd is ready.
sim_start()
{
	local simopt=() tenths=300

	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		simopt+=("$1")
		shift
	done
	shift
	mkdir -p "$ZSD_MNT"
	: >"$SIM_LOG"
	"$SIM" -n 0,2 "${simopt[@]}" -x "$ZSCTL -s $TEST_DIR/control restart \
--handover" "$TEST_DIR" -- "$ZSD" -f -c "$CONF" \
	    -o mountpoint="$ZSD_MNT" -o control="$TEST_DIR/control" "$@" \
	    >"$SIM_LOG" 2>"$ZSD_LOG" </dev/null 9>&- &
	SIM_PID=$!
	until grep -q "^ready " "$SIM_LOG"; do
		if ! pid_alive "$SIM_PID" || [ $tenths -le 0 ]; then
			tap_diag "zsd under fdstore-sim did not start; its log:"
			tap_diag "$(cat "$ZSD_LOG")"
			return 1
		fi
		sleep 0.1
		tenths=$((tenths - 1))
	done
}

# sim_count PATTERN: lines of the sim's events that match.
sim_count()
{
	grep -c "$1" "$SIM_LOG"
}

# Wait up to $2 tenths of a second for a keeper other than pid $1 to
# answer, through its server; its pid on stdout.
new_keeper()
{
	local old=$1 tenths=$2 pid

	while [ "$tenths" -gt 0 ]; do
		pid=$(zsd_status keeper_pid)
		if [ -n "$pid" ] && [ "$pid" != "$old" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
		tenths=$((tenths - 1))
	done
	return 1
}

# I/O loops as in keeper.sh: O_DIRECT writes and reads of 128 KiB blocks
# of their own until $TEST_DIR/io.stop exists; failures in io.N.err.
io_start()
{
	local n

	rm -f "$TEST_DIR/io.stop" "$TEST_DIR"/io.*.err
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
		) 2>>"$TEST_DIR/io.$n.err" &
		IO_PIDS="$IO_PIDS $!"
	done
	TEST_PIDS="$TEST_PIDS $IO_PIDS"
}

io_stop()
{
	local pid hung=0

	touch "$TEST_DIR/io.stop"
	for pid in $IO_PIDS; do
		pid_wait_gone "$pid" 30 || hung=1
	done
	[ "$hung" -eq 0 ] || { tap_diag "an I/O loop hangs"; return 1; }
	if [ -n "$(cat "$TEST_DIR"/io.*.err 2>/dev/null)" ]; then
		tap_diag "$(cat "$TEST_DIR"/io.*.err)"
		return 1
	fi
}

head -c $((128 << 10)) /dev/urandom >"$TEST_DIR/pattern"
head -c $((1 << 20)) /dev/urandom >"$TEST_DIR/kept"
F=$ZSD_MNT/swap0
kept_same()
{
	dd if="$F" bs=1M skip=8 count=1 iflag=direct status=none |
	    cmp -s - "$TEST_DIR/kept"
}

sim_start -- --no-swapon -o disksize=64M || tap_bail "zsd did not start"
keeper=$(zsd_status keeper_pid)
[ "$(sim_count '^stored zsd-arena$')" = 1 ] &&
    [ "$(sim_count '^stored zsd-state$')" = 1 ] &&
    [ "$(sim_count '^stored zsd-fuse$')" = 1 ]
tap_ok $? "the keeper handed the arena, the state and /dev/fuse to the store"
dd if="$TEST_DIR/kept" of="$F" bs=1M seek=8 oflag=direct conv=notrunc \
    status=none || tap_bail "cannot write $F"

# The keeper killed while I/O runs: its server hands over and exits, the
# service starts again, the new keeper takes the fds from the store.
io_start
sleep 0.5
server=$(zsd_status pid)
t0=$(date +%s%N)
kill -KILL "$keeper"
new=$(new_keeper "$keeper" 100)
ms=$((($(date +%s%N) - t0) / 1000000))
[ -n "$new" ] && [ "$(sim_count '^start [0-9]* 3$')" = 1 ]
tap_ok $? "keeper $keeper killed: keeper ${new:-none} started with 3 fds" \
    "answers $ms ms later"
grep -q "the keeper (pid $keeper) is gone; the service manager holds" \
    "$ZSD_LOG" && grep -q "^exit $server 0$" "$SIM_LOG" &&
    grep -q "taking over the FUSE connection and the pool that keeper pid \
$keeper left" "$ZSD_LOG"
tap_ok $? "its server $server handed over and exited 0; the new keeper" \
    "took the fds over"
sleep 0.5
io_stop
tap_ok $? "$NR_LOOPS O_DIRECT loops saw no error and no hang"
kept_same
tap_ok $? "1 MiB written before reads back the same"
is_mounted "$ZSD_MNT" && [ "$(awk -v m="$ZSD_MNT" '$5 == m' \
    /proc/self/mountinfo | wc -l)" -eq 1 ]
tap_ok $? "the same mount, never unmounted"
[ "$(zsd_status restarts)" = 1 ]
tap_ok $? "restarts counts on from the state: 1 ($(zsd_status restarts))"

# The keeper and its server killed together: without a store, every page
# would be lost (keeper.sh); here the next zsd recovers the pool.
keeper=$(zsd_status keeper_pid)
server=$(zsd_status pid)
kill -KILL "$keeper" "$server"
new=$(new_keeper "$keeper" 100)
[ -n "$new" ] && kept_same
tap_ok $? "keeper and server killed together: keeper ${new:-none} serves," \
    "what was written reads back the same"
grep -q "recovered" "$ZSD_LOG"
tap_ok $? "the new server recovered the pool"

# The keeper killed while the configuration file has turned bad: the new
# keeper does not exit (the pages would be lost); its servers fail until
# the file is right again, then one takes over.
echo "disksize = banana" >"$CONF"
keeper=$(zsd_status keeper_pid)
kill -KILL "$keeper"
sleep 2
grep -q "the service manager keeps a zsd's swap: starting servers all the \
same" "$ZSD_LOG" && [ "$(sim_count '^start [0-9]* 3$')" = 3 ] &&
    [ "$(sim_count "^exit [0-9]* 2$")" = 0 ] && is_mounted "$ZSD_MNT"
tap_ok $? "keeper killed with a bad configuration: the new keeper stays"
: >"$CONF"
new=$(new_keeper "$keeper" 100)
[ -n "$new" ] && kept_same
tap_ok $? "the file put right, keeper ${new:-none} serves; what was written" \
    "reads back the same"

# zsctl restart --handover ends both,
# the store keeps the fds, the service starts again.
keeper=$(zsd_status keeper_pid)
io_start
sleep 0.3
kill -USR1 "$SIM_PID"
new=$(new_keeper "$keeper" 100)
[ -n "$new" ] && grep -q "^stopcmd 0$" "$SIM_LOG" &&
    grep -q "^exit $keeper 75$" "$SIM_LOG"
tap_ok $? "restart: zsctl restart --handover exited 0, keeper $keeper" \
    "exited 75, keeper ${new:-none} serves"
sleep 0.3
io_stop
tap_ok $? "no I/O error or hang across it"
kept_same
tap_ok $? "1 MiB written before reads back the same"
grep -q "keeper: server pid [0-9]* handed the FUSE connection and the \
pool to the service manager; exiting" "$ZSD_LOG"
tap_ok $? "the keeper said why it exits"

keeper=$(zsd_status keeper_pid)
zsctl restart >/dev/null 2>&1 && [ "$(zsd_status keeper_pid)" = "$keeper" ]
tap_ok $? "zsctl restart (the keeper stays) works under a store too"

# A stop unmounts, swapoff first, and takes the fds out of the store.
kill -TERM "$SIM_PID"
pid_wait_gone "$SIM_PID" 60
wait "$SIM_PID"
st=$?
SIM_PID=
[ $st -eq 0 ] && ! is_mounted "$ZSD_MNT" &&
    [ "$(sim_count '^removed zsd-')" = 3 ] && grep -q "^stopped$" "$SIM_LOG"
tap_ok $? "a stop unmounts and removes the 3 fds from the store (sim $st)"

# Without a store: --handover is refused, nothing stops.
ZSD_LOG=$TEST_DIR/plain.log
zsd_start --no-swapon -o disksize=64M || tap_bail "zsd did not start"
out=$(zsctl restart --handover 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "no service manager keeps" &&
    dd if="$F" of=/dev/null bs=128k count=1 iflag=direct status=none
tap_ok $? "without a store, restart --handover is refused and zsd serves: $out"
zsd_stop
tap_ok $? "and it stops"

# While the store holds a connection nobody serves (zsd is being started
# again, 5 s later here), a zsd started by hand on the mountpoint does not
# hang on it: it says so and exits.  (Once the kernel's cached attributes
# of the mount, good for 1 s, are out of date: until then a stat needs no
# server.)  The service's zsd then takes over.
ZSD_LOG=$TEST_DIR/zsd.log.2
sim_start -r 5000 -- --no-swapon -o disksize=64M ||
    tap_bail "zsd did not start again"
dd if="$TEST_DIR/kept" of="$F" bs=1M seek=8 oflag=direct conv=notrunc \
    status=none || tap_bail "cannot write $F"
keeper=$(zsd_status keeper_pid)
server=$(zsd_status pid)
kill -KILL "$keeper" "$server"
pid_wait_gone "$server" 10
sleep 1.2
t0=$(date +%s%N)
timeout 20 "$ZSD" -f -c /dev/null -o mountpoint="$ZSD_MNT" \
    -o control="$TEST_DIR/control.2" --no-swapon >"$TEST_DIR/byhand.log" 2>&1
st=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ $st -eq 1 ] && grep -q "connection is open but does not answer" \
    "$TEST_DIR/byhand.log"
tap_ok $? "a zsd started by hand meanwhile exits $st after $ms ms," \
    "saying why: $(tail -n 1 "$TEST_DIR/byhand.log")"
new=$(new_keeper "$keeper" 100)
[ -n "$new" ] && kept_same
tap_ok $? "the service's keeper ${new:-none} then takes over; the data reads" \
    "back the same"

# A set whose connection has ended (the mount was taken away while no
# zsd ran) is not served: the next zsd starts afresh.
keeper=$(zsd_status keeper_pid)
server=$(zsd_status pid)
kill -KILL "$keeper" "$server"
pid_wait_gone "$server" 10
umount -l "$ZSD_MNT"
new=$(new_keeper "$keeper" 100)
[ -n "$new" ] && grep -q "but its FUSE connection has ended: starting \
afresh" "$ZSD_LOG" && [ "$(sim_count '^removed zsd-')" = 3 ] &&
    dd if="$F" of=/dev/null bs=128k count=1 iflag=direct status=none
tap_ok $? "a dead connection in the store: dropped, zsd ${new:-none} starts" \
    "afresh and serves"
tap_done
