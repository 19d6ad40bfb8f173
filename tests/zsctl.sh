#!/bin/bash
# zsctl.sh - zsctl's command line against a real zsd: options before and
# after the command, "--", the errors for what it does not take.
. "${srcdir:-.}/tests/lib.sh"

ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}

require_root
require_fuse
require_prog python3 dd awk cmp
[ -x "$ZSCTL" ] || skip "no zsctl at $ZSCTL"
setup_cleanup

SOCK=$TEST_DIR/control
F=$ZSD_MNT/swap0

zsctl()
{
	"$ZSCTL" -s "$SOCK" "$@"
}

# json_get FILE KEY: one number of a JSON object.
json_get()
{
	python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# is_json FILE: it parses as JSON.
is_json()
{
	python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" \
	    2>/dev/null
}

# usage_error WHAT ARGS...: zsctl ARGS exits 2 saying WHAT on stderr.
usage_error()
{
	local what=$1 st

	shift
	zsctl "$@" >"$TEST_DIR/out" 2>"$TEST_DIR/err"
	st=$?
	[ $st -eq 2 ] && grep -q -- "$what" "$TEST_DIR/err" &&
	    [ ! -s "$TEST_DIR/out" ]
	tap_ok $? "zsctl $*: exit $st, $(head -n 1 "$TEST_DIR/err")"
}

zsd_start --no-swapon -o disksize=64M -o compact_threshold=0 ||
    tap_bail "zsd did not start"

# Objects in many classes: text of every length, then random pages.
{ seq 1 400000; head -c $((1 << 20)) /dev/urandom; } >"$TEST_DIR/data"
dd if="$TEST_DIR/data" of="$F" bs=1M oflag=direct conv=notrunc \
    status=none
tap_ok $? "wrote $(($(stat -c %s "$TEST_DIR/data") / 4096)) pages"

# --- options before and after the command ----------------------------------

zsctl --json stat >"$TEST_DIR/stat.json" && is_json "$TEST_DIR/stat.json"
tap_ok $? "--json stat: JSON"
want=$(json_get "$TEST_DIR/stat.json" orig_data_size)
for args in "stat --json" "stat -j" "-b stat --json" "stat -j -b"; do
	zsctl $args >"$TEST_DIR/s.json" 2>"$TEST_DIR/err" &&
	    is_json "$TEST_DIR/s.json" &&
	    [ "$(json_get "$TEST_DIR/s.json" orig_data_size)" = "$want" ]
	tap_ok $? "$args: JSON, orig_data_size $want $(cat "$TEST_DIR/err")"
done
"$ZSCTL" stat --json -s "$SOCK" >"$TEST_DIR/s.json" &&
    "$ZSCTL" stat --socket="$SOCK" --timeout=5 -j >>"$TEST_DIR/s.json" &&
    "$ZSCTL" stat -t 5 --socket "$SOCK" -b >/dev/null
tap_ok $? "stat, then -s, --socket, -t, --timeout, -b"
POSIXLY_CORRECT=1 zsctl stat --json >"$TEST_DIR/s.json" &&
    is_json "$TEST_DIR/s.json"
tap_ok $? "stat --json with POSIXLY_CORRECT set"
a=$(zsctl -b stat | awk '$1 == "orig_data_size" { print $2 }')
b=$(zsctl stat -b | awk '$1 == "orig_data_size" { print $2 }')
[ "$a" = "$want" ] && [ "$b" = "$want" ]
tap_ok $? "-b stat, stat -b: $a $b"

zsctl --json -a classes >"$TEST_DIR/all.json"
ok=$?
for args in "classes -a --json" "classes --json -a" "--json classes --all" \
    "-a classes -j"; do
	zsctl $args >"$TEST_DIR/c.json" && cmp -s "$TEST_DIR/all.json" \
	    "$TEST_DIR/c.json" || { tap_diag "$args differs"; ok=1; }
done
nall=$(python3 -c 'import json, sys
print(len(json.load(open(sys.argv[1]))))' "$TEST_DIR/all.json")
nused=$(python3 -c 'import json, sys
print(len([c for c in json.load(open(sys.argv[1])) if c["zspages"]]))' \
    "$TEST_DIR/all.json")
[ "$nall" -gt "$nused" ] && [ "$nused" -gt 1 ] &&
    [ "$(zsctl classes -a | wc -l)" -eq $((nall + 2)) ] &&
    [ "$(zsctl classes | wc -l)" -eq $((nused + 2)) ]
tap_ok $(($? | ok)) "classes -a --json and the other orders: $nall classes," \
    "$nused in use; classes -a $nall rows, classes $nused"

ok=0
i=1
for args in "limit 1G --json" "limit --json 2G" "--json limit 3G" \
    "limit -- 4G" "limit 5G -t 5" "-t 5 limit -- 6G"; do
	zsctl $args >/dev/null 2>"$TEST_DIR/err" &&
	    [ "$(zsctl --json stat >"$TEST_DIR/s.json" &&
	    json_get "$TEST_DIR/s.json" mem_limit)" -eq $((i << 30)) ] ||
	    { tap_diag "$args: $(cat "$TEST_DIR/err")"; ok=1; }
	i=$((i + 1))
done
zsctl limit none -j >"$TEST_DIR/l.json" && is_json "$TEST_DIR/l.json" &&
    [ "$(json_get "$TEST_DIR/l.json" mem_limit)" -eq 0 ] || ok=1
tap_ok $ok "limit SIZE with options before, after and \"--\"; limit none -j"
zsctl limit -- -1G 2>"$TEST_DIR/err"
st=$?
[ $st -eq 2 ] && grep -q "bad value '-1G'" "$TEST_DIR/err"
tap_ok $? "after \"--\" a word starting with - is the SIZE: exit $st," \
    "$(cat "$TEST_DIR/err")"
zsctl reset-max --json >"$TEST_DIR/r.json" && is_json "$TEST_DIR/r.json"
tap_ok $? "reset-max --json"

usage_error "unrecognized option '--bogus'" stat --bogus
usage_error "invalid option -- 'x'" classes -x
usage_error "stat takes no arguments, not 'extra'" stat extra
usage_error "stat takes no arguments, not 'extra'" stat --json extra
usage_error "status takes no arguments, not '--json'" status -- --json
usage_error "limit takes one SIZE, not '2G'" limit 1G 2G
usage_error "limit takes a SIZE" limit --json
usage_error "-a is for classes" stat -a
usage_error "-a is for classes" status --all
usage_error "requires an argument" stat -t
usage_error "unknown command 'json'" -- json stat
usage_error "usage:" --json

zsd_stop
tap_ok $? "zsd stops"

tap_done
