#!/bin/bash
# zsd-stress-cli.sh - zsd-stress refuses bad arguments with exit status 2
# and a message that names the problem, before it touches anything; and
# says so with exit status 3 when there is no zsd to test.
. "${srcdir:-.}/tests/lib.sh"

ZSD_STRESS=${ZSD_STRESS:-$builddir/stress/zsd-stress}
[ -x "$ZSD_STRESS" ] || tap_bail "no zsd-stress at $ZSD_STRESS"
setup_cleanup

# expect STATUS PATTERN ARGS...: the exit status, and PATTERN in stderr.
expect()
{
	local want=$1 pattern=$2 status

	shift 2
	"$ZSD_STRESS" "$@" >"$TEST_DIR/out" 2>"$TEST_DIR/err" </dev/null
	status=$?
	if [ "$status" -eq "$want" ] && grep -q -- "$pattern" "$TEST_DIR/err"
	then
		tap_ok 0 "zsd-stress $*: exit $status, '$pattern'"
	else
		tap_diag "stderr: $(cat "$TEST_DIR/err")"
		tap_ok 1 "zsd-stress $*: exit $status (want $want), '$pattern'"
	fi
}

expect 2 "unknown option --bogus" --bogus
expect 2 "unknown option -x" -x
expect 2 "unknown workload 'disk'" disk
expect 2 "one workload at a time" swap file
expect 2 "--duration 0: expected seconds" swap --duration 0
expect 2 "--duration 5x: expected seconds" swap -d 5x
expect 2 "--size lots: expected a size" swap --size lots
expect 2 "--limit -1: expected a size" swap --limit -1
expect 2 "--size 64M must be larger than --limit 128M" swap --size 64M \
    --limit 128M
expect 2 "--limit 8M: at least 16M" swap --limit 8M --size 64M
expect 2 "--limit is the memory cgroup's limit, for the swap workload" \
    file --limit 64M
expect 2 "--jobs 0: expected a number from 1 to 256" swap -j 0
expect 2 "--jobs 300: expected a number from 1 to 256" swap -j 300
expect 2 "too small for 8 jobs" file --size 4M -j 8
expect 2 "--seed pi: expected a number" swap --seed pi
expect 2 "--mix: unknown kind 'pink'" swap --mix text=10,pink=5
expect 2 "--mix: every weight is 0" swap --mix text=0
expect 2 "--mix: 'text': expected KIND=WEIGHT" swap --mix text
expect 2 "--priority 40000: expected a number from -1 to 32767" swap \
    --spawn --priority 40000
expect 2 "--priority and --algorithm are for a zsd zsd-stress spawns" \
    swap --priority 5
expect 2 "--algorithm gzip: expected lz4 or zstd" swap --spawn \
    --algorithm gzip
expect 2 "--socket is for a running zsd" swap --spawn --socket /x
expect 2 "--duration needs a value" swap --duration

"$ZSD_STRESS" --help >"$TEST_DIR/out" 2>&1
[ $? -eq 0 ] && grep -q "^usage: zsd-stress" "$TEST_DIR/out"
tap_ok $? "--help: the usage, exit 0"
"$ZSD_STRESS" --version >"$TEST_DIR/out" 2>&1
[ $? -eq 0 ] && grep -q "^zsd-stress [0-9]" "$TEST_DIR/out"
tap_ok $? "--version: exit 0"

# Nothing answers on this socket: it cannot run, and says why.
if [ "$(id -u)" -eq 0 ]; then
	expect 3 "zsd is not running (no socket at $TEST_DIR/none)" swap \
	    --socket "$TEST_DIR/none" --duration 1
else
	expect 3 "the swap workload needs root" swap --duration 1
fi
tap_done
