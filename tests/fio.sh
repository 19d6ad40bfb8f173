#!/bin/bash
# fio.sh - fio writes and verifies (crc32c) the swap file, first through
# FUSE with O_DIRECT, then through a loop device in direct I/O mode, the
# way swap reaches it.  The loop device is the test's own, not zsd's.
. "${srcdir:-.}/tests/lib.sh"

require_root
require_fuse
require_loop
require_prog fio
setup_cleanup

# libaio keeps 4 requests in flight; psync is there on every fio.
engine=psync
fio --enghelp 2>/dev/null | grep -qw libaio && engine=libaio

# fio_verify NAME TARGET BS: random writes of 48 MiB, then read all back.
fio_verify()
{
	(cd "$TEST_DIR" && fio --name="$1" --filename="$2" --rw=randwrite \
	    --bs="$3" --iodepth=4 --ioengine="$engine" --direct=1 \
	    --size=48M --fallocate=none --verify=crc32c --do_verify=1 \
	    --verify_fatal=1 --verify_state_save=0 --randseed=7 \
	    --output-format=terse --terse-version=3 >"$1.out" 2>&1)
	status=$?
	[ "$status" -eq 0 ] || tap_diag "$(cat "$TEST_DIR/$1.out")"
	tap_ok "$status" "fio $3 randwrite + crc32c verify on $2 ($engine)"
}

zsd_start --no-swapon -o disksize=64M || tap_bail "zsd did not start"
f=$ZSD_MNT/swap0

fio_verify fuse-4k "$f" 4k
fio_verify fuse-64k "$f" 64k

loop=$(losetup --direct-io=on --find --show "$f")
tap_ok $? "losetup --direct-io=on $f: $loop"
[ -n "$loop" ] || tap_bail "no loop device"
tap_diag "$loop direct I/O: $(cat "/sys/block/${loop#/dev/}/loop/dio")"
fio_verify loop-4k "$loop" 4k
fio_verify loop-64k "$loop" 64k
losetup -d "$loop"
tap_ok $? "detached $loop"

tap_diag "mm_stat: $(cat "$ZSD_MNT/mm_stat")"
zsd_stop
tap_ok $? "zsd stops on SIGTERM with status 0"
tap_done
