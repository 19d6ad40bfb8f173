#!/bin/bash
# swap-bench.sh - bench/swap-bench runs end to end on a small working set:
# a corpus, zsd (and the kernel's zram, where it has it) as the swap of a
# memory cgroup with every page back right, the efficiency part, the
# tables; -B with this build's own zsd as the base.  Its figures are not judged here: benchmarks report, tests do
# not time.
. "${srcdir:-.}/tests/lib.sh"

require_root
require_fuse
require_loop
require_cgroup_memory
require_prog mkswap swapon swapoff fusermount3 flock
swap_lock || tap_bail "cannot take $builddir/tests/swap.lock"
other=$(swaps_from 32000)
[ -z "$other" ] || skip "other swap at priority >= 32000: $other"
setup_cleanup

backends=zsd-lz4,zsd-zstd,zsd-lz4-base
if [ -r /sys/class/zram-control/hot_add ]; then
	backends=zram-lz4,$backends
	zram=yes
fi
out=$TEST_DIR/out
tap_diag "backends: $backends"

# -n: install nothing; a machine without gnuplot makes no plots.
ZSD=$builddir/daemon/zsd ZSCTL=$builddir/daemon/zsctl \
    SWAP_FILL=$builddir/bench/swap-fill \
    DISCARD_PAGES=$builddir/bench/discard-pages \
    MAKE_CORPUS=$builddir/bench/make-corpus \
    bash "$srcdir/bench/swap-bench" -n -m 64 -l 16 -r 2 -s 256 -e 16 \
    -b "$backends" -B "$builddir" -o "$out" >"$TEST_DIR/bench.out" 2>&1
status=$?
tap_diag "$(cat "$TEST_DIR/bench.out")"
tap_ok "$status" "swap-bench -m 64 -l 16 -r 2 -e 16 exits 0"

for b in ${backends//,/ }; do
	rows=$(awk -F, -v b="$b" '$1 == b && $9 == "0" && $5 > 0' \
	    "$out/swap.csv" | wc -l)
	[ "$rows" -eq 2 ]
	tap_ok $? "$b: 2 runs, every page back right, pages swapped out"
	# 48 MiB over the limit: at least that much went out.
	min=$(awk -F, -v b="$b" '$1 == b { if (m == "" || $5 < m) m = $5 }
	    END { print m + 0 }' "$out/swap.csv")
	[ "$min" -ge $((48 * 256)) ]
	tap_ok $? "$b: pswpout at least $((48 * 256)) pages (least $min)"
	held=$(awk -F, -v b="$b" '$1 == b { print $8 }' "$out/swap-median.csv")
	awk -v h="$held" 'BEGIN { exit !(h > 1) }'
	tap_ok $? "$b: held $held MiB in the median row"
	# Progress goes to stderr, run after run; a redirection left on the
	# shell once hid all of it after the first.
	grep -q "^$b run 2: fill " "$TEST_DIR/bench.out"
	tap_ok $? "$b: run 2 reported on stderr"
done

# The efficiency part: what was stored halves, compaction gives memory back.
eff()
{
	awk -F, -v b="$1" -v p="$2" -v f="$3" '$1 == b && $2 == p { print $f }' \
	    "$out/efficiency.csv"
}
for b in zsd-lz4 ${zram:+zram-lz4}; do
	orig=$(eff "$b" fill 3)
	[ "${orig:-0}" -eq $((16 << 20)) ]
	tap_ok $? "$b: 16 MiB stored (orig_data_size ${orig:-none})"
	half=$(eff "$b" half 3)
	[ "${half:-0}" -eq $((8 << 20)) ]
	tap_ok $? "$b: 8 MiB left after the discard (${half:-none})"
	before=$(eff "$b" half 5)
	after=$(eff "$b" compact 5)
	[ "${after:-0}" -gt 0 ] && [ "$after" -lt "$before" ]
	tap_ok $? "$b: compaction shrank the pool ($before -> ${after:-none})"
done
grep -q '^zsd-lz4 ' "$out/swap-bench.txt"
tap_ok $? "the table has a zsd-lz4 row"
grep -q '^zsd-lz4 / zsd-lz4-base: time [0-9.]*, held [0-9.]*$' \
    "$out/swap-bench.txt"
tap_ok $? "the table compares zsd-lz4 with its base (-B)"
if command -v gnuplot >/dev/null; then
	[ -s "$out/swap-time.png" ] && [ -s "$out/swap-memory.png" ] &&
	    [ -s "$out/efficiency.png" ]
	tap_ok $? "three plots"
fi
tap_done
