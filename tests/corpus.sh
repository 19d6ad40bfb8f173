#!/bin/bash
# corpus.sh - bench/make-corpus: the same options give the same bytes, a
# new seed other bytes; the page mix is the one asked for; --stats agrees
# with what generation printed; bad input is refused with a message.
#
# File pages that are all zero or same-filled are passed over by design,
# so the zero and same-filled shares are exactly -z and -f (rounded to
# whole pages): -z 0 -f 0 -r 0 must show none at all.  Needs no root.
. "${srcdir:-.}/tests/lib.sh"

MAKE_CORPUS=${MAKE_CORPUS:-$builddir/bench/make-corpus}
[ -x "$MAKE_CORPUS" ] || tap_bail "no make-corpus at $MAKE_CORPUS"
require_prog cmp awk
setup_cleanup
d=$TEST_DIR

# csv_get FILE NAME: the field NAME of the CSV row in FILE.
csv_get()
{
	awk -F, -v k="$2" 'NR == 1 { for (i = 1; i <= NF; i++)
	    if ($i == k) col = i } NR == 2 && col { print $col }' "$1"
}

# Is $1 within $3 of $2?  Is $1 <= $2?  Is $1 > $2?  (Decimals.)
near() { awk -v a="$1" -v b="$2" -v e="$3" 'BEGIN { exit !(a - b <= e && b - a <= e) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }

# corpus NAME ARGS...: make $d/NAME with ARGS, CSV statistics in
# $d/NAME.csv; the status of make-corpus.
corpus()
{
	local name=$1 status

	shift
	"$MAKE_CORPUS" "$@" --csv -o "$d/$name" >"$d/$name.csv" \
	    2>"$d/$name.err"
	status=$?
	[ -s "$d/$name.err" ] && tap_diag "$(cat "$d/$name.err")"
	return "$status"
}

# fails STATUS DESC ARGS...: make-corpus ARGS exits STATUS with a message
# on stderr that matches $want.
fails()
{
	local status=$1 desc=$2 got msg

	shift 2
	msg=$("$MAKE_CORPUS" "$@" 2>&1 >/dev/null)
	got=$?
	tap_diag "make-corpus $*: exit $got: $(echo "$msg" | head -n 2)"
	[ "$got" -eq "$status" ] && echo "$msg" | grep -qi -- "$want"
	tap_ok $? "$desc: exit $status, says \"$want\""
}

# --- the same bytes ----------------------------------------------------------

corpus a -n 4096 -S 7
tap_ok $? "-n 4096 -S 7 makes a corpus"
[ "$(stat -c %s "$d/a")" -eq $((4096 * 4096)) ]
tap_ok $? "its size is 4096 pages of 4096 bytes"
[ "$(csv_get "$d/a.csv" pages)" = 4096 ]
tap_ok $? "it reports 4096 pages"

# The second run in text: --stats must print the same text, below.
"$MAKE_CORPUS" -n 4096 -S 7 -o "$d/b" >"$d/b.txt" 2>"$d/b.err"
tap_ok $? "the same again, text statistics"
cmp -s "$d/a" "$d/b"
tap_ok $? "same options, same machine: byte-identical files"

corpus c -n 4096 -S 8
! cmp -s "$d/a" "$d/c"
tap_ok $? "-S 8 instead of 7: a different file"

"$MAKE_CORPUS" --stats "$d/a" --csv >"$d/a.stats.csv"
tap_ok $? "--stats --csv reads the corpus"
cmp -s "$d/a.csv" "$d/a.stats.csv"
tap_ok $? "--stats --csv prints what generation printed"
"$MAKE_CORPUS" --stats "$d/b" >"$d/b.stats.txt"
cmp -s "$d/b.txt" "$d/b.stats.txt"
tap_ok $? "--stats prints the text generation printed"
tap_diag "$(cat "$d/b.txt")"

# --- the mix -------------------------------------------------------------------

corpus mix -n 4096 -z 30 -f 10 -r 10
tap_ok $? "-z 30 -f 10 -r 10"
z=$(csv_get "$d/mix.csv" zero_pct)
f=$(csv_get "$d/mix.csv" same_pct)
i=$(csv_get "$d/mix.csv" incompressible_pct)
near "$z" 30 1 && near "$f" 10 1
tap_ok $? "zero $z% and same-filled $f%: within 1 point of 30 and 10"
# Random pages are incompressible; some file pages are too (.gz, ...).
le 9 "$i"
tap_ok $? "incompressible $i%: at least the random 10% (within 1)"

# make-corpus passes over up to 1024 zero or same-filled file pages in a
# row (SKIP_MAX); a file with a longer run would let one through, and this
# point would say so.
corpus files -n 4096 -z 0 -f 0 -r 0
tap_ok $? "-z 0 -f 0 -r 0: file pages only"
[ "$(csv_get "$d/files.csv" zero_pages)" = 0 ] &&
    [ "$(csv_get "$d/files.csv" same_pages)" = 0 ]
tap_ok $? "no zero and no same-filled page (those file pages are passed over)"

corpus random -n 1024 -z 0 -f 0 -r 100
tap_ok $? "-r 100: random pages only"
r=$(csv_get "$d/random.csv" lz4_ratio_data)
le "$r" 1.01 && [ "$(csv_get "$d/random.csv" incompressible_pct)" = 100.00 ]
tap_ok $? "lz4 ratio $r <= 1.01, all incompressible"

corpus default -n 8192
tap_ok $? "the default mix"
# Files shrink (about 1.6 here), random pages do not: a margin for
# machines with other files.
r=$(csv_get "$d/default.csv" lz4_ratio_data)
gt "$r" 1.25
tap_ok $? "lz4 ratio of its data pages $r > 1.25"

corpus small -s 16K -z 50 -f 50 -r 0
[ $? -eq 0 ] && [ "$(stat -c %s "$d/small")" -eq 16384 ] &&
    [ "$(csv_get "$d/small.csv" zero_pages)" = 2 ] &&
    [ "$(csv_get "$d/small.csv" same_pages)" = 2 ]
tap_ok $? "-s 16K -z 50 -f 50 -r 0: 4 pages, 2 zero, 2 same-filled"

# Duplicates: copies of earlier data pages, out of the file pages' share.
corpus dup0 -n 4096 -S 7 -d 0
cmp -s "$d/a" "$d/dup0"
tap_ok $? "-d 0: the same file as without -d"
corpus dup -n 4096 -d 25
tap_ok $? "-d 25"
u=$(csv_get "$d/dup.csv" dup_pct)
z=$(csv_get "$d/dup.csv" zero_pct)
near "$u" 25 1.5 && near "$z" 15 1
tap_ok $? "duplicate pages $u%: within 1.5 points of 25 (zero $z%)"
"$MAKE_CORPUS" --stats "$d/dup" --csv | cmp -s - "$d/dup.csv"
tap_ok $? "--stats finds the same duplicates"

# --- refusals ------------------------------------------------------------------

want="not a percentage"
fails 2 "-z 120" -n 16 -z 120 -o "$d/bad"
want="over 100"
fails 2 "-z 60 -f 60" -n 16 -z 60 -f 60 -o "$d/bad"
fails 2 "-z 60 -d 50" -n 16 -z 60 -d 50 -o "$d/bad"
want="not a page count"
fails 2 "-n 0" -n 0 -o "$d/bad"
want="multiple of 4096"
fails 2 "-s 1000" -s 1000 -o "$d/bad"
want="usage"
fails 2 "an unknown option" --no-such-option -o "$d/bad"
want="-o FILE"
fails 2 "no -o" -n 16
[ ! -e "$d/bad" ]
tap_ok $? "none of those made a file"
want="$d/no/such/dir/x"
fails 1 "an output that cannot be created" -n 16 -o "$d/no/such/dir/x"
head -c 1000 "$d/a" >"$d/short"
want="not a corpus"
fails 1 "--stats of a file of 1000 bytes" --stats "$d/short"

tap_done
