/*
 * test-store.c - the page store: every kind of page comes back as written
 * and is counted as what it is; byte-addressed I/O at any offset agrees
 * with a plain buffer; overwrites and discards free what they replace;
 * the memory limit refuses writes without harming stored data, refuses
 * new pages before compressing them, and never refuses an overwrite that
 * does not grow its slot or a discard; threads writing the same
 * pages in parts lose nothing; and threads writing the same new contents
 * at the same moment, with merging on, store each once and lose no
 * reference; and a pool at its max_size refuses a write with -ENOMEM
 * and loses nothing.
 *
 * The test is linked with -Wl,--wrap=codec_compress, so that the calls
 * the store makes to the codec can be counted.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "zsd.h"

#define PG	ZSD_PAGE_SIZE

static const enum codec_id codec_ids[] = { CODEC_LZ4, CODEC_ZSTD };

/* The pool of the store test_same_writers' threads write to. */
static struct zs_pool *store_pool_of_test;

/*
 * Every codec_compress call, counted on its way to the real one (the
 * linker's --wrap names them; hence the underscores).
 */
static atomic_ulong compress_calls;

size_t	__real_codec_compress(struct codec_ctx *ctx, enum codec_id id,
	    const void *page, void *dst, size_t cap);
size_t	__wrap_codec_compress(struct codec_ctx *ctx, enum codec_id id,
	    const void *page, void *dst, size_t cap);

size_t
__wrap_codec_compress(struct codec_ctx *ctx, enum codec_id id,
    const void *page, void *dst, size_t cap)
{
	atomic_fetch_add(&compress_calls, 1);
	return __real_codec_compress(ctx, id, page, dst, cap);
}

/* xorshift64*: the same data for the same seed. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void
fill_random(void *buf, size_t len, uint64_t *s)
{
	unsigned char *p = buf;
	uint64_t v;
	size_t i;

	for (i = 0; i < len; i += sizeof(v)) {
		v = rnd(s);
		memcpy(p + i, &v, len - i < sizeof(v) ? len - i : sizeof(v));
	}
}

/* Words picked at random: compresses well, but not to nothing. */
static void
fill_text(void *buf, size_t len, uint64_t *s)
{
	static const char *words[] = { "swap ", "page ", "zspage ",
	    "handle ", "compress ", "the ", "of ", "kernel ", "slot ",
	    "\n", "42 ", "memory " };
	unsigned char *p = buf;
	const char *w;
	size_t i = 0;

	while (i < len) {
		w = words[rnd(s) % (sizeof(words) / sizeof(words[0]))];
		while (*w != '\0' && i < len)
			p[i++] = (unsigned char)*w++;
	}
}

static void
fill_word(void *buf, uint64_t word)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < PG; i += sizeof(word))
		memcpy(p + i, &word, sizeof(word));
}

/* Some page of a kind chosen at random: zero, same, text, random. */
static void
fill_any(void *buf, size_t len, uint64_t *s)
{
	switch (rnd(s) % 4) {
	case 0:
		memset(buf, 0, len);
		break;
	case 1:
		memset(buf, (int)(rnd(s) & 0xff), len);
		break;
	case 2:
		fill_text(buf, len, s);
		break;
	default:
		fill_random(buf, len, s);
		break;
	}
}

static bool
all_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len-- > 0)
		if (*p++ != 0)
			return false;
	return true;
}

static struct zs_pool *
pool_new(void)
{
	struct zs_pool *pool;

	if ((pool = zs_create_pool(NULL)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	return pool;
}

static struct store *
store_new(struct zs_pool *pool, uint64_t nr_pages, enum codec_id codec,
    uint64_t mem_limit)
{
	struct store_options opt = { codec, 1, mem_limit, false };
	struct store *st;
	int error = 0;

	if ((st = store_create(pool, nr_pages, &opt, &error)) == NULL)
		bail("store_create: %s", strerror(-error));
	return st;
}

static struct store_ctx *
ctx_new(struct store *st)
{
	struct store_ctx *ctx;

	if ((ctx = store_ctx_create(st)) == NULL)
		bail("store_ctx_create: %s", strerror(errno));
	return ctx;
}

/* Live objects: those whose free waits in a batch are not. */
static uint64_t
pool_objects(struct zs_pool *pool)
{
	struct zs_pool_stats ps;

	zs_pool_stats(pool, &ps);
	return ps.objects - ps.objs_pending_free;
}

static bool
pool_valid(struct zs_pool *pool)
{
	char why[256] = "";
	int error;

	if ((error = zs_pool_validate(pool, why, sizeof(why))) != 0)
		diag("zs_pool_validate: %d %s", error, why);
	return error == 0;
}

static void
test_codecs(void)
{
	struct codec_ctx *cc;
	/* out: exactly the room codec_compress may use, for ASan to watch. */
	unsigned char page[PG], out[CODEC_DST_SIZE], back[PG];
	uint64_t seed = 1;
	enum codec_id id;
	size_t i, n;

	ok(codec_by_name("lz4", &id) == 0 && id == CODEC_LZ4,
	    "codec_by_name lz4");
	ok(codec_by_name("zstd", &id) == 0 && id == CODEC_ZSTD,
	    "codec_by_name zstd");
	ok(codec_by_name("gzip", &id) == -EINVAL, "codec_by_name gzip: EINVAL");
	ok(strcmp(codec_name(CODEC_ZSTD), "zstd") == 0, "codec_name");

	if ((cc = codec_ctx_create(3)) == NULL)
		bail("codec_ctx_create: %s", strerror(errno));
	fill_text(page, PG, &seed);
	for (i = 0; i < 2; i++) {
		n = codec_compress(cc, codec_ids[i], page, out, sizeof(out));
		ok(n > 0 && n < PG / 2 &&
		    codec_decompress(cc, codec_ids[i], out, n, back) == 0 &&
		    memcmp(page, back, PG) == 0, "%s: text round trip (%zu)",
		    codec_name(codec_ids[i]), n);
		/* zstd wants some slack in dst; lz4 checks cap itself. */
		if (codec_ids[i] == CODEC_LZ4)
			ok(codec_compress(cc, codec_ids[i], page, out, n) == n,
			    "lz4: a result of exactly cap bytes fits");
		ok(codec_compress(cc, codec_ids[i], page, out, n - 1) == 0,
		    "%s: 0 when it does not fit", codec_name(codec_ids[i]));
		out[n / 2] ^= 0x55;
		out[n / 2 + 1] ^= 0xaa;
		ok(codec_decompress(cc, codec_ids[i], out, n / 2, back) ==
		    -EIO, "%s: truncated input: EIO",
		    codec_name(codec_ids[i]));
	}
	/*
	 * Random bytes grow: the codecs may use all of out, and within a
	 * page's cap must say 0.  With no cap they still fit in out.
	 */
	fill_random(page, PG, &seed);
	for (i = 0; i < 2; i++) {
		ok(codec_compress(cc, codec_ids[i], page, out, PG - 1) == 0,
		    "%s: a random page does not fit below a page",
		    codec_name(codec_ids[i]));
		n = codec_compress(cc, codec_ids[i], page, out, SIZE_MAX);
		ok(n >= PG && n <= CODEC_DST_SIZE &&
		    codec_decompress(cc, codec_ids[i], out, n, back) == 0 &&
		    memcmp(page, back, PG) == 0,
		    "%s: a random page, no cap: %zu bytes, round trip",
		    codec_name(codec_ids[i]), n);
	}
	codec_ctx_destroy(cc);
}

/* Every kind of page, with each codec, and what the statistics say. */
static void
test_round_trip(enum codec_id codec)
{
	const char *name = codec_name(codec);
	struct zs_pool *pool = pool_new();
	struct store *st = store_new(pool, 64, codec, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char pages[4][PG], back[PG];
	struct store_stats ss;
	uint64_t seed = 7;
	bool same = true;
	int i;

	memset(pages[0], 0, PG);
	fill_word(pages[1], 0x0123456789abcdefull);	/* bytes differ */
	fill_text(pages[2], PG, &seed);
	fill_random(pages[3], PG, &seed);
	for (i = 0; i < 4; i++)
		if (store_write(st, ctx, (uint64_t)i * PG, pages[i], PG) != 0)
			bail("%s: store_write page %d", name, i);
	for (i = 0; i < 4; i++) {
		memset(back, 0xee, PG);
		if (store_read(st, ctx, (uint64_t)i * PG, back, PG) != PG ||
		    memcmp(back, pages[i], PG) != 0)
			same = false;
	}
	ok(same, "%s: zero, same-filled, text, random pages read back", name);
	ok(store_read(st, ctx, 10 * PG, back, PG) == PG &&
	    all_zero(back, PG), "%s: an empty slot reads zeros", name);

	store_stats(st, &ss);
	ok(ss.pages_stored == 4 && ss.orig_data_size == 4 * PG,
	    "%s: 4 pages stored", name);
	ok(ss.same_pages == 2, "%s: 2 same-filled pages (%llu)", name,
	    (unsigned long long)ss.same_pages);
	ok(ss.huge_pages == 1, "%s: the random page stored raw (%llu)", name,
	    (unsigned long long)ss.huge_pages);
	ok(ss.compr_data_size > PG && ss.compr_data_size < PG + PG / 2,
	    "%s: text compressed to %llu bytes", name,
	    (unsigned long long)(ss.compr_data_size - PG));
	ok(store_pages_stored(st) == ss.pages_stored &&
	    store_compr_size(st) == ss.compr_data_size,
	    "%s: store_pages_stored, store_compr_size as store_stats", name);
	ok(pool_objects(pool) == 2, "%s: two objects in the pool", name);
	ok(ss.writes == 4 && ss.reads == 5, "%s: io counted (%llu w %llu r)",
	    name, (unsigned long long)ss.writes,
	    (unsigned long long)ss.reads);
	ok(ss.mem_used_total == zs_pool_pages_used(pool) * PG &&
	    ss.mem_used_total > 0 && ss.mem_used_max >= ss.mem_used_total,
	    "%s: mem_used_total %llu, max %llu", name,
	    (unsigned long long)ss.mem_used_total,
	    (unsigned long long)ss.mem_used_max);

	store_ctx_destroy(ctx);
	store_destroy(st);
	ok(pool_objects(pool) == 0, "%s: store_destroy frees its objects",
	    name);
	zs_destroy_pool(pool);
}

/* The codec of new writes changes live; pages of either stay readable. */
static void
test_codec_switch(void)
{
	struct zs_pool *pool = pool_new();
	struct store *st = store_new(pool, 8, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	struct store_options opt = { CODEC_ZSTD, 3, 0, false };
	unsigned char page[PG], back[2][PG];
	struct store_stats s1, s2, s3;
	uint64_t seed = 11;

	fill_text(page, PG, &seed);
	store_write(st, ctx, 0, page, PG);
	store_stats(st, &s1);
	store_set_options(st, &opt);
	store_write(st, ctx, PG, page, PG);
	store_stats(st, &s2);
	opt.zstd_level = 19;
	store_set_options(st, &opt);
	store_write(st, ctx, 2 * PG, page, PG);
	store_stats(st, &s3);
	ok(s2.compr_data_size - s1.compr_data_size != s1.compr_data_size,
	    "zstd used after the switch (lz4 %llu, zstd %llu bytes)",
	    (unsigned long long)s1.compr_data_size,
	    (unsigned long long)(s2.compr_data_size - s1.compr_data_size));
	ok(s3.compr_data_size - s2.compr_data_size <=
	    s2.compr_data_size - s1.compr_data_size,
	    "zstd -19 no larger than -3 (%llu)",
	    (unsigned long long)(s3.compr_data_size - s2.compr_data_size));
	ok(store_read(st, ctx, 0, back[0], PG) == PG &&
	    store_read(st, ctx, PG, back[1], PG) == PG &&
	    memcmp(back[0], page, PG) == 0 && memcmp(back[1], page, PG) == 0,
	    "pages of both codecs read back");
	opt.codec = 99;
	store_set_options(st, &opt);
	ok(store_write(st, ctx, 3 * PG, page, PG) == 0 &&
	    store_read(st, ctx, 3 * PG, back[0], PG) == PG &&
	    memcmp(back[0], page, PG) == 0,
	    "an unknown codec in the options is ignored");
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
}

/* Any offset and length, against a plain buffer. */
static void
test_unaligned(enum codec_id codec)
{
	enum { NPAGES = 16, SIZE = NPAGES * PG };
	static const size_t offs[] = { 0, 1, 7, 8, 100, 4095, 4096, 4097,
	    8191, 8192, 12000, SIZE - 4097, SIZE - 1 };
	static const size_t lens[] = { 1, 7, 8, 9, 1000, 4095, 4096, 4097,
	    8191, 8192, 8193, 3 * PG + 5 };
	const char *name = codec_name(codec);
	struct zs_pool *pool = pool_new();
	struct store *st = store_new(pool, NPAGES, codec, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char *ref, *buf, *back;
	unsigned int writes = 0, bad_writes = 0, bad_reads = 0, iter;
	uint64_t seed = 1234, off, len;
	size_t i, j;
	long n;

	ref = calloc(1, SIZE);
	buf = malloc(SIZE);
	back = malloc(SIZE + 1);
	if (ref == NULL || buf == NULL || back == NULL)
		bail("out of memory");

	/* Every listed offset with every listed length that fits. */
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			off = offs[i];
			len = lens[j];
			if (off + len > SIZE)
				continue;
			fill_any(buf, len, &seed);
			writes++;
			if (store_write(st, ctx, off, buf + 0, len) != 0) {
				bad_writes++;
				continue;
			}
			memcpy(ref + off, buf, len);
			/* Read a range around what was written. */
			off = off > 5000 ? off - 5000 : 0;
			len = len + 10000 > SIZE - off ? SIZE - off :
			    len + 10000;
			n = store_read(st, ctx, off, back, len);
			if (n != (long)len || memcmp(back, ref + off, len))
				bad_reads++;
		}
	}
	/* Random ones; buffers start at odd addresses too. */
	for (iter = 0; iter < 2000; iter++) {
		off = rnd(&seed) % SIZE;
		len = rnd(&seed) % (3 * PG) + 1;
		if (len > SIZE - off)
			len = SIZE - off;
		i = rnd(&seed) % 3;
		fill_any(buf + i, len, &seed);
		writes++;
		if (store_write(st, ctx, off, buf + i, len) != 0) {
			bad_writes++;
			continue;
		}
		memcpy(ref + off, buf + i, len);
		off = rnd(&seed) % SIZE;
		len = rnd(&seed) % (3 * PG) + 1;
		if (len > SIZE - off)
			len = SIZE - off;
		n = store_read(st, ctx, off, back + 1, len);
		if (n != (long)len || memcmp(back + 1, ref + off, len) != 0)
			bad_reads++;
	}
	ok(bad_writes == 0, "%s: %u unaligned writes succeed (%u failed)",
	    name, writes, bad_writes);
	ok(bad_reads == 0, "%s: reads after them match the reference "
	    "(%u differ)", name, bad_reads);
	ok(store_read(st, ctx, 0, back, SIZE) == SIZE &&
	    memcmp(back, ref, SIZE) == 0, "%s: the whole file matches", name);
	ok(pool_valid(pool), "%s: pool valid", name);

	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
	free(ref);
	free(buf);
	free(back);
}

/* Replacing a page frees the object it had. */
static void
test_overwrite(void)
{
	struct zs_pool *pool = pool_new();
	struct store *st = store_new(pool, 8, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char page[PG], back[PG];
	struct zs_pool_stats ps;
	struct store_stats ss;
	uint64_t seed = 99;
	int i;

	for (i = 0; i < 4; i++) {
		fill_text(page, PG, &seed);
		store_write(st, ctx, (uint64_t)i * PG, page, PG);
	}
	ok(pool_objects(pool) == 4, "4 text pages: 4 objects");
	for (i = 0; i < 10; i++) {
		fill_text(page, PG, &seed);
		store_write(st, ctx, 0, page, PG);
	}
	ok(pool_objects(pool) == 4, "10 overwrites of one page: still 4");
	fill_random(page, PG, &seed);
	store_write(st, ctx, 0, page, PG);
	zs_pool_stats(pool, &ps);
	ok(pool_objects(pool) == 4 && ps.huge_objects == 1,
	    "text -> random: 4 objects, 1 huge");
	memset(page, 0xab, PG);
	store_write(st, ctx, 0, page, PG);
	zs_pool_stats(pool, &ps);
	ok(pool_objects(pool) == 3 && ps.huge_objects == 0,
	    "random -> same-filled: 3 objects, 0 huge");
	store_stats(st, &ss);
	ok(ss.same_pages == 1 && ss.huge_pages == 0 && ss.pages_stored == 4,
	    "statistics follow the overwrites");
	/* A partial write turns the same-filled page into an object. */
	fill_text(page, 100, &seed);
	store_write(st, ctx, 10, page, 100);
	ok(pool_objects(pool) == 4, "partial write into a same-filled page");
	ok(store_read(st, ctx, 0, back, PG) == PG && back[9] == 0xab &&
	    memcmp(back + 10, page, 100) == 0 && back[110] == 0xab,
	    "partial write patched the page");
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
}

static void
test_discard(void)
{
	enum { NPAGES = 10 };
	struct zs_pool *pool = pool_new();
	struct store *st = store_new(pool, NPAGES, CODEC_ZSTD, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char ref[NPAGES * PG], back[NPAGES * PG];
	struct store_stats ss;
	uint64_t seed = 5, before;

	fill_text(ref, sizeof(ref), &seed);
	store_write(st, ctx, 0, ref, sizeof(ref));
	before = pool_objects(pool);
	ok(before == NPAGES, "%d text pages: %d objects", NPAGES, NPAGES);

	ok(store_discard(st, ctx, 2 * PG, 3 * PG) == 0, "discard pages 2-4");
	memset(ref + 2 * PG, 0, 3 * PG);
	ok(pool_objects(pool) == before - 3, "3 objects freed");
	ok(store_read(st, ctx, 0, back, sizeof(back)) == sizeof(back) &&
	    memcmp(back, ref, sizeof(back)) == 0,
	    "discarded pages read zeros, neighbours intact");

	/* Partial: the end of page 6 and the start of page 7. */
	ok(store_discard(st, ctx, 6 * PG + 100, PG - 50) == 0,
	    "discard 6:100 .. 7:50");
	memset(ref + 6 * PG + 100, 0, PG - 50);
	ok(store_read(st, ctx, 0, back, sizeof(back)) == sizeof(back) &&
	    memcmp(back, ref, sizeof(back)) == 0,
	    "partial discard zeroed just its bytes");
	ok(pool_objects(pool) == before - 3, "partial pages keep an object");

	/* Within one page, and one that covers a page and two halves. */
	ok(store_discard(st, ctx, 8 * PG + 10, 20) == 0 &&
	    store_discard(st, ctx, PG / 2, 2 * PG) == 0,
	    "discard inside a page, and across one");
	memset(ref + 8 * PG + 10, 0, 20);
	memset(ref + PG / 2, 0, 2 * PG);
	ok(store_read(st, ctx, 0, back, sizeof(back)) == sizeof(back) &&
	    memcmp(back, ref, sizeof(back)) == 0, "file matches reference");
	ok(pool_objects(pool) == before - 4, "page 1 freed as a whole");

	/* Past the end: clamped, the last page freed. */
	ok(store_discard(st, ctx, 9 * PG, 100 * PG) == 0 &&
	    store_discard(st, ctx, 50 * PG, PG) == 0,
	    "discard past the end: 0");
	ok(pool_objects(pool) == before - 5, "the last page was freed");
	store_stats(st, &ss);
	ok(ss.pages_stored == NPAGES - 5, "pages_stored %llu",
	    (unsigned long long)ss.pages_stored);
	ok(store_discard(st, ctx, 0, NPAGES * PG) == 0 &&
	    pool_objects(pool) == 0, "discarding everything frees all");
	store_stats(st, &ss);
	ok(ss.pages_stored == 0 && ss.compr_data_size == 0 &&
	    ss.same_pages == 0, "and the gauges are back to zero");
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
}

static void
test_range(void)
{
	enum { NPAGES = 4, SIZE = NPAGES * PG };
	struct zs_pool *pool = pool_new();
	struct store *st = store_new(pool, NPAGES, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char buf[2 * PG], back[2 * PG];
	struct store_stats ss;

	memset(buf, 0x5a, sizeof(buf));
	ok(store_nr_pages(st) == NPAGES, "store_nr_pages");
	ok(store_write(st, ctx, SIZE - PG, buf, PG) == 0,
	    "write of the last page");
	ok(store_write(st, ctx, SIZE - 100, buf, 200) == -EFBIG,
	    "write across the end: EFBIG");
	ok(store_write(st, ctx, SIZE, buf, 1) == -EFBIG &&
	    store_write(st, ctx, UINT64_MAX - 10, buf, 100) == -EFBIG,
	    "write past the end, and with off + len overflowing: EFBIG");
	store_stats(st, &ss);
	ok(ss.invalid_io == 3, "the three writes out of range counted in "
	    "invalid_io (%llu)", (unsigned long long)ss.invalid_io);
	memset(buf, 0x11, sizeof(buf));
	ok(store_read(st, ctx, SIZE - 100, back, 200) == 100 &&
	    back[0] == 0x5a && back[99] == 0x5a,
	    "read across the end: short, the page untouched");
	ok(store_read(st, ctx, SIZE, back, 10) == 0 &&
	    store_read(st, ctx, SIZE + PG, back, 10) == 0,
	    "read at and past the end: 0");
	store_stats(st, &ss);
	ok(ss.invalid_io == 6, "and the three reads (%llu)",
	    (unsigned long long)ss.invalid_io);
	ok(store_write(st, ctx, 0, buf, 0) == 0 &&
	    store_read(st, ctx, 0, back, 0) == 0 &&
	    store_read(st, ctx, SIZE - PG, back, PG) == PG &&
	    store_write(st, ctx, SIZE - PG, buf, PG) == 0,
	    "zero lengths, the last page");
	store_stats(st, &ss);
	ok(ss.invalid_io == 6, "what is in range is not invalid_io (%llu)",
	    (unsigned long long)ss.invalid_io);
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
}

static void
test_mem_limit(void)
{
	enum { NPAGES = 2048, LIMIT = 1 << 20 };
	struct zs_pool *pool = pool_new();
	struct store *st = store_new(pool, NPAGES, CODEC_LZ4, LIMIT);
	struct store_ctx *ctx = ctx_new(st);
	struct store_options opt = { CODEC_LZ4, 1, LIMIT, false };
	unsigned char *ref, page[PG];
	struct store_stats ss;
	uint64_t seed = 77, i, full;
	bool intact = true;
	int error = 0;

	if ((ref = malloc((size_t)NPAGES * PG)) == NULL)
		bail("out of memory");
	/* Same-filled pages take no memory: never refused. */
	for (i = 0; i < NPAGES; i++) {
		fill_word(ref + i * PG, 0x1111111100000000ull | i);
		if (store_write(st, ctx, i * PG, ref + i * PG, PG) != 0)
			error = -1;
	}
	ok(error == 0, "same-filled pages under the limit");
	for (i = 0; i < NPAGES; i++) {
		fill_any(page, PG, &seed);
		if (i % 2)
			fill_random(page, PG, &seed);
		else
			fill_text(page, PG, &seed);
		if ((error = store_write(st, ctx, i * PG, page, PG)) != 0)
			break;
		memcpy(ref + i * PG, page, PG);
	}
	full = i;
	store_stats(st, &ss);
	ok(error == -ENOSPC && full > 0 && full < NPAGES,
	    "-ENOSPC after %llu pages (%d)", (unsigned long long)full, error);
	ok(ss.limit_refusals == 1 && ss.failed_writes == 1,
	    "counted: %llu refusals, %llu failed writes",
	    (unsigned long long)ss.limit_refusals,
	    (unsigned long long)ss.failed_writes);
	ok(ss.mem_used_total >= LIMIT && ss.mem_used_total < LIMIT + 64 * PG &&
	    ss.mem_limit == LIMIT, "stopped at the limit (%llu bytes used)",
	    (unsigned long long)ss.mem_used_total);
	ok(ss.mem_used_max >= ss.mem_used_total, "mem_used_max %llu",
	    (unsigned long long)ss.mem_used_max);
	ok(store_write(st, ctx, (full + 1) * PG + 10, page, 100) == -ENOSPC,
	    "a partial write is refused too");
	for (i = 0; i < NPAGES && intact; i++) {
		intact = store_read(st, ctx, i * PG, page, PG) == PG &&
		    memcmp(page, ref + i * PG, PG) == 0;
		if (!intact)
			diag("page %llu differs", (unsigned long long)i);
	}
	ok(intact, "every page intact, the refused ones with old data");
	fill_word(page, 0);
	ok(store_write(st, ctx, full * PG, page, PG) == 0,
	    "a zero page is still accepted");
	memcpy(ref + full * PG, page, PG);

	/* Free a quarter; the async free worker must have run. */
	ok(store_discard(st, ctx, 0, full / 4 * PG) == 0, "discard a quarter");
	memset(ref, 0, full / 4 * PG);
	zs_pool_flush(pool);
	fill_random(page, PG, &seed);
	ok(store_write(st, ctx, (full + 1) * PG, page, PG) == 0,
	    "writes succeed again after the discard");
	memcpy(ref + (full + 1) * PG, page, PG);

	/* Fill again, then raise the limit live. */
	for (i = full + 2; i < NPAGES; i++) {
		fill_random(page, PG, &seed);
		if ((error = store_write(st, ctx, i * PG, page, PG)) != 0)
			break;
		memcpy(ref + i * PG, page, PG);
	}
	ok(error == -ENOSPC, "full again");
	opt.mem_limit = 0;
	store_set_options(st, &opt);
	ok(store_write(st, ctx, i * PG, page, PG) == 0,
	    "no limit: accepted");
	memcpy(ref + i * PG, page, PG);
	for (i = 0, intact = true; i < NPAGES && intact; i++)
		intact = store_read(st, ctx, i * PG, page, PG) == PG &&
		    memcmp(page, ref + i * PG, PG) == 0;
	ok(intact, "every page still intact");
	store_reset_max(st);
	store_stats(st, &ss);
	ok(ss.mem_used_max == ss.mem_used_total, "store_reset_max");
	ok(pool_valid(pool), "pool valid");
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
	free(ref);
}

/* A pool that frees on the spot: its pages in use follow every free. */
static struct zs_pool *
pool_new_sync(void)
{
	struct zs_pool_config cfg;
	struct zs_pool *pool;

	zs_pool_config_init(&cfg);
	cfg.async_free = 0;
	cfg.free_batch = 0;
	cfg.free_page_reporting = 0;
	if ((pool = zs_create_pool(&cfg)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	return pool;
}

/*
 * Write text pages into empty slots from *next on until one is refused;
 * ref keeps what was written.  After it the pool is at the limit.
 */
static void
fill_to_limit(struct store *st, struct store_ctx *ctx, uint64_t nr_pages,
    uint64_t *next, unsigned char *ref, uint64_t *seed)
{
	int error = 0;

	for (; *next < nr_pages; (*next)++) {
		fill_text(ref + *next * PG, PG, seed);
		error = store_write(st, ctx, *next * PG, ref + *next * PG, PG);
		if (error != 0)
			break;
	}
	if (error != -ENOSPC)
		bail("filling to the limit: %d after %llu pages", error,
		    (unsigned long long)*next);
	/* Refused: the slot stays empty, and is skipped from now on. */
	memset(ref + *next * PG, 0, PG);
	(*next)++;
}

/*
 * A pool at its max_size (zsd bounds it by the swap file's size): a
 * write that needs memory fails with -ENOMEM and stores nothing, the
 * page it would have replaced reads back as it was, and a discard makes
 * room again.
 */
static void
test_pool_full(void)
{
	enum { NP = 256 };
	static unsigned char ref[NP][PG], page[PG];
	struct zs_pool_config pcfg;
	struct zs_pool *pool;
	struct store *st;
	struct store_ctx *ctx;
	uint64_t seed = 5, i, full;
	bool intact = true;
	int error = 0;

	zs_pool_config_init(&pcfg);
	pcfg.section_size = 256u << 10;
	pcfg.max_size = pcfg.section_size;
	if ((pool = zs_create_pool(&pcfg)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	st = store_new(pool, NP, CODEC_LZ4, 0);
	ctx = ctx_new(st);
	for (i = 0; i < NP; i++) {
		fill_random(ref[i], PG, &seed);
		if ((error = store_write(st, ctx, i * PG, ref[i], PG)) != 0)
			break;
	}
	full = i;
	ok(error == -ENOMEM && full > 0 && full < NP,
	    "a pool of one section is full after %llu pages: -ENOMEM (%d)",
	    (unsigned long long)full, error);
	fill_random(page, PG, &seed);
	ok(store_write(st, ctx, 0, page, PG) == -ENOMEM,
	    "an overwrite that needs memory fails too");
	for (i = 0; i < full && intact; i++)
		intact = store_read(st, ctx, i * PG, page, PG) == PG &&
		    memcmp(page, ref[i], PG) == 0;
	ok(intact && store_read(st, ctx, full * PG, page, PG) == PG &&
	    all_zero(page, PG), "every page stored reads back as written, "
	    "the refused one as zeros");
	ok(store_discard(st, ctx, 0, PG) == 0 &&
	    store_write(st, ctx, full * PG, ref[full], PG) == 0 &&
	    store_read(st, ctx, full * PG, page, PG) == PG &&
	    memcmp(page, ref[full], PG) == 0,
	    "a discard makes room for the refused page");
	ok(pool_valid(pool), "the pool is valid");
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
}

/*
 * What the limit refuses and what it lets through, once the pool is at
 * it: new pages are refused before they are compressed; an overwrite
 * that does not grow its slot's object and every discard are taken.
 */
static void
test_limit_rules(void)
{
	enum { NPAGES = 1024, LIMIT = 256 << 10 };
	struct zs_pool *pool = pool_new_sync();
	struct store *st = store_new(pool, NPAGES, CODEC_LZ4, LIMIT);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char *ref, page[PG], back[PG];
	struct store_stats s1, s2;
	uint64_t seed = 31, next = 2, i;
	unsigned long calls;
	bool intact = true;
	int error;

	if ((ref = calloc(NPAGES, PG)) == NULL)
		bail("out of memory");
	/* Slot 0: a random page, stored raw.  Slot 1: text. */
	fill_random(ref, PG, &seed);
	fill_text(ref + PG, PG, &seed);
	if (store_write(st, ctx, 0, ref, 2 * PG) != 0)
		bail("store_write of the first two pages");
	fill_to_limit(st, ctx, NPAGES, &next, ref, &seed);
	store_stats(st, &s1);
	ok(s1.mem_used_total >= LIMIT, "at the limit after %llu pages "
	    "(%llu bytes used)", (unsigned long long)next,
	    (unsigned long long)s1.mem_used_total);

	/* A new page: refused, and the codec never sees it. */
	fill_text(page, PG, &seed);
	calls = atomic_load(&compress_calls);
	error = store_write(st, ctx, next * PG, page, PG);
	ok(error == -ENOSPC && atomic_load(&compress_calls) == calls,
	    "a new page at the limit: ENOSPC (%d) without compressing it "
	    "(%lu codec calls)", error, atomic_load(&compress_calls) - calls);
	calls = atomic_load(&compress_calls);
	error = store_write(st, ctx, next * PG + 100, page, 200);
	ok(error == -ENOSPC && atomic_load(&compress_calls) == calls,
	    "a partial write into an empty slot: the same (%d, %lu calls)",
	    error, atomic_load(&compress_calls) - calls);
	store_stats(st, &s2);
	ok(s2.limit_refusals == s1.limit_refusals + 2,
	    "both counted as limit refusals");

	/* The same page again: the store does not grow. */
	store_stats(st, &s1);
	error = store_write(st, ctx, PG, ref + PG, PG);
	store_stats(st, &s2);
	ok(error == 0 && s2.compr_data_size == s1.compr_data_size,
	    "an overwrite with the same page at the limit is taken (%d)",
	    error);

	/* A page that compresses to less, then a part of one in place. */
	fill_to_limit(st, ctx, NPAGES, &next, ref, &seed);
	memset(ref + PG + PG / 4, 0, PG - PG / 4);
	error = store_write(st, ctx, PG, ref + PG, PG);
	ok(error == 0, "an overwrite that shrinks its object is taken (%d)",
	    error);
	fill_to_limit(st, ctx, NPAGES, &next, ref, &seed);
	error = store_write(st, ctx, 2 * PG + 10, ref + 2 * PG + 10, 100);
	ok(error == 0, "a partial overwrite that keeps the size is taken "
	    "(%d)", error);

	/* A raw page may become anything: nothing takes more than it. */
	fill_to_limit(st, ctx, NPAGES, &next, ref, &seed);
	fill_random(ref, PG, &seed);
	error = store_write(st, ctx, 0, ref, PG);
	ok(error == 0, "a raw page overwritten by another at the limit (%d)",
	    error);

	/* Growing a slot is refused, and the old data stays. */
	fill_to_limit(st, ctx, NPAGES, &next, ref, &seed);
	fill_random(page, PG, &seed);
	error = store_write(st, ctx, 3 * PG, page, PG);
	ok(error == -ENOSPC && store_read(st, ctx, 3 * PG, back, PG) == PG &&
	    memcmp(back, ref + 3 * PG, PG) == 0,
	    "an overwrite that would grow its slot: ENOSPC (%d), old data "
	    "kept", error);

	/* Discards, partial ones included, are never refused. */
	fill_to_limit(st, ctx, NPAGES, &next, ref, &seed);
	error = store_discard(st, ctx, 4 * PG + 100, 1000);
	memset(ref + 4 * PG + 100, 0, 1000);
	ok(error == 0, "a partial discard at the limit is taken (%d)", error);
	fill_to_limit(st, ctx, NPAGES, &next, ref, &seed);
	error = store_discard(st, ctx, 5 * PG - 10, PG + 20);
	memset(ref + 5 * PG - 10, 0, PG + 20);
	ok(error == 0, "a discard of a page and two ends of others (%d)",
	    error);
	store_stats(st, &s1);
	ok(s1.failed_writes == s1.limit_refusals, "no failed writes but the "
	    "refused ones (%llu failed, %llu refusals)",
	    (unsigned long long)s1.failed_writes,
	    (unsigned long long)s1.limit_refusals);

	for (i = 0; i < NPAGES && intact; i++) {
		intact = store_read(st, ctx, i * PG, back, PG) == PG &&
		    memcmp(back, ref + i * PG, PG) == 0;
		if (!intact)
			diag("page %llu differs", (unsigned long long)i);
	}
	ok(intact, "every page reads back as the reference");
	ok(pool_valid(pool), "pool valid");
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
	free(ref);
}

/*
 * Writers racing at the limit: each may pass the check before the others'
 * objects are counted, so the pool may go over it by one object (two
 * pool pages at most) per writer, and no more.
 */
#define RACE_THREADS	4
#define RACE_PAGES	512	/* each */

struct race {
	struct store	*st;
	unsigned int	 id;
	uint64_t	 written;
	int		 error;
};

static pthread_barrier_t race_start;

static void *
race_run(void *arg)
{
	struct race *r = arg;
	struct store_ctx *ctx = ctx_new(r->st);
	uint64_t seed = 500 + r->id, base = (uint64_t)r->id * RACE_PAGES;
	unsigned char page[PG];

	pthread_barrier_wait(&race_start);
	for (r->written = 0; r->written < RACE_PAGES; r->written++) {
		fill_random(page, PG, &seed);
		if ((r->error = store_write(r->st, ctx, (base + r->written) *
		    PG, page, PG)) != 0)
			break;
	}
	store_ctx_destroy(ctx);
	return NULL;
}

static void
test_limit_race(void)
{
	enum { LIMIT = 1 << 20 };
	struct zs_pool *pool = pool_new_sync();
	struct store *st = store_new(pool, RACE_THREADS * RACE_PAGES,
	    CODEC_LZ4, LIMIT);
	pthread_t threads[RACE_THREADS];
	struct race r[RACE_THREADS];
	struct store_stats ss;
	unsigned int i;
	bool refused = true;

	pthread_barrier_init(&race_start, NULL, RACE_THREADS);
	for (i = 0; i < RACE_THREADS; i++) {
		r[i] = (struct race){ .st = st, .id = i };
		if (pthread_create(&threads[i], NULL, race_run, &r[i]) != 0)
			bail("pthread_create");
	}
	for (i = 0; i < RACE_THREADS; i++) {
		pthread_join(threads[i], NULL);
		refused = refused && r[i].error == -ENOSPC;
	}
	pthread_barrier_destroy(&race_start);
	store_stats(st, &ss);
	ok(refused, "%d writers racing to the limit: each refused in the end",
	    RACE_THREADS);
	ok(ss.mem_used_total <= LIMIT + RACE_THREADS * 2 * PG,
	    "over the limit by %lld bytes, at most two pages a writer",
	    (long long)ss.mem_used_total - LIMIT);
	store_destroy(st);
	zs_destroy_pool(pool);
}

/*
 * Threads: each owns a run of slots, and a quarter of every shared page,
 * which it writes in small pieces (read-modify-write of a page others are
 * patching at the same moment).  The main thread switches codecs and
 * compacts meanwhile.
 */
#define NTHREADS	4
#define OWN_PAGES	128
#define SHARED_PAGES	16
#define QUARTER		(PG / NTHREADS)
#define MT_PAGES	(NTHREADS * OWN_PAGES + SHARED_PAGES)
#define MT_ITERS	4000

struct mt {
	struct store	*st;
	unsigned int	 id;
	unsigned char	 own[OWN_PAGES * PG];		/* reference */
	unsigned char	 shared[SHARED_PAGES][QUARTER];	/* reference */
	unsigned int	 bad, failed;
};

static atomic_int mt_running;

static void *
mt_run(void *arg)
{
	struct mt *m = arg;
	struct store_ctx *ctx = ctx_new(m->st);
	uint64_t seed = 1000 + m->id, base = (uint64_t)m->id * OWN_PAGES * PG;
	unsigned char buf[2 * PG], back[2 * PG];
	unsigned int it, sp;
	uint64_t off, len;

	for (it = 0; it < MT_ITERS; it++) {
		switch (rnd(&seed) % 8) {
		case 0: case 1: case 2:		/* own pages, any range */
			off = rnd(&seed) % (OWN_PAGES * PG);
			len = rnd(&seed) % (2 * PG) + 1;
			if (len > OWN_PAGES * PG - off)
				len = OWN_PAGES * PG - off;
			fill_any(buf, len, &seed);
			if (store_write(m->st, ctx, base + off, buf, len))
				m->failed++;
			else
				memcpy(m->own + off, buf, len);
			break;
		case 3:				/* own pages, discard */
			off = rnd(&seed) % (OWN_PAGES * PG);
			len = rnd(&seed) % (2 * PG) + 1;
			if (len > OWN_PAGES * PG - off)
				len = OWN_PAGES * PG - off;
			if (store_discard(m->st, ctx, base + off, len))
				m->failed++;
			else
				memset(m->own + off, 0, len);
			break;
		case 4:				/* own pages, read */
			off = rnd(&seed) % (OWN_PAGES * PG);
			len = rnd(&seed) % (2 * PG) + 1;
			if (len > OWN_PAGES * PG - off)
				len = OWN_PAGES * PG - off;
			if (store_read(m->st, ctx, base + off, back, len) !=
			    (long)len || memcmp(back, m->own + off, len))
				m->bad++;
			break;
		case 5: case 6:			/* my quarter of a shared */
			sp = rnd(&seed) % SHARED_PAGES;
			off = rnd(&seed) % QUARTER;
			len = rnd(&seed) % (QUARTER - off) + 1;
			fill_any(buf, len, &seed);
			if (store_write(m->st, ctx, (NTHREADS * OWN_PAGES +
			    sp) * PG + m->id * QUARTER + off, buf, len))
				m->failed++;
			else
				memcpy(m->shared[sp] + off, buf, len);
			break;
		default:			/* read my quarter back */
			sp = rnd(&seed) % SHARED_PAGES;
			if (store_read(m->st, ctx, (NTHREADS * OWN_PAGES +
			    sp) * PG + m->id * QUARTER, back, QUARTER) !=
			    QUARTER || memcmp(back, m->shared[sp], QUARTER))
				m->bad++;
			break;
		}
	}
	store_ctx_destroy(ctx);
	atomic_fetch_sub(&mt_running, 1);
	return NULL;
}

static void
test_threads(void)
{
	struct zs_pool *pool = pool_new();
	struct store *st = store_new(pool, MT_PAGES, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	struct store_options opt = { CODEC_LZ4, 1, 0, false };
	pthread_t threads[NTHREADS];
	unsigned char page[PG];
	unsigned int i, j, bad = 0, failed = 0, switches = 0;
	struct mt *m;
	bool same = true;

	if ((m = calloc(NTHREADS, sizeof(*m))) == NULL)
		bail("out of memory");
	atomic_store(&mt_running, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		m[i].st = st;
		m[i].id = i;
		if (pthread_create(&threads[i], NULL, mt_run, &m[i]) != 0)
			bail("pthread_create");
	}
	while (atomic_load(&mt_running) > 0) {
		opt.codec = switches % 2 ? CODEC_LZ4 : CODEC_ZSTD;
		opt.zstd_level = 1 + switches % 3;
		store_set_options(st, &opt);
		switches++;
		zs_compact(pool, NULL);
		usleep(2000);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(threads[i], NULL);
		bad += m[i].bad;
		failed += m[i].failed;
	}
	ok(failed == 0, "%d threads: no call failed", NTHREADS);
	ok(bad == 0, "%d threads: every read matched while running (%u bad, "
	    "%u codec switches)", NTHREADS, bad, switches);

	for (i = 0; i < NTHREADS; i++)
		for (j = 0; j < OWN_PAGES && same; j++)
			same = store_read(st, ctx, ((uint64_t)i * OWN_PAGES +
			    j) * PG, page, PG) == PG &&
			    memcmp(page, m[i].own + j * PG, PG) == 0;
	ok(same, "each thread's own pages are as it left them");
	for (j = 0, same = true; j < SHARED_PAGES && same; j++) {
		same = store_read(st, ctx, ((uint64_t)NTHREADS * OWN_PAGES +
		    j) * PG, page, PG) == PG;
		for (i = 0; i < NTHREADS && same; i++)
			same = memcmp(page + i * QUARTER, m[i].shared[j],
			    QUARTER) == 0;
		if (!same)
			diag("shared page %u lost a partial write", j);
	}
	ok(same, "shared pages hold every thread's last partial writes");
	zs_pool_flush(pool);
	ok(pool_valid(pool), "pool valid after the threads");
	store_ctx_destroy(ctx);
	store_destroy(st);
	ok(pool_objects(pool) == 0, "store_destroy freed every object");
	zs_destroy_pool(pool);
	free(m);
}

/*
 * Merging: threads write pages of the same new contents into their own
 * slots at the same moment, round after round (each round's contents
 * replace the last's, some slots discarded), while the main thread
 * compacts.  After every round each content must be stored once, and the
 * merge gauges must agree with what the slots hold: a content stored
 * twice by two racing writers, or a reference lost or taken twice, shows.
 */
#define SAME_THREADS	4
#define SAME_SLOTS	64	/* each thread's */
#define SAME_CONTENTS	8	/* each round's */
#define SAME_ROUNDS	150

struct same_run {
	struct store	*st;
	unsigned int	 id;
	unsigned int	 bad_rounds;	/* thread 0: rounds counted wrong */
	unsigned int	 bad_reads;
};

static pthread_barrier_t same_barrier;
static atomic_int same_running;

/* Round r's content c: the same bytes in every thread. */
static void
same_content(void *page, unsigned int r, unsigned int c)
{
	uint64_t seed = 7919ull * r + c + 1;

	fill_text(page, PG, &seed);
	if (c % 4 == 3)			/* some stored raw */
		fill_random((unsigned char *)page + 64, PG - 64, &seed);
}

static bool
same_discarded(unsigned int r, unsigned int j)
{
	return j % 5 == r % 5;
}

static void *
same_run(void *arg)
{
	struct same_run *sr = arg;
	struct store_ctx *ctx = ctx_new(sr->st);
	uint64_t base = (uint64_t)sr->id * SAME_SLOTS, stored;
	unsigned char page[SAME_CONTENTS][PG], back[PG];
	struct store_stats ss;
	unsigned int r, j, c, kept;

	for (r = 0; r < SAME_ROUNDS; r++) {
		for (c = 0; c < SAME_CONTENTS; c++)
			same_content(page[c], r, c);
		pthread_barrier_wait(&same_barrier);
		for (j = 0, kept = 0; j < SAME_SLOTS; j++) {
			if (same_discarded(r, j)) {
				(void)store_discard(sr->st, ctx, (base + j) *
				    PG, PG);
				continue;
			}
			kept++;
			if (store_write(sr->st, ctx, (base + j) * PG,
			    page[j % SAME_CONTENTS], PG) != 0)
				sr->bad_reads++;
		}
		for (j = 0; j < SAME_SLOTS; j += 7)
			if (!same_discarded(r, j) && (store_read(sr->st, ctx,
			    (base + j) * PG, back, PG) != PG ||
			    memcmp(back, page[j % SAME_CONTENTS], PG) != 0))
				sr->bad_reads++;
		pthread_barrier_wait(&same_barrier);
		if (sr->id == 0) {
			store_stats(sr->st, &ss);
			stored = (uint64_t)SAME_THREADS * kept;
			if (pool_objects(store_pool_of_test) != SAME_CONTENTS ||
			    ss.pages_stored != stored ||
			    ss.pages_merged != stored - SAME_CONTENTS ||
			    ss.merge_objects != SAME_CONTENTS) {
				if (sr->bad_rounds++ < 3)
					diag("round %u: %llu objects, %llu "
					    "merged, %llu shared", r,
					    (unsigned long long)pool_objects(
					    store_pool_of_test),
					    (unsigned long long)
					    ss.pages_merged,
					    (unsigned long long)
					    ss.merge_objects);
			}
		}
		pthread_barrier_wait(&same_barrier);
	}
	store_ctx_destroy(ctx);
	atomic_fetch_sub(&same_running, 1);
	return NULL;
}

static void
test_same_writers(void)
{
	struct zs_pool *pool = pool_new_sync();
	struct store_options opt = { CODEC_LZ4, 1, 0, true };
	struct store *st;
	pthread_t threads[SAME_THREADS];
	struct same_run sr[SAME_THREADS];
	unsigned int i, bad_reads = 0, compactions = 0;
	int error = 0;

	if ((st = store_create(pool, SAME_THREADS * SAME_SLOTS, &opt,
	    &error)) == NULL)
		bail("store_create: %s", strerror(-error));
	store_pool_of_test = pool;
	pthread_barrier_init(&same_barrier, NULL, SAME_THREADS);
	atomic_store(&same_running, SAME_THREADS);
	for (i = 0; i < SAME_THREADS; i++) {
		sr[i] = (struct same_run){ .st = st, .id = i };
		if (pthread_create(&threads[i], NULL, same_run, &sr[i]) != 0)
			bail("pthread_create");
	}
	while (atomic_load(&same_running) > 0) {
		zs_compact(pool, NULL);
		compactions++;
		usleep(500);
	}
	for (i = 0; i < SAME_THREADS; i++) {
		pthread_join(threads[i], NULL);
		bad_reads += sr[i].bad_reads;
	}
	pthread_barrier_destroy(&same_barrier);
	ok(bad_reads == 0, "%d threads writing the same new pages at once: "
	    "every write and read right (%u wrong)", SAME_THREADS, bad_reads);
	ok(sr[0].bad_rounds == 0, "after each of %d rounds: each content "
	    "stored once, the merge gauges right (%u rounds wrong, %u "
	    "compactions)", SAME_ROUNDS, sr[0].bad_rounds, compactions);
	ok(pool_valid(pool), "pool valid");
	store_destroy(st);
	ok(pool_objects(pool) == 0, "store_destroy freed every shared object");
	zs_destroy_pool(pool);
}

/*
 * The same writes, reads and discards through many contexts (more than
 * the store has sets of counters, so that some share a set) and through
 * one: every page moves between contexts, counted in by one and out by
 * another, and the sums must come out as one context counts them.
 */
static void
counters_run(struct store *st, struct store_ctx **ctx, unsigned int nctx)
{
	enum { NPAGES = 256 };
	unsigned char page[PG];
	uint64_t seed = 4242, i, round;

	for (round = 0; round < 2; round++)
		for (i = 0; i < NPAGES; i++) {
			if (i % 5 == 0)
				fill_word(page, i % 10 == 0 ? 0 : i);
			else
				fill_any(page, PG, &seed);
			(void)store_write(st, ctx[(i + round * 7) % nctx],
			    i * PG, page, PG);
		}
	for (i = 0; i < NPAGES; i++)
		(void)store_read(st, ctx[(i + 3) % nctx], i * PG, page, PG);
	for (i = 0; i < NPAGES; i += 3)
		(void)store_discard(st, ctx[(i + 13) % nctx], i * PG, PG);
	/* Past the end: counted, refused. */
	(void)store_write(st, ctx[1 % nctx], NPAGES * PG, page, PG);
}

static void
test_counters(void)
{
	enum { NCTX = 40 };
	struct zs_pool_config cfg;
	struct zs_pool *pool, *pool1;
	struct store *many, *one;
	struct store_ctx *ctx[NCTX], *single;
	struct store_stats a, b;
	unsigned int i;

	/* Frees done on the spot: both pools go through the same sizes. */
	zs_pool_config_init(&cfg);
	cfg.async_free = 0;
	cfg.free_batch = 0;
	cfg.free_page_reporting = 0;
	if ((pool = zs_create_pool(&cfg)) == NULL ||
	    (pool1 = zs_create_pool(&cfg)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	many = store_new(pool, 256, CODEC_LZ4, 0);
	one = store_new(pool1, 256, CODEC_LZ4, 0);
	single = ctx_new(one);
	for (i = 0; i < NCTX; i++)
		ctx[i] = ctx_new(many);
	counters_run(many, ctx, NCTX);
	counters_run(one, &single, 1);
	store_stats(many, &a);
	store_stats(one, &b);
	ok(a.pages_stored == b.pages_stored && a.pages_stored == 256 - 86,
	    "%d contexts: %llu pages stored, as one context counts them",
	    NCTX, (unsigned long long)a.pages_stored);
	ok(a.same_pages == b.same_pages && a.huge_pages == b.huge_pages &&
	    a.compr_data_size == b.compr_data_size && a.same_pages > 0 &&
	    a.huge_pages > 0, "same %llu, huge %llu, %llu compressed bytes",
	    (unsigned long long)a.same_pages,
	    (unsigned long long)a.huge_pages,
	    (unsigned long long)a.compr_data_size);
	ok(a.writes == 512 && a.reads == 256 && a.discards == 86 &&
	    a.invalid_io == 1 && a.failed_writes == 0 &&
	    a.writes == b.writes && a.reads == b.reads &&
	    a.discards == b.discards, "counters summed over the contexts");
	ok(a.mem_used_max == b.mem_used_max &&
	    a.mem_used_max > a.mem_used_total, "mem_used_max %llu, the most "
	    "any context saw", (unsigned long long)a.mem_used_max);
	store_reset_max(many);
	store_stats(many, &a);
	ok(a.mem_used_max == a.mem_used_total, "store_reset_max, %d contexts",
	    NCTX);
	(void)store_discard(many, ctx[5], 0, 256 * PG);
	store_stats(many, &a);
	ok(a.pages_stored == 0 && a.same_pages == 0 && a.huge_pages == 0 &&
	    a.compr_data_size == 0, "all discarded through one context: "
	    "the gauges back to zero");
	for (i = 0; i < NCTX; i++)
		store_ctx_destroy(ctx[i]);
	store_ctx_destroy(single);
	store_destroy(many);
	store_destroy(one);
	zs_destroy_pool(pool);
	zs_destroy_pool(pool1);
}

static void
test_create(void)
{
	struct zs_pool *pool = pool_new();
	struct store_options opt = { CODEC_LZ4, 1, 0, false };
	int error = 0;

	ok(store_create(pool, 0, &opt, &error) == NULL && error == -EINVAL,
	    "store_create: 0 pages: EINVAL");
	opt.codec = 0;
	error = 0;
	ok(store_create(pool, 8, &opt, &error) == NULL && error == -EINVAL,
	    "store_create: no codec: EINVAL");
	opt.codec = CODEC_ZSTD;
	error = 0;
	ok(store_create(pool, UINT64_MAX / 2, &opt, &error) == NULL &&
	    error == -EINVAL, "store_create: too many pages: EINVAL");
	store_destroy(NULL);
	store_ctx_destroy(NULL);
	codec_ctx_destroy(NULL);
	zs_destroy_pool(pool);
}

int
main(void)
{
	size_t i;

	tap_watchdog(600);
	test_codecs();
	test_create();
	test_counters();
	for (i = 0; i < 2; i++) {
		test_round_trip(codec_ids[i]);
		test_unaligned(codec_ids[i]);
	}
	test_codec_switch();
	test_overwrite();
	test_discard();
	test_range();
	test_mem_limit();
	test_limit_rules();
	test_pool_full();
	test_limit_race();
	test_threads();
	test_same_writers();
	return done_testing();
}
