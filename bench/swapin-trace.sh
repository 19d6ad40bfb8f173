#!/bin/bash
# swapin-trace.sh - where a swap-in from zsd spends its time: runs
# bench/swapin-lat.sh once for one zsd transport with the kernel's
# scheduler, block, FUSE and io_uring tracepoints on, and cuts each
# swap-in into the hops it takes.  Run as root from the build directory,
# best through `make bench-swapin-trace SWAPIN_TRACE_ARGS='...'`; see
# BENCHMARKS.md.
#
#   -b NAME	zsd-dev or zsd-uring (zsd-dev)
#   -m MiB	memory pushed to swap and read back (32)
#   -w Y|N	the fuse module's wake_here (N)
#   -o DIR	where the trace, the hops and the table go (swapin-trace.out)
#
# Every read the test issues (page-cluster 0: one page, one request) is
# followed through the loop device and FUSE to the test running again:
#   worker	block_rq_issue -> fuse_request_send: the loop device's worker
#		woken and scheduled, and sending the FUSE read
#   zsd		fuse_request_send -> fuse_request_end: zsd woken, the page
#		decompressed, the answer written
#   complete	fuse_request_end -> block_rq_complete: the loop device's
#		completion (a softirq, often ksoftirqd)
#   wake	block_rq_complete -> the test switched in: the faulting task
#		woken, on its CPU
#   total	block_rq_issue -> the test switched in
# in µs, count, p50, p90, p99, p99.9 and max; and how many reads crossed
# CPUs at each hop (the worker on another CPU than the test; zsd's thread
# on another CPU than the worker).  The fault's own work before the
# request and after the wakeup is left out, as is zram (no request).
# Tracing is set back as it was on exit (tracefs unmounted if it mounted
# it); swapin-lat.sh undoes the rest.
set -uo pipefail

: "${srcdir:=$(dirname "$0")/..}"
backend=zsd-dev
mib=32
wake=N
out='swapin-trace.out'
tracing=/sys/kernel/tracing
events="sched/sched_switch sched/sched_waking fuse/fuse_request_send
fuse/fuse_request_end block/block_rq_issue block/block_rq_complete
ipi/ipi_send_cpu"

die() { printf 'swapin-trace: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '/^#   -/p' "$0" | sed 's/^# */  /' >&2; exit 2; }

while getopts "b:m:w:o:" opt; do
	case $opt in
	b) backend=$OPTARG ;;
	m) mib=$OPTARG ;;
	w) wake=$OPTARG ;;
	o) out=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
case $backend in
zsd-dev | zsd-uring) ;;
*) die "-b: $backend is neither zsd-dev nor zsd-uring" ;;
esac
[[ $wake == [NY] ]] || die "-w: $wake is neither N nor Y"
[[ $mib =~ ^[0-9]+$ ]] && [ "$mib" -gt 0 ] || die "-m: $mib is not a number"
[ "$(id -u)" -eq 0 ] || die "needs root (tracefs, swapon)"

mounted=
if [ ! -e "$tracing/trace" ]; then
	mount -t tracefs nodev "$tracing" || die "cannot mount tracefs"
	mounted=1
	trap 'umount "$tracing"' EXIT
fi
for e in $events; do
	[ -e "$tracing/events/$e/enable" ] || die "this kernel has no $e event"
done
mkdir -p "$out" || die "cannot make $out"
out=$(cd "$out" && pwd)

on0=$(cat "$tracing/tracing_on")
size0=$(cat "$tracing/buffer_size_kb")
restore()
{
	local e

	echo 0 >"$tracing/tracing_on"
	for e in $events; do
		echo 0 >"$tracing/events/$e/enable"
	done
	echo "$size0" >"$tracing/buffer_size_kb"
	echo >"$tracing/trace"
	echo "$on0" >"$tracing/tracing_on"
	[ -z "$mounted" ] || umount "$tracing"
}
trap restore EXIT
trap 'exit 1' INT TERM

echo 0 >"$tracing/tracing_on"
echo >"$tracing/trace"
# About 20 events a swap-in, 100 bytes each, and room for the rest.
echo $((mib * 256 * 20 * 100 / 1024 * 4 + 65536)) >"$tracing/buffer_size_kb" ||
    die "cannot size the trace buffer"
for e in $events; do
	echo 1 >"$tracing/events/$e/enable" || die "cannot enable $e"
done
echo 1 >"$tracing/tracing_on"
srcdir=$srcdir bash "$srcdir/bench/swapin-lat.sh" -m "$mib" -r 1 \
    -b "$backend" -w "$wake" -o "$out/lat" >&2 ||
    die "swapin-lat.sh failed"
echo 0 >"$tracing/tracing_on"
cat "$tracing/trace" >"$out/trace.txt" || die "cannot save the trace"
grep -q 'lost events' "$out/trace.txt" &&
    printf 'swapin-trace: the buffer overran: some reads are left out\n' >&2

# One line a read: the hops, in µs, and the CPUs.
awk '
function us(t) { return sprintf("%.1f", t * 1e6) }
{
	# TASK-PID [CPU] FLAGS TIME: EVENT: ...
	for (i = 1; i <= NF; i++)
		if ($i ~ /^\[[0-9]+\]$/)
			break
	if (i > NF)
		next
	cpu = substr($i, 2, length($i) - 2) + 0
	t = $(i + 2); sub(/:$/, "", t); t += 0
	ev = $(i + 3); sub(/:$/, "", ev)
	task = $1
	for (j = 2; j < i; j++)
		task = task " " $j
}
ev == "block_rq_issue" && task ~ /^swapin-lat-/ && $(i + 5) == "R" {
	# 7,0 R 4096 () SECTOR + 8 ...
	state = 1; sector = $(i + 8); t0 = t; c0 = cpu; req = ""
	next
}
state == 1 && ev == "fuse_request_send" && /FUSE_READ/ {
	for (j = i + 4; j <= NF; j++)
		if ($j == "req")
			req = $(j + 1)
	t1 = t; c1 = cpu; state = 2
	next
}
state == 2 && ev == "fuse_request_end" && $0 ~ (" req " req " ") {
	t2 = t; c2 = cpu; state = 3
	next
}
state == 3 && ev == "block_rq_complete" && $(i + 7) == sector {
	t3 = t; state = 4
	next
}
state == 4 && ev == "sched_switch" && $0 ~ /next_comm=swapin-lat / {
	print us(t1 - t0), us(t2 - t1), us(t3 - t2), us(t - t3), us(t - t0),
	    (c1 != c0), (c2 != c1)
	state = 0
}' "$out/trace.txt" >"$out/hops.txt"

n=$(wc -l <"$out/hops.txt")
[ "$n" -gt 0 ] || die "no read followed through in $out/trace.txt"
{
	printf '%s, wake_here %s, %d MiB: %d reads followed (µs)\n' \
	    "$backend" "$wake" "$mib" "$n"
	printf '%-9s %8s %8s %8s %8s %8s\n' hop p50 p90 p99 p99.9 max
	col=1
	for hop in worker zsd complete wake total; do
		cut -d ' ' -f "$col" "$out/hops.txt" | sort -n | awk -v h="$hop" '
		    { v[NR] = $1 }
		    function p(q,  k) { k = int(q * NR + 0.999999); if (k < 1) k = 1; return v[k] }
		    END { printf "%-9s %8.1f %8.1f %8.1f %8.1f %8.1f\n", h,
			p(0.5), p(0.9), p(0.99), p(0.999), v[NR] }'
		col=$((col + 1))
	done
	awk '{ w += $6; z += $7 } END {
	    printf "worker on another CPU than the test: %.1f%%\n", 100 * w / NR
	    printf "zsd on another CPU than the worker:  %.1f%%\n", 100 * z / NR }' \
	    "$out/hops.txt"
	# The slowest reads: which hop took most of each.
	sort -n -k5,5 "$out/hops.txt" | tail -n $(((n + 99) / 100)) | awk '
	    { m = 1; for (k = 2; k <= 4; k++) if ($k > $m) m = k; c[m]++ }
	    END { printf "slowest 1%% (%d reads), the hop that took most:", NR
		split("worker zsd complete wake", nm)
		for (k = 1; k <= 4; k++) printf " %s %d", nm[k], c[k]
		printf "\n" }'
} | tee "$out/swapin-trace.txt"
