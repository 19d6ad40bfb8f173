#!/bin/bash
# readerr.sh - reads of /dev/fuse that fail (an LD_PRELOAD shim makes
# them) do not stop zsd: it says so, tries again, and serves on, since
# swap may live there and swapoff itself needs it.  The data written
# before and after the errors reads back right, and it stops cleanly.
. "${srcdir:-.}/tests/lib.sh"

shim=$builddir/tests/.libs/libfailread.so

require_root
require_fuse
require_prog cmp dd
[ -f "$shim" ] || skip "no $shim (a build without shared libraries)"
setup_cleanup

# The shim is not ASan's runtime; that is fine for a read() wrapper.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
# By /dev/fuse (transport=dev): the ring does not read it.
LD_PRELOAD=$shim FAILREAD_AFTER=50 FAILREAD_COUNT=25 \
    zsd_start --no-swapon -o disksize=16M -o transport=dev ||
    tap_bail "zsd with the shim did not start"
f=$ZSD_MNT/swap0

pattern=$TEST_DIR/pattern
seq 1 1000000 | head -c 4M >"$pattern"
# Enough requests to cross the 50th read and the 25 failures after it.
ok=0
for i in 0 1 2 3; do
	dd if="$pattern" of="$f" bs=16k seek=$((i * 256)) conv=notrunc \
	    oflag=direct status=none || { ok=1; break; }
done
tap_ok $ok "16 MiB written in 16 KiB requests across the failed reads"
ok=0
for i in 0 1 2 3; do
	dd if="$f" bs=16k skip=$((i * 256)) count=256 iflag=direct \
	    status=none | cmp -s - "$pattern" || ok=1
done
tap_ok $ok "all of it reads back right"
grep -q "reading FUSE requests (failure 1 in a row); retrying" "$ZSD_LOG"
tap_ok $? "zsd logged the failed read and went on"
pid_alive "$ZSD_SERVER"
tap_ok $? "zsd is still running"
zsd_stop
tap_ok $? "zsd stops on SIGTERM with status 0"
tap_done
