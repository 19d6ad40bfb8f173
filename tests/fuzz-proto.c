/*
 * fuzz-proto.c - a fuzz target for the control protocol's parser.
 *
 * LLVMFuzzerTestOneInput() parses any bytes and checks what proto.h
 * promises: *used within the input, nothing read past it, every message
 * that parses iterates back to the same bytes through the builder, and
 * every prefix of it is PROTO_ETRUNC.
 *
 * Built as usual (make check), main() below runs a short deterministic
 * fuzz of its own: random bytes and mutations of good messages.
 *	tests/fuzz-proto [seed [iterations]]
 * With clang, a libFuzzer build runs as long as you like:
 *	make fuzz FUZZ_TIME=600		(in the build directory)
 * or by hand:
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -DZSD_LIBFUZZER \
 *	    -I$builddir -Idaemon tests/fuzz-proto.c daemon/proto.c \
 *	    -o fuzz-proto-lf && ./fuzz-proto-lf -max_len=70000 corpus/
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct proto_buf	rebuilt;

static void
check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz-proto: broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_iter it;
	struct proto_msg m, m2;
	size_t used, used2, off;
	unsigned char *copy;
	int r, n;

	/* An exact-size copy: ASan sees any read past the end. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	for (off = 0; off < size; off += used) {
		r = proto_parse(copy + off, size - off, &m, &used);
		check(used <= size - off, "used past the input");
		if (r == PROTO_ETRUNC) {
			check(used == 0, "used set on a truncated message");
			break;
		}
		if (r != PROTO_OK && r != PROTO_ETYPE && r != PROTO_EPAYLOAD) {
			check(used == 0, "used set on broken framing");
			break;
		}
		check(used >= PROTO_HDR_SIZE && used <= PROTO_MAX_MSG,
		    "message size out of bounds");
		if (r != PROTO_OK)
			continue;
		check(m.len == used - PROTO_HDR_SIZE, "length");
		r = proto_check_request(&m);
		check(r == PROTO_OK || r == PROTO_EARGS || r == PROTO_ETYPE,
		    "proto_check_request's answer");

		/* Iterate and rebuild: the same bytes. */
		proto_begin(&rebuilt, m.type);
		proto_iter_init(&it, &m);
		while ((n = proto_next(&it)) != 0) {
			if (n == PROTO_RECORD_END)
				proto_end_record(&rebuilt);
			else
				proto_add(&rebuilt, it.key, "%s", it.value);
		}
		check(proto_finish(&rebuilt) == PROTO_OK, "rebuilt");
		check(rebuilt.len == used &&
		    memcmp(rebuilt.data, copy + off, used) == 0,
		    "rebuilt differs");
		r = proto_parse(rebuilt.data, rebuilt.len, &m2, &used2);
		check(r == PROTO_OK && used2 == used && m2.type == m.type,
		    "rebuilt does not parse the same");
		/* A few prefixes: truncated. */
		check(proto_parse(copy + off, used - 1, &m2, &used2) ==
		    PROTO_ETRUNC, "prefix of one byte less");
		check(proto_parse(copy + off, used / 2, &m2, &used2) ==
		    PROTO_ETRUNC, "prefix of half");
	}
	free(copy);
	return 0;
}

#ifndef ZSD_LIBFUZZER
/* xorshift64*: deterministic for a seed. */
static uint64_t	rng;

static uint64_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static unsigned char	buf[PROTO_MAX_MSG + 64];

/* A good message to mutate. */
static size_t
seed_message(void)
{
	static const char *const keys[] = { "size", "name", "error",
	    "message", "class", "orig_data_size", "force", "a", "age",
	    "type", "threshold", "max_pages" };
	static const char *const values[] = { "", "1", "512M", "none",
	    "permission denied", "yes", "0 1 2 3 4 5 6 7 8 9 10 11 12",
	    "all", "idle", "huge", "huge_idle", "incompressible", "4096",
	    "123456789012345678901" };
	static struct proto_buf b;
	int types[] = { PROTO_STATUS, PROTO_STAT, PROTO_CLASSES,
	    PROTO_COMPACT, PROTO_LIMIT, PROTO_SHRINK, PROTO_RESET_MAX,
	    PROTO_STOP, PROTO_RESTART, PROTO_IDLE, PROTO_RECOMPRESS,
	    PROTO_WRITEBACK, PROTO_REPLY, PROTO_ERROR };
	unsigned int i, n = (unsigned int)(rnd() % 6);

	proto_begin(&b, types[rnd() % (sizeof(types) / sizeof(types[0]))]);
	for (i = 0; i < n; i++) {
		if (rnd() % 5 == 0)
			proto_end_record(&b);
		else
			proto_add(&b, keys[rnd() % (sizeof(keys) /
			    sizeof(keys[0]))], "%s", values[rnd() %
			    (sizeof(values) / sizeof(values[0]))]);
	}
	proto_finish(&b);
	memcpy(buf, b.data, b.len);
	return b.len;
}

static size_t
mutate(size_t len)
{
	unsigned int i, n = 1 + (unsigned int)(rnd() % 4);
	size_t at;

	for (i = 0; i < n; i++) {
		at = len ? (size_t)(rnd() % len) : 0;
		switch (rnd() % 6) {
		case 0:		/* flip a bit */
			if (len)
				buf[at] ^= (unsigned char)(1u << (rnd() % 8));
			break;
		case 1:		/* a random byte */
			if (len)
				buf[at] = (unsigned char)rnd();
			break;
		case 2:		/* cut */
			len = at;
			break;
		case 3:		/* a length byte */
			if (len > 11)
				buf[8 + rnd() % 4] = (unsigned char)rnd();
			break;
		case 4:		/* append */
			if (len < sizeof(buf))
				buf[len++] = "=\n\0aZ"[rnd() % 5];
			break;
		case 5:		/* another message after it */
			if (len + PROTO_HDR_SIZE + 64 < sizeof(buf)) {
				memmove(buf + len, buf, PROTO_HDR_SIZE);
				len += PROTO_HDR_SIZE;
			}
			break;
		}
	}
	return len;
}

int
main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
	unsigned long iters = argc > 2 ? strtoul(argv[2], NULL, 0) : 1000000;
	unsigned long i;
	size_t len, j;

	rng = seed * 0x9e3779b97f4a7c15ull + 1;
	printf("# seed %llu, %lu inputs\n", (unsigned long long)seed, iters);
	for (i = 0; i < iters; i++) {
		if (i % 10 == 0) {
			/* Random bytes, mostly short. */
			len = (size_t)(rnd() % (i % 1000 == 0 ?
			    sizeof(buf) : 64));
			for (j = 0; j < len; j++)
				buf[j] = (unsigned char)rnd();
			if (len >= 4 && rnd() % 2)
				memcpy(buf, PROTO_MAGIC, 4);
		} else {
			len = seed_message();
			if (i % 10 != 1)
				len = mutate(len);
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("1..1\nok 1 - %lu inputs parsed, every invariant held\n",
	    iters);
	return 0;
}
#endif
