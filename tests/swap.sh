#!/bin/bash
# swap.sh - zsd as real swap: a program in a 64 MiB memory cgroup fills
# 256 MiB, the kernel swaps most of it to zsd's loop device, and every
# page must come back right.  Then an orderly stop takes the swap off.
. "${srcdir:-.}/tests/lib.sh"

prio=32000

require_root
require_fuse
require_loop
require_cgroup_memory
require_prog swapoff losetup
swap_lock || tap_bail "cannot take $builddir/tests/swap.lock"
# The kernel fills the highest priority first: another swap at ours or
# above would take the pages meant for zsd.
other=$(awk -v p="$prio" 'NR > 1 && $5 >= p { print $1 " (" $5 ")" }' \
    /proc/swaps)
[ -z "$other" ] || skip "other swap at priority >= $prio: $other"
setup_cleanup

zsd_start --swapon -o disksize=512M -o priority=$prio ||
    tap_bail "zsd --swapon did not start"
f=$ZSD_MNT/swap0

loop=$(our_loops)
[ -n "$loop" ] && [ "$(echo "$loop" | wc -l)" -eq 1 ]
tap_ok $? "one loop device backed by $f: $loop"
[ -n "$loop" ] || tap_bail "no loop device"
losetup -j "$f" | grep -q "^$loop:"
tap_ok $? "losetup -j $f shows $loop"
got=$(swap_priority "$loop")
[ "$got" = "$prio" ]
tap_ok $? "/proc/swaps: $loop at priority $prio (got ${got:-none})"
other=$(awk -v p="$prio" -v d="$loop" \
    'NR > 1 && $1 != d && $5 >= p { print $1 }' /proc/swaps)
[ -z "$other" ] || tap_bail "another swap came up at priority >= $prio"

cgroup_create swap $((64 << 20)) || tap_bail "cannot make a memory cgroup"
out_before=$(vmstat_get pswpout)
in_before=$(vmstat_get pswpin)

# Watch zsd while swapper runs: what is in the store when it is fullest
# (swap slots freed at exit need not reach zsd, or may, with discard).
cgroup_run swap "$SWAPPER" -m 256 -s 11 -w 128 >"$TEST_DIR/swapper.out" 2>&1 &
swapper=$!
TEST_PIDS=$swapper
max_orig=0 max_compr=0 max_used=0
while pid_alive "$swapper"; do
	read -r o c _ <"$ZSD_MNT/mm_stat"
	if [ "${o:-0}" -gt "$max_orig" ]; then
		max_orig=$o
		max_compr=$c
	fi
	u=$(awk -v d="$loop" '$1 == d { print $4 }' /proc/swaps)
	[ "${u:-0}" -gt "$max_used" ] && max_used=$u
	sleep 0.2
done
wait "$swapper"
status=$?
TEST_PIDS=
tap_diag "$(cat "$TEST_DIR/swapper.out")"
tap_ok "$status" "swapper -m 256 in a 64 MiB cgroup: >= 128 MiB went to swap, every page right"

out=$(($(vmstat_get pswpout) - out_before))
in=$(($(vmstat_get pswpin) - in_before))
want=$(((256 - 64) * 256 / 2))
[ "$out" -ge "$want" ]
tap_ok $? "pswpout grew by $out pages (want >= $want), pswpin by $in"
[ "$max_used" -gt 0 ]
tap_ok $? "/proc/swaps: $loop used at most $max_used KiB"
[ "$max_orig" -gt 0 ] && [ "$max_compr" -lt "$max_orig" ]
tap_ok $? "mm_stat at its fullest: orig_data_size $max_orig," \
    "compr_data_size $max_compr"
tap_diag "mm_stat after: $(cat "$ZSD_MNT/mm_stat")"
used_max=$(mm_stat mem_used_max)
[ "${used_max:-0}" -gt 0 ]
tap_ok $? "mm_stat: mem_used_max $used_max"

cgroup_remove swap
tap_ok $? "removed the cgroup"

zsd_stop
tap_ok $? "zsd stops on SIGTERM with status 0"
! swap_priority "$loop" >/dev/null
tap_ok $? "swap on $loop is off"
[ -z "$(our_loops)" ]
tap_ok $? "$loop is detached"
! is_mounted "$ZSD_MNT"
tap_ok $? "the mount is gone"
tap_done
