#!/bin/bash
# control.sh - zsd's control socket and zsctl: every command checked
# against the store's real state (mm_stat, the data written), permissions,
# the exit statuses, and bad clients: garbage, oversized and truncated
# messages, silence, more clients than the cap, no file descriptors left.
# After each bad client zsd must still answer.
. "${srcdir:-.}/tests/lib.sh"

ZSCTL=${ZSCTL:-$builddir/daemon/zsctl}

require_root
require_fuse
require_prog python3 setpriv fallocate dd cmp
[ -x "$ZSCTL" ] || skip "no zsctl at $ZSCTL"
getent group nogroup >/dev/null || skip "no group nogroup"
setup_cleanup

SOCK=$TEST_DIR/control
PY=$TEST_DIR/helper.py
F=$ZSD_MNT/swap0
NA=3072		# compressible pages, at 0
NS=512		# same-filled pages, after them
NH=512		# incompressible pages, after those
NP=$((NA + NS + NH))

zsctl()
{
	"$ZSCTL" -s "$SOCK" "$@"
}

# stat_get FIELD: one field of zsctl stat.
stat_get()
{
	zsctl -b stat | awk -v k="$1" '$1 == k { print $2 }'
}

# A working zsd answers stat, after a moment to notice closed clients.
still_serving()
{
	local i

	for i in $(seq 30); do
		zsctl stat >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

cat >"$PY" <<'EOF'
import ctypes, os, random, socket, struct, sys, time

def pages(n_a, n_s, n_h):
    """The test data: compressible, same-filled, incompressible pages."""
    r = random.Random(42)
    out = bytearray()
    for _ in range(n_a):
        out += r.randbytes(2048) + bytes(2048)
    out += b'\x5a' * (4096 * n_s)
    out += r.randbytes(4096 * n_h)
    return out

def hdr(t, n, magic=b'ZSDC', version=1):
    return magic + bytes([version, t, 0, 0]) + struct.pack('>I', n)

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s

pending = {}

def reply(s, timeout=5):
    """(type, payload) of the next reply, or None at EOF."""
    s.settimeout(timeout)
    buf = pending.get(s, b'')
    while True:
        if len(buf) >= 12:
            n = struct.unpack('>I', buf[8:12])[0]
            if len(buf) >= 12 + n:
                pending[s] = buf[12 + n:]
                return buf[5], buf[12:12 + n].decode()
        d = s.recv(65536)
        if not d:
            return None
        buf += d

def closed(s, timeout):
    """Seconds until the peer closes, or -1."""
    t = time.monotonic()
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
    except socket.timeout:
        return -1
    except ConnectionResetError:
        pass
    return time.monotonic() - t

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == 'data':
    sys.stdout.buffer.write(pages(*map(int, args)))
elif cmd == 'punch':
    # punch FILE FIRST COUNT STEP: one page at a time.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int,
                               ctypes.c_long, ctypes.c_long]
    fd = os.open(args[0], os.O_RDWR)
    first, count, step = map(int, args[1:])
    for i in range(first, first + count * step, step):
        if libc.fallocate(fd, 3, i * 4096, 4096) != 0:  # PUNCH|KEEP_SIZE
            sys.exit('fallocate: errno %d' % ctypes.get_errno())
    os.close(fd)
elif cmd == 'expect':
    # expect NA NS NH FIRST COUNT STEP: the data with those pages zero.
    n_a, n_s, n_h, first, count, step = map(int, args)
    d = pages(n_a, n_s, n_h)
    for i in range(first, first + count * step, step):
        d[i * 4096:(i + 1) * 4096] = bytes(4096)
    sys.stdout.buffer.write(d)
elif cmd == 'garbage':
    s = connect(args[0])
    s.sendall(b'GET / HTTP/1.0\r\n\r\n')
    r = reply(s)
    assert r and r[0] == 65 and 'bad magic' in r[1], r
    assert closed(s, 5) >= 0, 'not closed'
    print('error reply, then closed:', r[1].splitlines()[-1])
elif cmd == 'oversized':
    s = connect(args[0])
    s.sendall(hdr(2, 0x7fffffff))
    r = reply(s)
    assert r and r[0] == 65 and 'too large' in r[1], r
    assert closed(s, 5) >= 0, 'not closed'
    print('error reply, then closed:', r[1].splitlines()[-1])
elif cmd == 'version':
    s = connect(args[0])
    s.sendall(hdr(2, 0, version=9))
    r = reply(s)
    assert r and r[0] == 65 and 'version' in r[1], r
    print('error reply:', r[1].splitlines()[-1])
elif cmd == 'truncated':
    # Half a message, then hang up; then half a message and wait.
    s = connect(args[0])
    s.sendall(hdr(5, 100) + b'size=1')
    s.close()
    s = connect(args[0])
    s.sendall(hdr(5, 100) + b'size=1')
    t = closed(s, float(args[1]) + 5)
    assert t >= 0, 'a truncated message kept the client forever'
    print('dropped after %.1f s' % t)
elif cmd == 'silent':
    s = connect(args[0])
    t = closed(s, float(args[1]) + 5)
    assert t >= float(args[1]) - 0.5, 'dropped too soon: %.1f' % t
    assert t >= 0, 'a silent client kept forever'
    print('dropped after %.1f s' % t)
elif cmd == 'unknown':
    # An unknown command and bad arguments keep the connection.
    s = connect(args[0])
    s.sendall(hdr(99, 0))
    r = reply(s)
    assert r and r[0] == 65 and 'unknown command' in r[1], r
    s.sendall(hdr(5, 0))
    r = reply(s)
    assert r and r[0] == 65 and 'bad arguments' in r[1], r
    s.sendall(hdr(2, 4) + b'a=b\n')
    r = reply(s)
    assert r and r[0] == 65 and 'bad arguments' in r[1], r
    s.sendall(hdr(2, 3) + b'a=b')
    r = reply(s)
    assert r and r[0] == 65 and 'malformed' in r[1], r
    s.sendall(hdr(2, 0) + hdr(1, 0))
    r1, r2 = reply(s), reply(s)
    assert r1[0] == 64 and 'orig_data_size=' in r1[1], r1
    assert r2[0] == 64 and 'disksize=' in r2[1], r2
    print('errors, then two pipelined requests answered in order')
elif cmd == 'flood':
    # flood SOCKET PID: stat requests as fast as zsd takes them, replies
    # unread, for up to 2 s; then zsd's VmRSS growth in KiB, and every
    # reply read back.
    def rss(pid):
        for line in open('/proc/%s/status' % pid):
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    before = rss(args[1])
    s = connect(args[0])
    s.setblocking(False)
    req = hdr(2, 0) * 256
    sent, t0 = 0, time.time()
    while time.time() - t0 < 2 and sent < 200000:
        try:
            n = s.send(req)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if n % 12:
            s.setblocking(True)
            s.sendall(req[n:n + 12 - n % 12])
            s.setblocking(False)
            n += 12 - n % 12
        sent += n // 12
    time.sleep(0.3)
    grown = rss(args[1]) - before
    got = 0
    s.setblocking(True)
    for _ in range(sent):
        r = reply(s)
        assert r and r[0] == 64 and 'orig_data_size=' in r[1], (got, r)
        got += 1
    print(sent, got, grown)
elif cmd == 'badargs':
    # badargs SOCKET TYPE PAYLOAD: refused as bad arguments (\n escapes).
    s = connect(args[0])
    p = args[2].encode().decode('unicode_escape').encode()
    s.sendall(hdr(int(args[1]), len(p)) + p)
    r = reply(s)
    assert r and r[0] == 65 and 'bad arguments' in r[1], r
    print('type %s, %r: %s' % (args[1], p, ' '.join(r[1].split())))
elif cmd == 'many':
    # many SOCKET N SECONDS: N clients at once, held SECONDS.
    n, hold = int(args[1]), float(args[2])
    socks = [connect(args[0]) for _ in range(n)]
    time.sleep(0.3)
    busy = 0
    for s in socks:
        s.setblocking(False)
        try:
            d = s.recv(65536)
            if d[5:6] == b'\x41' and b'too many clients' in d:
                busy += 1
        except BlockingIOError:
            pass
    print(busy)
    sys.stdout.flush()
    time.sleep(hold)
elif cmd == 'stale':
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(args[0])
    os._exit(0)
EOF

zsd_start --no-swapon -o disksize=64M -o control="$SOCK" \
    -o control_group=nogroup -o control_timeout=3 -o compact_threshold=0 ||
    tap_bail "zsd did not start"

perm=$(stat -c '%a %G %F' "$SOCK")
[ "$perm" = "660 nogroup socket" ]
tap_ok $? "the socket is 0660, group nogroup (got $perm)"

out=$(zsctl status)
tap_ok $? "status: $(echo "$out" | tail -n 1 | tr -s ' ')"
echo "$out" | awk -v f="$F" 'NR == 1 && /NAME/ && /ALGORITHM/ &&
    /DISKSIZE/ { h = 1 } NR == 2 && $1 == f && $2 == "lz4" &&
    $3 == "64M" && $9 == "-" { r = 1 } END { exit !(h && r) }'
tap_ok $? "status: a header and a row for $F, lz4, 64M, not swap"

# Known data through the FUSE file, around the page cache.
python3 "$PY" data $NA $NS $NH >"$TEST_DIR/data"
dd if="$TEST_DIR/data" of="$F" bs=1M oflag=direct conv=notrunc \
    status=none
tap_ok $? "wrote $NP pages: $NA compressible, $NS same, $NH random"

ok=0
[ "$(stat_get orig_data_size)" -eq $((NP * 4096)) ] || ok=1
[ "$(stat_get pages_stored)" -eq $NP ] || ok=1
[ "$(stat_get same_pages)" -eq $NS ] || ok=1
[ "$(stat_get huge_pages)" -ge $NH ] || ok=1
[ "$(stat_get writes)" -eq $NP ] || ok=1
tap_ok $ok "stat: orig_data_size $((NP * 4096)), $NP pages stored," \
    "$NS same, >= $NH huge, $NP writes"

ok=0
for f in orig_data_size compr_data_size mem_used_total mem_limit \
    mem_used_max same_pages pages_compacted huge_pages; do
	a=$(stat_get $f)
	b=$(mm_stat $f)
	[ "$a" = "$b" ] || { tap_diag "$f: zsctl $a, mm_stat $b"; ok=1; }
done
tap_ok $ok "stat agrees with mm_stat in all 8 fields"

c=$(stat_get compr_data_size)
t=$(stat_get mem_used_total)
[ "$c" -gt $((NH * 4096)) ] && [ "$c" -lt $((NP * 4096)) ] &&
    [ "$t" -ge $((NH * 4096)) ]
tap_ok $? "compr_data_size $c, mem_used_total $t are plausible"

out=$(zsctl stat)
for f in failed_reads failed_writes invalid_io notify_free \
    pool_pages_reported pool_sections pool_isolated_zspages \
    pool_pages_used pool_pages_free pool_pages_meta; do
	echo "$out" | grep -q "^$f " || { tap_diag "no $f"; false; }
done
tap_ok $? "stat has zram's io_stat fields and the pool's"

rows=$(zsctl classes | wc -l)
[ "$rows" -ge 3 ]
tap_ok $? "classes: $rows lines (header, classes in use, total)"
n=$(zsctl --json classes | python3 -c 'import json, sys
c = json.load(sys.stdin)
used = [x for x in c if x["zspages"] > 0]
assert all(len(x["fullness"]) == 12 for x in c)
print(sum(x["objs_used"] for x in used))')
[ "${n:-0}" -ge $((NA + NH)) ]
tap_ok $? "classes --json: $n objects used, >= $((NA + NH))"

ok=0
for c in status stat classes reset-max; do
	zsctl --json $c >"$TEST_DIR/$c.json" || ok=1
done
python3 -c 'import json, sys
for f in sys.argv[1:]:
    json.load(open(f))' "$TEST_DIR"/*.json || ok=1
tap_ok $ok "--json parses for status, stat, classes, reset-max"
a=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))
    ["orig_data_size"])' "$TEST_DIR/stat.json")
[ "$a" = "$(stat_get orig_data_size)" ]
tap_ok $? "stat --json has the numbers of stat: $a"

# Punch every other compressible page: half-empty zspages to compact.
python3 "$PY" punch "$F" 0 $((NA / 2)) 2
tap_ok $? "punched $((NA / 2)) pages"
ok=0
[ "$(stat_get notify_free)" -eq $((NA / 2)) ] || ok=1
[ "$(stat_get pages_stored)" -eq $((NP - NA / 2)) ] || ok=1
tap_ok $ok "stat: notify_free $((NA / 2)), pages stored $((NP - NA / 2))"
free_before=$(stat_get pool_pages_freeable)
used_before=$(stat_get mem_used_total)

out=$(zsctl compact)
tap_ok $? "compact: $out"
freed=$(echo "$out" | awk '{ print $2 }')
[ "${freed:-0}" -gt 0 ]
tap_ok $? "compact freed $freed pages (freeable before: $free_before)"
used_after=$(stat_get mem_used_total)
[ "$used_after" -lt "$used_before" ] &&
    [ "$(stat_get pages_compacted)" -ge "$freed" ] &&
    [ "$(mm_stat pages_compacted)" -ge "$freed" ] &&
    [ "$(stat_get compactions)" -eq 1 ]
tap_ok $? "mem_used_total $used_before -> $used_after, pages_compacted" \
    "counts it, in mm_stat too"
python3 "$PY" expect $NA $NS $NH 0 $((NA / 2)) 2 >"$TEST_DIR/expect"
cmp -n $((NP * 4096)) "$TEST_DIR/expect" "$F"
tap_ok $? "the data reads back intact after compaction"

out=$(zsctl --json compact | python3 -c 'import json, sys
d = json.load(sys.stdin); print(d["pages_freed"], d["seconds"])')
tap_ok $? "compact --json: pages_freed, seconds: $out"

# The memory limit, live.
zsctl limit 1M >/dev/null &&
    [ "$(stat_get mem_limit)" -eq 1048576 ] &&
    [ "$(mm_stat mem_limit)" -eq 1048576 ]
tap_ok $? "limit 1M: stat and mm_stat show mem_limit 1048576"
fw=$(stat_get failed_writes)
head -c 4096 /dev/urandom >"$TEST_DIR/page"
! dd if="$TEST_DIR/page" of="$F" bs=4096 seek=$((NP + 10)) oflag=direct \
    conv=notrunc status=none 2>/dev/null
tap_ok $? "a write over the limit fails"
[ "$(stat_get failed_writes)" -gt "$fw" ] &&
    [ "$(stat_get limit_refusals)" -gt 0 ]
tap_ok $? "stat: failed_writes and limit_refusals went up"
out=$(zsctl limit none)
tap_ok $? "limit none: $out"
dd if="$TEST_DIR/page" of="$F" bs=4096 seek=$((NP + 10)) oflag=direct \
    conv=notrunc status=none
tap_ok $? "the write succeeds without the limit"
zsctl limit 12Q 2>"$TEST_DIR/err"
st=$?
[ $st -eq 2 ] && grep -q "bad value '12Q'" "$TEST_DIR/err"
tap_ok $? "limit 12Q: exit $st, $(cat "$TEST_DIR/err")"

max=$(stat_get mem_used_max)
out=$(zsctl reset-max)
tap_ok $? "reset-max: $out"
[ "$(stat_get mem_used_max)" -eq "$(stat_get mem_used_total)" ] &&
    [ "$(stat_get mem_used_max)" -le "$max" ]
tap_ok $? "mem_used_max $max -> mem_used_total $(stat_get mem_used_max)"

out=$(zsctl shrink 64M)
tap_ok $? "shrink 64M: $out"
cmp -n $((NP * 4096)) "$TEST_DIR/expect" "$F"
tap_ok $? "the data reads back intact after shrink"

# Exit statuses.
zsctl bogus 2>/dev/null
tap_ok $(($? != 2)) "an unknown command: exit 2"
zsctl limit 2>/dev/null
tap_ok $(($? != 2)) "limit without a size: exit 2"
out=$("$ZSCTL" -s "$TEST_DIR/nope" stat 2>&1)
st=$?
[ $st -eq 3 ] && echo "$out" | grep -q "zsd is not running (no socket"
tap_ok $? "no socket: exit $st: $out"

# Someone else: the group may read, nobody may change.
chmod 711 "$TEST_DIR"
out=$(setpriv --reuid=65534 --regid=65533 --clear-groups \
    "$ZSCTL" -s "$SOCK" stat 2>&1)
st=$?
[ $st -eq 4 ] && echo "$out" | grep -q "permission denied"
tap_ok $? "outside the group: exit $st: $out"
setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$ZSCTL" -s "$SOCK" stat >/dev/null
tap_ok $? "in control_group, not root: stat is allowed"
for c in compact "limit 1G" "shrink 1M" reset-max stop "stop --force"; do
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$ZSCTL" -s "$SOCK" $c 2>&1)
	st=$?
	[ $st -eq 4 ] && echo "$out" | grep -q "permission denied: only root"
	tap_ok $? "not root, $c: exit $st: $out"
done
[ "$(stat_get mem_limit)" -eq 0 ]
tap_ok $? "and nothing changed"

# Bad clients.
for c in garbage oversized version unknown; do
	out=$(timeout 30 python3 "$PY" $c "$SOCK" 2>&1)
	tap_ok $? "$c: $out"
	still_serving
	tap_ok $? "zsd still answers after $c"
done
out=$(timeout 30 python3 "$PY" truncated "$SOCK" 3 2>&1)
tap_ok $? "truncated: $out"
still_serving
tap_ok $? "zsd still answers after truncated messages"
out=$(timeout 30 python3 "$PY" silent "$SOCK" 3 2>&1)
tap_ok $? "a silent client: $out"
still_serving
tap_ok $? "zsd still answers after a silent client"

python3 "$PY" many "$SOCK" 40 2 >"$TEST_DIR/many" &
pid=$!
TEST_PIDS="$TEST_PIDS $pid"
for _ in $(seq 100); do
	[ -s "$TEST_DIR/many" ] && break
	sleep 0.05
done
out=$(zsctl stat 2>&1)
st=$?
[ $st -eq 1 ] && echo "$out" | grep -q "too many clients"
tap_ok $? "with 40 clients, one more: exit $st: $out"
wait $pid
busy=$(cat "$TEST_DIR/many")
[ "$busy" = 8 ]
tap_ok $? "40 clients at once: $busy refused as busy, 32 served"
still_serving
tap_ok $? "zsd still answers once they are gone"

# Clients that may only read cannot lock root out: they get all slots but
# four, and when root holds those too, root's next client drops the
# non-root client idle the longest.
# wait_file FILE: until FILE has something in it (5 s at most).
wait_file()
{
	local i

	for i in $(seq 100); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
chmod 755 "$TEST_DIR"
chmod 644 "$PY"
# A python3 that uid 65534 may run (not one under root's home), and
# quick to start: all of this must happen within control_timeout (3 s).
for py in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
	setpriv --reuid=65534 --regid=65534 --clear-groups "$py" -c '' \
	    2>/dev/null && break
done
setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$py" "$PY" many "$SOCK" 40 2.5 >"$TEST_DIR/many-nobody" &
pid=$!
TEST_PIDS="$TEST_PIDS $pid"
wait_file "$TEST_DIR/many-nobody"
busy=$(cat "$TEST_DIR/many-nobody")
[ "$busy" = 12 ]
tap_ok $? "40 clients not root: $busy refused as busy, $((40 - busy)) served (28)"
"$py" "$PY" many "$SOCK" 4 2 >"$TEST_DIR/many-root" &
pid2=$!
TEST_PIDS="$TEST_PIDS $pid2"
wait_file "$TEST_DIR/many-root"
busy=$(cat "$TEST_DIR/many-root")
[ "$busy" = 0 ]
tap_ok $? "then 4 root clients: $busy refused (0)"
out=$(zsctl stat 2>&1)
st=$?
[ $st -eq 0 ] && echo "$out" | grep -q "^orig_data_size"
tap_ok $? "all 32 slots taken, root's zsctl stat still gets in: exit $st"
grep -q "dropping pid .* (uid 65534), idle the longest, to let root in" \
    "$ZSD_LOG" || { st=1; tail -5 "$ZSD_LOG" | sed 's/^/# /'; }
tap_ok ${st:-0} "by dropping a non-root client, as the log says"
wait $pid $pid2
chmod 711 "$TEST_DIR"
still_serving
tap_ok $? "zsd still answers once they are gone"

# A client that sends requests and never reads the replies: zsd stops
# reading it once 256 KiB of replies wait, instead of piling them up in
# its locked memory; they all arrive once the client reads.
read -r sent got grown <<<"$(timeout 60 python3 "$PY" flood "$SOCK" \
    "$ZSD_SERVER")"
[ "${got:-0}" -eq "${sent:-1}" ] && [ "${grown:-99999}" -lt 8192 ]
tap_ok $? "$sent stat requests, replies unread: zsd grew by $grown KiB" \
    "(want < 8 MiB); then all $got replies read"

# No descriptors left: accept fails with EMFILE; zsd must not spin.
if command -v prlimit >/dev/null; then
	nfd=$(ls /proc/"$ZSD_SERVER"/fd | wc -l)
	lim=$(prlimit --pid "$ZSD_SERVER" --nofile -o SOFT,HARD --noheadings \
	    --raw | tr ' ' :)
	prlimit --pid "$ZSD_SERVER" --nofile=$((nfd + 2)):$((nfd + 2))
	python3 "$PY" many "$SOCK" 10 3 >/dev/null &
	pid=$!
	TEST_PIDS="$TEST_PIDS $pid"
	sleep 0.5
	t0=$(awk '{ print $14 + $15 }' /proc/"$ZSD_SERVER"/stat)
	sleep 2
	t1=$(awk '{ print $14 + $15 }' /proc/"$ZSD_SERVER"/stat)
	wait $pid
	prlimit --pid "$ZSD_SERVER" --nofile="$lim"
	[ $((t1 - t0)) -lt 50 ] && grep -q "pausing" "$ZSD_LOG"
	tap_ok $? "out of descriptors: $((t1 - t0)) ticks of CPU in 2 s," \
	    "accept paused"
	still_serving
	tap_ok $? "zsd answers again once descriptors are back"
fi

# A second zsd on the same socket must not start.
mkdir "$TEST_DIR/mnt2"
timeout 60 "$ZSD" -f --no-swapon -o disksize=16M \
    -o mountpoint="$TEST_DIR/mnt2" -o control="$SOCK" \
    >"$TEST_DIR/second.log" 2>&1
st=$?
[ $st -ne 0 ] && grep -q "another zsd answers" "$TEST_DIR/second.log"
tap_ok $? "a second zsd on the socket refuses to start (exit $st)"
still_serving
tap_ok $? "the first still answers"

zsd_stop
tap_ok $? "zsd stops"
[ ! -e "$SOCK" ]
tap_ok $? "and removes its socket"

# A stale socket is replaced; automatic compaction.
python3 "$PY" stale "$SOCK"
[ -S "$SOCK" ]
tap_ok $? "a stale socket left at $SOCK"
zsd_start --no-swapon -o disksize=64M -o control="$SOCK" \
    -o compact_threshold=1 -o compact_interval=1 ||
    tap_bail "zsd did not start over a stale socket"
grep -q "stale, replaced" "$ZSD_LOG" && still_serving
tap_ok $? "zsd replaces it and answers"
dd if="$TEST_DIR/data" of="$F" bs=1M oflag=direct conv=notrunc \
    status=none &&
    python3 "$PY" punch "$F" 0 $((NA / 2)) 2
tap_ok $? "wrote and punched again"
n=0
for _ in $(seq 100); do
	n=$(stat_get compactions_auto)
	[ "$n" -gt 0 ] && [ "$(stat_get pages_compacted)" -gt 0 ] && break
	sleep 0.1
done
[ "$n" -gt 0 ] && [ "$(stat_get pages_compacted)" -gt 0 ]
tap_ok $? "automatic compaction ran ($n times), pages_compacted" \
    "$(stat_get pages_compacted)"
cmp -n $((NP * 4096)) "$TEST_DIR/expect" "$F"
tap_ok $? "the data reads back intact"

# zsctl stop: bad arguments, then a stop it waits for.
zsctl stop now 2>/dev/null
tap_ok $(($? != 2)) "stop with an argument: exit 2"
zsctl stat --force 2>/dev/null
tap_ok $(($? != 2)) "--force with another command: exit 2"
out=$(timeout 30 python3 "$PY" badargs "$SOCK" 8 'force=maybe\n' 2>&1)
tap_ok $? "a stop request with force=maybe is refused: $out"
pid_alive "$ZSD_PID"
tap_ok $? "and zsd still runs"
[ "$(zsctl --json status | python3 -c 'import json, sys
print(json.load(sys.stdin)[0]["pid"])')" = "$ZSD_SERVER" ]
tap_ok $? "zsctl --json status names zsd's pid"
out=$(zsctl stop 2>&1)
st=$?
[ $st -eq 0 ] && [ "$out" = "zsd (pid $ZSD_SERVER) is stopping
zsd stopped" ] && ! pid_alive "$ZSD_SERVER"
tap_ok $? "zsctl stop: exit $st, once zsd is gone: $out"
wait "$ZSD_PID"
st=$?
ZSD_PID=
[ $st -eq 0 ] && grep -q "control: stop, by pid" "$ZSD_LOG"
tap_ok $? "zsd exited with status $st, the stop logged"
[ ! -e "$SOCK" ] && ! is_mounted "$ZSD_MNT"
tap_ok $? "no socket and no mount left"

tap_done
