#!/bin/bash
# merge.sh - same-page merging under real swap: a program in a 64 MiB
# memory cgroup fills 256 MiB whose text and random pages are copies of
# 32 pages of each kind (swapper -d 32).  Once most of it is in swap,
# zsd must hold those pages once each (pages_merged near all of them, a
# pool of a few dozen objects besides the few other pages swapped there),
# and every page must come back right.
. "${srcdir:-.}/tests/lib.sh"

ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}
prio=32000
copies=32

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

stat_get()
{
	"$ZSCTL" -s "$TEST_DIR/control" -b stat |
	    awk -v k="$1" '$1 == k { print $2 }'
}

zsd_start --swapon -o disksize=512M -o priority=$prio "$@" ||
    tap_bail "zsd --swapon did not start"
loop=$(our_loops)
[ -n "$loop" ] || tap_bail "no loop device"

cgroup_create merge $((64 << 20)) || tap_bail "cannot make a memory cgroup"
cgroup_run merge "$SWAPPER" -m 256 -s 5 -w 128 -d $copies \
    -p "$TEST_DIR/go" >"$TEST_DIR/swapper.out" 2>&1 &
swapper=$!
TEST_PIDS=$swapper
tenths=1200
until grep -q "waiting for" "$TEST_DIR/swapper.out"; do
	pid_alive "$swapper" && [ "$tenths" -gt 0 ] || break
	sleep 0.1
	tenths=$((tenths - 1))
done
grep -q "waiting for" "$TEST_DIR/swapper.out"
tap_ok $? "swapper filled 256 MiB of copies of $copies pages"

# Filled and waiting: its pages are in swap, at rest.
stored=$(stat_get pages_stored)
same=$(stat_get same_pages)
merged=$(stat_get pages_merged)
shared=$(stat_get merge_objects)
objects=$(stat_get pool_objects)
pending=$(stat_get pool_objects_pending_free)
# Live objects: those whose free waits in a batch are not.
objects=$((${objects:-0} - ${pending:-0}))
used=$(stat_get mem_used_total)
saved=$(stat_get merge_saved_size)
tap_diag "stored $stored, same-filled $same, merged $merged," \
    "shared objects $shared, pool objects $objects, mem_used_total $used," \
    "merge_saved_size $saved"
others=$((${stored:-0} - ${same:-0}))
[ "$others" -ge $((128 * 256 / 2)) ]
tap_ok $? "$others pages neither zero nor same-filled in swap"
# 2 x copies contents, each stored once, and the swap header.  Other
# pages may be swapped here too, each unique: other processes', and the
# swapper's own memory besides its data (in a sanitizer build its shadow
# and allocator pages, about 2% of the pages here): 5% allowed.  Without
# merging every one of them would be an object.
most=$((2 * copies + 1 + others * 5 / 100))
[ "${objects:-0}" -le "$most" ] && [ "$merged" -ge $((others - most)) ]
tap_ok $? "$merged of them merged, $objects objects in the pool" \
    "(want <= $most)"
# The other pages that are copies of each other (two alike allocator
# pages in a sanitizer build, say) share objects too: at most one per
# two of the 5%.
shared_most=$((2 * copies + others * 5 / 100 / 2))
[ "${shared:-0}" -ge 1 ] && [ "$shared" -le "$shared_most" ]
tap_ok $? "$shared objects shared (want <= $shared_most)"
# Unmerged, these pages took over half their size in the pool.
[ "${used:-0}" -gt 0 ] && [ "$used" -le $((others * 4096 * 5 / 100)) ]
tap_ok $? "the pool holds $others pages in $used bytes" \
    "(want <= 5% of $((others * 4096)))"
[ "${saved:-0}" -gt $((64 << 20)) ]
tap_ok $? "merging saved $saved bytes of objects"

: >"$TEST_DIR/go"
wait "$swapper"
status=$?
TEST_PIDS=
tap_diag "$(cat "$TEST_DIR/swapper.out")"
tap_ok "$status" "every page of the copies came back right"
[ "$(stat_get merge_collisions)" -eq 0 ]
tap_ok $? "no hash collisions among them"

cgroup_remove merge
tap_ok $? "removed the cgroup"
zsd_stop
tap_ok $? "zsd stops on SIGTERM with status 0"
[ -z "$(our_loops)" ]
tap_ok $? "$loop is detached"
tap_done
