#!/bin/bash
# badinput.sh - zsd refuses what it cannot do, with a message that says
# why: unknown keys, bad values in a config file (file:line), a missing
# config file or mountpoint, a second daemon on a busy mountpoint; and the
# FUSE file refuses I/O past its end and fallocate modes other than
# punching holes, without harm to the data.
. "${srcdir:-.}/tests/lib.sh"

require_root
require_fuse
require_prog timeout fallocate dd cmp
setup_cleanup
[ -x "$ZSD" ] || tap_bail "no zsd at $ZSD"

# zsd_fail ARGS...: run zsd -f ARGS that should not start; $status and
# $msg (stdout and stderr) afterwards.  One that starts anyway is stopped
# by SIGTERM after 20 s and shows as status 124.
zsd_fail()
{
	msg=$(timeout -s TERM -k 10 20 "$ZSD" -f --no-swapon -c /dev/null \
	    -o control="$TEST_DIR/control-fail" "$@" 2>&1 </dev/null)
	status=$?
	tap_diag "zsd $*: status $status: $msg"
}

mkdir -p "$ZSD_MNT"

zsd_fail -o mountpoint="$ZSD_MNT" -o foo=1
[ "$status" -eq 2 ] && echo "$msg" | grep -q foo
tap_ok $? "unknown key foo: exit 2, named in the message"

zsd_fail -o mountpoint="$ZSD_MNT" -o disksize=lots
[ "$status" -eq 2 ] && echo "$msg" | grep -q disksize
tap_ok $? "bad value disksize=lots: exit 2, key named"

for bad in 100 -1 high; do
	zsd_fail -o mountpoint="$ZSD_MNT" -o rt_priority="$bad"
	[ "$status" -eq 2 ] && echo "$msg" | grep -q "bad value.*rt_priority"
	tap_ok $? "bad value rt_priority=$bad: exit 2, key named"
done

# A group that does not exist is a configuration error like the others:
# exit 2, with that one message, before anything is set up.
zsd_fail -o mountpoint="$ZSD_MNT" -o control_group=nosuchgroup
[ "$status" -eq 2 ] &&
    [ "$msg" = "zsd: control_group nosuchgroup: no such group" ]
tap_ok $? "control_group nosuchgroup: exit 2, one line, before the rest"

zsd_fail -o mountpoint="$ZSD_MNT" -o disksize=1000%
[ "$status" -eq 2 ] && echo "$msg" | grep -q "more than 400% of RAM"
tap_ok $? "disksize=1000%: exit 2, at most 400% of RAM"

cfg=$TEST_DIR/zsd.conf
printf 'disksize = 16M\r\n' >"$cfg"
zsd_fail -c "$cfg" -o mountpoint="$ZSD_MNT"
[ "$status" -eq 2 ] && echo "$msg" | grep -qF "$cfg:1: a carriage return"
tap_ok $? "a config file with DOS line endings: exit 2, file and line"

cat >"$cfg" <<EOF
# a config with an error on line 3
disksize = 16M
algorithm = bogus
EOF
zsd_fail -c "$cfg" -o mountpoint="$ZSD_MNT"
[ "$status" -eq 2 ] && echo "$msg" | grep -qF "$cfg:3" &&
    echo "$msg" | grep -q algorithm
tap_ok $? "config file, bad algorithm on line 3: exit 2, $cfg:3 and key"

zsd_fail -c "$TEST_DIR/nonexistent.conf" -o mountpoint="$ZSD_MNT"
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] &&
    echo "$msg" | grep -q "nonexistent.conf"
tap_ok $? "missing config file: fails, the file named"

# Under our temp dir, so a zsd that made it anyway is cleaned up.
zsd_fail -o mountpoint="$TEST_DIR/nonexistent/dir" -o disksize=16M
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] &&
    echo "$msg" | grep -q "nonexistent/dir"
tap_ok $? "mountpoint whose parent is missing: fails, the path named"
! is_mounted "$TEST_DIR/nonexistent/dir"
tap_ok $? "and nothing is mounted there"

# A second daemon on a busy mountpoint must not stack a mount on it.
zsd_start --no-swapon -o disksize=16M || tap_bail "zsd did not start"
f=$ZSD_MNT/swap0
pattern=$TEST_DIR/pattern
yes "written before the second zsd" | head -c 1M >"$pattern"
dd if="$pattern" of="$f" bs=64k conv=notrunc,fsync status=none
tap_ok $? "wrote 1 MiB"
zsd_fail -o mountpoint="$ZSD_MNT" -o disksize=16M
[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
tap_ok $? "a second zsd on the same mountpoint fails"
mounts=$(awk -v m="$ZSD_MNT" '$5 == m' /proc/self/mountinfo | wc -l)
[ "$mounts" -eq 1 ]
tap_ok $? "one mount on $ZSD_MNT (found $mounts)"
pid_alive "$ZSD_SERVER"
tap_ok $? "the first zsd still runs"
dd if="$f" bs=64k count=16 iflag=direct status=none | cmp -s - "$pattern"
tap_ok $? "and its data reads back"

# Past the end, through the FUSE file.
run_tap "fuse-io -p: reads past the end give 0 bytes, writes fail" \
    "$FUSE_IO" -p "$f"
n=$(dd if="$f" bs=4k skip=4096 count=1 status=none | wc -c)
[ "$n" -eq 0 ]
tap_ok $? "dd past the end reads 0 bytes (got $n)"

# Mode 0 (allocate) cannot mean anything to a store that allocates on
# write.  It must fail with EOPNOTSUPP, not ENOSYS, or the kernel stops
# sending every fallocate, punches included.
err=$(fallocate -o 0 -l 4096 "$f" 2>&1)
status=$?
tap_diag "fallocate -l 4096: $err"
[ "$status" -ne 0 ] && echo "$err" | grep -q "Operation not supported"
tap_ok $? "fallocate mode 0 fails with Operation not supported"
dd if="$f" bs=64k count=16 iflag=direct status=none | cmp -s - "$pattern"
tap_ok $? "the data is unchanged"

# What the file must hold from now on: the pattern with holes in it.
want=$TEST_DIR/want
cp "$pattern" "$want"
# zeros_at OFF LEN: the expected copy gets zeros there.
zeros_at()
{
	dd if=/dev/zero of="$want" bs=1 seek="$1" count="$2" conv=notrunc \
	    status=none
}

# Zeroing a range may be refused, or done; not done halfway.
err=$(fallocate -z -o 4096 -l 8192 "$f" 2>&1)
status=$?
tap_diag "fallocate -z -o 4096 -l 8192: status $status $err"
[ "$status" -eq 0 ] && zeros_at 4096 8192
[ "$status" -eq 0 ] || echo "$err" | grep -q "Operation not supported"
tap_ok $? "fallocate zero-range is done or refused with EOPNOTSUPP"
dd if="$f" bs=64k count=16 iflag=direct status=none | cmp -s - "$want"
tap_ok $? "the file holds what it should"

fallocate -p -o 20000 -l 10000 "$f"
tap_ok $? "punching an unaligned hole still works after those"
zeros_at 20000 10000
dd if="$f" bs=64k count=16 iflag=direct status=none | cmp -s - "$want"
tap_ok $? "the hole reads as zeros, the rest unchanged"

zsd_stop
tap_ok $? "zsd stops on SIGTERM with status 0"
tap_done
