#!/bin/bash
# uring.sh - FUSE over io_uring (transport = uring): zsd turns the fuse
# module's enable_uring on, serves the ring, and every byte written
# reads back, as swap too; a server restarted by zsctl restart serves the
# ring again.  Where the ring cannot be set up (the kernel lacks it, or a
# debug build's ZSD_FAULT_URING breaks its setup at one of three steps)
# zsd serves /dev/fuse, says why in one log line and in zsctl status,
# and loses nothing.  transport = auto serves /dev/fuse.
. "${srcdir:-.}/tests/lib.sh"

param=/sys/module/fuse/parameters/enable_uring
prio=32000

require_root
require_fuse
require_prog dd cmp fallocate
setup_cleanup

debug=no
grep -q '^#define ZS_DEBUG 1' "$builddir/config.h" 2>/dev/null && debug=yes
uring=no
grep -q '^#define HAVE_LIBURING 1' "$builddir/config.h" 2>/dev/null &&
    [ -e "$param" ] && uring=yes

saved=
cleanup_hook()
{
	[ -n "$saved" ] && echo "$saved" >"$param" 2>/dev/null
}

pattern=$TEST_DIR/pattern
head -c 8M /dev/urandom >"$pattern"

# io_check: 8 MiB written with O_DIRECT in 128 KiB requests reads back
# the same in 4 KiB and 64 KiB ones; a punched MiB reads as zeros.
io_check()
{
	local f=$ZSD_MNT/swap0

	dd if="$pattern" of="$f" bs=128k oflag=direct conv=notrunc \
	    status=none || return 1
	dd if="$f" of="$TEST_DIR/back4k" bs=4k count=2048 iflag=direct \
	    status=none || return 1
	dd if="$f" of="$TEST_DIR/back64k" bs=64k count=128 iflag=direct \
	    status=none || return 1
	cmp -s "$pattern" "$TEST_DIR/back4k" &&
	    cmp -s "$pattern" "$TEST_DIR/back64k" || return 1
	fallocate -p -o 1M -l 1M "$f" || return 1
	cmp -s -n 1M -i 0:1M /dev/zero "$f" || return 1
	# Put the pattern back for what follows.
	dd if="$pattern" of="$f" bs=128k oflag=direct conv=notrunc \
	    status=none
}

# --- transport = auto ----------------------------------------------------
zsd_start --no-swapon -o disksize=64M -o transport=auto ||
    tap_bail "zsd transport=auto did not start"
[ "$(zsd_status transport)" = dev ] &&
    [ "$(zsd_status transport_reason)" = "transport = auto" ]
tap_ok $? "transport=auto: /dev/fuse, and status says why: $(zsd_status \
    transport) ($(zsd_status transport_reason))"
io_check
tap_ok $? "transport=auto: data reads back"
zsd_stop
tap_ok $? "zsd stops"

# --- no ring here ----------------------------------------------------------
if [ "$uring" = no ]; then
	zsd_start --no-swapon -o disksize=64M -o transport=uring ||
	    tap_bail "zsd transport=uring did not start"
	why=$(zsd_status transport_reason)
	[ "$(zsd_status transport)" = dev ] && [ -n "$why" ] &&
	    grep -q "FUSE requests by /dev/fuse: $why" "$ZSD_LOG"
	tap_ok $? "no FUSE over io_uring here: /dev/fuse, logged and in" \
	    "status: $why"
	io_check
	tap_ok $? "and the data reads back"
	zsd_stop
	tap_ok $? "zsd stops"
	tap_skip 19 "no FUSE over io_uring here ($why)"
	tap_done
fi

# --- transport = uring -----------------------------------------------------
saved=$(cat "$param")
echo N >"$param" || tap_bail "cannot write $param"
zsd_start --no-swapon -o disksize=64M -o transport=uring ||
    tap_bail "zsd transport=uring did not start"
[ "$(cat "$param")" = Y ] && grep -q "turned on $param" "$ZSD_LOG"
tap_ok $? "zsd turned $param on, and said so"
[ "$(zsd_status transport)" = uring ] &&
    [ -z "$(zsd_status transport_reason)" ] &&
    grep -q "FUSE over io_uring: .* queues of" "$ZSD_LOG"
tap_ok $? "status: transport uring; $(grep -o 'FUSE over io_uring:.*' \
    "$ZSD_LOG")"
before=$(zsd_status ring_requests)
io_check
tap_ok $? "8 MiB written, read back in 4 KiB and 64 KiB reads, a MiB punched"
after=$(zsd_status ring_requests)
# 64 writes, 2048 + 128 reads, a punch, a read of the punched MiB, 64 more
# writes: all by the ring.
[ $((after - before)) -ge 2300 ]
tap_ok $? "by the ring: ring_requests $before -> $after"
ls "$ZSD_MNT" | grep -qx mm_stat && [ "$(stat -c %s "$ZSD_MNT/swap0")" = \
    $((64 << 20)) ] && [ "$(mm_stat orig_data_size)" -gt 0 ]
tap_ok $? "lookup, readdir, getattr and mm_stat, through libfuse from the ring"
echo x | dd of="$ZSD_MNT/mm_stat" status=none 2>/dev/null
[ $? -ne 0 ]
tap_ok $? "a write to mm_stat is refused"

# Served where it was asked: each CPU's requests come on its own queue.
ok=0
for cpu in $(seq 0 $(($(nproc) - 1))); do
	taskset -c "$cpu" dd if="$ZSD_MNT/swap0" of=/dev/null bs=4k \
	    count=256 iflag=direct status=none || ok=1
done
tap_ok $ok "reads from every CPU are answered"

# zsctl restart: the successor serves the ring the kernel keeps.
old=$ZSD_SERVER
out=$("$builddir/daemon/zsctl" -s "$TEST_DIR/control" restart 2>&1)
tap_ok $? "zsctl restart: $out"
new=$(zsd_server_pid)
[ -n "$new" ] && [ "$new" != "$old" ] &&
    grep -q "took over a connection served by io_uring" "$ZSD_LOG" &&
    [ "$(zsd_status transport)" = uring ]
tap_ok $? "the new server $new took the ring over"
cmp -s -n 8M "$pattern" "$ZSD_MNT/swap0"
tap_ok $? "what was written before the restart reads back by the ring"
io_check
tap_ok $? "and new I/O is served"
zsd_stop
tap_ok $? "zsd stops"

# --- real swap on the ring -------------------------------------------------
if [ -e /dev/loop-control ] && losetup -f >/dev/null 2>&1 &&
    cgroup_detect && swap_lock && [ -z "$(awk -v p="$prio" \
    'NR > 1 && $5 >= p' /proc/swaps)" ]; then
	zsd_start --swapon -o disksize=256M -o priority=$prio \
	    -o transport=uring || tap_bail "zsd --swapon did not start"
	cgroup_create uring $((32 << 20)) ||
	    tap_bail "cannot make a memory cgroup"
	before=$(zsd_status ring_requests)
	cgroup_run uring "$SWAPPER" -m 96 -s 5 -w 64 \
	    >"$TEST_DIR/swapper.out" 2>&1
	status=$?
	tap_diag "$(cat "$TEST_DIR/swapper.out")"
	tap_ok $status "swapper -m 96 in a 32 MiB cgroup, swap by the ring:" \
	    "every page right"
	after=$(zsd_status ring_requests)
	[ $((after - before)) -gt 100 ]
	tap_ok $? "the swap I/O came by the ring: ring_requests $before ->" \
	    "$after"
	cgroup_remove uring
	zsd_stop
	tap_ok $? "zsd stops, swap off"
else
	tap_skip 3 "no loop device, memory cgroup or free swap priority"
fi

# --- the ring cannot be set up: /dev/fuse --------------------------------
if [ "$debug" = yes ]; then
	for fault in prepare ring register; do
		ZSD_FAULT_URING=$fault zsd_start --no-swapon -o disksize=64M \
		    -o transport=uring ||
		    tap_bail "zsd with ZSD_FAULT_URING=$fault did not start"
		why=$(zsd_status transport_reason)
		[ "$(zsd_status transport)" = dev ] && [ -n "$why" ] &&
		    [ "$(grep -c "FUSE requests by /dev/fuse" "$ZSD_LOG")" = 1 ]
		tap_ok $? "ZSD_FAULT_URING=$fault: /dev/fuse, one log line:" \
		    "$why"
		io_check
		tap_ok $? "ZSD_FAULT_URING=$fault: the data reads back"
		zsd_stop
		tap_ok $? "ZSD_FAULT_URING=$fault: zsd stops"
	done
else
	tap_skip 9 "ZSD_FAULT_URING needs a debug build (--enable-debug)"
fi

tap_done
