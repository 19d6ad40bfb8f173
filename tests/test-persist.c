/*
 * test-persist.c - the store in an arena: killed while it writes, it is
 * recovered by the next process with every page old or new, never torn.
 *
 * A worker process opens (creates or recovers) a store in a memfd arena,
 * checks every page against the model, and then writes, rewrites (whole
 * and partial pages) and discards pages from three threads while a fourth
 * compacts, until the parent kills it with SIGKILL at a seeded random
 * moment.  The model lives in shared memory the kill leaves alone: per
 * page, the version last written in full (store_write returned) and the
 * one being written.  After a kill, a page must read back as one of the
 * two; the next worker then takes the one it found as the page's
 * version.  Page contents cover what the store treats differently:
 * same-filled, duplicates of other pages (merged), compressible,
 * incompressible (stored raw); version 0 is a page of zeros (discarded).
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "zsd.h"

#define NPAGES		4096u
#define THREADS		3u
#define PAGE		ZSD_PAGE_SIZE

/*
 * A page's content is named by two versions, of its first and second
 * half (a partial write changes the first): lo << 32 | hi.
 */
struct model {
	_Atomic uint64_t	done;		/* written: the call returned */
	_Atomic uint64_t	busy;		/* being written; NONE: none */
	_Atomic uint32_t	lock;		/* one writer per page */
};

#define NONE		UINT64_MAX
#define LO(p)		((uint32_t)((p) >> 32))
#define HI(p)		((uint32_t)(p))
#define PAIR(lo, hi)	((uint64_t)(lo) << 32 | (hi))

static struct model *model;
static struct zs_pool_config pcfg;
static struct store_options opt;

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* Version v of page i, whole; version 0 is zeros. */
static void
version_of(unsigned char *p, uint32_t i, uint32_t v)
{
	uint64_t h, x;
	size_t k;

	if (v == 0) {
		memset(p, 0, PAGE);
		return;
	}
	h = mix((uint64_t)i << 32 | v);
	switch (h % 8) {
	case 0:		/* same-filled */
		for (k = 0; k < PAGE; k += 8)
			memcpy(p + k, &h, 8);
		return;
	case 1:		/* a page many share: merged */
		h = mix(v % 5 + 1000);
		/* fall through */
	case 2:
	case 3:
	case 4:		/* compressible: words from a small set */
		for (k = 0; k < PAGE; k += 8) {
			x = mix(h + k / 64) % 16;
			memcpy(p + k, &x, 8);
		}
		return;
	default:	/* incompressible */
		for (k = 0, x = h; k < PAGE; k += 8) {
			x = mix(x + 1);
			memcpy(p + k, &x, 8);
		}
		return;
	}
}

/* The page a pair of versions names. */
static void
page_of(unsigned char *p, uint32_t i, uint64_t pair)
{
	unsigned char tmp[PAGE];

	version_of(p, i, LO(pair));
	if (HI(pair) != LO(pair)) {
		version_of(tmp, i, HI(pair));
		memcpy(p + PAGE / 2, tmp + PAGE / 2, PAGE / 2);
	}
}

struct worker {
	struct store	*st;
	uint64_t	 seed;
};

static void *
writer(void *arg)
{
	struct worker *w = arg;
	struct store_ctx *ctx = store_ctx_create(w->st);
	static __thread unsigned char buf[PAGE];
	uint64_t x = w->seed;

	if (ctx == NULL)
		_exit(3);
	for (;;) {
		uint32_t i, v, expect = 0;
		uint64_t done, next;
		struct model *m;
		int error;

		x = mix(x + 0x9e3779b97f4a7c15ull);
		i = (uint32_t)(x % NPAGES);
		m = &model[i];
		if (!atomic_compare_exchange_strong(&m->lock, &expect, 1))
			continue;
		done = atomic_load(&m->done);
		v = (LO(done) > HI(done) ? LO(done) : HI(done)) + 1;
		switch ((x >> 32) % 8) {
		case 0:		/* discard */
			next = PAIR(0, 0);
			atomic_store(&m->busy, next);
			error = store_discard(w->st, ctx, (uint64_t)i * PAGE,
			    PAGE);
			break;
		case 1:		/* partial: the first half of version v */
			next = PAIR(v, HI(done));
			version_of(buf, i, v);
			atomic_store(&m->busy, next);
			error = store_write(w->st, ctx, (uint64_t)i * PAGE, buf,
			    PAGE / 2);
			break;
		default:
			next = PAIR(v, v);
			version_of(buf, i, v);
			atomic_store(&m->busy, next);
			error = store_write(w->st, ctx, (uint64_t)i * PAGE, buf,
			    PAGE);
			break;
		}
		if (error == 0)
			atomic_store(&m->done, next);
		else if (error != -ENOMEM)
			_exit(4);
		atomic_store(&m->busy, NONE);
		atomic_store(&m->lock, 0);
	}
	return NULL;
}

static void *
compactor(void *arg)
{
	struct zs_pool *pool = arg;

	for (;;) {
		zs_compact(pool, NULL);
		(void)zs_pool_shrink(pool, 256u << 10);
	}
	return NULL;
}

/*
 * Open the store in fd; check every page against the model, and make
 * the model say what was found.  Exits non-zero with a message on error.
 */
static struct store *
open_and_check(int fd, struct zs_pool **poolp, struct store_recovery *rec)
{
	static unsigned char got[PAGE], want[PAGE];
	struct store_ctx *ctx;
	struct zs_pool *pool;
	struct store *st;
	char why[256] = "";
	uint32_t i;
	int error;

	if (lseek(fd, 0, SEEK_END) == 0)
		pool = zs_arena_create(&pcfg, fd, store_root_size(NPAGES));
	else
		pool = zs_arena_attach(&pcfg, fd);
	if (pool == NULL) {
		fprintf(stderr, "open the arena: %s\n", strerror(errno));
		_exit(5);
	}
	if ((st = store_open(pool, NPAGES, &opt, why, sizeof(why), &error)) ==
	    NULL) {
		fprintf(stderr, "store_open: %s: %s\n", strerror(-error), why);
		_exit(6);
	}
	store_recovered(st, rec);
	if (zs_pool_validate(pool, why, sizeof(why)) != 0) {
		fprintf(stderr, "validate: %s\n", why);
		_exit(7);
	}
	if ((ctx = store_ctx_create(st)) == NULL)
		_exit(3);
	for (i = 0; i < NPAGES; i++) {
		struct model *m = &model[i];
		uint64_t done = atomic_load(&m->done);
		uint64_t busy = atomic_load(&m->busy);

		if (store_read(st, ctx, (uint64_t)i * PAGE, got, PAGE) != PAGE) {
			fprintf(stderr, "page %u: read failed\n", i);
			_exit(8);
		}
		page_of(want, i, done);
		if (memcmp(got, want, PAGE) == 0) {
			/* old */
		} else if (busy != NONE && (page_of(want, i, busy),
		    memcmp(got, want, PAGE) == 0)) {
			atomic_store(&m->done, busy);	/* new */
		} else {
			fprintf(stderr, "page %u: neither %#llx nor %#llx: "
			    "torn or lost\n", i, (unsigned long long)done,
			    (unsigned long long)busy);
			_exit(9);
		}
		atomic_store(&m->busy, NONE);
		atomic_store(&m->lock, 0);
	}
	store_ctx_destroy(ctx);
	*poolp = pool;
	return st;
}

int
main(void)
{
	struct store_recovery rec, total = { 0 };
	uint64_t seed = 0x9e5157;
	int fd, round, rounds = 30, status, pfd[2];
	pid_t pid;
	bool all = true;
	uint32_t i;

	tap_watchdog(600);
	if (getenv("TEST_PERSIST_SEED") != NULL)
		seed = strtoull(getenv("TEST_PERSIST_SEED"), NULL, 0);
	diag("seed %#llx (TEST_PERSIST_SEED to repeat)",
	    (unsigned long long)seed);
	zs_pool_config_init(&pcfg);
	pcfg.section_size = 256u << 10;
	pcfg.report_delay_ms = 10;
	memset(&opt, 0, sizeof(opt));
	opt.codec = CODEC_LZ4;
	opt.zstd_level = 3;
	opt.merge = true;
	model = mmap(NULL, NPAGES * sizeof(*model), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	fd = memfd_create("zsd-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (model == MAP_FAILED || fd < 0)
		skip_all("memfd_create or mmap: %s", strerror(errno));
	for (i = 0; i < NPAGES; i++)
		atomic_store(&model[i].busy, NONE);

	for (round = 0; round <= rounds; round++) {
		if (pipe(pfd) != 0 || (pid = fork()) < 0)
			bail("pipe or fork: %s", strerror(errno));
		if (pid == 0) {
			struct worker w[THREADS];
			struct zs_pool *pool;
			pthread_t t;
			unsigned int k;

			close(pfd[0]);
			w[0].st = open_and_check(fd, &pool, &rec);
			/* Tell the parent what recovery found. */
			if (write(pfd[1], &rec, sizeof(rec)) != sizeof(rec))
				_exit(2);
			if (round == rounds)
				_exit(0);
			for (k = 0; k < THREADS; k++) {
				w[k].st = w[0].st;
				w[k].seed = mix(seed + (uint64_t)round * 16 + k);
				if (pthread_create(&t, NULL, writer, &w[k]))
					_exit(3);
			}
			if (pthread_create(&t, NULL, compactor, pool) != 0)
				_exit(3);
			pause();
			_exit(0);
		}
		close(pfd[1]);
		if (read(pfd[0], &rec, sizeof(rec)) != sizeof(rec)) {
			waitpid(pid, &status, 0);
			all = false;
			ok(0, "round %d: the store recovers, every page old or "
			    "new (worker exit %d)", round, WIFEXITED(status) ?
			    WEXITSTATUS(status) : -WTERMSIG(status));
			close(pfd[0]);
			break;
		}
		close(pfd[0]);
		total.journal_replayed += rec.journal_replayed;
		total.pool.objects_freed += rec.pool.objects_freed;
		total.pages_lost += rec.pages_lost;
		if (round < rounds) {
			struct timespec ts = { 0, (long)(mix(seed + round) %
			    150 + 20) * 1000000 };

			nanosleep(&ts, NULL);
			kill(pid, SIGKILL);
		}
		waitpid(pid, &status, 0);
		if (round < rounds ? !WIFSIGNALED(status) : !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			all = false;
			ok(0, "round %d: the worker ran until killed (status "
			    "%#x)", round, status);
			break;
		}
	}
	ok(all, "%d kills of a store being written, compacted and shrunk: "
	    "each recovered with every page old or new", rounds);
	ok(total.pages_lost == 0, "no page lost (%llu)",
	    (unsigned long long)total.pages_lost);
	diag("over all rounds: %llu journal entries replayed, %llu orphaned "
	    "objects freed; the last: %llu pages, %llu objects, %llu merged",
	    (unsigned long long)total.journal_replayed,
	    (unsigned long long)total.pool.objects_freed,
	    (unsigned long long)rec.pages, (unsigned long long)rec.objects,
	    (unsigned long long)rec.merged);
	ok(rec.merged > 0 && rec.pages > NPAGES / 2,
	    "the last store holds merged pages (%llu) among %llu",
	    (unsigned long long)rec.merged, (unsigned long long)rec.pages);
	close(fd);
	return done_testing();
}
