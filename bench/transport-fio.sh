#!/bin/bash
# transport-fio.sh - zsd's two FUSE transports under fio: 4 KiB O_DIRECT
# random reads of the FUSE file itself, and the loop device swap would
# use, each with max_background 12 and 64.  Run as root from the build
# directory, best through `make bench-transport TRANSPORT_ARGS='...'`;
# see BENCHMARKS.md.
#
#   -r N	rounds; medians are reported (3)
#   -t LIST	transports, comma-separated: dev,uring
#   -M LIST	max_background values, comma-separated: 12,64
#   -S MiB	data written and read (512); zsd's file is twice that
#   -T SEC	seconds each fio job runs (8, after 1 s of ramp)
#   -o DIR	where the table, the CSV and fio's JSON go
#		(transport-fio.out)
#
# Each round starts one zsd a transport and max_background (swapon=no),
# fills the first -S MiB of its file with fio (1 MiB writes, buffers 60%
# compressible, refilled), then runs, each as one fio job with libaio:
#   file-randread-qd1, file-randread-qd32	4 KiB O_DIRECT on the file
#   loop-randread-qd32, loop-randwrite-qd32	4 KiB, on a loop device
#   loop-write128k-qd16			128 KiB sequential, the same
# (losetup --direct-io=on on the file, as zsd's swap).  Every daemon,
# mount and loop device it makes is undone on exit, whatever happens.
set -uo pipefail

: "${srcdir:=$(dirname "$0")/..}"
: "${ZSD:=daemon/zsd}"
: "${ZSCTL:=daemon/zsctl}"
# shellcheck source=../tests/lib.sh
. "$srcdir/tests/lib.sh"

rounds=3
transports=dev,uring
mbs=12,64
size_mib=512
secs=8
out='transport-fio.out'

say() { printf '%s\n' "$*" >&2; }
die() { printf 'transport-fio: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '/^#   -/p' "$0" | sed 's/^# */  /' >&2; exit 2; }

while getopts "r:t:M:S:T:o:" opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	t) transports=$OPTARG ;;
	M) mbs=$OPTARG ;;
	S) size_mib=$OPTARG ;;
	T) secs=$OPTARG ;;
	o) out=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
for v in rounds size_mib secs; do
	[[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] ||
	    die "-${v:0:1}: ${!v} is not a number"
done
IFS=, read -r -a tlist <<<"$transports"
for t in "${tlist[@]}"; do
	[[ $t == dev || $t == uring ]] || die "-t: $t is neither dev nor uring"
done
IFS=, read -r -a mlist <<<"$mbs"
for m in "${mlist[@]}"; do
	[[ $m =~ ^[0-9]+$ ]] && [ "$m" -ge 1 ] && [ "$m" -le 1024 ] ||
	    die "-M: $m is not between 1 and 1024"
done

[ "$(id -u)" -eq 0 ] || die "needs root (loop devices, FUSE mounts)"
for p in "$ZSD" "$ZSCTL"; do
	[ -x "$p" ] || die "no $p: run it from the build directory"
done
[ -c /dev/fuse ] || die "no /dev/fuse"
for p in fio jq losetup fusermount3; do
	command -v "$p" >/dev/null || die "needs $p"
done

mkdir -p "$out/json" || die "cannot make $out"
out=$(cd "$out" && pwd)
setup_cleanup

csv=$out/transport-fio.csv
echo "transport,max_background,job,round,iops,bw_mib_s,clat_p50_us,clat_p99_us,lat_p50_us,lat_p99_us,lat_mean_us,loadavg" \
    >"$csv"

# fio_job NAME FILE ARGS...: one timed job on FILE, its JSON kept, a
# CSV row; the figures of whichever direction it ran.  clat is from
# submission to completion; lat adds the submission itself (slat),
# where a request served before io_submit returns spends its time.
fio_job()
{
	local name=$1 file=$2 json load
	shift 2

	json=$out/json/$tag-$name-r$round.json
	load=$(cut -d ' ' -f 1 /proc/loadavg)
	fio --name="$name" --filename="$file" --ioengine=libaio --direct=1 \
	    --size="${size_mib}M" --time_based --ramp_time=1 \
	    --runtime="$secs" --buffer_compress_percentage=60 \
	    --refill_buffers --randrepeat=1 --lat_percentiles=1 \
	    --output-format=json "$@" \
	    >"$json" 2>"$json.err" || {
		say "$tag $name: fio failed: $(cat "$json.err")"
		return 1
	}
	jq -r --arg t "$transport" --arg m "$mb" --arg n "$name" \
	    --arg r "$round" --arg l "$load" '.jobs[0] |
	    (if .read.io_bytes > 0 then .read else .write end) as $d |
	    [$t, $m, $n, $r, ($d.iops | floor),
	     ($d.bw_bytes / 1048576 * 10 | floor / 10),
	     ($d.clat_ns.percentile["50.000000"] / 1000),
	     ($d.clat_ns.percentile["99.000000"] / 1000),
	     ($d.lat_ns.percentile["50.000000"] / 1000),
	     ($d.lat_ns.percentile["99.000000"] / 1000),
	     ($d.lat_ns.mean / 100 | floor / 10), $l] | @csv' \
	    "$json" | tr -d '"' >>"$csv"
	tail -n 1 "$csv" | sed 's/^/  /' >&2
}

# round_one TRANSPORT MAX_BACKGROUND: one zsd, the five jobs.
round_one()
{
	local loop t

	tag=$transport-mb$mb
	zsd_start -o swapon=no -o disksize=$((size_mib * 2))M \
	    -o algorithm=lz4 -o transport="$transport" \
	    -o max_background="$mb" >&2 || return 1
	t=$(zsd_status transport)
	if [ "$t" != "$transport" ]; then
		say "$tag: zsd serves by $t: $(zsd_status transport_reason)"
		zsd_stop
		return 1
	fi
	say "$tag round $round"
	fio --name=fill --filename="$ZSD_MNT/swap0" --ioengine=libaio \
	    --direct=1 --rw=write --bs=1M --iodepth=4 --size="${size_mib}M" \
	    --buffer_compress_percentage=60 --refill_buffers \
	    --output-format=json >"$out/json/$tag-fill-r$round.json" 2>&1 ||
	    say "$tag: the fill failed"
	fio_job file-randread-qd1 "$ZSD_MNT/swap0" --rw=randread --bs=4k \
	    --iodepth=1
	fio_job file-randread-qd32 "$ZSD_MNT/swap0" --rw=randread --bs=4k \
	    --iodepth=32
	if loop=$(losetup -f --show --direct-io=on "$ZSD_MNT/swap0"); then
		fio_job loop-randread-qd32 "$loop" --rw=randread --bs=4k \
		    --iodepth=32
		fio_job loop-randwrite-qd32 "$loop" --rw=randwrite --bs=4k \
		    --iodepth=32
		fio_job loop-write128k-qd16 "$loop" --rw=write --bs=128k \
		    --iodepth=16
		losetup -d "$loop" || say "losetup -d $loop failed"
	else
		say "$tag: no loop device"
	fi
	zsd_stop || say "zsd did not stop cleanly"
}

configs=()
for transport in "${tlist[@]}"; do
	for mb in "${mlist[@]}"; do
		configs+=("$transport/$mb")
	done
done
# Each round starts one configuration later, so none always goes first.
for ((round = 1; round <= rounds; round++)); do
	for ((i = 0; i < ${#configs[@]}; i++)); do
		c=${configs[$(((i + round - 1) % ${#configs[@]}))]}
		transport=${c%/*} mb=${c#*/}
		round_one
	done
done

{
	echo "# transport-fio $(date -u +%Y-%m-%d), $(uname -r), $(nproc) cores;" \
	    "zsd lz4, ${size_mib} MiB written, ${secs} s a job, medians of" \
	    "$rounds rounds"
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
		k = $1 "/" $2 SUBSEP $3
		if (!($3 in seen)) { seen[$3] = 1; jobs[++nj] = $3 }
		n[k]++
		io[k] = io[k] " " $5; bw[k] = bw[k] " " $6
		p50[k] = p50[k] " " $7; p99[k] = p99[k] " " $8
		l50[k] = l50[k] " " $9; l99[k] = l99[k] " " $10
		lm[k] = lm[k] " " $11; ld[k] = ld[k] " " $12
	}
	END {
		nc = split(order, c, ",")
		printf "%-20s %-9s %4s %9s %8s %9s %9s %9s %9s %9s %6s\n",
		    "job", "config", "runs", "IOPS", "MiB/s", "clat p50",
		    "clat p99", "lat p50", "lat p99", "lat mean", "load"
		for (j = 1; j <= nj; j++)
			for (i = 1; i <= nc; i++) {
				k = c[i] SUBSEP jobs[j]
				if (!n[k]) continue
				mi[k] = median(io[k]); m50[k] = median(p50[k])
				m99[k] = median(p99[k])
				ml50[k] = median(l50[k]); ml99[k] = median(l99[k])
				printf "%-20s %-9s %4d %9d %8.1f %9.1f %9.1f %9.1f %9.1f %9.1f %6.2f\n",
				    jobs[j], c[i], n[k], mi[k], median(bw[k]),
				    m50[k], m99[k], ml50[k], ml99[k],
				    median(lm[k]), median(ld[k])
			}
		printf "\nuring over dev at the same max_background: IOPS, lat p50, lat p99\n"
		for (j = 1; j <= nj; j++)
			for (i = 1; i <= nc; i++) {
				if (c[i] !~ /^uring\//) continue
				d = c[i]; sub(/^uring/, "dev", d)
				k = c[i] SUBSEP jobs[j]; kd = d SUBSEP jobs[j]
				if (!n[k] || !n[kd] || !mi[kd]) continue
				printf "%-20s mb %-4s %6.2f %6.2f %6.2f\n", jobs[j],
				    substr(c[i], 7), mi[k] / mi[kd],
				    ml50[k] / ml50[kd], ml99[k] / ml99[kd]
			}
		printf "\nmax_background 64 over 12, same transport (IOPS)\n"
		for (j = 1; j <= nj; j++)
			for (i = 1; i <= nc; i++) {
				if (c[i] !~ /\/64$/) continue
				d = c[i]; sub(/\/64$/, "/12", d)
				k = c[i] SUBSEP jobs[j]; kd = d SUBSEP jobs[j]
				if (!n[k] || !n[kd] || !mi[kd]) continue
				t = c[i]; sub(/\/.*/, "", t)
				printf "%-20s %-6s %6.2f\n", jobs[j], t,
				    mi[k] / mi[kd]
			}
	}' "$csv"
} >"$out/transport-fio.txt"
cat "$out/transport-fio.txt"
say "results in $out"
exit 0
