/*
 * proto.c - framing, parsing and building control messages (proto.h).
 *
 * The parser trusts nothing: every byte of the header is checked as soon
 * as it has arrived, so garbage is refused without waiting for a whole
 * header, and the payload is checked line by line before anyone reads it.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

static const struct {
	int		 type;
	const char	*name;
} proto_types[] = {
	{ PROTO_STATUS, "status" },
	{ PROTO_STAT, "stat" },
	{ PROTO_CLASSES, "classes" },
	{ PROTO_COMPACT, "compact" },
	{ PROTO_LIMIT, "limit" },
	{ PROTO_SHRINK, "shrink" },
	{ PROTO_RESET_MAX, "reset-max" },
	{ PROTO_STOP, "stop" },
	{ PROTO_RESTART, "restart" },
	{ PROTO_IDLE, "idle" },
	{ PROTO_RECOMPRESS, "recompress" },
	{ PROTO_WRITEBACK, "writeback" },
};

#define NTYPES	(sizeof(proto_types) / sizeof(proto_types[0]))

static bool
proto_known_type(int type)
{
	return (type >= PROTO_STATUS && type <= PROTO_WRITEBACK) ||
	    type == PROTO_REPLY || type == PROTO_ERROR;
}

static bool
proto_key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool
proto_value_char(unsigned char c)
{
	return c >= 0x20 && c != 0x7f;
}

/* One line starting at p (before end): its length with '\n', or 0. */
static size_t
proto_check_line(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *q = p;
	size_t n;

	if (*q == '\n')
		return 1;
	for (n = 0; q < end && proto_key_char(*q); q++)
		n++;
	if (n == 0 || n > PROTO_KEY_MAX || q == end || *q != '=')
		return 0;
	for (q++, n = 0; q < end && proto_value_char(*q); q++)
		n++;
	if (n > PROTO_VALUE_MAX || q == end || *q != '\n')
		return 0;
	return (size_t)(q + 1 - p);
}

int
proto_parse(const void *buf, size_t len, struct proto_msg *m, size_t *used)
{
	const unsigned char *b = buf, *p, *end;
	size_t plen, n, i;

	*used = 0;
	for (i = 0; i < 4 && i < len; i++)
		if (b[i] != (unsigned char)PROTO_MAGIC[i])
			return PROTO_EMAGIC;
	if (len > 4 && b[4] != PROTO_VERSION)
		return PROTO_EVERSION;
	if ((len > 6 && b[6] != 0) || (len > 7 && b[7] != 0))
		return PROTO_ERESERVED;
	/* The top byte of the length is enough to tell it is too big. */
	if (len > 8 && b[8] != 0)
		return PROTO_ETOOBIG;
	if (len < PROTO_HDR_SIZE)
		return PROTO_ETRUNC;
	plen = (size_t)b[8] << 24 | (size_t)b[9] << 16 | (size_t)b[10] << 8 |
	    b[11];
	if (plen > PROTO_MAX_PAYLOAD)
		return PROTO_ETOOBIG;
	if (len - PROTO_HDR_SIZE < plen)
		return PROTO_ETRUNC;

	*used = PROTO_HDR_SIZE + plen;
	m->type = b[5];
	m->len = plen;
	m->payload = b + PROTO_HDR_SIZE;
	if (!proto_known_type(m->type))
		return PROTO_ETYPE;
	end = m->payload + plen;
	for (p = m->payload; p < end; p += n)
		if ((n = proto_check_line(p, end)) == 0)
			return PROTO_EPAYLOAD;
	return PROTO_OK;
}

/* 1 to 20 digits: a count zsd parses with strtoull. */
static bool
proto_digits(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n > 0 && n <= 20 && s[n] == '\0';
}

/*
 * The arguments of idle, recompress and writeback: each key at most
 * once, from those the type takes, with a value of its kind.
 */
static int
proto_check_idle(const struct proto_msg *m)
{
	static const char *const types[] = { "idle", "huge", "huge_idle",
	    "incompressible" };
	struct proto_iter it;
	unsigned int seen = 0, bit, k, ntypes;
	int r;

	ntypes = m->type == PROTO_WRITEBACK ? 4 : 3;
	proto_iter_init(&it, m);
	while ((r = proto_next(&it)) != 0) {
		if (r != PROTO_KV)
			return PROTO_EARGS;
		if (m->type == PROTO_IDLE && strcmp(it.key, "age") == 0) {
			bit = 1;
			if (strcmp(it.value, "all") != 0 &&
			    !proto_digits(it.value))
				return PROTO_EARGS;
		} else if (m->type != PROTO_IDLE &&
		    strcmp(it.key, "type") == 0) {
			bit = 2;
			for (k = 0; k < ntypes; k++)
				if (strcmp(it.value, types[k]) == 0)
					break;
			if (k == ntypes)
				return PROTO_EARGS;
		} else if (m->type == PROTO_RECOMPRESS &&
		    strcmp(it.key, "threshold") == 0) {
			bit = 4;
			if (!proto_digits(it.value))
				return PROTO_EARGS;
		} else if (m->type != PROTO_IDLE &&
		    strcmp(it.key, "max_pages") == 0) {
			bit = 8;
			if (!proto_digits(it.value))
				return PROTO_EARGS;
		} else
			return PROTO_EARGS;
		if (seen & bit)
			return PROTO_EARGS;
		seen |= bit;
	}
	return m->type != PROTO_IDLE || seen == 1 ? PROTO_OK : PROTO_EARGS;
}

int
proto_check_request(const struct proto_msg *m)
{
	const char *key;
	struct proto_iter it;
	int r, n = 0;

	switch (m->type) {
	case PROTO_STATUS:
	case PROTO_STAT:
	case PROTO_CLASSES:
	case PROTO_COMPACT:
	case PROTO_RESET_MAX:
		return m->len == 0 ? PROTO_OK : PROTO_EARGS;
	case PROTO_LIMIT:
	case PROTO_SHRINK:
		/* Exactly one line: size=something. */
		proto_iter_init(&it, m);
		while ((r = proto_next(&it)) != 0) {
			if (r != PROTO_KV || strcmp(it.key, "size") != 0 ||
			    it.value[0] == '\0')
				return PROTO_EARGS;
			n++;
		}
		return n == 1 ? PROTO_OK : PROTO_EARGS;
	case PROTO_STOP:
	case PROTO_RESTART:
		/* Nothing, or force=yes|no (stop), handover=yes|no (restart). */
		key = m->type == PROTO_STOP ? "force" : "handover";
		proto_iter_init(&it, m);
		while ((r = proto_next(&it)) != 0) {
			if (r != PROTO_KV || strcmp(it.key, key) != 0 ||
			    (strcmp(it.value, "yes") != 0 &&
			    strcmp(it.value, "no") != 0))
				return PROTO_EARGS;
			n++;
		}
		return n <= 1 ? PROTO_OK : PROTO_EARGS;
	case PROTO_IDLE:
	case PROTO_RECOMPRESS:
	case PROTO_WRITEBACK:
		return proto_check_idle(m);
	default:
		return PROTO_ETYPE;
	}
}

const char *
proto_strerror(int status)
{
	switch (status) {
	case PROTO_OK:		return "no error";
	case PROTO_ETRUNC:	return "truncated message";
	case PROTO_EMAGIC:	return "bad magic: not a zsd control message";
	case PROTO_EVERSION:	return "unsupported protocol version";
	case PROTO_ERESERVED:	return "reserved header bytes not zero";
	case PROTO_ETOOBIG:	return "message too large";
	case PROTO_ETYPE:	return "unknown message type";
	case PROTO_EPAYLOAD:	return "malformed payload";
	case PROTO_EARGS:	return "bad arguments";
	}
	return "unknown status";
}

const char *
proto_type_name(int type)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		if (proto_types[i].type == type)
			return proto_types[i].name;
	return NULL;
}

int
proto_type_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		if (strcmp(proto_types[i].name, name) == 0)
			return proto_types[i].type;
	return -1;
}

const char *
proto_error_name(int code)
{
	switch (code) {
	case PROTO_ERR_PROTOCOL:	return "protocol";
	case PROTO_ERR_UNKNOWN:		return "unknown-command";
	case PROTO_ERR_ARGS:		return "bad-arguments";
	case PROTO_ERR_PERM:		return "permission-denied";
	case PROTO_ERR_BUSY:		return "busy";
	case PROTO_ERR_FAILED:		return "failed";
	}
	return "unknown-error";
}

void
proto_begin(struct proto_buf *b, int type)
{
	memcpy(b->data, PROTO_MAGIC, 4);
	b->data[4] = PROTO_VERSION;
	b->data[5] = (unsigned char)type;
	memset(b->data + 6, 0, 6);
	b->len = PROTO_HDR_SIZE;
	b->overflow = false;
	b->bad = false;
}

static void
proto_put(struct proto_buf *b, const void *p, size_t n)
{
	if (b->overflow || n > sizeof(b->data) - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
proto_vadd(struct proto_buf *b, const char *key, const char *fmt,
    va_list ap)
{
	char value[PROTO_VALUE_MAX + 1];
	size_t klen = strlen(key), i;
	int n;

	if (klen == 0 || klen > PROTO_KEY_MAX) {
		b->bad = true;
		return;
	}
	for (i = 0; i < klen; i++)
		if (!proto_key_char((unsigned char)key[i])) {
			b->bad = true;
			return;
		}
	n = vsnprintf(value, sizeof(value), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(value))
		n = sizeof(value) - 1;
	for (i = 0; i < (size_t)n; i++)
		if (!proto_value_char((unsigned char)value[i]))
			value[i] = '?';
	proto_put(b, key, klen);
	proto_put(b, "=", 1);
	proto_put(b, value, (size_t)n);
	proto_put(b, "\n", 1);
}

void
proto_add(struct proto_buf *b, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	proto_vadd(b, key, fmt, ap);
	va_end(ap);
}

void
proto_add_u64(struct proto_buf *b, const char *key, uint64_t v)
{
	proto_add(b, key, "%llu", (unsigned long long)v);
}

void
proto_end_record(struct proto_buf *b)
{
	proto_put(b, "\n", 1);
}

int
proto_finish(struct proto_buf *b)
{
	size_t plen = b->len - PROTO_HDR_SIZE;

	if (b->bad)
		return PROTO_EPAYLOAD;
	if (b->overflow || plen > PROTO_MAX_PAYLOAD)
		return PROTO_ETOOBIG;
	b->data[8] = (unsigned char)(plen >> 24);
	b->data[9] = (unsigned char)(plen >> 16);
	b->data[10] = (unsigned char)(plen >> 8);
	b->data[11] = (unsigned char)plen;
	return PROTO_OK;
}

void
proto_error(struct proto_buf *b, int code, const char *fmt, ...)
{
	va_list ap;

	proto_begin(b, PROTO_ERROR);
	proto_add(b, "error", "%d", code);
	proto_add(b, "name", "%s", proto_error_name(code));
	va_start(ap, fmt);
	proto_vadd(b, "message", fmt, ap);
	va_end(ap);
	(void)proto_finish(b);
}

void
proto_iter_init(struct proto_iter *it, const struct proto_msg *m)
{
	it->p = m->payload;
	it->end = m->payload + m->len;
	it->key[0] = it->value[0] = '\0';
}

/* The payload was checked by proto_parse; the bounds are kept anyway. */
int
proto_next(struct proto_iter *it)
{
	const unsigned char *eq, *nl;
	size_t n;

	if (it->p >= it->end)
		return 0;
	if (*it->p == '\n') {
		it->p++;
		return PROTO_RECORD_END;
	}
	if ((nl = memchr(it->p, '\n', (size_t)(it->end - it->p))) == NULL ||
	    (eq = memchr(it->p, '=', (size_t)(nl - it->p))) == NULL) {
		it->p = it->end;
		return 0;
	}
	n = (size_t)(eq - it->p);
	if (n > PROTO_KEY_MAX)
		n = PROTO_KEY_MAX;
	memcpy(it->key, it->p, n);
	it->key[n] = '\0';
	n = (size_t)(nl - eq - 1);
	if (n > PROTO_VALUE_MAX)
		n = PROTO_VALUE_MAX;
	memcpy(it->value, eq + 1, n);
	it->value[n] = '\0';
	it->p = nl + 1;
	return PROTO_KV;
}

const char *
proto_get(const struct proto_msg *m, const char *key, char *buf,
    size_t len)
{
	struct proto_iter it;
	int r;

	proto_iter_init(&it, m);
	while ((r = proto_next(&it)) != 0)
		if (r == PROTO_KV && strcmp(it.key, key) == 0) {
			snprintf(buf, len, "%s", it.value);
			return buf;
		}
	return NULL;
}
