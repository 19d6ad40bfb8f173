#!/bin/bash
# swap-bench.sh - bench/swap-bench runs end to end on a small working set:
# a corpus, zsd (and the kernel's zram, where it has it) as the swap of a
# memory cgroup with every page back right, the efficiency part, the
# tables; -B with this build's own zsd as the base.  Then once more,
# one run each, with zsd-lz4-recomp and zsd-lz4-wb: their idle step
# (recompression, writeback to a file, compaction) and the columns and
# tables it adds.  Its figures are not judged here: benchmarks report,
# tests do not time.
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

zram=
[ -r /sys/class/zram-control/hot_add ] && zram=yes
backends=${zram:+zram-lz4,}zsd-lz4,zsd-zstd,zsd-lz4-base
idle_backends=${zram:+zram-lz4,}zsd-lz4,zsd-lz4-recomp,zsd-lz4-wb
tap_diag "backends: $backends; then $idle_backends"

# bench OUT ARGS...: swap-bench ARGS, its results in OUT, its output in
# OUT.log.  -n: install nothing; a machine without gnuplot makes no plots.
bench()
{
	local o=$1

	shift
	ZSD=$builddir/daemon/zsd ZSCTL=$builddir/daemon/zsctl \
	    SWAP_FILL=$builddir/bench/swap-fill \
	    DISCARD_PAGES=$builddir/bench/discard-pages \
	    MAKE_CORPUS=$builddir/bench/make-corpus \
	    bash "$srcdir/bench/swap-bench" -n -m 64 -l 16 -s 256 -o "$o" \
	    "$@" >"$o.log" 2>&1
}

out=$TEST_DIR/out
bench "$out" -r 2 -e 16 -b "$backends" -B "$builddir"
status=$?
tap_diag "$(cat "$out.log")"
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
	grep -q "^$b run 2: fill " "$out.log"
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

# --- the idle step: zsd-lz4-recomp, zsd-lz4-wb -----------------------------

# -R 3: a cheaper level than the default, and the option exercised.
out=$TEST_DIR/out-idle
bench "$out" -r 1 -e 0 -R 3 -b "$idle_backends"
status=$?
tap_diag "$(cat "$out.log")"
tap_ok "$status" "swap-bench -m 64 -l 16 -r 1 -e 0 -R 3 exits 0"

# col NAME BACKEND: the column NAME of swap.csv in BACKEND's rows, one a
# line.
col()
{
	awk -F, -v c="$1" -v b="$2" 'NR == 1 {
		for (i = 1; i <= NF; i++)
			if ($i == c) n = i
		next
	}
	$1 == b && n { print $n }' "$out/swap.csv"
}
# gt NAME BACKEND MIN: BACKEND's one run has NAME, a number above MIN.
gt()
{
	col "$1" "$2" | awk -v m="$3" '
	    !/^[0-9]+(\.[0-9]*)?$/ || $1 + 0 <= m + 0 { bad = 1 }
	    END { exit bad || NR != 1 }'
}

for b in ${idle_backends//,/ }; do
	[ "$(col bad "$b")" = 0 ]
	tap_ok $? "$b: every page back right"
	# Of the 48 MiB pushed out, all but the corpus's 15% of zero pages,
	# which the kernel may keep to itself (swpout_zero in /proc/vmstat).
	gt stored_pages "$b" $((36 * 256))
	tap_ok $? "$b: stored_pages above $((36 * 256)) ($(col stored_pages "$b"))"
done
for b in zsd-lz4-recomp zsd-lz4-wb; do
	# (Writeback may leave no object at all in the pool.)
	gt idle_s "$b" 0 && gt held_precompact_bytes "$b" 0 &&
	    col pool_precompact_bytes "$b" | grep -Eqx '[0-9]+' &&
	    col compact_s "$b" | grep -Eqx '[0-9]+\.[0-9]+'
	tap_ok $? "$b: idle_s, compact_s and the memory before compaction"
	gt recompressed_pages "$b" 0
	tap_ok $? "$b: $(col recompressed_pages "$b") pages recompressed"
done
gt bd_pages zsd-lz4-wb 0 && gt file_used_bytes zsd-lz4-wb 0 &&
    gt file_alloc_bytes zsd-lz4-wb 0
tap_ok $? "zsd-lz4-wb: pages in the file, its bytes used and on disk"
gt bd_reads zsd-lz4-wb 0
tap_ok $? "zsd-lz4-wb: the read-back read $(col bd_reads zsd-lz4-wb) pages from the file"
[ "$(col bd_pages zsd-lz4-recomp)" = 0 ] && [ -z "$(col bd_pages zsd-lz4)" ]
tap_ok $? "zsd-lz4-recomp: no page in a file; zsd-lz4: no idle step"
# The backing file goes with each run, and its temp dir at the end
# (held-detail.txt names it, in fincore's line).
backing=$(awk '$NF ~ /\/backing$/ { print $NF; exit }' "$out/held-detail.txt")
[ -n "$backing" ] && [ ! -e "$backing" ] && [ ! -e "${backing%/backing}" ]
tap_ok $? "no backing file left behind (${backing:-none named})"

grep -Eq '^zsd-lz4-recomp +[0-9]+ +[0-9]+ +[0-9]+ ' "$out/swap-bench.txt"
tap_ok $? "the per-page table has a zsd-lz4-recomp row"
grep -q 'recompress_level 3$' "$out/swap-bench.txt" &&
    grep -Eq '^zsd-lz4-wb +[0-9.]+ +[0-9.]+ \| .* \| +[0-9.]+ +[0-9.]+ +[0-9]+$' \
    "$out/swap-bench.txt"
tap_ok $? "the idle step's table, at level 3, has a zsd-lz4-wb row with the file"
grep -Eq '^zsd-lz4-recomp: .*fill [0-9.]+, read [0-9.]+ of zsd-lz4$' \
    "$out/swap-bench.txt"
tap_ok $? "zsd-lz4-recomp's times against zsd-lz4"
if [ -n "$zram" ]; then
	grep -Eq '^zsd-lz4-recomp: held/page [0-9.]+ of zram-lz4 \(pool [0-9.]+\);' \
	    "$out/swap-bench.txt"
	tap_ok $? "zsd-lz4-recomp's memory per page against zram-lz4"
fi
tap_done
