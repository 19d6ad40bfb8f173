# lib.sh - what the shell tests share; sourced by bash.
#
# Tests run the real zsd on a private mountpoint in a private temp dir,
# print TAP, and exit 77 to skip when the machine lacks something.
# $ZSD_TRANSPORT, if set, is every zsd's transport (auto, uring or dev)
# unless the test sets its own; $ZSD_WORKERS likewise its workers.  Every
# resource a test creates (the daemon, its mount, loop devices attached to
# files in it, swap on those, memory cgroups) is recorded here and undone
# by cleanup(), which setup_cleanup installs as the EXIT trap; cleanup
# touches nothing else, so tests may run beside a real swap setup.
#
#	skip REASON		plan 1..0 and exit 77
#	require_root, require_fuse, require_loop, require_cgroup_memory,
#	require_prog PROG...	skip unless the machine has it
#	tap_ok STATUS DESC	one test point: ok if STATUS is 0
#	tap_skip N REASON	N points that cannot be checked here
#	tap_diag TEXT...	a comment line
#	run_tap DESC CMD...	run a TAP program, its lines as comments,
#				one point for its exit status
#	tap_done		the plan; exit 1 if a point failed
#	setup_cleanup		make the temp dir, install the trap
#	zsd_start ARGS...	start zsd -f on $ZSD_MNT, wait for "ready"
#	zsd_stop		SIGTERM, wait; its exit status
#	zsd_server_pid		the serving process the keeper runs now
#	zsd_status KEY		a field of zsctl --json status
#	mm_stat FIELD		one field of $ZSD_MNT/mm_stat, by name
#	our_loops		loop devices backed by files in our temp dir
#	cgroup_create NAME BYTES, cgroup_run NAME CMD..., cgroup_remove NAME
#	swaps_from PRIO [DEV]	swap devices at PRIO or more, but DEV
#	vmstat_get KEY		a counter of /proc/vmstat
#	swap_lock		wait for other tests that turn swap on
#	cleanup_hook		if the caller defines it, cleanup runs it first

: "${srcdir:=.}"
: "${builddir:=.}"
: "${ZSD:=$builddir/daemon/zsd}"
FUSE_IO=${FUSE_IO:-$builddir/tests/fuse-io}
SWAPPER=${SWAPPER:-$builddir/tests/swapper}

TEST_DIR=			# private temp dir, physical path
ZSD_MNT=			# $TEST_DIR/mnt
ZSD_LOG=			# $TEST_DIR/zsd.log: the running zsd's stderr
ZSD_PID=			# the zsd started by zsd_start (the keeper)
ZSD_SERVER=			# the server it ran when ready
TEST_PIDS=			# other processes a test started, to kill
TEST_CGROUPS=			# cgroup directories we made
tap_count=0
tap_failed=0

# --- TAP -------------------------------------------------------------------

skip()
{
	echo "1..0 # SKIP $*"
	exit 77
}

tap_ok()
{
	local status=$1

	shift
	tap_count=$((tap_count + 1))
	if [ "$status" -eq 0 ]; then
		echo "ok $tap_count - $*"
	else
		tap_failed=$((tap_failed + 1))
		echo "not ok $tap_count - $*"
	fi
	return "$status"
}

# tap_skip N REASON: N points that cannot be checked here, said so.
tap_skip()
{
	local n=$1 i

	shift
	for ((i = 0; i < n; i++)); do
		tap_count=$((tap_count + 1))
		echo "ok $tap_count # SKIP $*"
	done
}

tap_diag()
{
	printf '%s\n' "$*" | sed 's/^/# /'
}

# A TAP program's own plan and numbers would clash with ours: its lines
# become comments and its exit status one point.
run_tap()
{
	local desc=$1 status

	shift
	"$@" 2>&1 | sed 's/^/# /'
	status=${PIPESTATUS[0]}
	tap_ok "$status" "$desc (exit $status)"
}

tap_done()
{
	echo "1..$tap_count"
	[ "$tap_failed" -eq 0 ] || exit 1
	exit 0
}

# Stop here after a failure that makes the remaining points meaningless.
tap_bail()
{
	echo "Bail out! $*"
	exit 99
}

# --- requirements ----------------------------------------------------------

require_root()
{
	[ "$(id -u)" -eq 0 ] || skip "needs root"
}

require_prog()
{
	local p

	for p; do
		command -v "$p" >/dev/null 2>&1 || skip "needs $p"
	done
}

require_fuse()
{
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	grep -qw fuse /proc/filesystems || modprobe fuse 2>/dev/null ||
	    skip "the kernel has no fuse"
	command -v fusermount3 >/dev/null 2>&1 || [ "$(id -u)" -eq 0 ] ||
	    skip "needs fusermount3 or root to mount"
}

require_loop()
{
	require_prog losetup
	[ -e /dev/loop-control ] || modprobe loop 2>/dev/null ||
	    skip "no loop devices"
	losetup -f >/dev/null 2>&1 || skip "no free loop device"
}

CG_VERSION=
CG_ROOT=

# v1 if the memory hierarchy is mounted on its own, else v2 if the
# unified hierarchy offers the memory controller.
cgroup_detect()
{
	if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
		CG_VERSION=1
		CG_ROOT=/sys/fs/cgroup/memory
	elif [ -f /sys/fs/cgroup/cgroup.controllers ] &&
	    grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
		CG_VERSION=2
		CG_ROOT=/sys/fs/cgroup
	else
		return 1
	fi
}

require_cgroup_memory()
{
	cgroup_detect || skip "no memory cgroup controller"
	[ -w "$CG_ROOT" ] || skip "cannot create memory cgroups"
}

# --- process helpers -------------------------------------------------------

# A pid that runs and is not a zombie waiting for our wait.
pid_alive()
{
	local state

	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# Wait up to $2 seconds for pid $1 to end; 1 if it still runs.
pid_wait_gone()
{
	local pid=$1 tenths=$(($2 * 10))

	while pid_alive "$pid"; do
		[ "$tenths" -gt 0 ] || return 1
		sleep 0.1
		tenths=$((tenths - 1))
	done
	return 0
}

# Is $1 (a physical path) a mountpoint, by the mount table alone: stat on
# a FUSE mount whose daemon hangs would hang too.
is_mounted()
{
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' \
	    /proc/self/mountinfo
}

# Our mountpoints, deepest first, so nested ones come off first.
our_mounts()
{
	[ -n "$TEST_DIR" ] || return 0
	awk -v d="$TEST_DIR/" 'index($5, d) == 1 { print $5 }' \
	    /proc/self/mountinfo | sort -r
}

# Loop devices whose backing file is in our temp dir, from sysfs: no
# stat of files on a mount that may be dead.
our_loops()
{
	local f file

	[ -n "$TEST_DIR" ] || return 0
	for f in /sys/block/loop*/loop/backing_file; do
		[ -r "$f" ] || continue
		file=$(cat "$f" 2>/dev/null) || continue
		case $file in
		"$TEST_DIR"/*)
			f=${f#/sys/block/}
			echo "/dev/${f%%/*}"
			;;
		esac
	done
}

# Is device $1 active swap?  Its priority on stdout.
swap_priority()
{
	awk -v d="$1" '$1 == d { print $5; found = 1 } END { exit !found }' \
	    /proc/swaps
}

# Swap devices at priority $1 or more, but $2: one a line.
swaps_from()
{
	awk -v p="$1" -v d="${2:-}" 'NR > 1 && $5 >= p && $1 != d { print $1 }' \
	    /proc/swaps
}

vmstat_get()
{
	awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat
}

# Tests that turn swap on take turns (make check -j runs them side by
# side): the kernel would spread one test's pages over the other's swap.
# Held until the test exits; 1 after 15 minutes of waiting.  Daemons the
# tests start do not inherit it (9>&-).
swap_lock()
{
	exec 9>>"$builddir/tests/swap.lock" || return 1
	flock -w 900 9
}

# --- the daemon ------------------------------------------------------------

setup_cleanup()
{
	local d

	d=$(mktemp -d "${TMPDIR:-/tmp}/zsd-test.XXXXXX") ||
	    tap_bail "mktemp failed"
	# The kernel reports loop backing files by their physical path.
	TEST_DIR=$(cd "$d" && pwd -P)
	ZSD_MNT=$TEST_DIR/mnt
	ZSD_LOG=$TEST_DIR/zsd.log
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

# zsd_status KEY: one field of `zsctl --json status` from the zsd
# zsd_start started ("" if none answers).
zsd_status()
{
	"${ZSCTL:-$builddir/daemon/zsctl}" -s "$TEST_DIR/control" --json \
	    status 2>/dev/null | tr ',' '\n' |
	    sed -n "s/^.*\"$1\": \"\{0,1\}\([^\"]*\)\"\{0,1\} *}\{0,1\}\$/\1/p"
}

# The serving process zsd's keeper $ZSD_PID runs now (its one child).
zsd_server_pid()
{
	local c

	[ -n "$ZSD_PID" ] || return 1
	c=$(cat "/proc/$ZSD_PID/task/$ZSD_PID/children" 2>/dev/null) ||
	    return 1
	set -- $c
	[ -n "${1:-}" ] || return 1
	echo "$1"
}

# zsd_start ARGS...: zsd -f -o mountpoint=$ZSD_MNT ARGS, its stderr in
# $ZSD_LOG; 0 once it logs "ready", 1 (with its log) if it dies or takes
# more than 30 s.
zsd_start()
{
	local tenths=300 n=1

	[ -n "$TEST_DIR" ] || setup_cleanup
	[ -x "$ZSD" ] || tap_bail "no zsd at $ZSD"
	mkdir -p "$ZSD_MNT"
	# Keep the logs of earlier runs; "ready" is looked for in the new one.
	while [ -e "$ZSD_LOG.$n" ]; do
		n=$((n + 1))
	done
	[ -e "$ZSD_LOG" ] && mv "$ZSD_LOG" "$ZSD_LOG.$n"
	# Not /etc/zsd.conf, whatever it holds, and a control socket of our
	# own; the test's own -c and -o come after and win.
	"$ZSD" -f -c /dev/null -o mountpoint="$ZSD_MNT" \
	    -o control="$TEST_DIR/control" \
	    ${ZSD_TRANSPORT:+-o transport="$ZSD_TRANSPORT"} \
	    ${ZSD_WORKERS:+-o workers="$ZSD_WORKERS"} "$@" \
	    >"$ZSD_LOG" 2>&1 </dev/null 9>&- &
	ZSD_PID=$!
	while ! grep -qw ready "$ZSD_LOG"; do
		if ! pid_alive "$ZSD_PID"; then
			wait "$ZSD_PID"
			tap_diag "zsd $* died (status $?) before ready; its log:"
			tap_diag "$(cat "$ZSD_LOG")"
			ZSD_PID=
			return 1
		fi
		if [ "$tenths" -le 0 ]; then
			tap_diag "zsd $* not ready after 30 s; its log:"
			tap_diag "$(cat "$ZSD_LOG")"
			return 1
		fi
		sleep 0.1
		tenths=$((tenths - 1))
	done
	ZSD_SERVER=$(zsd_server_pid)
	return 0
}

# SIGTERM to our zsd alone; its exit status, or 1 after SIGKILL if it has
# not stopped within 60 s.
zsd_stop()
{
	local pid=$ZSD_PID status

	[ -n "$pid" ] || return 1
	kill -TERM "$pid" 2>/dev/null
	if ! pid_wait_gone "$pid" 60; then
		tap_diag "zsd $pid still running 60 s after SIGTERM; killed"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		ZSD_PID=
		return 1
	fi
	wait "$pid"
	status=$?
	ZSD_PID=
	[ "$status" -eq 0 ] || tap_diag "zsd exited $status; its log:" \
	    "$(tail -n 20 "$ZSD_LOG")"
	return "$status"
}

# mm_stat FIELD: one field of the mount's mm_stat, by its zram name.
mm_stat()
{
	local n

	case $1 in
	orig_data_size)		n=1 ;;
	compr_data_size)	n=2 ;;
	mem_used_total)		n=3 ;;
	mem_limit)		n=4 ;;
	mem_used_max)		n=5 ;;
	same_pages)		n=6 ;;
	pages_compacted)	n=7 ;;
	huge_pages)		n=8 ;;
	*)			echo "mm_stat: no field $1" >&2; return 1 ;;
	esac
	awk -v n="$n" 'NR == 1 { print $n }' "$ZSD_MNT/mm_stat"
}

# --- memory cgroups --------------------------------------------------------

# The directory of our cgroup NAME: the pid in it keeps parallel runs apart.
cgroup_path()
{
	echo "$CG_ROOT/zsd-test.$$.$1"
}

cgroup_create()
{
	local name=$1 limit=$2 cg

	[ -n "$CG_VERSION" ] || cgroup_detect || return 1
	cg=$(cgroup_path "$name")
	if [ "$CG_VERSION" = 2 ] &&
	    ! grep -qw memory "$CG_ROOT/cgroup.subtree_control"; then
		echo +memory >"$CG_ROOT/cgroup.subtree_control" || return 1
	fi
	mkdir "$cg" || return 1
	TEST_CGROUPS="$TEST_CGROUPS $cg"
	if [ "$CG_VERSION" = 1 ]; then
		echo "$limit" >"$cg/memory.limit_in_bytes" || return 1
		# The root's swappiness is not inherited on every kernel.
		if [ -f "$cg/memory.swappiness" ]; then
			echo 100 >"$cg/memory.swappiness" || return 1
		fi
	else
		echo "$limit" >"$cg/memory.max" || return 1
		if [ -f "$cg/memory.swap.max" ]; then
			echo max >"$cg/memory.swap.max" || return 1
		fi
	fi
}

# cgroup_run NAME CMD...: CMD in the cgroup, in the foreground.
cgroup_run()
{
	local cg

	cg=$(cgroup_path "$1")
	shift
	(echo "$BASHPID" >"$cg/cgroup.procs" && exec "$@")
}

# Kill what is left in cgroup directory $1 (ours alone), then remove it.
cgroup_rmdir()
{
	local cg=$1 pid tries=50

	[ -d "$cg" ] || return 0
	while read -r pid; do
		kill -KILL "$pid" 2>/dev/null
	done <"$cg/cgroup.procs"
	while ! rmdir "$cg" 2>/dev/null; do
		[ "$tries" -gt 0 ] || return 1
		sleep 0.1
		tries=$((tries - 1))
	done
	return 0
}

cgroup_remove()
{
	local cg c rest=''

	cg=$(cgroup_path "$1")
	cgroup_rmdir "$cg" || return 1
	for c in $TEST_CGROUPS; do
		[ "$c" = "$cg" ] || rest="$rest $c"
	done
	TEST_CGROUPS=$rest
}

# --- cleanup ---------------------------------------------------------------

# The EXIT trap: undo what this test made, in an order that cannot hang
# on itself (swapoff reads swap back through zsd, so it goes first while
# zsd still serves), and keep the test's exit status.
cleanup()
{
	local status=$? cg loop pid mnt

	trap - EXIT INT TERM HUP
	# What a caller made beyond this file's resources goes first.
	if declare -F cleanup_hook >/dev/null; then
		cleanup_hook
	fi
	for cg in $TEST_CGROUPS; do
		cgroup_rmdir "$cg" ||
		    echo "# cleanup: cannot remove cgroup $cg" >&2
	done
	for pid in $TEST_PIDS; do
		pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	for loop in $(our_loops); do
		if swap_priority "$loop" >/dev/null; then
			timeout 300 swapoff "$loop" ||
			    echo "# cleanup: swapoff $loop failed" >&2
		fi
	done
	for loop in $(our_loops); do
		losetup -d "$loop" ||
		    echo "# cleanup: losetup -d $loop failed" >&2
	done
	if [ -n "$ZSD_PID" ] && pid_alive "$ZSD_PID"; then
		pid=$(zsd_server_pid)
		kill -TERM "$ZSD_PID" 2>/dev/null
		pid_wait_gone "$ZSD_PID" 30 || kill -KILL "$ZSD_PID" 2>/dev/null
		# A server the keeper left behind (it was killed).
		if [ -n "$pid" ] && pid_alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null
			pid_wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null
		fi
	fi
	for mnt in $(our_mounts); do
		umount -l "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" ||
		    echo "# cleanup: cannot unmount $mnt" >&2
	done
	if [ -n "$TEST_DIR" ]; then
		# Never rm -r into a mount that would not come off.
		if [ -z "$(our_mounts)" ]; then
			rm -rf "$TEST_DIR"
		else
			echo "# cleanup: $TEST_DIR left: still mounted" >&2
		fi
	fi
	exit "$status"
}
