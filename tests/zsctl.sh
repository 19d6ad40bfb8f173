#!/bin/bash
# zsctl.sh - zsctl's command line against a real zsd: options before and
# after the command, "--", the errors for what it does not take (those
# of idle, recompress and writeback before it connects); and
# stat --format=prometheus, checked by a strict validator of the text
# exposition format (and promtool where installed) and against
# zsctl --json stat and --json classes.
. "${srcdir:-.}/tests/lib.sh"

ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}

require_root
require_fuse
require_prog python3 dd awk cmp
[ -x "$ZSCTL" ] || skip "no zsctl at $ZSCTL"
setup_cleanup

SOCK=$TEST_DIR/control
F=$ZSD_MNT/swap0
PROM=$TEST_DIR/zsd.prom

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

# refused WHAT ARGS...: as usage_error, and before zsctl connects: its
# socket does not exist, so trying would exit 3.
refused()
{
	local what=$1 st

	shift
	"$ZSCTL" -s "$TEST_DIR/nope" "$@" >"$TEST_DIR/out" 2>"$TEST_DIR/err"
	st=$?
	[ $st -eq 2 ] && grep -q -- "$what" "$TEST_DIR/err" &&
	    [ ! -s "$TEST_DIR/out" ]
	tap_ok $? "zsctl $*: exit $st, $(head -n 1 "$TEST_DIR/err")"
}

# prom_check FILE: the Prometheus text exposition format, strictly: only
# HELP, TYPE and sample lines; names [a-zA-Z_:][a-zA-Z0-9_:]*, zsd_
# first; one HELP and one TYPE per metric, both before its samples, the
# samples of a metric together; a known type; counters, and only they,
# end in _total; labels well formed and not repeated; values numbers;
# no sample twice.  Prints what is wrong; exits 1 if anything is.
prom_check()
{
	awk '
	function bad(why) { print "line " NR ": " why ": " $0; err = 1 }
	BEGIN {
		name_re = "^[a-zA-Z_:][a-zA-Z0-9_:]*"
		num_re = "^[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?$"
	}
	/^# HELP / {
		n = $3
		if (n !~ (name_re "$")) bad("bad name")
		if (n !~ /^zsd_/) bad("not zsd_")
		if (n in help) bad("a second HELP")
		if (n in sampled) bad("HELP after samples")
		if (NF < 4) bad("no help text")
		help[n] = 1; cur = n
		next
	}
	/^# TYPE / {
		n = $3
		if (NF != 4) bad("TYPE of " NF " words")
		if (n !~ (name_re "$")) bad("bad name")
		if (n in type) bad("a second TYPE")
		if (n in sampled) bad("TYPE after samples")
		if ($4 !~ /^(counter|gauge|untyped)$/) bad("type " $4)
		if ($4 == "counter" && n !~ /_total$/) bad("counter not _total")
		if ($4 != "counter" && n ~ /_total$/) bad("_total not counter")
		type[n] = $4; cur = n
		next
	}
	/^#/ { bad("another comment"); next }
	/^$/ { bad("an empty line"); next }
	{
		line = $0
		if (!match(line, name_re)) { bad("no name"); next }
		n = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
		if (!(n in help) || !(n in type)) bad("no HELP or TYPE before")
		if (n != cur) bad("apart from its HELP and TYPE")
		labels = ""
		if (substr(rest, 1, 1) == "{") {
			end = index(rest, "}")
			if (end == 0) { bad("no }"); next }
			labels = substr(rest, 2, end - 2)
			rest = substr(rest, end + 1)
			split("", seen)
			s = labels
			while (s != "") {
				if (!match(s, "^[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""))
					{ bad("bad label"); break }
				l = substr(s, 1, index(s, "=") - 1)
				if (l ~ /^__/) bad("reserved label " l)
				if (l in seen) bad("label " l " twice")
				seen[l] = 1
				s = substr(s, RLENGTH + 1)
				if (s != "" && substr(s, 1, 1) != ",")
					{ bad("no comma between labels"); break }
				s = substr(s, 2)
			}
		}
		if (substr(rest, 1, 1) != " ") { bad("no space before value"); next }
		v = substr(rest, 2)
		if (v !~ num_re && v !~ /^([-+]?Inf|NaN)$/) bad("value " v)
		key = n "{" labels "}"
		if (key in series) bad("a second sample of " key)
		series[key] = 1; sampled[n] = 1; samples++
	}
	END {
		for (n in help) if (!(n in type)) { print n ": no TYPE"; err = 1 }
		for (n in type) if (!(n in help)) { print n ": no HELP"; err = 1 }
		if (samples == 0) { print "no samples"; err = 1 }
		exit err
	}' "$1" || return 1
	# The last line ends in a newline.
	[ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ] ||
	    { echo "no newline at the end"; return 1; }
}

# The validator itself must refuse what is wrong.
printf '# HELP zsd_a A.\n# TYPE zsd_a gauge\nzsd_a 1\n' >"$TEST_DIR/good"
ok=0
prom_check "$TEST_DIR/good" >/dev/null || ok=1
n=0
while IFS= read -r bad; do
	printf '%b' "$bad" >"$TEST_DIR/bad"
	if prom_check "$TEST_DIR/bad" >/dev/null; then
		tap_diag "the validator took: $bad"
		ok=1
	fi
	n=$((n + 1))
done <<'EOF'
# TYPE zsd_a gauge\nzsd_a 1\n
# HELP zsd_a A.\nzsd_a 1\n
# HELP zsd_a A.\n# HELP zsd_a A.\n# TYPE zsd_a gauge\nzsd_a 1\n
# HELP zsd_a A.\n# TYPE zsd_a gauge\n# TYPE zsd_a gauge\nzsd_a 1\n
# HELP zsd_a A.\n# TYPE zsd_a counter\nzsd_a 1\n
# HELP zsd_a_total A.\n# TYPE zsd_a_total gauge\nzsd_a_total 1\n
# HELP zsd_a A.\n# TYPE zsd_a gauge\nzsd_a one\n
# HELP zsd_a A.\n# TYPE zsd_a gauge\nzsd_a 1\nzsd_a 2\n
# HELP zsd_a A.\n# TYPE zsd_a gauge\nzsd_a{x="1",x="2"} 1\n
# HELP zsd_a A.\n# TYPE zsd_a gauge\nzsd_a{x=1} 1\n
# HELP zsd_a A.\n# TYPE zsd_a gauge\nzsd_a 1
# HELP zsd-a A.\n# TYPE zsd-a gauge\nzsd-a 1\n
# HELP zsd_a A.\n# TYPE zsd_a gauge\n# HELP zsd_b B.\n# TYPE zsd_b gauge\nzsd_a 1\n
# HELP zsd_a A.\n# TYPE zsd_a gauge\nzsd_a 1\n# EOF\n
# HELP zsd_a A.\n# TYPE zsd_a histogram\nzsd_a 1\n
EOF
tap_ok $ok "the validator takes a good exposition and refuses $n bad ones"

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
for args in "stat --json" "stat -j" "stat --format=json" \
    "--format json stat" "stat --format json"; do
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
c=$(zsctl stat --format=text -b | awk '$1 == "orig_data_size" { print $2 }')
[ "$a" = "$want" ] && [ "$b" = "$want" ] && [ "$c" = "$want" ]
tap_ok $? "-b stat, stat -b, stat --format=text -b: $a $b $c"
[ "$(zsctl stat --json --format=text | head -n 1 | cut -c 1)" != "{" ] &&
    [ "$(zsctl stat --format=text -j | head -n 1 | cut -c 1)" = "{" ]
tap_ok $? "of --json and --format the last one wins"

zsctl --json -a classes >"$TEST_DIR/all.json"
ok=$?
for args in "classes -a --json" "classes --json -a" "--json classes --all" \
    "-a classes --format=json"; do
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
usage_error "is for stat only" classes --format=prometheus
usage_error "--format=xml: expected text, json or prometheus" stat \
    --format=xml
usage_error "requires an argument" stat -t
usage_error "unknown command 'json'" -- json stat
usage_error "usage:" --json

# --- idle, recompress, writeback: what zsctl refuses itself ------------------

refused "idle takes all or SECONDS" idle
refused "idle takes all or SECONDS" idle --json
refused "idle: 'soon': expected all or SECONDS" idle soon
refused "idle: '1x': expected all or SECONDS" idle 1x
refused "idle: '-1': expected all or SECONDS" idle -- -1
refused "idle: '': expected all or SECONDS" idle ''
refused "idle: '123456789012345678901': expected all or SECONDS" \
    idle 123456789012345678901
refused "idle takes one argument, all or SECONDS, not also '60'" idle all 60
refused "idle: --threshold is for recompress only" idle all --threshold 1
refused "idle: --max-pages is for recompress and writeback only" \
    idle 60 --max-pages 1
refused "recompress: unknown TYPE 'incompressible': expected idle, huge or" \
    recompress incompressible
refused "recompress: unknown TYPE 'all'" recompress all
refused "recompress takes one TYPE at most, not also 'huge'" \
    recompress idle huge
refused "recompress: --threshold 'big': expected BYTES, 0 to 4096" \
    recompress --threshold big
refused "recompress: --threshold '4097'" recompress huge --threshold=4097
refused "recompress: --threshold '-1'" recompress --threshold=-1
refused "recompress: --threshold '1K'" recompress --threshold 1K
refused "recompress: --max-pages '10x': expected a number of pages" \
    recompress --max-pages 10x
refused "recompress: --max-pages '0'" recompress --max-pages 0
refused "requires an argument" recompress --max-pages
refused "writeback: unknown TYPE 'hot'" writeback hot
refused "writeback takes one TYPE at most, not also 'more'" \
    writeback incompressible more
refused "writeback: --threshold is for recompress only" \
    writeback --threshold 1024
refused "writeback: --max-pages ''" writeback --max-pages=
refused "writeback: --max-pages '99999999999999999999'" \
    writeback --max-pages 99999999999999999999
refused "stat: --max-pages is for recompress and writeback only" \
    stat --max-pages 1
refused "compact: --threshold is for recompress only" --threshold 1 compact

# ... and what it takes: it goes on to connect (and finds no zsd).
ok=0
for args in "idle all" "idle 60" "idle -- 0" "recompress" "recompress huge" \
    "recompress huge_idle --threshold 1024 --max-pages 10" \
    "--threshold=0 recompress idle" "recompress --threshold 4096" \
    "writeback" "writeback incompressible --max-pages 1" \
    "--max-pages 18446744073709551615 writeback huge" "--json writeback"; do
	"$ZSCTL" -s "$TEST_DIR/nope" $args >/dev/null 2>"$TEST_DIR/err"
	st=$?
	[ $st -eq 3 ] && grep -q "zsd is not running" "$TEST_DIR/err" ||
	    { tap_diag "$args: exit $st, $(cat "$TEST_DIR/err")"; ok=1; }
done
tap_ok $ok "idle, recompress and writeback with good arguments get as far" \
    "as connecting"
"$ZSCTL" --help | grep -q "^  idle all|SECONDS" &&
    "$ZSCTL" --help | grep -q "^  recompress \[idle|huge|huge_idle\]" &&
    "$ZSCTL" --help | grep -q "^  writeback \[idle|huge|huge_idle|incompressible\]"
tap_ok $? "--help names idle, recompress and writeback"

# --- stat --format=prometheus -----------------------------------------------

# Quiet now: the same numbers from --json before and after.
ok=1
for _ in 1 2 3 4 5; do
	zsctl --json stat >"$TEST_DIR/j1.json" &&
	    zsctl --json classes -a >"$TEST_DIR/c1.json" &&
	    zsctl stat --format=prometheus >"$PROM" &&
	    zsctl stat --format=prometheus -a >"$PROM.all" &&
	    zsctl --json stat >"$TEST_DIR/j2.json" &&
	    zsctl --json classes -a >"$TEST_DIR/c2.json" || break
	cmp -s "$TEST_DIR/j1.json" "$TEST_DIR/j2.json" &&
	    cmp -s "$TEST_DIR/c1.json" "$TEST_DIR/c2.json" &&
	    { ok=0; break; }
	sleep 0.2
done
tap_ok $ok "stat --format=prometheus: $(wc -l <"$PROM") lines," \
    "with -a $(wc -l <"$PROM.all")"
tap_diag "$(grep -A 2 -e zsd_written_pages_total -e zsd_class_used_objects \
    "$PROM" | head -n 8)"

out=$(prom_check "$PROM" 2>&1) && out=$(prom_check "$PROM.all" 2>&1)
tap_ok $? "the validator takes both $out"

if command -v promtool >/dev/null 2>&1; then
	out=$(promtool check metrics <"$PROM.all" 2>&1)
	tap_ok $? "promtool check metrics $out"
else
	tap_skip 1 "no promtool"
fi

# Every stat field once, with the value --json gives; counters and
# gauges where they belong; the classes' figures as labels.
out=$(python3 - "$TEST_DIR/j1.json" "$TEST_DIR/c1.json" "$PROM" \
    "$PROM.all" <<'EOF' 2>&1
import json, re, sys

stat = json.load(open(sys.argv[1]))
classes = json.load(open(sys.argv[2]))

def parse(path):
    field, types, samples = {}, {}, {}
    for line in open(path):
        m = re.match(r'# HELP (\S+) .*\((stat|classes) field (\w+)\)\.$',
                     line)
        if m:
            field[m.group(1)] = (m.group(2), m.group(3))
            continue
        m = re.match(r'# TYPE (\S+) (\S+)$', line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        assert not line.startswith('#'), line
        m = re.match(r'(\w+)(?:\{(.*)\})? (\S+)$', line)
        labels = tuple(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ''))
        samples[(m.group(1), labels)] = int(m.group(3))
    return field, types, samples

for path, everything in ((sys.argv[3], False), (sys.argv[4], True)):
    field, types, samples = parse(path)
    from_stat = {f: n for n, (s, f) in field.items() if s == 'stat'}
    assert sorted(from_stat) == sorted(stat), \
        'stat fields %s, metrics of %s' % (sorted(stat), sorted(from_stat))
    for f, n in from_stat.items():
        assert samples[(n, ())] == stat[f], (n, samples[(n, ())], f, stat[f])
    assert 'untyped' not in types.values(), types
    counters = sorted(n for n, t in types.items() if t == 'counter')
    for n in ('zsd_written_pages_total', 'zsd_read_pages_total',
              'zsd_failed_writes_total', 'zsd_compacted_pages_total'):
        assert types[n] == 'counter', n
    for n in ('zsd_mem_used_bytes', 'zsd_orig_data_bytes',
              'zsd_mem_used_max_bytes', 'zsd_stored_pages'):
        assert types[n] == 'gauge', n
    assert stat['writes'] > 0 and stat['pool_objects'] > 0
    # The classes: one sample per class in use (all with -a), by label.
    want = [c for c in classes if everything or c['zspages'] > 0]
    cm = {n: f for n, (s, f) in field.items() if s == 'classes'}
    assert len(cm) == 5, cm
    for n, f in cm.items():
        assert types[n] == 'gauge', n
        got = {l: v for (m, l), v in samples.items() if m == n}
        assert len(got) == len(want), (n, len(got), len(want))
        for c in want:
            l = (('class', str(c['index'])), ('size', str(c['size'])))
            assert got[l] == c[f], (n, l, got[l], c[f])
    assert sum(v for (m, l), v in samples.items()
               if m == 'zsd_class_used_objects') == stat['pool_objects']
    print('%s: %d stat fields, %d counters, %d classes' %
          (path.rsplit('/', 1)[1], len(from_stat), len(counters), len(want)))
EOF
)
tap_ok $? "the metrics agree with --json stat and classes:" \
    "$(echo "$out" | paste -sd ";")"

zsctl --format=prometheus stat >"$TEST_DIR/p2" &&
    "$ZSCTL" --format prometheus -s "$SOCK" stat -a >"$TEST_DIR/p2.all" &&
    [ "$(grep -c '^# HELP' "$TEST_DIR/p2")" = "$(grep -c '^# HELP' "$PROM")" ] &&
    [ "$(wc -l <"$TEST_DIR/p2.all")" = "$(wc -l <"$PROM.all")" ]
tap_ok $? "--format=prometheus before the command gives the same metrics"

# The textfile collector's recipe: nothing replaces the file when zsd
# does not answer.
zsctl stat --format=prometheus >"$PROM.tmp" && mv "$PROM.tmp" "$PROM"
"$ZSCTL" -s "$TEST_DIR/nope" stat --format=prometheus >"$PROM.tmp" 2>/dev/null &&
    mv "$PROM.tmp" "$PROM"
st=$?
[ $st -eq 3 ] && [ ! -s "$PROM.tmp" ] && prom_check "$PROM" >/dev/null
tap_ok $? "without zsd: exit $st, no output, the last file stays"

zsd_stop
tap_ok $? "zsd stops"

tap_done
