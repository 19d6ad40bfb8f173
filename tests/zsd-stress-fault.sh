#!/bin/bash
# zsd-stress-fault.sh - a zsd whose store corrupts one page makes
# zsd-stress fail, exit 1, and name that page.  Debug builds only
# (--enable-debug): there zsd honours ZSD_FAULT_CORRUPT_PAGE=N, which
# flips byte 100 of page N of its file on every read.
. "${srcdir:-.}/tests/lib.sh"

ZSD_STRESS=${ZSD_STRESS:-$builddir/stress/zsd-stress}
[ -x "$ZSD_STRESS" ] || tap_bail "no zsd-stress at $ZSD_STRESS"
grep -q '^#define ZS_DEBUG 1' "$builddir/config.h" 2>/dev/null ||
    skip "not a debug build (configure --enable-debug)"
require_fuse
setup_cleanup
export TMPDIR=$TEST_DIR ZSD

# page N of a 4 MiB file: the two workers' random I/O reaches it soon.
for page in 0 700; do
	ZSD_FAULT_CORRUPT_PAGE=$page "$ZSD_STRESS" file --duration 20 \
	    --size 4M --jobs 2 --seed 11 >"$TEST_DIR/out" 2>&1
	status=$?
	tap_diag "$(cat "$TEST_DIR/out")"
	[ "$status" -eq 1 ]
	tap_ok $? "corrupt page $page: exit $status (want 1)"
	grep -q "FAILED (seed 0xb): wrong page: page $page of the file" \
	    "$TEST_DIR/out" &&
	    grep -q "first difference at byte 100: expected 0x[0-9a-f]*, found 0x" \
	    "$TEST_DIR/out" && grep -q "^  wrong pages        1$" "$TEST_DIR/out"
	tap_ok $? "it names page $page, byte 100, the seed; 1 wrong page"
done
[ -z "$(ls -d "$TEST_DIR"/zsd-stress.* 2>/dev/null)" ] &&
    [ -z "$(our_mounts)" ]
tap_ok $? "nothing left after the failures"
tap_done
