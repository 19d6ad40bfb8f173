#!/bin/bash
# loopstall.sh - the swap data path never waits on the control plane:
# while zsd's event loop is kept busy by a control request, reads and
# writes of the swap file (O_DIRECT, a few pages each) are served at once.
# Debug builds only (--enable-debug): there zsd honours
# ZSD_FAULT_SLOW_STATUS=N, which makes every zsctl status sleep N seconds
# on the loop thread.  By /dev/fuse (transport dev, the default) the FUSE
# thread serves the file; by io_uring (ZSD_TRANSPORT=uring) the ring
# threads do; neither may wait for the loop.
. "${srcdir:-.}/tests/lib.sh"

stall=4			# seconds the loop sleeps
quick=1000		# ms an I/O may take meanwhile
ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}

grep -q '^#define ZS_DEBUG 1' "$builddir/config.h" 2>/dev/null ||
    skip "not a debug build (configure --enable-debug)"
[ -x "$ZSCTL" ] || tap_bail "no zsctl at $ZSCTL"
require_root
require_fuse
require_prog dd cmp fallocate
setup_cleanup

ZSD_FAULT_SLOW_STATUS=$stall zsd_start --no-swapon -o disksize=16M \
    -o algorithm=lz4 || tap_bail "zsd did not start"
f=$ZSD_MNT/swap0
if grep -q "FUSE over io_uring:" "$ZSD_LOG"; then
	tap_diag "transport uring"
else
	tap_diag "transport dev"
fi

pattern=$TEST_DIR/pattern
seq 1 100000 | head -c $((64 << 10)) >"$pattern"
dd if="$pattern" of="$f" bs=16k oflag=direct conv=notrunc status=none
tap_ok $? "64 KiB written before the stall"

# Milliseconds since the epoch.
now_ms()
{
	local t=${EPOCHREALTIME/./}

	echo $((t / 1000))
}

# timed LABEL CMD...: run CMD; one point: it succeeded within $quick ms.
timed()
{
	local label=$1 t0 ms status

	shift
	t0=$(now_ms)
	"$@"
	status=$?
	ms=$(($(now_ms) - t0))
	[ "$status" -eq 0 ] && [ "$ms" -lt "$quick" ]
	tap_ok $? "$label: status $status, $ms ms (the loop sleeps" \
	    "${stall} s)"
}

# read_back SKIP COUNT: pages SKIP.. of the file are those of the pattern.
read_back()
{
	dd if="$f" bs=4k skip="$1" count="$2" iflag=direct status=none |
	    cmp -s - <(dd if="$pattern" bs=4k skip="$1" count="$2" \
	    status=none)
}

# The stall: a status request, answered only after $stall seconds.
t0=$(now_ms)
"$ZSCTL" -s "$TEST_DIR/control" status >/dev/null 2>&1 &
status_pid=$!
TEST_PIDS="$TEST_PIDS $status_pid"
for _ in $(seq 50); do
	grep -q "ZSD_FAULT_SLOW_STATUS: the loop sleeps" "$ZSD_LOG" && break
	sleep 0.1
done
grep -q "ZSD_FAULT_SLOW_STATUS: the loop sleeps" "$ZSD_LOG"
tap_ok $? "the loop is asleep in a status request" ||
    tap_bail "no stall to test against"

timed "read of 4 pages" read_back 0 4
timed "read of 1 page" read_back 9 1
timed "write of 4 pages at 64 KiB" dd if="$pattern" of="$f" bs=16k \
    seek=4 count=1 oflag=direct conv=notrunc status=none
timed "write of 1 page at 96 KiB" dd if="$pattern" of="$f" bs=4k \
    seek=24 skip=8 count=1 oflag=direct conv=notrunc status=none
timed "read of what was just written" cmp -s \
    <(dd if="$f" bs=4k skip=16 count=4 iflag=direct status=none) \
    <(dd if="$pattern" bs=4k count=4 status=none)
timed "hole punch of 1 page" fallocate -p -o $((48 << 10)) -l 4096 "$f"

# All that while the loop slept: the status request is still waiting.
pid_alive "$status_pid"
tap_ok $? "the status request is still waiting, $(($(now_ms) - t0)) ms on"
wait "$status_pid"
st=$?
ms=$(($(now_ms) - t0))
[ "$st" -eq 0 ] && [ "$ms" -ge $((stall * 1000 - 500)) ]
tap_ok $? "it is answered after the stall (status $st, $ms ms)"

zsd_stop
tap_ok $? "zsd stops on SIGTERM with status 0"
tap_done
