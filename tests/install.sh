#!/bin/bash
# install.sh - `make install DESTDIR=...` puts every file where it belongs.
#
# Installs the build tree into a temporary DESTDIR and checks each file the
# project ships: programs, library, header, pkg-config file, systemd unit
# (with the installed path of zsd in it), example configuration and man
# pages.  Needs no root.
set -u

top_builddir=${top_builddir:-${builddir:-.}}
for v in prefix exec_prefix sbindir libdir includedir sysconfdir mandir \
    systemdsystemunitdir; do
	[ -n "${!v:-}" ] || { echo "Bail out! \$$v not set (run under make check)"; exit 99; }
done

n=0 failed=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}

dest=$(mktemp -d "${TMPDIR:-/tmp}/zsd-install.XXXXXX") || exit 99
trap 'rm -rf "$dest"' EXIT

make -s -C "$top_builddir" install DESTDIR="$dest" >"$dest.log" 2>&1
ok $? "make install DESTDIR=... succeeds"
[ -s "$dest.log" ] && sed 's/^/# /' "$dest.log" | tail -20
rm -f "$dest.log"

check() {	# check PATH DESCRIPTION [test-op]
	local op=${3:--f}
	test "$op" "$dest$1"
	ok $? "$2: $1"
}
check "$sbindir/zsd" "daemon" -x
if [ -e "$top_builddir/daemon/zsctl" ]; then
	check "$sbindir/zsctl" "control client" -x
fi
if [ -e "$top_builddir/stress/zsd-stress" ]; then
	check "$sbindir/zsd-stress" "stress test" -x
	check "$mandir/man8/zsd-stress.8" "zsd-stress(8)"
fi
check "$libdir/libzs.so" "shared library" -e
check "$libdir/libzs.a" "static library"
check "$includedir/zs.h" "public header"
check "$libdir/pkgconfig/libzs.pc" "pkg-config file"
check "$systemdsystemunitdir/zsd.service" "systemd unit"
check "$sysconfdir/zsd.conf" "example configuration"
check "$mandir/man8/zsd.8" "zsd(8)"
check "$mandir/man5/zsd.conf.5" "zsd.conf(5)"
check "$mandir/man3/libzs.3" "libzs(3)"
if [ -e "$top_builddir/daemon/zsctl" ]; then
	check "$mandir/man8/zsctl.8" "zsctl(8)"
fi

unit="$dest$systemdsystemunitdir/zsd.service"
grep -q "^ExecStart=$sbindir/zsd " "$unit" 2>/dev/null
ok $? "the unit starts the installed zsd ($sbindir/zsd)"
grep -q "@[a-z]*@" "$unit" 2>/dev/null
ok $((!$?)) "no placeholder left in the unit"
# systemd's own reading of the unit: nothing but the paths that are not
# installed here (the binaries, the man pages) may be wrong.
if command -v systemd-analyze >/dev/null; then
	bad=$(systemd-analyze verify "$unit" 2>&1 |
	    grep -v -e "is not executable" -e "Command 'man " \
	    -e "^$" || true)
	[ -z "$bad" ]
	ok $? "systemd-analyze verify finds nothing else${bad:+: $bad}"
fi

# Only zs_* symbols leave the library.
if command -v nm >/dev/null; then
	so=$(readlink -f "$dest$libdir/libzs.so")
	bad=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDB]/ && $3 !~ /^zs_/ {print $3}')
	[ -z "$bad" ]
	ok $? "libzs exports only zs_* symbols${bad:+ (also: $bad)}"
fi

echo "1..$n"
exit $failed
