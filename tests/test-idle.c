/*
 * test-idle.c - idle pages: every transition of a page, and that none of
 * them loses it.
 *
 * Stored -> marked idle -> recompressed -> read back -> rewritten;
 * stored -> idle -> written back -> read back -> discarded (its block
 * freed); a huge page recompressed in vain becomes incompressible and is
 * written back as such; ages instead of marks; the budgets (pages,
 * bytes, threshold); a backing file that cannot be opened, or that fails
 * to be written (RLIMIT_FSIZE: a real EFBIG from the file system), keeps
 * every page in memory; a store killed after writeback is recovered
 * with its pages in the file, and refuses to open without it; and
 * threads reading and writing while passes run lose nothing.
 */
#include <config.h>

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "zsd.h"

#define PG	ZSD_PAGE_SIZE
#define NPAGES	512u

static char dir[PATH_MAX - 64];	/* room for the file names */
static char bpath[PATH_MAX - 32];	/* room for .small and .other */

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/*
 * Page i of generation gen: text of words (lz4 takes it to about a
 * third, zstd further) or, if random, bytes that compress to nothing.
 */
static void
page_of(unsigned char *p, uint64_t i, uint64_t gen, bool random)
{
	static const char *words[] = { "swap ", "page ", "zspage ",
	    "handle ", "compress ", "the ", "of ", "kernel ", "slot ",
	    "\n", "42 ", "memory ", "idle ", "backing " };
	uint64_t s = (i + 1) * 0x9e3779b97f4a7c15ull ^ (gen + 7) * 31;
	const char *w;
	size_t k = 0;
	uint64_t v;

	if (random) {
		for (k = 0; k < PG; k += sizeof(v)) {
			v = rnd(&s);
			memcpy(p + k, &v, sizeof(v));
		}
		return;
	}
	while (k < PG) {
		w = words[rnd(&s) % (sizeof(words) / sizeof(words[0]))];
		while (*w != '\0' && k < PG)
			p[k++] = (unsigned char)*w++;
	}
	/* Unique: no two pages alike. */
	memcpy(p, &i, sizeof(i));
	memcpy(p + 8, &gen, sizeof(gen));
}

static struct store_options
opts(struct backing *b)
{
	struct store_options o = { .codec = CODEC_LZ4, .zstd_level = 1,
	    .recompress_level = 9, .backing = b };

	return o;
}

static struct store *
store_new(struct zs_pool **poolp, struct backing *b)
{
	struct store_options o = opts(b);
	struct store *st;
	int error = 0;

	if ((*poolp = zs_create_pool(NULL)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	if ((st = store_create(*poolp, NPAGES, &o, &error)) == NULL)
		bail("store_create: %s", strerror(-error));
	return st;
}

static struct backing *
backing_new(uint64_t size)
{
	struct backing *b;
	char why[512];

	(void)unlink(bpath);
	if ((b = backing_open(bpath, size, 0, why, sizeof(why))) == NULL)
		bail("%s", why);
	return b;
}

static void
write_all(struct store *st, struct store_ctx *ctx, uint64_t n, uint64_t gen,
    bool random)
{
	static unsigned char p[PG];
	uint64_t i;

	for (i = 0; i < n; i++) {
		page_of(p, i, gen, random);
		if (store_write(st, ctx, i * PG, p, PG) != 0)
			bail("write of page %llu failed", (unsigned long long)i);
	}
}

/* Pages [0, n) hold generation gen (gens: per page, or NULL). */
static bool
check_all(struct store *st, struct store_ctx *ctx, uint64_t n, uint64_t gen,
    const uint64_t *gens, bool random)
{
	static unsigned char got[PG], want[PG];
	uint64_t i;

	for (i = 0; i < n; i++) {
		page_of(want, i, gens != NULL ? gens[i] : gen, random);
		if (store_read(st, ctx, i * PG, got, PG) != PG ||
		    memcmp(got, want, PG) != 0) {
			diag("page %llu differs", (unsigned long long)i);
			return false;
		}
	}
	return true;
}

/* Live objects: those whose free still waits in a batch are not. */
static uint64_t
pool_objects_of(struct zs_pool *pool)
{
	struct zs_pool_stats ps;

	zs_pool_stats(pool, &ps);
	return ps.objects - ps.objs_pending_free;
}

static struct store_stats
stats(struct store *st)
{
	struct store_stats ss;

	store_stats(st, &ss);
	return ss;
}

static void
test_recompress(void)
{
	static unsigned char p[PG];
	struct store_pass pass = { .pick = PICK_IDLE };
	struct store_pass_result res;
	struct store_stats before, ss;
	struct zs_pool *pool;
	struct store *st = store_new(&pool, NULL);
	struct store_ctx *ctx = store_ctx_create(st), *job;
	uint64_t gens[NPAGES] = { 0 };

	job = store_ctx_create(st);
	write_all(st, ctx, NPAGES, 0, false);
	store_recompress(st, job, &pass, &res);
	ok(res.pages == 0 && res.scanned == 0,
	    "nothing is idle yet: nothing recompressed");
	ok(store_mark_idle(st, 0) == NPAGES && stats(st).idle_pages ==
	    NPAGES, "idle all marks every stored page");
	ok(check_all(st, ctx, 1, 0, NULL, false) &&
	    stats(st).idle_pages == NPAGES - 1,
	    "a read clears its page's mark");
	ok(store_mark_idle(st, 0) == 1, "marking again marks only that one");

	/* A page rewritten now is not idle and keeps its new content. */
	page_of(p, 7, 1, false);
	gens[7] = 1;
	store_write(st, ctx, 7 * PG, p, PG);
	before = stats(st);
	pass.max_pages = 100;
	store_recompress(st, job, &pass, &res);
	ok(res.pages == 100, "max_pages: 100 recompressed (%llu)",
	    (unsigned long long)res.pages);
	pass.max_pages = 0;
	store_recompress(st, job, &pass, &res);
	ss = stats(st);
	ok(res.pages == NPAGES - 101 && ss.recompressed == NPAGES - 1,
	    "the rest of the idle pages: %llu, all but the rewritten one",
	    (unsigned long long)res.pages);
	ok(ss.compr_data_size < before.compr_data_size &&
	    ss.recompress_saved == before.compr_data_size -
	    ss.compr_data_size, "zstd saved %llu of %llu bytes, as counted",
	    (unsigned long long)ss.recompress_saved,
	    (unsigned long long)before.compr_data_size);
	ok(ss.idle_pages == NPAGES - 1,
	    "recompression is not an access: pages stay idle");
	ok(check_all(st, ctx, NPAGES, 0, gens, false),
	    "every page reads back, zstd and lz4 alike");
	store_recompress(st, job, &pass, &res);
	ok(res.pages == 0 && res.scanned == 0,
	    "a page is recompressed once");

	/* Rewritten after recompression: lz4 again, new content. */
	page_of(p, 9, 2, false);
	gens[9] = 2;
	ok(store_write(st, ctx, 9 * PG, p, PG) == 0 &&
	    check_all(st, ctx, NPAGES, 0, gens, false),
	    "a recompressed page rewritten holds the new content");

	/* Threshold: only objects of at least that many bytes. */
	store_destroy(st);
	zs_destroy_pool(pool);
	st = store_new(&pool, NULL);
	store_ctx_destroy(ctx);
	store_ctx_destroy(job);
	ctx = store_ctx_create(st);
	job = store_ctx_create(st);
	write_all(st, ctx, NPAGES, 0, false);
	store_mark_idle(st, 0);
	pass.threshold = PG;
	store_recompress(st, job, &pass, &res);
	ok(res.scanned == 0, "threshold 4096: no lz4 page is that large");
	store_destroy(st);
	zs_destroy_pool(pool);
	store_ctx_destroy(ctx);
	store_ctx_destroy(job);
}

static void
test_ages(void)
{
	struct store_pass pass = { .pick = PICK_IDLE, .min_age = 60 };
	struct store_pass_result res;
	struct zs_pool *pool;
	struct store *st = store_new(&pool, NULL);
	struct store_ctx *ctx = store_ctx_create(st);

	write_all(st, ctx, NPAGES, 0, false);
	store_recompress(st, ctx, &pass, &res);
	ok(res.pages == 0, "min_age 60: nothing is that old yet");
	store_clock_advance(st, 61);
	ok(check_all(st, ctx, 10, 0, NULL, false),
	    "(10 pages read: young again)");
	ok(store_mark_idle(st, 60) == NPAGES - 10,
	    "idle 60 marks the pages unused for 60 seconds");
	store_recompress(st, ctx, &pass, &res);
	ok(res.pages == NPAGES - 10, "and min_age 60 picks just those");
	ok(check_all(st, ctx, NPAGES, 0, NULL, false), "all read back");
	store_destroy(st);
	zs_destroy_pool(pool);
	store_ctx_destroy(ctx);
}

static void
test_writeback(void)
{
	static unsigned char p[PG];
	struct store_pass pass = { .pick = PICK_IDLE };
	struct store_pass_result res;
	struct store_stats ss, before;
	struct backing *b = backing_new(NPAGES * PG);
	struct zs_pool *pool;
	struct store *st = store_new(&pool, b);
	struct store_ctx *ctx = store_ctx_create(st);
	struct store_ctx *job = store_ctx_create(st);
	uint64_t gens[NPAGES] = { 0 };
	uint64_t i;

	write_all(st, ctx, NPAGES, 0, false);
	before = stats(st);
	store_writeback(st, job, &pass, &res);
	ok(res.pages == 0 && res.error == 0, "nothing idle: nothing written");
	store_mark_idle(st, 0);
	pass.max_bytes = 8 * PG;
	store_writeback(st, job, &pass, &res);
	ok(res.bytes_written == 8 * PG && res.pages > 8,
	    "max_bytes: 8 blocks written, %llu pages packed in them",
	    (unsigned long long)res.pages);
	pass.max_bytes = 0;
	store_writeback(st, job, &pass, &res);
	ss = stats(st);
	ok(ss.bd_count == NPAGES && ss.bd_writes == NPAGES,
	    "the rest: every page is in the file (%llu)",
	    (unsigned long long)ss.bd_count);
	ok(ss.bd_blocks_used <= NPAGES / 2 && ss.bd_blocks_used * PG >=
	    ss.bd_bytes, "packed: %llu pages in %llu blocks",
	    (unsigned long long)ss.bd_count,
	    (unsigned long long)ss.bd_blocks_used);
	ok(ss.compr_data_size == 0 && pool_objects_of(pool) == 0 &&
	    ss.bd_bytes == before.compr_data_size,
	    "no object left in memory; the file holds the same bytes");
	ok(check_all(st, ctx, NPAGES, 0, NULL, false) &&
	    stats(st).bd_reads == NPAGES, "every page reads back from it");

	/* Rewrite half; discard the other half: every block freed. */
	for (i = 0; i < NPAGES; i += 2) {
		page_of(p, i, 3, false);
		gens[i] = 3;
		store_write(st, ctx, i * PG, p, PG);
	}
	ok(check_all(st, ctx, NPAGES, 0, gens, false) &&
	    stats(st).bd_count == NPAGES / 2,
	    "a written-back page rewritten holds its new content");
	for (i = 1; i < NPAGES; i += 2)
		store_discard(st, ctx, i * PG, PG);
	ss = stats(st);
	ok(ss.bd_count == 0 && ss.bd_blocks_used == 0 && ss.bd_bytes == 0,
	    "discards and rewrites free every block");

	/* Huge pages: incompressible once recompression failed. */
	write_all(st, ctx, 64, 5, true);
	store_mark_idle(st, 0);
	pass.pick = PICK_INCOMPRESSIBLE;
	store_writeback(st, job, &pass, &res);
	ok(res.pages == 0, "incompressible: none before recompression tried");
	pass.pick = PICK_HUGE;
	store_recompress(st, job, &pass, &res);
	ok(res.scanned == 64 && res.pages == 0,
	    "zstd cannot shrink random pages either");
	pass.pick = PICK_INCOMPRESSIBLE;
	store_writeback(st, job, &pass, &res);
	ss = stats(st);
	ok(res.pages == 64 && ss.bd_blocks_used == 64 && ss.huge_pages == 0,
	    "then all 64 go, a block each");
	ok(check_all(st, ctx, 64, 5, NULL, true), "and read back raw");
	store_destroy(st);
	zs_destroy_pool(pool);
	store_ctx_destroy(ctx);
	store_ctx_destroy(job);
	backing_close(b);
}

/*
 * Pages that share an object (merging) are not the passes' to move;
 * pages alone in an indexed object are.
 */
static bool
check_range(struct store *st, struct store_ctx *ctx, uint64_t from,
    uint64_t to, bool pairs)
{
	static unsigned char got[PG], want[PG];
	uint64_t i;

	for (i = from; i < to; i++) {
		page_of(want, pairs ? i / 2 : i, pairs ? 9 : 1, false);
		if (store_read(st, ctx, i * PG, got, PG) != PG ||
		    memcmp(got, want, PG) != 0)
			return false;
	}
	return true;
}

static void
test_merged(void)
{
	static unsigned char p[PG];
	struct store_pass pass = { .pick = PICK_IDLE };
	struct store_pass_result res;
	struct store_options o;
	struct backing *b = backing_new(NPAGES * PG);
	struct zs_pool *pool = zs_create_pool(NULL);
	struct store *st;
	struct store_ctx *ctx;
	uint64_t i;
	int error = 0;

	o = opts(b);
	o.merge = true;
	if ((st = store_create(pool, NPAGES, &o, &error)) == NULL)
		bail("store_create: %s", strerror(-error));
	ctx = store_ctx_create(st);
	/* 0..63: alike two by two; 64..127: each its own, indexed too. */
	for (i = 0; i < 128; i++) {
		page_of(p, i < 64 ? i / 2 : i, i < 64 ? 9 : 1, false);
		store_write(st, ctx, i * PG, p, PG);
	}
	ok(stats(st).pages_merged == 32, "32 pages merged");
	store_mark_idle(st, 0);
	store_recompress(st, ctx, &pass, &res);
	ok(res.pages == 64, "recompression takes the 64 pages alone in "
	    "their objects (%llu)", (unsigned long long)res.pages);
	store_writeback(st, ctx, &pass, &res);
	ok(res.pages == 64 && stats(st).pages_merged == 32,
	    "so does writeback (%llu); the 32 objects stay shared",
	    (unsigned long long)res.pages);
	ok(stats(st).merge_objects == 32 && stats(st).bd_count == 64,
	    "32 shared objects in memory, 64 pages in the file");
	ok(check_range(st, ctx, 0, 64, true) &&
	    check_range(st, ctx, 64, 128, false),
	    "every page reads back, from the file or the shared objects");
	store_destroy(st);
	zs_destroy_pool(pool);
	store_ctx_destroy(ctx);
	backing_close(b);
}

static void
test_errors(void)
{
	struct store_pass pass = { .pick = PICK_IDLE };
	struct store_pass_result res;
	struct rlimit old, rl;
	struct backing *b;
	struct zs_pool *pool;
	struct store *st;
	struct store_ctx *ctx;
	char why[512] = "", path[PATH_MAX];
	int fdw;

	snprintf(path, sizeof(path), "%s/no/such/dir/file", dir);
	ok(backing_open(path, PG, 0, why, sizeof(why)) == NULL &&
	    strstr(why, path) != NULL && strstr(why, "No such file") != NULL,
	    "a backing file that cannot be made: %s", why);
	ok(backing_open("/dev/null", PG, 0, why, sizeof(why)) == NULL &&
	    strstr(why, "neither") != NULL, "nor a character device: %s",
	    why);

	st = store_new(&pool, NULL);
	ctx = store_ctx_create(st);
	write_all(st, ctx, 16, 0, false);
	store_mark_idle(st, 0);
	store_writeback(st, ctx, &pass, &res);
	ok(res.error == -ENXIO && res.pages == 0,
	    "writeback without a backing file: ENXIO");
	store_destroy(st);
	zs_destroy_pool(pool);
	store_ctx_destroy(ctx);

	/* Some other file: its first block is not written over. */
	snprintf(path, sizeof(path), "%s/other", dir);
	if ((fdw = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    write(fdw, "not zsd's", 9) != 9 || ftruncate(fdw, 64 * PG) != 0)
		bail("%s: %s", path, strerror(errno));
	close(fdw);
	b = backing_open(path, 0, 0, why, sizeof(why));
	ok(b != NULL, "a file of its own size is opened as it is");
	ok(backing_open(path, 0, 0, why, sizeof(why)) == NULL &&
	    strstr(why, "in use by another zsd") != NULL,
	    "but not twice: %s", why);
	st = store_new(&pool, b);
	ctx = store_ctx_create(st);
	ok(store_backing_problem(st) != NULL &&
	    strstr(store_backing_problem(st), "other data") != NULL,
	    "a first block of other data is not claimed: %s",
	    store_backing_problem(st));
	write_all(st, ctx, 16, 0, false);
	store_mark_idle(st, 0);
	store_writeback(st, ctx, &pass, &res);
	ok(res.error == -ENXIO && res.pages == 0 &&
	    (fdw = open(path, O_RDONLY)) >= 0 && read(fdw, why, 9) == 9 &&
	    memcmp(why, "not zsd's", 9) == 0,
	    "the store goes on without it, the file untouched");
	if (fdw >= 0)
		close(fdw);
	backing_close(b);
	unlink(path);
	store_destroy(st);
	zs_destroy_pool(pool);
	store_ctx_destroy(ctx);

	/* Writes past 3 blocks (the header, 2 of pages) fail with EFBIG,
	 * as from a full disk. */
	b = backing_new(NPAGES * PG);
	st = store_new(&pool, b);
	ctx = store_ctx_create(st);
	write_all(st, ctx, NPAGES, 0, false);
	store_mark_idle(st, 0);
	(void)signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	rl = old;
	rl.rlim_cur = 3 * PG;
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		bail("setrlimit: %s", strerror(errno));
	store_writeback(st, ctx, &pass, &res);
	setrlimit(RLIMIT_FSIZE, &old);
	ok(res.error == -EFBIG && res.bytes_written == 2 * PG &&
	    res.failed > 0, "a write that fails ends the pass: %s",
	    strerror(-res.error));
	ok(stats(st).bd_count == res.pages && stats(st).bd_blocks_used == 2,
	    "what was written is in the file, %llu pages",
	    (unsigned long long)res.pages);
	ok(check_all(st, ctx, NPAGES, 0, NULL, false),
	    "and every page, there or in memory, reads back");
	store_destroy(st);
	zs_destroy_pool(pool);
	store_ctx_destroy(ctx);
	backing_close(b);
}

/* Block 0 of from into a new file to, of 2 blocks. */
static int
copy_header(const char *from, const char *to)
{
	static unsigned char buf[PG];
	int in, out, r = -1;

	if ((in = open(from, O_RDONLY)) < 0)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0) {
		if (read(in, buf, PG) == PG && write(out, buf, PG) == PG &&
		    ftruncate(out, 2 * PG) == 0)
			r = 0;
		close(out);
	}
	close(in);
	return r;
}

/*
 * A process writes pages to a store in an arena, writes them back and
 * dies; the next opens it without the backing file (refused: ENXIO),
 * then with it, and reads them all back.
 */
static int
arena_child(int fd, int step)
{
	struct store_pass pass = { .pick = PICK_IDLE };
	struct store_pass_result res;
	struct zs_pool_config pcfg;
	struct store_options o;
	struct backing *b = NULL;
	struct zs_pool *pool;
	struct store *st;
	struct store_ctx *ctx;
	struct store_stats ss;
	char why[512] = "", path[PATH_MAX];
	int error = 0;

	zs_pool_config_init(&pcfg);
	pcfg.section_size = 256u << 10;
	if (step == 3 || step == 4) {
		/*
		 * Another file as large as the first; or the first's header
		 * in a file of 2 blocks, as if it had been cut short.
		 */
		snprintf(path, sizeof(path), "%s.%s", bpath, step == 3 ?
		    "small" : "other");
		(void)unlink(path);
		if (step == 3 && copy_header(bpath, path) != 0)
			return 18;
		if ((b = backing_open(path, step == 3 ? 2 * PG : NPAGES * PG,
		    0, why, sizeof(why))) == NULL) {
			fprintf(stderr, "%s\n", why);
			return 10;
		}
	} else if (step != 1) {
		if ((b = backing_open(bpath, NPAGES * PG, 0, why,
		    sizeof(why))) == NULL) {
			fprintf(stderr, "%s\n", why);
			return 10;
		}
	}
	o = opts(b);
	pool = step == 0 ? zs_arena_create(&pcfg, fd,
	    store_root_size(NPAGES)) : zs_arena_attach(&pcfg, fd);
	if (pool == NULL)
		return 11;
	st = store_open(pool, NPAGES, &o, why, sizeof(why), &error);
	if (step == 1)
		return st == NULL && error == -ENXIO &&
		    strstr(why, "backing_file") != NULL ? 0 : 12;
	if (step == 3 || step == 4)
		return st == NULL && error == -ENXIO && strstr(why, step == 3 ?
		    "same file" : "another file") != NULL ? 0 : 17;
	if (st == NULL || (ctx = store_ctx_create(st)) == NULL) {
		fprintf(stderr, "store_open: %s\n", why);
		return 13;
	}
	if (step == 0) {
		write_all(st, ctx, NPAGES, 0, false);
		store_mark_idle(st, 0);
		pass.max_pages = NPAGES / 2;
		store_writeback(st, ctx, &pass, &res);
		return res.pages == NPAGES / 2 ? 0 : 14;
	}
	store_stats(st, &ss);
	if (ss.bd_count != NPAGES / 2 || ss.pages_stored != NPAGES ||
	    ss.bd_blocks_used == 0)
		return 15;
	return check_all(st, ctx, NPAGES, 0, NULL, false) ? 0 : 16;
}

/*
 * A store of 4 GiB in an arena with a few pages written: marking and
 * passes leave the untouched part of its slot table alone (in a memfd
 * as in zsd's tmpfs, reading a page of it would allocate it).  The
 * memfd's blocks, before and after, in *before and *after.
 */
static int
sparse_child(int fd, uint64_t *before, uint64_t *after)
{
	const uint64_t nr = 1u << 20;
	struct store_pass pass = { .pick = PICK_IDLE };
	struct store_pass_result res;
	struct zs_pool_config pcfg;
	struct store_options o = opts(NULL);
	struct zs_pool *pool;
	struct store *st;
	struct store_ctx *ctx;
	static unsigned char p[PG];
	struct stat sb;
	char why[256];
	uint64_t i;
	int error;

	zs_pool_config_init(&pcfg);
	pcfg.section_size = 256u << 10;
	if ((pool = zs_arena_create(&pcfg, fd, store_root_size(nr))) == NULL ||
	    (st = store_open(pool, nr, &o, why, sizeof(why), &error)) ==
	    NULL || (ctx = store_ctx_create(st)) == NULL)
		return 1;
	for (i = 0; i < 64; i++) {
		page_of(p, i, 0, false);
		store_write(st, ctx, (i * 997 % nr) * PG, p, PG);
	}
	fstat(fd, &sb);
	*before = (uint64_t)sb.st_blocks * 512;
	store_mark_idle(st, 0);
	store_recompress(st, ctx, &pass, &res);
	if (res.pages != 64)
		return 2;
	fstat(fd, &sb);
	*after = (uint64_t)sb.st_blocks * 512;
	return 0;
}

static void
test_sparse(void)
{
	uint64_t sizes[2] = { 0, 0 };
	int fd, pfd[2], status;
	pid_t pid;

	if ((fd = memfd_create("test-idle-sparse", MFD_CLOEXEC)) < 0 ||
	    pipe(pfd) != 0) {
		skip(1, "memfd_create or pipe: %s", strerror(errno));
		return;
	}
	if ((pid = fork()) < 0)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		status = sparse_child(fd, &sizes[0], &sizes[1]);
		if (write(pfd[1], sizes, sizeof(sizes)) != sizeof(sizes))
			_exit(3);
		_exit(status);
	}
	close(pfd[1]);
	if (read(pfd[0], sizes, sizeof(sizes)) != sizeof(sizes))
		sizes[0] = sizes[1] = 0;
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && sizes[0] != 0 &&
	    sizes[1] - sizes[0] < (1u << 20), "passes over a 4 GiB store "
	    "holding 64 pages leave its slot table alone: %llu KiB of arena "
	    "before, %llu after", (unsigned long long)sizes[0] >> 10,
	    (unsigned long long)sizes[1] >> 10);
	close(pfd[0]);
	close(fd);
}

static int
run_child(int fd, int step)
{
	int status;
	pid_t pid;

	if ((pid = fork()) < 0)
		bail("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(arena_child(fd, step));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void
test_recovery(void)
{
	int fd, rc;

	(void)unlink(bpath);
	if ((fd = memfd_create("test-idle", MFD_CLOEXEC)) < 0) {
		skip(5, "memfd_create: %s", strerror(errno));
		return;
	}
	rc = run_child(fd, 0);
	ok(rc == 0,
	    "a store wrote half its pages back and died (%d)", rc);
	rc = run_child(fd, 1);
	ok(rc == 0,
	    "its successor without the backing file is refused (%d)", rc);
	rc = run_child(fd, 4);
	ok(rc == 0, "with another file as large as theirs, it is refused "
	    "(%d)", rc);
	rc = run_child(fd, 3);
	ok(rc == 0, "with theirs cut short, too (%d)", rc);
	rc = run_child(fd, 2);
	ok(rc == 0,
	    "with it, every page is recovered and reads back (%d)", rc);
	close(fd);
}

/* Compaction and section offline, moving objects under the passes. */
struct mover {
	pthread_t	 thread;
	struct zs_pool	*pool;
	_Atomic bool	*stop;
	uint64_t	 moved;
};

static void *
mover_run(void *arg)
{
	struct mover *m = arg;
	struct zs_compact_result r;

	while (!atomic_load(m->stop)) {
		if (zs_compact(m->pool, &r) >= 0)
			m->moved += r.objs_moved;
		(void)zs_pool_shrink(m->pool, 256u << 10);
	}
	return NULL;
}

/* Threads rewriting and reading pages while passes run. */
struct hammer {
	pthread_t	 thread;
	struct store	*st;
	unsigned int	 id;
	_Atomic uint64_t *gens;
	_Atomic bool	*stop;
	uint64_t	 bad;
};

static void *
hammer_run(void *arg)
{
	static _Thread_local unsigned char got[PG], want[PG];
	struct hammer *h = arg;
	struct store_ctx *ctx = store_ctx_create(h->st);
	uint64_t s = h->id + 1, i, gen;

	while (!atomic_load(h->stop)) {
		/* Each thread owns the pages i % 2 == id. */
		i = (rnd(&s) % (NPAGES / 2)) * 2 + h->id;
		gen = atomic_load(&h->gens[i]);
		if (rnd(&s) % 4 == 0) {
			page_of(want, i, ++gen, false);
			if (store_write(h->st, ctx, i * PG, want, PG) == 0)
				atomic_store(&h->gens[i], gen);
			continue;
		}
		page_of(want, i, gen, false);
		if (store_read(h->st, ctx, i * PG, got, PG) != PG ||
		    memcmp(got, want, PG) != 0)
			h->bad++;
	}
	store_ctx_destroy(ctx);
	return NULL;
}

static void
test_concurrent(void)
{
	static _Atomic uint64_t gens[NPAGES];
	static uint64_t last[NPAGES];
	struct store_pass pass = { .pick = PICK_IDLE };
	struct store_pass_result res;
	struct hammer h[2];
	struct mover mv;
	struct backing *b = backing_new(4 * NPAGES * PG);
	struct zs_pool *pool;
	struct store *st = store_new(&pool, b);
	struct store_ctx *job = store_ctx_create(st);
	char why[256] = "";
	_Atomic bool stop = false;
	uint64_t moved = 0, packed = 0, i;
	unsigned int k, round;

	write_all(st, job, NPAGES, 0, false);
	for (i = 0; i < NPAGES; i++)
		atomic_store(&gens[i], 0);
	for (k = 0; k < 2; k++) {
		h[k] = (struct hammer){ .st = st, .id = k, .gens = gens,
		    .stop = &stop };
		pthread_create(&h[k].thread, NULL, hammer_run, &h[k]);
	}
	mv = (struct mover){ .pool = pool, .stop = &stop };
	pthread_create(&mv.thread, NULL, mover_run, &mv);
	for (round = 0; round < 40; round++) {
		store_mark_idle(st, 0);
		store_recompress(st, job, &pass, &res);
		moved += res.pages;
		store_mark_idle(st, 0);
		store_writeback(st, job, &pass, &res);
		packed += res.pages;
	}
	atomic_store(&stop, true);
	for (k = 0; k < 2; k++)
		pthread_join(h[k].thread, NULL);
	pthread_join(mv.thread, NULL);
	ok(h[0].bad + h[1].bad == 0,
	    "readers and writers during %llu recompressions, %llu "
	    "writebacks and %llu objects moved by compaction saw every page "
	    "right", (unsigned long long)moved, (unsigned long long)packed,
	    (unsigned long long)mv.moved);
	ok(zs_pool_validate(pool, why, sizeof(why)) == 0,
	    "the pool is valid %s", why);
	for (i = 0; i < NPAGES; i++)
		last[i] = atomic_load(&gens[i]);
	ok(check_all(st, job, NPAGES, 0, last, false),
	    "and every page holds its last write");
	store_destroy(st);
	zs_destroy_pool(pool);
	store_ctx_destroy(job);
	backing_close(b);
}

int
main(void)
{
	char small[PATH_MAX];

	tap_watchdog(300);
	/* In $TMPDIR, as the other tests. */
	snprintf(dir, sizeof(dir), "%s/test-idle.XXXXXX", getenv("TMPDIR") != NULL &&
	    *getenv("TMPDIR") != '\0' ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		bail("mkdtemp %s: %s", dir, strerror(errno));
	snprintf(bpath, sizeof(bpath), "%s/backing", dir);
	test_recompress();
	test_ages();
	test_writeback();
	test_merged();
	test_errors();
	test_recovery();
	test_sparse();
	test_concurrent();
	(void)unlink(bpath);
	snprintf(small, sizeof(small), "%s.small", bpath);
	(void)unlink(small);
	snprintf(small, sizeof(small), "%s.other", bpath);
	(void)unlink(small);
	(void)rmdir(dir);
	return done_testing();
}
