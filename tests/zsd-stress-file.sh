#!/bin/bash
# zsd-stress-file.sh - zsd-stress file: direct I/O on the file of a zsd
# it spawns passes, with --json and with --chaos, and leaves nothing
# behind, also when interrupted with SIGINT.
. "${srcdir:-.}/tests/lib.sh"

ZSD_STRESS=${ZSD_STRESS:-$builddir/stress/zsd-stress}
[ -x "$ZSD_STRESS" ] || tap_bail "no zsd-stress at $ZSD_STRESS"
require_fuse
setup_cleanup
# Its private directory goes into ours, where cleanup() would find it.
export TMPDIR=$TEST_DIR ZSD

# Nothing of zsd-stress's left: no directory, no mount, its zsd gone.
nothing_left()
{
	local log=$1 pid left

	pid=$(sed -n 's/.*zsd: spawned, pid \([0-9]*\),.*/\1/p' "$log")
	left=$(ls -d "$TEST_DIR"/zsd-stress.* 2>/dev/null)
	[ -n "$pid" ] && ! pid_alive "$pid" && [ -z "$left" ] &&
	    [ -z "$(our_mounts)" ] && [ -z "$(our_loops)" ]
	tap_ok $? "$2: nothing left (zsd ${pid:-?} gone, no directory," \
	    "mount or loop device${left:+; left: $left})"
}

"$ZSD_STRESS" file --duration 4 --size 16M --jobs 2 --seed 7 --json \
    >"$TEST_DIR/out.json" 2>"$TEST_DIR/err"
status=$?
tap_diag "$(cat "$TEST_DIR/err")"
tap_ok "$status" "file --duration 4 --size 16M --json: exit $status"
grep -q '"result": "pass"' "$TEST_DIR/out.json" &&
    grep -q '"wrong_pages": 0,' "$TEST_DIR/out.json" &&
    grep -q '"seed": "0x7"' "$TEST_DIR/out.json"
tap_ok $? "the JSON says pass, 0 wrong pages, seed 0x7"
verified=$(sed -n 's/^  "pages_verified": \([0-9]*\),/\1/p' \
    "$TEST_DIR/out.json")
[ "${verified:-0}" -ge 4096 ]
tap_ok $? "it verified ${verified:-no} pages (the final check alone reads 4096)"
merged=$(sed -n 's/.*"merged_peak_pages": \([0-9]*\),.*/\1/p' \
    "$TEST_DIR/out.json")
[ "${merged:-0}" -gt 0 ]
tap_ok $? "zsd merged up to ${merged:-no} of its pages (the dup kind)"
if command -v python3 >/dev/null 2>&1; then
	python3 -m json.tool "$TEST_DIR/out.json" >/dev/null
	tap_ok $? "the output is one valid JSON object"
else
	tap_skip 1 "no python3 to parse the JSON"
fi
nothing_left "$TEST_DIR/err" "after a pass"

if [ "$(id -u)" -eq 0 ]; then
	"$ZSD_STRESS" file --quick --chaos --duration 8 --size 16M \
	    >"$TEST_DIR/chaos.out" 2>&1
	status=$?
	tap_diag "$(cat "$TEST_DIR/chaos.out")"
	tap_ok "$status" "file --chaos --duration 8: exit $status"
	grep -q "chaos: " "$TEST_DIR/chaos.out"
	tap_ok $? "chaos did something"
	nothing_left "$TEST_DIR/chaos.out" "after chaos"
else
	tap_skip 3 "--chaos needs root"
fi

# Ctrl-C: the summary, exit 130, and everything undone.
"$ZSD_STRESS" file --duration 60 --size 16M >"$TEST_DIR/int.out" 2>&1 &
pid=$!
TEST_PIDS=$pid
tenths=100
while ! grep -q "zsd: spawned" "$TEST_DIR/int.out" && [ $tenths -gt 0 ]; do
	sleep 0.1
	tenths=$((tenths - 1))
done
sleep 2
kill -INT "$pid"
wait "$pid"
status=$?
TEST_PIDS=
tap_diag "$(cat "$TEST_DIR/int.out")"
[ "$status" -eq 130 ] && grep -q "INTERRUPTED" "$TEST_DIR/int.out"
tap_ok $? "SIGINT: exit $status (want 130) and the summary"
nothing_left "$TEST_DIR/int.out" "after SIGINT"
tap_done
