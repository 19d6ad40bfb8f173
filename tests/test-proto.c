/*
 * test-proto.c - the control protocol: every message round trips, and
 * every kind of bad input gets the error it should, in every prefix.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "tap.h"

static struct proto_buf	b;
static unsigned char	raw[2 * PROTO_MAX_MSG];

static int
parse(const void *buf, size_t len, struct proto_msg *m, size_t *used)
{
	return proto_parse(buf, len, m, used);
}

/* A header by hand, for the cases proto_begin cannot make. */
static void
header(unsigned char *p, int version, int type, unsigned int reserved,
    uint32_t len)
{
	memcpy(p, PROTO_MAGIC, 4);
	p[4] = (unsigned char)version;
	p[5] = (unsigned char)type;
	p[6] = (unsigned char)(reserved >> 8);
	p[7] = (unsigned char)reserved;
	p[8] = (unsigned char)(len >> 24);
	p[9] = (unsigned char)(len >> 16);
	p[10] = (unsigned char)(len >> 8);
	p[11] = (unsigned char)len;
}

/* Every strict prefix of a good message is PROTO_ETRUNC. */
static bool
prefixes_truncated(const unsigned char *p, size_t len)
{
	struct proto_msg m;
	size_t i, used;

	for (i = 0; i < len; i++)
		if (parse(p, i, &m, &used) != PROTO_ETRUNC || used != 0) {
			diag("prefix of %zu bytes: %s", i,
			    proto_strerror(parse(p, i, &m, &used)));
			return false;
		}
	return true;
}

#define DIGITS20	"12345678901234567890"

/* Lines to show in a test's name: a newline as \n. */
static const char *
escaped(const char *lines)
{
	static char buf[256];
	size_t n = 0;

	for (; *lines != '\0' && n + 3 < sizeof(buf); lines++) {
		if (*lines == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else
			buf[n++] = *lines;
	}
	buf[n] = '\0';
	return buf;
}

/* idle, recompress, writeback: the keys each takes, once, well formed. */
static void
test_idle_requests(void)
{
	static const struct {
		int		 type;
		const char	*lines;		/* key=value\n ... */
		int		 want;
	} cases[] = {
		{ PROTO_IDLE, "age=all\n", PROTO_OK },
		{ PROTO_IDLE, "age=60\n", PROTO_OK },
		{ PROTO_IDLE, "age=0\n", PROTO_OK },
		{ PROTO_IDLE, "age=" DIGITS20 "\n", PROTO_OK },
		{ PROTO_IDLE, "", PROTO_EARGS },
		{ PROTO_IDLE, "age=\n", PROTO_EARGS },
		{ PROTO_IDLE, "age=-1\n", PROTO_EARGS },
		{ PROTO_IDLE, "age=1x\n", PROTO_EARGS },
		{ PROTO_IDLE, "age= 1\n", PROTO_EARGS },
		{ PROTO_IDLE, "age=All\n", PROTO_EARGS },
		{ PROTO_IDLE, "age=" DIGITS20 "1\n", PROTO_EARGS },
		{ PROTO_IDLE, "age=all\nage=60\n", PROTO_EARGS },
		{ PROTO_IDLE, "age=60\nage=60\n", PROTO_EARGS },
		{ PROTO_IDLE, "age=60\nmax_pages=1\n", PROTO_EARGS },
		{ PROTO_IDLE, "type=idle\n", PROTO_EARGS },
		{ PROTO_IDLE, "size=1M\n", PROTO_EARGS },
		{ PROTO_IDLE, "age=60\n\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "", PROTO_OK },
		{ PROTO_RECOMPRESS, "type=idle\n", PROTO_OK },
		{ PROTO_RECOMPRESS, "type=huge\n", PROTO_OK },
		{ PROTO_RECOMPRESS,
		    "type=huge_idle\nthreshold=1024\nmax_pages=10\n", PROTO_OK },
		{ PROTO_RECOMPRESS, "max_pages=10\nthreshold=0\n", PROTO_OK },
		{ PROTO_RECOMPRESS, "max_pages=" DIGITS20 "\n", PROTO_OK },
		{ PROTO_RECOMPRESS, "type=incompressible\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "type=bogus\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "type=\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "type=huge\ntype=huge\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "threshold=1x\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "threshold=-1\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "threshold=1\nthreshold=2\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "threshold=" DIGITS20 "1\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "max_pages=\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "max_pages=" DIGITS20 "1\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "max_pages=1\nmax_pages=1\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "age=all\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "size=1M\n", PROTO_EARGS },
		{ PROTO_RECOMPRESS, "type=idle\n\n", PROTO_EARGS },
		{ PROTO_WRITEBACK, "", PROTO_OK },
		{ PROTO_WRITEBACK, "type=incompressible\n", PROTO_OK },
		{ PROTO_WRITEBACK, "type=huge_idle\nmax_pages=10\n", PROTO_OK },
		{ PROTO_WRITEBACK, "threshold=1024\n", PROTO_EARGS },
		{ PROTO_WRITEBACK, "type=idle\nthreshold=0\n", PROTO_EARGS },
		{ PROTO_WRITEBACK, "type=bogus\n", PROTO_EARGS },
		{ PROTO_WRITEBACK, "type=idle\ntype=huge\n", PROTO_EARGS },
		{ PROTO_WRITEBACK, "max_pages=1\nmax_pages=2\n", PROTO_EARGS },
		{ PROTO_WRITEBACK, "max_pages=" DIGITS20 "1\n", PROTO_EARGS },
		{ PROTO_WRITEBACK, "age=60\n", PROTO_EARGS },
		{ PROTO_WRITEBACK, "bogus=1\n", PROTO_EARGS },
	};
	static const int types[] = { PROTO_IDLE, PROTO_RECOMPRESS,
	    PROTO_WRITEBACK };
	static const char *const names[] = { "idle", "recompress",
	    "writeback" };
	struct proto_msg m;
	size_t k, n, used;

	for (k = 0; k < 3; k++)
		ok(proto_type_by_name(names[k]) == types[k] &&
		    strcmp(proto_type_name(types[k]), names[k]) == 0,
		    "%s by name", names[k]);
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		n = strlen(cases[k].lines);
		proto_begin(&b, cases[k].type);
		memcpy(b.data + PROTO_HDR_SIZE, cases[k].lines, n);
		b.len = PROTO_HDR_SIZE + n;
		ok(proto_finish(&b) == PROTO_OK &&
		    parse(b.data, b.len, &m, &used) == PROTO_OK &&
		    used == b.len &&
		    proto_check_request(&m) == cases[k].want,
		    "%s with \"%s\": %s", names[cases[k].type - PROTO_IDLE],
		    escaped(cases[k].lines),
		    cases[k].want == PROTO_OK ? "taken" : "bad arguments");
		if (cases[k].want == PROTO_OK)
			ok(prefixes_truncated(b.data, b.len),
			    "and every prefix of it is truncated");
	}
}

static void
test_requests(void)
{
	static const int types[] = { PROTO_STATUS, PROTO_STAT,
	    PROTO_CLASSES, PROTO_COMPACT, PROTO_RESET_MAX, PROTO_RESTART };
	struct proto_msg m;
	char v[64];
	size_t i, used;
	int r;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		proto_begin(&b, types[i]);
		ok(proto_finish(&b) == PROTO_OK && b.len == PROTO_HDR_SIZE,
		    "%s: a bare header", proto_type_name(types[i]));
		r = parse(b.data, b.len, &m, &used);
		ok(r == PROTO_OK && m.type == types[i] && m.len == 0 &&
		    used == PROTO_HDR_SIZE &&
		    proto_check_request(&m) == PROTO_OK,
		    "%s round trips", proto_type_name(types[i]));
		ok(proto_type_by_name(proto_type_name(types[i])) == types[i],
		    "%s by name", proto_type_name(types[i]));
		ok(prefixes_truncated(b.data, b.len),
		    "%s: every prefix is truncated", proto_type_name(types[i]));
		/* With an argument it takes none. */
		proto_begin(&b, types[i]);
		proto_add(&b, "size", "1M");
		proto_finish(&b);
		ok(parse(b.data, b.len, &m, &used) == PROTO_OK &&
		    proto_check_request(&m) == PROTO_EARGS,
		    "%s with an argument: bad arguments",
		    proto_type_name(types[i]));
	}
	ok(proto_type_by_name("nope") == -1 && proto_type_name(99) == NULL,
	    "unknown names and types");

	/* stop: nothing, or force=yes or force=no, once. */
	{
		static const struct {
			const char *lines;	/* key=value\n ... */
			int want;
		} stops[] = {
			{ "", PROTO_OK },
			{ "force=yes\n", PROTO_OK },
			{ "force=no\n", PROTO_OK },
			{ "force=maybe\n", PROTO_EARGS },
			{ "force=\n", PROTO_EARGS },
			{ "size=1M\n", PROTO_EARGS },
			{ "force=yes\nforce=yes\n", PROTO_EARGS },
		};
		size_t k;

		ok(proto_type_by_name("stop") == PROTO_STOP &&
		    strcmp(proto_type_name(PROTO_STOP), "stop") == 0,
		    "stop by name");
		for (k = 0; k < sizeof(stops) / sizeof(stops[0]); k++) {
			proto_begin(&b, PROTO_STOP);
			memcpy(b.data + PROTO_HDR_SIZE, stops[k].lines,
			    strlen(stops[k].lines));
			b.len = PROTO_HDR_SIZE + strlen(stops[k].lines);
			ok(proto_finish(&b) == PROTO_OK &&
			    parse(b.data, b.len, &m, &used) == PROTO_OK &&
			    proto_check_request(&m) == stops[k].want,
			    "stop with \"%.*s\": %s",
			    (int)strcspn(stops[k].lines, "\n"),
			    stops[k].lines, stops[k].want == PROTO_OK ?
			    "taken" : "bad arguments");
		}
	}

	/* restart: nothing, or handover=yes or handover=no, once. */
	{
		static const struct {
			const char *lines;
			int want;
		} restarts[] = {
			{ "handover=yes\n", PROTO_OK },
			{ "handover=no\n", PROTO_OK },
			{ "handover=1\n", PROTO_EARGS },
			{ "force=yes\n", PROTO_EARGS },
			{ "handover=yes\nhandover=yes\n", PROTO_EARGS },
		};
		size_t k;

		for (k = 0; k < sizeof(restarts) / sizeof(restarts[0]); k++) {
			proto_begin(&b, PROTO_RESTART);
			memcpy(b.data + PROTO_HDR_SIZE, restarts[k].lines,
			    strlen(restarts[k].lines));
			b.len = PROTO_HDR_SIZE + strlen(restarts[k].lines);
			ok(proto_finish(&b) == PROTO_OK &&
			    parse(b.data, b.len, &m, &used) == PROTO_OK &&
			    proto_check_request(&m) == restarts[k].want,
			    "restart with \"%.*s\": %s",
			    (int)strcspn(restarts[k].lines, "\n"),
			    restarts[k].lines, restarts[k].want == PROTO_OK ?
			    "taken" : "bad arguments");
		}
	}

	test_idle_requests();

	for (i = 0; i < 2; i++) {
		int t = i == 0 ? PROTO_LIMIT : PROTO_SHRINK;
		const char *n = proto_type_name(t);

		proto_begin(&b, t);
		proto_add(&b, "size", "%s", "512M");
		ok(proto_finish(&b) == PROTO_OK, "%s 512M built", n);
		r = parse(b.data, b.len, &m, &used);
		ok(r == PROTO_OK && m.type == t && used == b.len &&
		    proto_check_request(&m) == PROTO_OK &&
		    proto_get(&m, "size", v, sizeof(v)) != NULL &&
		    strcmp(v, "512M") == 0, "%s 512M round trips", n);
		ok(prefixes_truncated(b.data, b.len),
		    "%s: every prefix is truncated", n);

		proto_begin(&b, t);
		proto_finish(&b);
		parse(b.data, b.len, &m, &used);
		ok(proto_check_request(&m) == PROTO_EARGS,
		    "%s without a size: bad arguments (zero length)", n);
		proto_begin(&b, t);
		proto_add(&b, "size", "%s", "");
		proto_finish(&b);
		parse(b.data, b.len, &m, &used);
		ok(proto_check_request(&m) == PROTO_EARGS,
		    "%s with an empty size: bad arguments", n);
		proto_begin(&b, t);
		proto_add(&b, "bytes", "1");
		proto_finish(&b);
		parse(b.data, b.len, &m, &used);
		ok(proto_check_request(&m) == PROTO_EARGS,
		    "%s with another key: bad arguments", n);
		proto_begin(&b, t);
		proto_add(&b, "size", "1");
		proto_add(&b, "size", "2");
		proto_finish(&b);
		parse(b.data, b.len, &m, &used);
		ok(proto_check_request(&m) == PROTO_EARGS,
		    "%s with two sizes: bad arguments", n);
		proto_begin(&b, t);
		proto_add(&b, "size", "1");
		proto_end_record(&b);
		proto_finish(&b);
		parse(b.data, b.len, &m, &used);
		ok(proto_check_request(&m) == PROTO_EARGS,
		    "%s with a record end: bad arguments", n);
	}
	proto_begin(&b, PROTO_REPLY);
	proto_finish(&b);
	parse(b.data, b.len, &m, &used);
	ok(proto_check_request(&m) == PROTO_ETYPE,
	    "a reply is not a request");
}

static void
test_replies(void)
{
	struct proto_iter it;
	struct proto_msg m;
	char v[PROTO_VALUE_MAX + 1], big[PROTO_VALUE_MAX + 100];
	size_t used;
	int r, kv, ends;

	/* A table: records of key=value lines. */
	proto_begin(&b, PROTO_REPLY);
	proto_add_u64(&b, "orig_data_size", UINT64_MAX);
	proto_add(&b, "name", "swap0");
	proto_add(&b, "empty", "%s", "");
	proto_end_record(&b);
	proto_add(&b, "name", "swap1");
	proto_end_record(&b);
	ok(proto_finish(&b) == PROTO_OK, "a reply of two records built");
	r = parse(b.data, b.len, &m, &used);
	ok(r == PROTO_OK && m.type == PROTO_REPLY && used == b.len,
	    "it parses");
	ok(proto_get(&m, "orig_data_size", v, sizeof(v)) != NULL &&
	    strcmp(v, "18446744073709551615") == 0, "a u64 round trips");
	ok(proto_get(&m, "empty", v, sizeof(v)) != NULL && v[0] == '\0',
	    "an empty value round trips");
	ok(proto_get(&m, "missing", v, sizeof(v)) == NULL, "a missing key");
	proto_iter_init(&it, &m);
	kv = ends = 0;
	while ((r = proto_next(&it)) != 0)
		r == PROTO_KV ? kv++ : ends++;
	ok(kv == 4 && ends == 2, "4 values and 2 record ends iterated");
	ok(prefixes_truncated(b.data, b.len), "every prefix is truncated");

	/* Errors. */
	proto_error(&b, PROTO_ERR_PERM, "permission denied: only root may %s",
	    "compact");
	r = parse(b.data, b.len, &m, &used);
	ok(r == PROTO_OK && m.type == PROTO_ERROR, "an error reply parses");
	ok(proto_get(&m, "error", v, sizeof(v)) && atoi(v) == PROTO_ERR_PERM,
	    "with its code");
	ok(proto_get(&m, "name", v, sizeof(v)) &&
	    strcmp(v, "permission-denied") == 0, "its name");
	ok(proto_get(&m, "message", v, sizeof(v)) &&
	    strcmp(v, "permission denied: only root may compact") == 0,
	    "and its message");

	/* Values are made safe, cut to size; keys are checked. */
	proto_begin(&b, PROTO_REPLY);
	proto_add(&b, "v", "a\nb\rc\x01\x7f");
	proto_finish(&b);
	ok(parse(b.data, b.len, &m, &used) == PROTO_OK &&
	    proto_get(&m, "v", v, sizeof(v)) && strcmp(v, "a?b?c??") == 0,
	    "control characters in values become '?'");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	proto_begin(&b, PROTO_REPLY);
	proto_add(&b, "v", "%s", big);
	ok(proto_finish(&b) == PROTO_OK &&
	    parse(b.data, b.len, &m, &used) == PROTO_OK &&
	    proto_get(&m, "v", v, sizeof(v)) &&
	    strlen(v) == PROTO_VALUE_MAX, "a long value is cut to %d",
	    PROTO_VALUE_MAX);
	proto_begin(&b, PROTO_REPLY);
	proto_add(&b, "Bad-Key", "1");
	ok(proto_finish(&b) == PROTO_EPAYLOAD, "a bad key is refused");
	proto_begin(&b, PROTO_REPLY);
	proto_add(&b, "", "1");
	ok(proto_finish(&b) == PROTO_EPAYLOAD, "an empty key is refused");
	memset(big, 'k', PROTO_KEY_MAX + 1);
	big[PROTO_KEY_MAX + 1] = '\0';
	proto_begin(&b, PROTO_REPLY);
	proto_add(&b, big, "1");
	ok(proto_finish(&b) == PROTO_EPAYLOAD, "a key of %d is refused",
	    PROTO_KEY_MAX + 1);
	big[PROTO_KEY_MAX] = '\0';
	proto_begin(&b, PROTO_REPLY);
	proto_add(&b, big, "1");
	ok(proto_finish(&b) == PROTO_OK &&
	    parse(b.data, b.len, &m, &used) == PROTO_OK,
	    "a key of %d is fine", PROTO_KEY_MAX);

	/* Filling the buffer: the largest message fits, more does not. */
	proto_begin(&b, PROTO_REPLY);
	memset(big, 'x', PROTO_VALUE_MAX);
	big[PROTO_VALUE_MAX] = '\0';
	while (b.len + 2 + PROTO_VALUE_MAX + 1 <= PROTO_MAX_MSG)
		proto_add(&b, "v", "%s", big);
	/* Pad to exactly PROTO_MAX_MSG. */
	big[PROTO_MAX_MSG - b.len - 3] = '\0';
	proto_add(&b, "w", "%s", big);
	ok(proto_finish(&b) == PROTO_OK && b.len == PROTO_MAX_MSG,
	    "a message of exactly %d bytes", PROTO_MAX_MSG);
	ok(parse(b.data, b.len, &m, &used) == PROTO_OK &&
	    used == PROTO_MAX_MSG, "it parses");
	proto_end_record(&b);
	ok(proto_finish(&b) == PROTO_ETOOBIG, "one byte more is too big");
}

static void
test_bad(void)
{
	struct proto_msg m;
	size_t used, i;
	int r;

	ok(parse("", 0, &m, &used) == PROTO_ETRUNC && used == 0,
	    "zero bytes: truncated");
	ok(parse("Z", 1, &m, &used) == PROTO_ETRUNC,
	    "one good byte: truncated");
	ok(parse("X", 1, &m, &used) == PROTO_EMAGIC,
	    "one bad byte: bad magic at once");
	ok(parse("ZSDX", 4, &m, &used) == PROTO_EMAGIC, "bad magic");
	ok(parse("GET / HTTP/1.0\r\n\r\n", 18, &m, &used) == PROTO_EMAGIC,
	    "HTTP: bad magic");

	header(raw, 2, PROTO_STAT, 0, 0);
	ok(parse(raw, PROTO_HDR_SIZE, &m, &used) == PROTO_EVERSION &&
	    used == 0, "version 2: unsupported");
	ok(parse(raw, 5, &m, &used) == PROTO_EVERSION,
	    "version 2, seen in the 5th byte");
	header(raw, 0, PROTO_STAT, 0, 0);
	ok(parse(raw, PROTO_HDR_SIZE, &m, &used) == PROTO_EVERSION,
	    "version 0: unsupported");
	header(raw, PROTO_VERSION, PROTO_STAT, 1, 0);
	ok(parse(raw, PROTO_HDR_SIZE, &m, &used) == PROTO_ERESERVED,
	    "reserved bytes set");
	header(raw, PROTO_VERSION, PROTO_STAT, 0x100, 0);
	ok(parse(raw, 7, &m, &used) == PROTO_ERESERVED,
	    "reserved byte set, seen in the 7th byte");

	header(raw, PROTO_VERSION, PROTO_STAT, 0, PROTO_MAX_PAYLOAD + 1);
	ok(parse(raw, PROTO_HDR_SIZE, &m, &used) == PROTO_ETOOBIG &&
	    used == 0, "length %d: too big", PROTO_MAX_PAYLOAD + 1);
	header(raw, PROTO_VERSION, PROTO_STAT, 0, 0xffffffff);
	ok(parse(raw, 9, &m, &used) == PROTO_ETOOBIG,
	    "length 4G: too big, seen in the 9th byte");
	header(raw, PROTO_VERSION, PROTO_STAT, 0, 0x00ffffff);
	ok(parse(raw, PROTO_HDR_SIZE, &m, &used) == PROTO_ETOOBIG,
	    "length 16M: too big");
	header(raw, PROTO_VERSION, PROTO_REPLY, 0, PROTO_MAX_PAYLOAD);
	for (i = PROTO_HDR_SIZE; i < PROTO_MAX_MSG; i += 8) {
		memcpy(raw + i, "k=vvvvv\n", 8);
	}
	r = parse(raw, PROTO_MAX_MSG - 1, &m, &used);
	ok(r == PROTO_ETRUNC, "the largest payload, one byte short: "
	    "truncated");
	r = parse(raw, PROTO_MAX_MSG, &m, &used);
	ok(r == PROTO_EPAYLOAD && used == PROTO_MAX_MSG,
	    "the largest payload, whole, last line cut: malformed, framed");

	header(raw, PROTO_VERSION, 0, 0, 0);
	ok(parse(raw, PROTO_HDR_SIZE, &m, &used) == PROTO_ETYPE &&
	    used == PROTO_HDR_SIZE, "type 0: unknown, framed");
	header(raw, PROTO_VERSION, 200, 0, 4);
	memcpy(raw + PROTO_HDR_SIZE, "a=b\n", 4);
	ok(parse(raw, PROTO_HDR_SIZE + 4, &m, &used) == PROTO_ETYPE &&
	    used == PROTO_HDR_SIZE + 4, "type 200: unknown, framed");

	/* Payloads. */
	{
		static const struct {
			const char	*p;
			int		 want;
		} payloads[] = {
			{ "a=b\n", PROTO_OK },
			{ "\n", PROTO_OK },
			{ "a=\n\n", PROTO_OK },
			{ "a_0=x y=z\n", PROTO_OK },
			{ "a=b", PROTO_EPAYLOAD },
			{ "=b\n", PROTO_EPAYLOAD },
			{ "ab\n", PROTO_EPAYLOAD },
			{ "A=b\n", PROTO_EPAYLOAD },
			{ "a-b=c\n", PROTO_EPAYLOAD },
			{ "a=b\tc\n", PROTO_EPAYLOAD },
			{ "a=b\rc\n", PROTO_EPAYLOAD },
			{ "a=b\x7f\n", PROTO_EPAYLOAD },
			{ "a b=c\n", PROTO_EPAYLOAD },
			{ "a=b\n\x00", PROTO_EPAYLOAD },
			{ "\xff\xfe\n", PROTO_EPAYLOAD },
		};
		size_t n;

		for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
			n = strlen(payloads[i].p);
			if (i == 13)
				n = 5;	/* the NUL too */
			header(raw, PROTO_VERSION, PROTO_REPLY, 0,
			    (uint32_t)n);
			memcpy(raw + PROTO_HDR_SIZE, payloads[i].p, n);
			r = parse(raw, PROTO_HDR_SIZE + n, &m, &used);
			ok(r == payloads[i].want && (r == PROTO_OK ||
			    used == PROTO_HDR_SIZE + n),
			    "payload #%zu: %s", i, proto_strerror(r));
		}
	}
	/* Too long a key or value. */
	header(raw, PROTO_VERSION, PROTO_REPLY, 0, PROTO_VALUE_MAX + 4);
	raw[PROTO_HDR_SIZE] = 'k';
	raw[PROTO_HDR_SIZE + 1] = '=';
	memset(raw + PROTO_HDR_SIZE + 2, 'v', PROTO_VALUE_MAX + 1);
	raw[PROTO_HDR_SIZE + PROTO_VALUE_MAX + 3] = '\n';
	ok(parse(raw, PROTO_HDR_SIZE + PROTO_VALUE_MAX + 4, &m, &used) ==
	    PROTO_EPAYLOAD, "a value of %d bytes: malformed",
	    PROTO_VALUE_MAX + 1);
	header(raw, PROTO_VERSION, PROTO_REPLY, 0, PROTO_KEY_MAX + 4);
	memset(raw + PROTO_HDR_SIZE, 'k', PROTO_KEY_MAX + 1);
	memcpy(raw + PROTO_HDR_SIZE + PROTO_KEY_MAX + 1, "=v\n", 3);
	ok(parse(raw, PROTO_HDR_SIZE + PROTO_KEY_MAX + 4, &m, &used) ==
	    PROTO_EPAYLOAD, "a key of %d bytes: malformed",
	    PROTO_KEY_MAX + 1);

	/* Two messages back to back: one at a time. */
	proto_begin(&b, PROTO_STAT);
	proto_finish(&b);
	memcpy(raw, b.data, b.len);
	proto_begin(&b, PROTO_LIMIT);
	proto_add(&b, "size", "none");
	proto_finish(&b);
	memcpy(raw + PROTO_HDR_SIZE, b.data, b.len);
	ok(parse(raw, PROTO_HDR_SIZE + b.len, &m, &used) == PROTO_OK &&
	    m.type == PROTO_STAT && used == PROTO_HDR_SIZE,
	    "the first of two messages");
	ok(parse(raw + used, b.len, &m, &used) == PROTO_OK &&
	    m.type == PROTO_LIMIT && used == b.len, "then the second");

	for (r = PROTO_OK; r <= PROTO_EARGS; r++)
		if (strcmp(proto_strerror(r), "unknown status") == 0)
			break;
	ok(r > PROTO_EARGS, "every status has a message");
	for (r = PROTO_ERR_PROTOCOL; r <= PROTO_ERR_FAILED; r++)
		if (strcmp(proto_error_name(r), "unknown-error") == 0)
			break;
	ok(r > PROTO_ERR_FAILED, "every error code has a name");
}

int
main(void)
{
	tap_watchdog(600);
	test_requests();
	test_replies();
	test_bad();
	return done_testing();
}
