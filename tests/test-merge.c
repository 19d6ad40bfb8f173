/*
 * test-merge.c - same-page merging.
 *
 * The content index alone (merge.c), with made-up handles and a compare
 * function over made-up contents: a key found, a key whose content
 * differs (never shared), references counted up and down, nodes removed
 * from the middle of a run of cells, a random sequence checked against a
 * model, a full shard, the hash.  Then the store with merging on: equal
 * pages stored once with both codecs and raw; references given back by
 * overwrites, partial writes, discards and destroy, the last one freeing
 * the object; every key made the same (the test is linked with
 * -Wl,--wrap=merge_page_hash) so that pages of other content share keys
 * and must still be stored apart; shared objects moved by compaction,
 * section migration, offline and shrink, then read back and found again
 * by new copies; the memory limit; merging turned off and on live; and
 * hashing skipped while nothing merges, until something does.
 */
#include <config.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "zsd.h"

#define PG	ZSD_PAGE_SIZE

/* Set: every page hashes to forced_key (the linker's --wrap). */
static atomic_bool force_key;
static uint32_t forced_key = 0x5eed5eed;

uint32_t	__real_merge_page_hash(const void *page);
uint32_t	__wrap_merge_page_hash(const void *page);

uint32_t
__wrap_merge_page_hash(const void *page)
{
	if (atomic_load(&force_key))
		return forced_key;
	return __real_merge_page_hash(page);
}

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

/* Compresses well, different for every seed. */
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

/* ---- the index alone ------------------------------------------------ */

/*
 * Made-up objects: handle h holds content contents[h]; a "page" is a
 * pointer to a content number.
 */
#define FAKE_OBJS	4096
static unsigned int	contents[FAKE_OBJS];
static unsigned int	same_calls;

static int
fake_same(void *arg, zs_handle_t handle, unsigned int codec,
    const void *page, size_t *len)
{
	(void)arg;
	(void)codec;
	same_calls++;
	*len = 100 + (size_t)handle % 1000;
	return contents[handle] == *(const unsigned int *)page;
}

static struct merge_index *
index_new(uint64_t nr_pages)
{
	struct merge_index *idx;
	int error = 0;

	if ((idx = merge_create(nr_pages, NULL, &error)) == NULL)
		bail("merge_create: %s", strerror(-error));
	return idx;
}

static bool
index_valid(struct merge_index *idx)
{
	char why[256] = "";
	int error;

	if ((error = merge_validate(idx, why, sizeof(why))) != 0)
		diag("merge_validate: %d %s", error, why);
	return error == 0;
}

static int
insert(struct merge_index *idx, uint32_t key, zs_handle_t h,
    unsigned int content, struct merge_obj *mo)
{
	contents[h] = content;
	memset(mo, 0, sizeof(*mo));
	mo->handle = h;
	mo->len = 100;
	mo->codec = CODEC_LZ4;
	return merge_insert(idx, key, &content, fake_same, NULL, mo);
}

static int
find(struct merge_index *idx, uint32_t key, unsigned int content,
    struct merge_obj *mo)
{
	memset(mo, 0, sizeof(*mo));
	return merge_find(idx, key, &content, fake_same, NULL, mo);
}

static void
test_index_basic(void)
{
	struct merge_index *idx = index_new(64);
	struct merge_obj a, b, m;
	uint64_t nodes, refs;
	int error = 0;

	ok(merge_create(0, NULL, &error) == NULL && error == -EINVAL,
	    "merge_create: 0 pages: EINVAL");
	ok(merge_create(1ull << 31, NULL, &error) == NULL && error == -EFBIG,
	    "merge_create: 2^31 pages: EFBIG");

	ok(find(idx, 7, 1, &m) == 0 && same_calls == 0,
	    "an empty index finds nothing, compares nothing");
	ok(insert(idx, 7, 1, 1, &a) == 0 && a.node != 0 && a.refs == 1,
	    "insert: a node (%u), one reference", a.node);
	ok(find(idx, 7, 1, &m) == 1 && m.handle == 1 && m.node == a.node &&
	    m.refs == 2 && m.codec == CODEC_LZ4 && m.len == 101 &&
	    m.collisions == 0, "the same key and content: found, refs %u, "
	    "len %u from the compare", m.refs, m.len);
	ok(find(idx, 8, 1, &m) == 0, "the same content under another key: "
	    "not found (the key is where to look)");

	/* Same key, other content: a collision, never shared. */
	same_calls = 0;
	ok(find(idx, 7, 2, &m) == 0 && m.collisions == 1 && same_calls == 1,
	    "the same key, other content: not found, one collision");
	ok(insert(idx, 7, 2, 2, &b) == 0 && b.node != 0 && b.node != a.node &&
	    b.collisions == 1, "inserted beside it as a node of its own");
	ok(find(idx, 7, 2, &m) == 1 && m.handle == 2 && m.node == b.node,
	    "each content finds its own object under the shared key");
	ok(find(idx, 7, 1, &m) == 1 && m.handle == 1 && m.refs == 3,
	    "and the first still finds the first");

	/* An insert that finds its content indexed meanwhile. */
	ok(insert(idx, 7, 3, 1, &m) == 1 && m.handle == 1 && m.refs == 4,
	    "insert of content indexed meanwhile: that object, referenced");
	merge_counts(idx, &nodes, &refs);
	ok(nodes == 2 && refs == 4 + 2, "2 nodes, %llu references",
	    (unsigned long long)refs);

	ok(merge_put(idx, a.node) == 3 && merge_put(idx, a.node) == 2 &&
	    merge_put(idx, a.node) == 1, "put: references count down");
	ok(find(idx, 7, 1, &m) == 1 && m.refs == 2 &&
	    merge_put(idx, a.node) == 1, "still found with one left");
	ok(merge_put(idx, a.node) == 0, "the last put: 0, free the object");
	ok(find(idx, 7, 1, &m) == 0, "gone from the index");
	ok(find(idx, 7, 2, &m) == 1 && m.handle == 2,
	    "its neighbour in the run is still found");
	ok(merge_put(idx, b.node) == 2 && merge_put(idx, b.node) == 1 &&
	    merge_put(idx, b.node) == 0, "and goes in turn");
	merge_counts(idx, &nodes, &refs);
	ok(nodes == 0 && refs == 0 && index_valid(idx), "empty and valid");
	merge_destroy(idx);
	merge_destroy(NULL);
}

/*
 * A run of nodes of one key, removed from its middle and ends: the
 * others stay reachable (backward-shift deletion keeps no holes).
 */
static void
test_index_runs(void)
{
	enum { N = 40 };
	struct merge_index *idx = index_new(64);
	struct merge_obj mo[N], m;
	uint64_t nodes, refs;
	bool found = true;
	unsigned int i;

	for (i = 0; i < N; i++)
		insert(idx, 1000 + (i % 3 == 0 ? 0 : i), 100 + i, 100 + i,
		    &mo[i]);
	ok(index_valid(idx), "%d nodes, a third of one key: valid", N);
	for (i = 0; i < N; i += 2)
		merge_put(idx, mo[i].node);
	ok(index_valid(idx), "every other one removed: valid");
	for (i = 1; i < N && found; i += 2)
		found = find(idx, 1000 + (i % 3 == 0 ? 0 : i), 100 + i,
		    &m) == 1 && m.handle == 100 + i;
	ok(found, "the rest all found");
	/* Each found once more: two references. */
	for (i = 1; i < N; i += 2) {
		merge_put(idx, mo[i].node);
		merge_put(idx, mo[i].node);
	}
	merge_counts(idx, &nodes, &refs);
	ok(index_valid(idx) && nodes == 0 && refs == 0,
	    "all removed: empty, valid");
	merge_destroy(idx);
}

/*
 * Random inserts, finds and puts against a model, keys from a small set
 * so that runs form and wrap around the end of the table.  Content c is
 * held by at most one object at a time, of handle c.
 */
static void
test_index_model(void)
{
	enum { NR_PAGES = 200, OPS = 60000, NKEYS = 24, NCONTENT = 60 };
	unsigned int refs[NCONTENT + 1], node_of[NCONTENT + 1];
	unsigned int op, c, live = 0, held = 0, bad = 0;
	struct merge_index *idx = index_new(NR_PAGES);
	uint64_t seed = 77, nodes, nrefs;
	struct merge_obj m;
	uint32_t key;
	bool valid = true;

	memset(refs, 0, sizeof(refs));
	memset(contents, 0, sizeof(contents));
	for (op = 0; op < OPS; op++) {
		c = (unsigned int)(rnd(&seed) % NCONTENT) + 1;
		/* A key of its own, shared with other contents. */
		key = (c * 2654435761u) % NKEYS * 0x01000193u;
		if (rnd(&seed) % 3 != 0) {		/* store c */
			if (held >= NR_PAGES)
				continue;
			held++;
			if (find(idx, key, c, &m) == 1) {
				if (refs[c] == 0 || m.handle != c ||
				    m.refs != ++refs[c] || m.node != node_of[c])
					bad++;
				continue;
			}
			if (refs[c] != 0)
				bad++;	/* indexed, yet not found */
			if (insert(idx, key, c, c, &m) != 0 || m.node == 0)
				bad++;
			refs[c] = 1;
			node_of[c] = m.node;
			live++;
		} else if (refs[c] != 0) {		/* drop one */
			if (merge_put(idx, node_of[c]) != --refs[c])
				bad++;
			held--;
			if (refs[c] == 0) {
				contents[c] = 0;
				live--;
			}
		}
		if (op % 997 == 0)
			valid = valid && index_valid(idx);
	}
	merge_counts(idx, &nodes, &nrefs);
	ok(bad == 0, "%d random operations agree with the model (%u bad)",
	    OPS, bad);
	ok(valid && index_valid(idx), "valid all along");
	ok(nodes == live && nrefs == held, "%llu nodes, %llu references, as "
	    "the model has", (unsigned long long)nodes,
	    (unsigned long long)nrefs);
	merge_destroy(idx);
}

/* A shard with every node in use: further objects are not indexed. */
static void
test_index_full(void)
{
	struct merge_index *idx = index_new(8);
	struct merge_obj m;
	unsigned int i, indexed = 0;

	/* 8 pages: 8 + 2 + 64 nodes, one shard. */
	for (i = 1; i < 200; i++)
		if (insert(idx, i * 0x9e3779b9u, i, i, &m) == 0 && m.node != 0)
			indexed++;
	ok(indexed == 8 + 2 + 64, "a full index takes no more: %u indexed",
	    indexed);
	ok(insert(idx, 5, 300, 300, &m) == 0 && m.node == 0,
	    "one more: not indexed (node 0)");
	ok(find(idx, 3 * 0x9e3779b9u, 3, &m) == 1 && m.handle == 3,
	    "what is indexed is still found");
	ok(index_valid(idx), "valid");
	merge_destroy(idx);
}

static void
test_hash(void)
{
	unsigned char page[PG], copy[PG];
	uint64_t seed = 5, w;
	uint32_t key;
	unsigned int bit, same = 0, pairs = 0;

	fill_text(page, PG, &seed);
	memcpy(copy, page, PG);
	key = merge_page_hash(page);
	ok(merge_page_hash(copy) == key, "equal pages, equal keys");
	for (bit = 0; bit < PG * 8; bit++) {
		copy[bit / 8] ^= (unsigned char)(1u << bit % 8);
		same += merge_page_hash(copy) == key;
		copy[bit / 8] ^= (unsigned char)(1u << bit % 8);
	}
	ok(same == 0, "none of the %d one-bit changes keeps the key (%u do)",
	    PG * 8, same);
	/* Sign bits of two words 32 bytes apart (one lane) flipped. */
	for (bit = 0; bit + 32 < PG; bit += 8) {
		memcpy(&w, copy + bit, 8);
		w ^= 1ull << 63;
		memcpy(copy + bit, &w, 8);
		memcpy(&w, copy + bit + 32, 8);
		w ^= 1ull << 63;
		memcpy(copy + bit + 32, &w, 8);
		pairs += merge_page_hash(copy) == key;
		memcpy(copy, page, PG);
	}
	ok(pairs == 0, "nor do flips of two words' top bits that could "
	    "cancel (%u do)", pairs);
}

/* ---- the store ------------------------------------------------------ */

static struct zs_pool *
pool_sync(size_t section_size)
{
	struct zs_pool_config cfg;
	struct zs_pool *pool;

	zs_pool_config_init(&cfg);
	cfg.async_free = 0;
	cfg.free_batch = 0;
	cfg.free_page_reporting = 0;
	if (section_size != 0)
		cfg.section_size = section_size;
	if ((pool = zs_create_pool(&cfg)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	return pool;
}

static struct store *
store_merging(struct zs_pool *pool, uint64_t nr_pages, enum codec_id codec,
    uint64_t mem_limit)
{
	struct store_options opt = { codec, 1, mem_limit, true };
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

/* Live objects: those whose free still waits in a batch are not. */
static uint64_t
objects(struct zs_pool *pool)
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

/* Every page of the store reads back as ref. */
static bool
all_read_back(struct store *st, struct store_ctx *ctx, const unsigned char
    *ref, uint64_t nr_pages)
{
	unsigned char page[PG];
	uint64_t i;

	for (i = 0; i < nr_pages; i++)
		if (store_read(st, ctx, i * PG, page, PG) != PG ||
		    memcmp(page, ref + i * PG, PG) != 0) {
			diag("page %llu differs", (unsigned long long)i);
			return false;
		}
	return true;
}

static void
write_ref(struct store *st, struct store_ctx *ctx, unsigned char *ref,
    uint64_t i, const void *page)
{
	int error;

	if ((error = store_write(st, ctx, i * PG, page, PG)) != 0)
		bail("store_write of page %llu: %d", (unsigned long long)i,
		    error);
	memcpy(ref + i * PG, page, PG);
}

/* N copies of a page: one object, N - 1 pages merged, and back. */
static void
test_store_copies(enum codec_id codec, bool raw)
{
	enum { N = 32 };
	const char *name = raw ? "raw" : codec_name(codec);
	struct zs_pool *pool = pool_sync(0);
	struct store *st = store_merging(pool, N + 8, codec, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char *ref, page[PG], other[PG];
	struct store_stats s;
	uint64_t seed = raw ? 3 : 11, len, i;

	if ((ref = calloc(N + 8, PG)) == NULL)
		bail("out of memory");
	if (raw)
		fill_random(page, PG, &seed);
	else
		fill_text(page, PG, &seed);
	for (i = 0; i < N; i++)
		write_ref(st, ctx, ref, i, page);
	store_stats(st, &s);
	len = s.compr_data_size;
	ok(objects(pool) == 1 && s.pages_merged == N - 1 &&
	    s.merge_objects == 1 && s.pages_stored == N &&
	    s.merge_saved == (N - 1) * len && s.huge_pages == (raw ? N : 0),
	    "%s: %d copies, one object of %llu bytes, %llu merged, %llu "
	    "bytes saved", name, N, (unsigned long long)len,
	    (unsigned long long)s.pages_merged,
	    (unsigned long long)s.merge_saved);
	ok(raw ? len == PG : len < PG / 2, "%s: the object is %s", name,
	    raw ? "the page itself" : "compressed");
	ok(store_compr_size(st) == len && store_pages_stored(st) == N,
	    "%s: store_compr_size and store_pages_stored agree with "
	    "store_stats", name);
	ok(all_read_back(st, ctx, ref, N + 8), "%s: every copy reads back",
	    name);

	/* Overwrites and discards give references back. */
	fill_text(other, PG, &seed);
	write_ref(st, ctx, ref, 0, other);
	(void)store_discard(st, ctx, 1 * PG, 2 * PG);
	memset(ref + PG, 0, 2 * PG);
	store_stats(st, &s);
	ok(objects(pool) == 2 && s.pages_merged == N - 4 &&
	    s.merge_objects == 1, "%s: one overwritten, two discarded: %llu "
	    "merged, 2 objects", name, (unsigned long long)s.pages_merged);

	/* A partial write unshares its page; one that restores it shares. */
	memset(page + 100, 0x33, 50);
	ok(store_write(st, ctx, 3 * PG + 100, page + 100, 50) == 0,
	    "%s: a partial write into a merged page", name);
	memcpy(ref + 3 * PG + 100, page + 100, 50);
	store_stats(st, &s);
	ok(objects(pool) == 3 && s.pages_merged == N - 5,
	    "%s: that page has an object of its own (%llu merged)", name,
	    (unsigned long long)s.pages_merged);
	ok(store_write(st, ctx, 4 * PG + 100, page + 100, 50) == 0 &&
	    (store_stats(st, &s), s.pages_merged == N - 5) &&
	    objects(pool) == 3, "%s: the same patch on another: merged with "
	    "it", name);
	memcpy(ref + 4 * PG + 100, page + 100, 50);
	ok(all_read_back(st, ctx, ref, N + 8), "%s: all read back", name);

	/* The last reference frees the object. */
	(void)store_discard(st, ctx, 5 * PG, (N - 6) * PG);
	memset(ref + 5 * PG, 0, (N - 6) * PG);
	store_stats(st, &s);
	ok(objects(pool) == 3 && s.pages_merged == 1 && s.merge_objects == 1,
	    "%s: all but page %d of the copies discarded: 3 objects", name,
	    N - 1);
	(void)store_discard(st, ctx, (N - 1) * PG, PG);
	memset(ref + (N - 1) * PG, 0, PG);
	store_stats(st, &s);
	ok(objects(pool) == 2 && s.pages_merged == 1,
	    "%s: and that one: its object freed", name);
	ok(all_read_back(st, ctx, ref, N + 8) && pool_valid(pool),
	    "%s: reads back, pool valid", name);
	(void)store_discard(st, ctx, 0, (N + 8) * PG);
	store_stats(st, &s);
	ok(objects(pool) == 0 && s.pages_merged == 0 && s.merge_objects ==
	    0 && s.merge_saved == 0 && s.compr_data_size == 0,
	    "%s: everything discarded: no objects, gauges at zero", name);
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
	free(ref);
}

/* Pages of two codecs, the same bytes: merged across the switch. */
static void
test_store_codecs(void)
{
	struct zs_pool *pool = pool_sync(0);
	struct store *st = store_merging(pool, 8, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	struct store_options opt = { CODEC_ZSTD, 3, 0, true };
	unsigned char ref[8 * PG], page[PG];
	struct store_stats s;
	uint64_t seed = 99;

	fill_text(page, PG, &seed);
	write_ref(st, ctx, ref, 0, page);
	store_set_options(st, &opt);
	write_ref(st, ctx, ref, 1, page);
	store_stats(st, &s);
	ok(s.pages_merged == 1 && objects(pool) == 1,
	    "a page stored with lz4, then written with zstd: merged");
	memset(ref + 2 * PG, 0, 6 * PG);
	ok(all_read_back(st, ctx, ref, 8), "both read back");
	store_destroy(st);
	ok(objects(pool) == 0, "store_destroy frees shared objects once");
	store_ctx_destroy(ctx);
	zs_destroy_pool(pool);
}

/*
 * Every page hashed to one key: pages of different content must be
 * stored apart (each match is compared byte for byte), copies still
 * found among them.
 */
static void
test_store_collisions(void)
{
	enum { N = 24 };
	struct zs_pool *pool = pool_sync(0);
	struct store *st = store_merging(pool, 2 * N, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char *ref, page[PG];
	struct store_stats s;
	uint64_t seed = 1234, i;

	if ((ref = calloc(2 * N, PG)) == NULL)
		bail("out of memory");
	atomic_store(&force_key, true);
	for (i = 0; i < N; i++) {
		fill_text(page, PG, &seed);
		/* Half of them raw: both kinds are compared. */
		if (i % 2)
			fill_random(page + PG / 2, PG / 2, &seed);
		write_ref(st, ctx, ref, i, page);
	}
	store_stats(st, &s);
	ok(s.pages_merged == 0 && objects(pool) == N &&
	    s.merge_collisions >= N * (N - 1) / 2,
	    "%d pages of one key, other bytes: none merged, %llu collisions",
	    N, (unsigned long long)s.merge_collisions);
	ok(all_read_back(st, ctx, ref, N), "each reads back as written");
	for (i = 0; i < N; i++)
		write_ref(st, ctx, ref, N + i, ref + (N - 1 - i) * PG);
	store_stats(st, &s);
	ok(s.pages_merged == N && objects(pool) == N,
	    "copies of them, written after: each merged with its own (%llu)",
	    (unsigned long long)s.pages_merged);
	ok(all_read_back(st, ctx, ref, 2 * N), "all read back");
	atomic_store(&force_key, false);
	store_ctx_destroy(ctx);
	store_destroy(st);
	ok(objects(pool) == 0, "destroy frees them all");
	zs_destroy_pool(pool);
	free(ref);
}

/*
 * Shared objects moved by compaction, section migration, offline and
 * shrink: they read back, and new copies still find them.
 */
static void
test_store_moved(void)
{
	enum { GROUPS = 48, COPIES = 4, UNIQUE = 600,
	    NPAGES = GROUPS * COPIES + UNIQUE + GROUPS * 4 };
	struct zs_pool *pool = pool_sync(256 << 10);
	struct store *st = store_merging(pool, NPAGES, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char *ref, *group, page[PG];
	struct zs_compact_result cr;
	struct zs_pool_stats ps;
	struct store_stats s, s0;
	uint64_t seed = 4321, i, slot = 0, next, freed;
	unsigned int sec, g, c, migrated = 0, offlined = 0;

	if ((ref = calloc(NPAGES, PG)) == NULL ||
	    (group = calloc(GROUPS, PG)) == NULL)
		bail("out of memory");
	for (g = 0; g < GROUPS; g++)
		fill_text(group + g * PG, PG, &seed);
	/* Copies and unique pages interleaved, so that objects mix. */
	for (c = 0; c < COPIES; c++)
		for (g = 0; g < GROUPS; g++) {
			write_ref(st, ctx, ref, slot++, group + g * PG);
			for (i = 0; i < UNIQUE / (GROUPS * COPIES); i++) {
				fill_text(page, PG, &seed);
				write_ref(st, ctx, ref, slot++, page);
			}
		}
	next = slot;
	store_stats(st, &s0);
	ok(s0.pages_merged == GROUPS * (COPIES - 1) &&
	    s0.merge_objects == GROUPS, "%d groups of %d copies merged among "
	    "%llu pages", GROUPS, COPIES, (unsigned long long)next);

	/* Free most unique pages: sparse zspages to compact. */
	for (i = 0; i < next; i++)
		if (i % (UNIQUE / (GROUPS * COPIES) + 1) != 0 && i % 5 != 0) {
			(void)store_discard(st, ctx, i * PG, PG);
			memset(ref + i * PG, 0, PG);
		}
	freed = (uint64_t)zs_compact(pool, &cr);
	ok(cr.objs_moved > 0, "compaction moved %llu objects, freed %llu "
	    "pages", (unsigned long long)cr.objs_moved,
	    (unsigned long long)freed);
	ok(all_read_back(st, ctx, ref, NPAGES), "after compaction: all read "
	    "back");
	for (sec = 0; sec < zs_section_count(pool); sec++)
		if (zs_section_migrate(pool, sec) > 0)
			migrated++;
	zs_pool_stats(pool, &ps);
	ok(migrated > 0 && ps.pages_migrated > 0, "%u sections migrated, "
	    "%llu pages moved", migrated,
	    (unsigned long long)ps.pages_migrated);
	ok(all_read_back(st, ctx, ref, NPAGES), "after migration: all read "
	    "back");
	for (sec = 0; sec < zs_section_count(pool); sec++)
		if (zs_section_offline(pool, sec) >= 0)
			offlined++;
	(void)zs_pool_shrink(pool, 1 << 20);
	zs_pool_stats(pool, &ps);
	ok(ps.sections_offlined > 0, "%llu sections taken offline",
	    (unsigned long long)ps.sections_offlined);
	ok(all_read_back(st, ctx, ref, NPAGES), "after offline and shrink: "
	    "all read back");

	/* New copies of every group: found where the objects are now. */
	store_stats(st, &s0);
	i = objects(pool);
	for (g = 0; g < GROUPS; g++)
		write_ref(st, ctx, ref, next + g, group + g * PG);
	store_stats(st, &s);
	ok(s.pages_merged == s0.pages_merged + GROUPS && objects(pool) == i,
	    "a new copy of each group merges with its moved object (%llu "
	    "more merged, %llu objects more)",
	    (unsigned long long)(s.pages_merged - s0.pages_merged),
	    (unsigned long long)(objects(pool) - i));
	ok(all_read_back(st, ctx, ref, NPAGES) && pool_valid(pool),
	    "all read back, pool valid");
	store_ctx_destroy(ctx);
	store_destroy(st);
	ok(objects(pool) == 0, "destroy frees everything");
	zs_destroy_pool(pool);
	free(group);
	free(ref);
}

/* At the memory limit a copy takes no room: it is taken. */
static void
test_store_limit(void)
{
	enum { NPAGES = 1024, LIMIT = 256 << 10 };
	struct zs_pool *pool = pool_sync(0);
	struct store *st = store_merging(pool, NPAGES, CODEC_LZ4, LIMIT);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char page[PG], first[PG], back[PG];
	struct store_stats s;
	uint64_t seed = 8, i;
	int error = 0;

	fill_text(first, PG, &seed);
	if (store_write(st, ctx, 0, first, PG) != 0)
		bail("first write");
	for (i = 1; i < NPAGES; i++) {
		fill_text(page, PG, &seed);
		if ((error = store_write(st, ctx, i * PG, page, PG)) != 0)
			break;
	}
	ok(error == -ENOSPC, "new pages refused at the limit after %llu",
	    (unsigned long long)i);
	ok(store_write(st, ctx, (i + 1) * PG, first, PG) == 0 &&
	    store_read(st, ctx, (i + 1) * PG, back, PG) == PG &&
	    memcmp(back, first, PG) == 0, "a copy of a stored page into an "
	    "empty slot: taken");
	store_stats(st, &s);
	ok(s.pages_merged >= 1, "as a merged page (%llu)",
	    (unsigned long long)s.pages_merged);
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
}

/* merge = no, live: copies stored apart; yes again: merged again. */
static void
test_store_switch(void)
{
	struct zs_pool *pool = pool_sync(0);
	struct store *st = store_merging(pool, 16, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	struct store_options opt = { CODEC_LZ4, 1, 0, false };
	unsigned char ref[16 * PG], page[PG];
	struct store_stats s;
	uint64_t seed = 17;

	memset(ref, 0, sizeof(ref));
	fill_text(page, PG, &seed);
	write_ref(st, ctx, ref, 0, page);
	write_ref(st, ctx, ref, 1, page);
	store_set_options(st, &opt);
	write_ref(st, ctx, ref, 2, page);
	write_ref(st, ctx, ref, 3, page);
	store_stats(st, &s);
	ok(s.pages_merged == 1 && objects(pool) == 3,
	    "merge off: copies get objects of their own (%llu objects)",
	    (unsigned long long)objects(pool));
	opt.merge = true;
	store_set_options(st, &opt);
	write_ref(st, ctx, ref, 4, page);
	store_stats(st, &s);
	ok(s.pages_merged == 2 && objects(pool) == 3, "on again: merged");
	(void)store_discard(st, ctx, 0, 16 * PG);
	ok(objects(pool) == 0, "all discarded: nothing left");
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
}

/*
 * A window of writes that merge nothing: hashing is skipped but for one
 * write in 16; copies among those sampled end it.
 */
static void
test_store_skip(void)
{
	enum { UNIQUE = 300, COPIES = 64, NPAGES = UNIQUE + 2 * COPIES };
	struct zs_pool *pool = pool_sync(0);
	struct store *st = store_merging(pool, NPAGES, CODEC_LZ4, 0);
	struct store_ctx *ctx = ctx_new(st);
	unsigned char *ref, page[PG];
	struct store_stats s, s0;
	uint64_t seed = 61, i;

	if ((ref = calloc(NPAGES, PG)) == NULL)
		bail("out of memory");
	for (i = 0; i < UNIQUE; i++) {
		fill_text(page, PG, &seed);
		write_ref(st, ctx, ref, i, page);
	}
	store_stats(st, &s0);
	ok(s0.merge_skipped >= (UNIQUE - 256) * 15 / 16 - 1 &&
	    s0.merge_skipped < UNIQUE - 256, "%d pages that merge nothing: "
	    "the %d after the first 256 hashed one in 16 (%llu skipped)",
	    UNIQUE, UNIQUE - 256, (unsigned long long)s0.merge_skipped);
	fill_text(page, PG, &seed);
	for (i = 0; i < COPIES; i++)
		write_ref(st, ctx, ref, UNIQUE + i, page);
	store_stats(st, &s);
	ok(s.pages_merged > 0 && s.pages_merged < COPIES - 1 &&
	    s.merge_skipped > s0.merge_skipped && s.merge_skipped -
	    s0.merge_skipped <= 2 * 15, "%d copies: skipped until two "
	    "sampled ones met (%llu skipped, %llu merged)", COPIES,
	    (unsigned long long)(s.merge_skipped - s0.merge_skipped),
	    (unsigned long long)s.pages_merged);
	s0 = s;
	for (i = 0; i < COPIES; i++)
		write_ref(st, ctx, ref, UNIQUE + COPIES + i, page);
	store_stats(st, &s);
	ok(s.merge_skipped == s0.merge_skipped &&
	    s.pages_merged == s0.pages_merged + COPIES,
	    "then every copy is hashed and merged");
	ok(all_read_back(st, ctx, ref, NPAGES), "all read back");
	store_ctx_destroy(ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
	free(ref);
}

int
main(void)
{
	tap_watchdog(300);
	test_index_basic();
	test_index_runs();
	test_index_model();
	test_index_full();
	test_hash();
	test_store_copies(CODEC_LZ4, false);
	test_store_copies(CODEC_ZSTD, false);
	test_store_copies(CODEC_LZ4, true);
	test_store_codecs();
	test_store_collisions();
	test_store_moved();
	test_store_limit();
	test_store_switch();
	test_store_skip();
	return done_testing();
}
