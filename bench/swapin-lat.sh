#!/bin/bash
# swapin-lat.sh - the latency of each swap-in (bench/swapin-lat) on zram
# with lz4 and on zsd with lz4 by each FUSE transport, each with the fuse
# module's wake_here parameter off and on.  Run as root from the build
# directory, best through `make bench-swapin SWAPIN_ARGS='...'`; see
# BENCHMARKS.md.
#
#   -m MiB	memory pushed to swap and read back, page by page (256)
#   -r N	runs of each configuration; medians are reported (3)
#   -b LIST	backends, comma-separated: zram-lz4,zsd-dev,zsd-uring
#   -w LIST	wake_here values, comma-separated: N,Y (N alone where the
#		fuse module has no such parameter)
#   -c FILE	a corpus to fill the memory from (default: swapin-lat's
#		compressible pattern)
#   -s MiB	size of each swap device (1024)
#   -o DIR	where the table and the CSV go (swapin-lat.out)
#
# While it runs /proc/sys/vm/page-cluster is 0 (one page a swap-in, no
# readahead) and wake_here what the configuration says; both are put
# back on exit, as is every device, daemon, mount and cgroup it makes,
# whatever happens.  It swaps off only what it swapped on, and refuses
# to run beside another swap device.
set -uo pipefail

: "${srcdir:=$(dirname "$0")/..}"
: "${ZSD:=daemon/zsd}"
: "${ZSCTL:=daemon/zsctl}"
: "${SWAPIN_LAT:=bench/swapin-lat}"
# shellcheck source=../tests/lib.sh
. "$srcdir/tests/lib.sh"

mib=256
runs=3
backends=zram-lz4,zsd-dev,zsd-uring
wakes=N,Y
corpus=
swap_mib=1024
out='swapin-lat.out'
prio=32767
seed=1
wake_param=/sys/module/fuse/parameters/wake_here
cluster_param=/proc/sys/vm/page-cluster

say() { printf '%s\n' "$*" >&2; }
die() { printf 'swapin-lat: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '/^#   -/p' "$0" | sed 's/^# */  /' >&2; exit 2; }

while getopts "m:r:b:w:c:s:o:" opt; do
	case $opt in
	m) mib=$OPTARG ;;
	r) runs=$OPTARG ;;
	b) backends=$OPTARG ;;
	w) wakes=$OPTARG ;;
	c) corpus=$OPTARG ;;
	s) swap_mib=$OPTARG ;;
	o) out=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
for v in mib runs swap_mib; do
	[[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] ||
	    die "-${v:0:1}: ${!v} is not a number"
done
[ "$swap_mib" -gt "$mib" ] || die "-s: $swap_mib MiB of swap cannot hold -m $mib"
IFS=, read -r -a blist <<<"$backends"
for b in "${blist[@]}"; do
	case $b in
	zram-lz4 | zsd-dev | zsd-uring) ;;
	*) die "-b: unknown backend $b (zram-lz4, zsd-dev, zsd-uring)" ;;
	esac
done
IFS=, read -r -a wlist <<<"$wakes"
for w in "${wlist[@]}"; do
	[[ $w == [NY] ]] || die "-w: $w is neither N nor Y"
done
[ -z "$corpus" ] || [ -r "$corpus" ] || die "-c: cannot read $corpus"

[ "$(id -u)" -eq 0 ] || die "needs root (swapon, page-cluster, cgroups)"
for p in "$ZSD" "$ZSCTL" "$SWAPIN_LAT"; do
	[ -x "$p" ] || die "no $p: run it from the build directory (make bench-swapin)"
done
[ -c /dev/fuse ] || die "no /dev/fuse"
cgroup_detect || die "no memory cgroup controller"
for p in losetup mkswap swapon swapoff fusermount3; do
	command -v "$p" >/dev/null || die "needs $p"
done
other=$(awk 'NR > 1 { print $1 }' /proc/swaps)
[ -z "$other" ] || die "another swap is on: $other"
if [ ! -w "$wake_param" ]; then
	[ "$wakes" = N ] || say "no $wake_param: wake_here N only"
	wlist=(N)
fi
if [ "$CG_VERSION" = 1 ]; then
	reclaim_file=memory.force_empty
else
	reclaim_file=memory.reclaim
fi

mkdir -p "$out" || die "cannot make $out"
out=$(cd "$out" && pwd)
[ -z "$corpus" ] || corpus=$(cd "$(dirname "$corpus")" && pwd)/$(basename "$corpus")

# What is changed is kept first, and put back by the trap.
cluster0=$(cat "$cluster_param") || die "cannot read $cluster_param"
wake0=
[ ! -w "$wake_param" ] || wake0=$(cat "$wake_param") ||
    die "cannot read $wake_param"
setup_cleanup

ZRAM_ID=

zram_up()
{
	local z tenths=50

	[ -z "$ZRAM_ID" ] || zram_down || return 1
	[ -r /sys/class/zram-control/hot_add ] || modprobe zram num_devices=0 ||
	    { say "no zram module"; return 1; }
	ZRAM_ID=$(cat /sys/class/zram-control/hot_add) ||
	    { say "cannot add a zram device"; return 1; }
	z=/sys/block/zram$ZRAM_ID
	while [ ! -b "/dev/zram$ZRAM_ID" ] && [ "$tenths" -gt 0 ]; do
		sleep 0.1
		tenths=$((tenths - 1))
	done
	grep -qw lz4 "$z/comp_algorithm" ||
	    { say "zram has no lz4: $(cat "$z/comp_algorithm")"; return 1; }
	echo lz4 >"$z/comp_algorithm" && echo "${swap_mib}M" >"$z/disksize" &&
	    mkswap "/dev/zram$ZRAM_ID" >/dev/null &&
	    swapon -p "$prio" --discard=pages "/dev/zram$ZRAM_ID"
}

zram_down()
{
	local z=/sys/block/zram$ZRAM_ID

	[ -n "$ZRAM_ID" ] || return 0
	if swap_priority "/dev/zram$ZRAM_ID" >/dev/null; then
		timeout 300 swapoff "/dev/zram$ZRAM_ID" ||
		    say "swapoff /dev/zram$ZRAM_ID failed"
	fi
	# Forgotten only once gone, so that cleanup tries again.
	if echo 1 >"$z/reset" &&
	    echo "$ZRAM_ID" >/sys/class/zram-control/hot_remove; then
		ZRAM_ID=
	else
		say "cannot remove zram$ZRAM_ID"
		return 1
	fi
}

# Runs before lib.sh's cleanup, which handles zsd, its loop device, the
# mounts and the cgroups.
cleanup_hook()
{
	local cg

	for cg in $TEST_CGROUPS; do
		cgroup_rmdir "$cg"
	done
	TEST_CGROUPS=
	zram_down
	echo "$cluster0" >"$cluster_param" ||
	    say "cannot put page-cluster back to $cluster0"
	if [ -n "$wake0" ]; then
		echo "$wake0" >"$wake_param" ||
		    say "cannot put wake_here back to $wake0"
	fi
}

# backend_up NAME: NAME the only swap, at $prio; sets DEV.
DEV=
backend_up()
{
	local b=$1 t

	DEV=
	case $b in
	zram-lz4)
		zram_up || return 1
		DEV=/dev/zram$ZRAM_ID
		;;
	zsd-*)
		zsd_start --swapon -o disksize="${swap_mib}M" \
		    -o priority="$prio" -o algorithm=lz4 \
		    -o transport="${b#zsd-}" >&2 || return 1
		DEV=$(our_loops | head -n 1)
		t=$(zsd_status transport)
		[ "$t" = "${b#zsd-}" ] || {
			say "$b: zsd serves by $t: $(zsd_status transport_reason)"
			return 1
		}
		;;
	esac
}

backend_down()
{
	case $1 in
	zram-lz4) zram_down ;;
	zsd-*)	zsd_stop || say "zsd did not stop cleanly" ;;
	esac
}

csv=$out/swapin-lat.csv
echo "backend,wake_here,run,pages,swapped_kib,zero,resident,count,p50_us,p90_us,p99_us,p99.9_us,mean_us,max_us,loadavg" \
    >"$csv"

# run_one BACKEND WAKE RUN: one swapin-lat; a CSV row.
run_one()
{
	local b=$1 w=$2 run=$3 line status row load

	[ -z "$wake0" ] || echo "$w" >"$wake_param" ||
	    { say "cannot set wake_here to $w"; return 1; }
	backend_up "$b" || { backend_down "$b"; return 1; }
	if [ "$(swap_priority "$DEV")" != "$prio" ] ||
	    [ -n "$(awk -v d="$DEV" 'NR > 1 && $1 != d' /proc/swaps)" ]; then
		say "$b: $DEV is not the only swap at priority $prio"
		backend_down "$b"
		return 1
	fi
	# Room for all of it: only madvise pushes it out.
	cgroup_create lat $(((mib + 256) << 20)) ||
	    { backend_down "$b"; die "cannot make a cgroup"; }
	load=$(cut -d ' ' -f 1 /proc/loadavg)
	line=$(cgroup_run lat "$SWAPIN_LAT" -m "$mib" -s "$seed" \
	    ${corpus:+-c "$corpus"} -R "$(cgroup_path lat)/$reclaim_file")
	status=$?
	cgroup_remove lat
	backend_down "$b"
	if [ "$status" -ne 0 ] || [ -z "$line" ]; then
		say "$b wake_here=$w run $run: swapin-lat failed (status $status)"
		return 1
	fi
	row=$(awk -v b="$b" -v w="$w" -v r="$run" -v l="$load" '{
		for (i = 1; i < NF; i += 2) v[$i] = $(i + 1)
		print b "," w "," r "," v["pages"] "," v["swapped_kib"] "," \
		    v["zero"] "," v["resident"] "," v["count"] "," v["p50"] \
		    "," v["p90"] "," v["p99"] "," v["p99.9"] "," v["mean"] \
		    "," v["max"] "," l
	}' <<<"$line")
	echo "$row" >>"$csv"
	say "$b wake_here=$w run $run: $line"
}

echo 0 >"$cluster_param" || die "cannot set page-cluster"
[ -z "$corpus" ] || cat "$corpus" >/dev/null

configs=()
for b in "${blist[@]}"; do
	for w in "${wlist[@]}"; do
		configs+=("$b/$w")
	done
done
failed=0
# Each round starts one configuration later, so none always goes first.
for ((r = 0; r < runs; r++)); do
	for ((i = 0; i < ${#configs[@]}; i++)); do
		c=${configs[$(((i + r) % ${#configs[@]}))]}
		run_one "${c%/*}" "${c#*/}" $((r + 1)) || failed=$((failed + 1))
	done
done

# Medians over the runs of each figure; ratios against the first
# configuration (zram-lz4, wake_here N by default) and, for zsd-uring,
# against zsd-dev at the same wake_here.
{
	echo "# swapin-lat $(date -u +%Y-%m-%d), $(uname -r), $(nproc) cores;" \
	    "$mib MiB read back page by page in random order," \
	    "page-cluster 0, $swap_mib MiB swap devices, medians of $runs"
	fill="swapin-lat's pattern (seed $seed)"
	echo "# corpus: ${corpus:-$fill};" \
	    "zsd: $ZSD; all latencies in microseconds"
	echo
	awk -F, -v order="$(IFS=,; echo "${configs[*]}")" '
	function median(list,   a, n, i, t, j) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
			}
		if (n == 0) return ""
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	NR > 1 {
		k = $1 "/" $2
		runs[k]++
		for (f = 8; f <= 14; f++) v[k, f] = v[k, f] " " $f
		ld[k] = ld[k] " " $15
	}
	END {
		n = split(order, c, ",")
		base = c[1]
		printf "%-16s %4s %7s %8s %8s %8s %8s %8s %8s %6s\n", "backend/wake",
		    "runs", "count", "p50", "p90", "p99", "p99.9", "mean",
		    "max", "load"
		for (i = 1; i <= n; i++) {
			k = c[i]
			if (!runs[k]) { printf "%-16s %4d\n", k, 0; continue }
			for (f = 8; f <= 14; f++) m[k, f] = median(v[k, f])
			printf "%-16s %4d %7d %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %6.2f\n",
			    k, runs[k], m[k, 8], m[k, 9], m[k, 10], m[k, 11],
			    m[k, 12], m[k, 13], m[k, 14], median(ld[k])
		}
		printf "\nratios of the medians to %s\n", base
		printf "%-16s %8s %8s %8s %8s %8s\n", "backend/wake", "p50",
		    "p90", "p99", "p99.9", "mean"
		for (i = 1; i <= n; i++) {
			k = c[i]
			if (!runs[k] || !runs[base]) continue
			printf "%-16s", k
			for (f = 9; f <= 13; f++)
				printf " %8.2f", m[k, f] / m[base, f]
			printf "\n"
		}
		hdr = 0
		for (i = 1; i <= n; i++) {
			k = c[i]
			if (k !~ /^zsd-uring\//) continue
			d = k; sub(/^zsd-uring/, "zsd-dev", d)
			if (!runs[k] || !runs[d]) continue
			if (!hdr++) {
				printf "\nzsd-uring over zsd-dev at the same wake_here\n"
				printf "%-16s %8s %8s %8s %8s %8s\n", "wake_here",
				    "p50", "p90", "p99", "p99.9", "mean"
			}
			w = k; sub(/^.*\//, "", w)
			printf "%-16s", w
			for (f = 9; f <= 13; f++)
				printf " %8.2f", m[k, f] / m[d, f]
			printf "\n"
		}
	}' "$csv"
} >"$out/swapin-lat.txt"
cat "$out/swapin-lat.txt"
say "results in $out"
[ "$failed" -eq 0 ] || die "$failed run(s) failed"
exit 0
