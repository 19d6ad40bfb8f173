#!/bin/bash
# idle.sh - idle pages as real swap: a program's pages swapped to zsd go
# idle, are recompressed with zstd and written back to a backing file,
# by zsctl and then by zsd's own policy, and every page comes back
# right.  A backing file on a full file system stops writeback with a
# clear error and loses nothing; one that cannot be made leaves zsd
# serving, and says why.
. "${srcdir:-.}/tests/lib.sh"

prio=32000

require_root
require_fuse
require_loop
require_cgroup_memory
require_prog swapoff losetup
swap_lock || tap_bail "cannot take $builddir/tests/swap.lock"
other=$(awk -v p="$prio" 'NR > 1 && $5 >= p { print $1 " (" $5 ")" }' \
    /proc/swaps)
[ -z "$other" ] || skip "other swap at priority >= $prio: $other"
setup_cleanup

zsctl()
{
	"$builddir/daemon/zsctl" -s "$TEST_DIR/control" "$@"
}

# zsd_stat KEY: one counter of zsctl stat.
zsd_stat()
{
	zsctl stat | awk -v k="$1" '$1 == k { print $2 }'
}

# swapper_start MiB SEED: fill MiB in a cgroup of 5/8 of that (at least
# 3/8 swapped out), then wait for $TEST_DIR/go before checking every
# page.  Not half: its scattered check, with pages coming back from the
# backing file while the policy writes others out, once found nothing
# reclaimable in a cgroup of half and was killed by the cgroup's OOM.
swapper_start()
{
	local tenths=1200

	rm -f "$TEST_DIR/go"
	cgroup_create idle $(($1 * 5 / 8 << 20)) ||
	    tap_bail "cannot make a cgroup"
	cgroup_run idle "$SWAPPER" -m "$1" -s "$2" -w $(($1 * 3 / 8)) \
	    -p "$TEST_DIR/go" >"$TEST_DIR/swapper.out" 2>&1 &
	swapper=$!
	TEST_PIDS=$swapper
	while ! grep -q "waiting for" "$TEST_DIR/swapper.out"; do
		pid_alive "$swapper" || break
		[ "$tenths" -gt 0 ] || tap_bail "swapper not filled in 2 min"
		sleep 0.1
		tenths=$((tenths - 1))
	done
}

# swapper_check WHAT: let it check its pages; a test point.
swapper_check()
{
	local status

	touch "$TEST_DIR/go"
	wait "$swapper"
	status=$?
	TEST_PIDS=
	tap_diag "$(cat "$TEST_DIR/swapper.out")"
	tap_ok "$status" "$1"
	cgroup_remove idle
}

# --- by hand: idle, recompress, writeback ----------------------------------

zsd_start --swapon -o disksize=512M -o priority=$prio \
    -o backing_file="$TEST_DIR/backing" -o recompress_after=off \
    -o writeback_after=off || tap_bail "zsd did not start"
[ "$(zsd_status backing_file)" = "$TEST_DIR/backing" ]
tap_ok $? "zsctl status names the backing file"
[ "$(stat -c %s "$TEST_DIR/backing")" -eq $((512 << 20)) ] &&
    [ "$(stat -c %b "$TEST_DIR/backing")" -lt 1024 ]
tap_ok $? "it was made, as large as disksize and sparse"

swapper_start 96 21
stored=$(zsd_stat pages_stored)
huge=$(zsd_stat huge_pages)
compr0=$(zsd_stat compr_data_size)
used0=$(zsd_stat mem_used_total)
[ "${stored:-0}" -gt $((48 * 256 / 2)) ]
tap_ok $? "filled: $stored pages stored, $huge huge, $compr0 bytes"

out=$(zsctl recompress)
tap_ok $? "zsctl recompress with nothing idle: $out"
[ "$(zsd_stat pages_recompressed)" = 0 ]
tap_ok $? "and nothing was recompressed"

out=$(zsctl idle all)
tap_ok $? "zsctl idle all: $out"
idle=$(zsd_stat idle_pages)
[ "${idle:-0}" -ge $((stored * 9 / 10)) ]
tap_ok $? "idle_pages $idle of $stored"

# 4096 bytes or more: the huge pages alone (zstd may shrink a few that
# lz4 could not).
out=$(zsctl --json recompress --threshold 4096)
scanned=$(echo "$out" | tr ',' '\n' | sed -n 's/.*"pages_scanned": *"*\([0-9]*\).*/\1/p')
[ -n "$scanned" ] && [ "$scanned" = "$huge" ]
tap_ok $? "recompress --threshold 4096 takes the $huge huge pages alone: $out"
out=$(zsctl recompress)
tap_ok $? "zsctl recompress: $out"
recomp=$(zsd_stat pages_recompressed)
saved=$(zsd_stat recompress_saved_size)
compr1=$(zsd_stat compr_data_size)
[ "${recomp:-0}" -gt $((stored / 2)) ] && [ "$compr1" -lt "$compr0" ] &&
    [ "${saved:-0}" -gt 0 ]
tap_ok $? "$recomp pages recompressed, $saved bytes saved:" \
    "compr_data_size $compr0 -> $compr1"
out=$(zsctl writeback incompressible --max-pages 50)
tap_ok $? "zsctl writeback incompressible --max-pages 50: $out"
bd=$(zsd_stat bd_count)
[ "$bd" -gt 0 ] && [ "$bd" -le 50 ] && [ "$bd" -le "$huge" ]
tap_ok $? "$bd huge pages zstd could not shrink went to the file"
out=$(zsctl writeback)
tap_ok $? "zsctl writeback: $out"
bd=$(zsd_stat bd_count)
blocks=$(($(zsd_stat backing_used_size) / 4096))
[ "$bd" -gt $((stored / 2)) ] && [ "$blocks" -lt "$bd" ]
tap_ok $? "bd_count $bd pages in $blocks blocks of the file"
zsctl compact >/dev/null
used1=$(zsd_stat mem_used_total)
[ "$used1" -lt $((used0 / 2)) ]
tap_ok $? "mem_used_total $used0 -> $used1 bytes after compaction"
[ $(($(stat -c %b "$TEST_DIR/backing") * 512)) -ge $((blocks * 4096)) ]
tap_ok $? "the file holds them: $(du -h "$TEST_DIR/backing" | cut -f1)"

# The server dies: its successor reopens the file and finds every page.
old=$(zsd_status pid)
kill -KILL "$old"
for ((tries = 0; tries < 200; tries++)); do
	new=$(zsd_status pid)
	[ -n "$new" ] && [ "$new" != "$old" ] && break
	sleep 0.05
done
[ -n "$new" ] && [ "$new" != "$old" ] &&
    grep -q "recovered $stored pages.* 0 pages lost" "$ZSD_LOG"
tap_ok $? "server $old killed; $new recovered all $stored pages"
[ "$(zsd_stat bd_count)" = "$bd" ] &&
    [ "$(zsd_stat backing_used_size)" = $((blocks * 4096)) ]
tap_ok $? "with the $bd in the file, in the same $blocks blocks"

swapper_check "every page reads back, from memory, zstd or the file"
reads=$(zsd_stat bd_reads)
[ "${reads:-0}" -gt 0 ]
tap_ok $? "bd_reads $reads: pages were read from the file"
left=$(zsd_stat bd_count)
tap_diag "after the swapper: bd_count $left," \
    "backing_used_size $(zsd_stat backing_used_size)"
zsd_stop
tap_ok $? "zsd stops"

# --- by itself: recompress_after, writeback_after --------------------------

zsd_start --swapon -o disksize=512M -o priority=$prio \
    -o backing_file="$TEST_DIR/backing" -o idle_interval=1s \
    -o recompress_after=2s -o writeback_after=4s -o idle_cpu_pressure=0 \
    -o idle_io_pressure=0 || tap_bail "zsd did not start"
swapper_start 64 22
tenths=600
while [ "${tenths}" -gt 0 ]; do
	recomp=$(zsd_stat pages_recompressed)
	bd=$(zsd_stat bd_count)
	[ "${recomp:-0}" -gt 0 ] && [ "${bd:-0}" -gt 1000 ] && break
	sleep 0.1
	tenths=$((tenths - 1))
done
[ "${recomp:-0}" -gt 0 ] && [ "${bd:-0}" -gt 1000 ]
tap_ok $? "the policy recompressed ($recomp) and wrote back ($bd) on" \
    "its own, $(zsd_stat idle_passes) passes"
swapper_check "every page reads back"
zsd_stop
tap_ok $? "zsd stops"

# --- compaction right after a pass ----------------------------------------
# A file written in order and recompressed leaves holes in most zspages:
# zsd compacts as soon as the pass is done, not at its next check.

zsd_start -o swapon=no -o disksize=256M -o compact_interval=3600 ||
    tap_bail "zsd did not start"
"$builddir/bench/make-corpus" -s 64M -o "$TEST_DIR/corpus" >/dev/null &&
    dd if="$TEST_DIR/corpus" of="$ZSD_MNT/swap0" bs=1M oflag=direct \
    conv=notrunc status=none
tap_ok $? "64 MiB of the corpus written to the file"
rm -f "$TEST_DIR/corpus"
zsctl idle all >/dev/null && zsctl recompress >/dev/null
for ((tries = 0; tries < 50; tries++)); do
	[ "$(zsd_stat compactions_auto)" -gt 0 ] && break
	sleep 0.1
done
[ "$(zsd_stat compactions_auto)" -gt 0 ]
tap_ok $? "recompressed, then compacted:" \
    "$(grep -o "autocompacted.*" "$ZSD_LOG")"
zsd_stop
tap_ok $? "zsd stops"

# --- a block device, and writeback_limit -----------------------------------

truncate -s 64M "$TEST_DIR/disk"
if bdev=$(losetup -f --show --direct-io=on "$TEST_DIR/disk"); then
	zsd_start --swapon -o disksize=512M -o priority=$prio \
	    -o backing_file="$bdev" -o recompress_after=off \
	    -o writeback_after=off -o writeback_limit=64K ||
	    tap_bail "zsd did not start"
	[ "$(zsd_stat backing_size)" = $((64 << 20)) ]
	tap_ok $? "a block device as backing file: $bdev, all 64 MiB of it"
	swapper_start 64 24
	zsctl idle all >/dev/null
	out=$(zsctl writeback)
	bd=$(zsd_stat bd_count)
	[ "$(zsd_stat writeback_today_size)" = $((64 << 10)) ] &&
	    [ "$bd" -gt 16 ] && echo "$out" | grep -q "limit left today: 0"
	tap_ok $? "writeback_limit 64K: 16 blocks, $bd pages: $out"
	out=$(zsctl writeback 2>&1)
	[ $? -ne 0 ] && echo "$out" | grep -q "writeback_limit reached"
	tap_ok $? "then no more today: $out"
	swapper_check "every page reads back, some from the device"
	zsd_stop
	tap_ok $? "zsd stops"
	losetup -d "$bdev"
else
	tap_skip 5 "no loop device for a backing device"
fi

# --- a full file system; a file that cannot be made ------------------------

mkdir "$TEST_DIR/small"
if mount -t tmpfs -o size=256k tmpfs "$TEST_DIR/small"; then
	zsd_start --swapon -o disksize=512M -o priority=$prio \
	    -o backing_file="$TEST_DIR/small/backing" \
	    -o recompress_after=off -o writeback_after=off ||
	    tap_bail "zsd did not start"
	swapper_start 64 23
	zsctl idle all >/dev/null
	out=$(zsctl writeback 2>&1)
	status=$?
	[ "$status" -ne 0 ] && echo "$out" | grep -q "backing file is full"
	tap_ok $? "writeback to a full file system fails, and says so:" \
	    "$(echo "$out" | tr '\n' ' ')"
	bd=$(zsd_stat bd_count)
	[ "$bd" -gt 0 ] && [ "$bd" -lt $((64 * 256 / 2)) ]
	tap_ok $? "what fit is in the file ($bd pages), the rest in memory"
	grep -q "writeback stopped" "$ZSD_LOG"
	tap_ok $? "zsd logs it"
	swapper_check "every page reads back"
	zsd_stop
	tap_ok $? "zsd stops"
	umount "$TEST_DIR/small"
else
	tap_skip 5 "cannot mount a tmpfs"
fi

zsd_start -o disksize=64M -o backing_file=/proc/no/such/backing ||
    tap_bail "zsd did not start without its backing file"
grep -q "cannot open backing file /proc/no/such/backing" "$ZSD_LOG"
tap_ok $? "a backing file that cannot be made: zsd serves, and logs why"
out=$(zsctl writeback 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "no backing file: cannot open"
tap_ok $? "zsctl writeback says why: $out"
zsd_stop
tap_ok $? "zsd stops"

mkdir "$TEST_DIR/ro"
if mount -t tmpfs -o size=1m tmpfs "$TEST_DIR/ro" &&
    touch "$TEST_DIR/ro/backing" && mount -o remount,ro "$TEST_DIR/ro"; then
	zsd_start -o disksize=64M -o backing_file="$TEST_DIR/ro/backing" ||
	    tap_bail "zsd did not start without its backing file"
	grep -q "backing file $TEST_DIR/ro/backing: Read-only file system" \
	    "$ZSD_LOG"
	tap_ok $? "one on a read-only file system: $(grep backing "$ZSD_LOG")"
	[ "$(zsd_status backing_error)" != "" ]
	tap_ok $? "zsctl status says why: $(zsd_status backing_error)"
	zsd_stop
	tap_ok $? "zsd stops"
	umount "$TEST_DIR/ro"
else
	tap_skip 3 "cannot mount a read-only tmpfs"
fi
tap_done
