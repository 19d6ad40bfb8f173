/*
 * test-report.c - free page reporting gives memory back to the OS.
 *
 * Fill a pool, free most of it at random, compact: the pages freed sit on
 * the pool's free lists, still resident.  The reporting worker must give
 * them back within a few seconds, so that the process's resident set
 * (read from /proc/self/statm, not from the pool's counters) falls to
 * within 10% of the live bytes plus the pool's metadata.  A pool without
 * the worker keeps them until zs_pool_report() is called.  Reported pages
 * are allocated again by faulting them back in.
 *
 * The other way: a first allocation in a new pool faults in a run of
 * pages after the one it takes, prefault_ahead long when the worker does
 * it, 32 when the caller does; mincore() says which pages are in.  A
 * report that runs while the caller faults its run in must leave the run
 * alone: held inside that madvise by the pool's OS ops, the caller lets a
 * report run to its end, and then every page the pool counts as reported
 * must be out of memory.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "objs.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif

#define FILL_BYTES	(128ull << 20)
#define MAX_OBJS	(FILL_BYTES / 200)
/* The process's own, outside the pool: thread stacks, stdio, the test's
 * buffers. */
#define SLACK		(2ull << 20)

static struct tobj *objs;
static unsigned int nr_objs;

static uint64_t
rss_bytes(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	if (f != NULL)
		fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Allocate and write objects until bytes more are live. */
static int
fill(struct zs_pool *pool, uint64_t bytes)
{
	uint64_t done = 0;

	int error;

	while (done < bytes && nr_objs < MAX_OBJS) {
		struct tobj *o = &objs[nr_objs];

		error = tobj_put(pool, o, nr_objs, 200 + (uint32_t)rand() %
		    (ZS_MAX_ALLOC_SIZE - 199));
		if (error != 0)
			return error;
		done += o->size;
		nr_objs++;
	}
	return 0;
}

/* Free nine in ten at random; returns the live bytes left. */
static uint64_t
free_most(struct zs_pool *pool)
{
	uint64_t live = 0;
	unsigned int i;

	for (i = 0; i < nr_objs; i++) {
		if (objs[i].handle == 0)
			continue;
		if (rand() % 10 != 0) {
			zs_free(pool, objs[i].handle);
			objs[i].handle = 0;
		} else {
			live += objs[i].size;
		}
	}
	return live;
}

/*
 * The most the process should hold with live bytes in the pool, after
 * peak bytes were resident.  Under AddressSanitizer, the shadow of every
 * byte touched (one eighth) stays resident too.
 */
static uint64_t
allowed(struct zs_pool *pool, uint64_t base, uint64_t live, uint64_t peak)
{
	struct zs_pool_stats st;
	uint64_t shadow = 0;

#ifdef __SANITIZE_ADDRESS__
	shadow = peak / 8;
#endif
	(void)peak;
	zs_pool_stats(pool, &st);
	return base + live + live / 10 + st.pages_meta * ZS_PAGE_SIZE +
	    SLACK + shadow;
}

static void
free_all(struct zs_pool *pool)
{
	unsigned int i;

	for (i = 0; i < nr_objs; i++)
		if (objs[i].handle != 0)
			zs_free(pool, objs[i].handle);
	nr_objs = 0;
}

static void
test_worker(void)
{
	struct zs_pool_config cfg;
	struct zs_pool_stats st;
	struct zs_pool *pool;
	uint64_t base, full, live, limit, rss = 0;
	double t0, stable = 0, settled = -1;
	char why[256] = "";
	int error;

	zs_pool_config_init(&cfg);		/* the defaults: 2 s delay */
	pool = zs_create_pool(&cfg);
	base = rss_bytes();
	error = fill(pool, FILL_BYTES);
	ok(error == 0, "filled %llu MiB in %u objects (%d)",
	    (unsigned long long)FILL_BYTES >> 20, nr_objs, error);
	full = rss_bytes() - base;
	live = free_most(pool);
	zs_compact(pool, NULL);
	zs_pool_flush(pool);
	limit = allowed(pool, base, live, full);
	zs_pool_stats(pool, &st);
	diag("RSS above baseline: %llu MiB full, %llu MiB right after "
	    "compaction; %llu KiB live in %llu KiB of pages, %llu KiB of "
	    "metadata; limit %llu KiB", (unsigned long long)full >> 20,
	    (unsigned long long)(rss_bytes() - base) >> 20,
	    (unsigned long long)live >> 10,
	    (unsigned long long)st.pages_used * 4,
	    (unsigned long long)st.pages_meta * 4,
	    (unsigned long long)(limit - base) >> 10);
	/* Wait for RSS to fall below the limit and then stay put 0.5 s. */
	for (t0 = now(); now() - t0 < 15.0; usleep(50000)) {
		uint64_t r = rss_bytes();

		if (r > limit || r != rss) {
			rss = r;
			settled = now() - t0;
			stable = now();
		} else if (now() - stable >= 0.5) {
			break;
		}
	}
	ok(rss <= limit, "RSS fell to %llu KiB above baseline (limit %llu "
	    "KiB) and settled in %.2f s", (unsigned long long)(rss - base) >>
	    10, (unsigned long long)(limit - base) >> 10, settled);
	zs_pool_stats(pool, &st);
	ok(st.pages_reported > 0 && st.pages_reported <= st.pages_free,
	    "stats count %llu reported of %llu free pages",
	    (unsigned long long)st.pages_reported,
	    (unsigned long long)st.pages_free);
	ok(tobj_count_bad(pool, objs, nr_objs) == 0, "live objects intact");

	/* Reported pages are used again. */
	ok(fill(pool, FILL_BYTES / 4) == 0 && tobj_count_bad(pool, objs, nr_objs) == 0,
	    "refilled %llu MiB over reported pages, all intact",
	    (unsigned long long)FILL_BYTES / 4 >> 20);
	zs_pool_flush(pool);
	ok(zs_pool_validate(pool, why, sizeof(why)) == 0, "pool valid%s%s",
	    why[0] ? ": " : "", why);
	free_all(pool);
	zs_destroy_pool(pool);
}

/*
 * zs_pool_report() called by hand, with the worker off.  locked: under
 * mlockall(MCL_ONFAULT), as zsd runs, where plain MADV_DONTNEED fails.
 */
static void
test_explicit(bool locked)
{
	const char *how = locked ? " (mlockall)" : "";
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	uint64_t base, live, limit, before, after, full;
	long n;

	if (locked && mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
		skip(4, "mlockall: %s", strerror(errno));
		return;
	}

	zs_pool_config_init(&cfg);
	cfg.free_page_reporting = 0;
	pool = zs_create_pool(&cfg);
	base = rss_bytes();
	fill(pool, FILL_BYTES / 2);
	full = rss_bytes() - base;
	live = free_most(pool);
	zs_compact(pool, NULL);
	zs_pool_flush(pool);
	limit = allowed(pool, base, live, full);
	usleep(200000);
	before = rss_bytes();
	ok(before > limit, "without the worker the free pages stay "
	    "resident%s (%llu MiB above baseline, limit %llu)", how,
	    (unsigned long long)(before - base) >> 20,
	    (unsigned long long)(limit - base) >> 20);
	n = zs_pool_report(pool);
	after = rss_bytes();
	ok(n > 0 && after <= limit, "zs_pool_report gave back %ld pages%s: "
	    "%llu MiB above baseline", n, how,
	    (unsigned long long)(after - base) >> 20);
	ok(zs_pool_report(pool) == 0, "a second report finds nothing to do");
	ok(tobj_count_bad(pool, objs, nr_objs) == 0, "live objects intact");
	free_all(pool);
	zs_destroy_pool(pool);
	if (locked)
		munlockall();
}

/*
 * Pages resident among the first span of a new pool's zspage memory,
 * once one object is in and the worker is idle; with report, after
 * zs_pool_report() too.
 */
static int
first_run(int async_free, unsigned int ahead, unsigned int span,
    bool report)
{
	unsigned char local[ZS_MAX_ALLOC_SIZE], vec[1024];
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	const void *p;
	struct tobj o;
	unsigned int i;
	int n = -1;

	zs_pool_config_init(&cfg);
	cfg.async_free = async_free;
	cfg.prefault_ahead = ahead;
	cfg.free_page_reporting = 0;
	if ((pool = zs_create_pool(&cfg)) == NULL)
		return -1;
	/* One object at the start of a page: its zspage's first. */
	if (tobj_put(pool, &o, 1, 3000) == 0) {
		if (report)
			(void)zs_pool_report(pool);
		else
			zs_pool_flush(pool);
		p = zs_obj_read_begin(pool, o.handle, local, NULL);
		if (p != NULL && p != local && mincore((void *)((uintptr_t)p &
		    ~(uintptr_t)4095), (size_t)span * 4096, vec) == 0)
			for (n = 0, i = 0; i < span; i++)
				n += vec[i] & 1;
		if (p != NULL)
			zs_obj_read_end(pool, o.handle);
	}
	zs_destroy_pool(pool);
	return n;
}

/*
 * Can this system show what the pool faults in: MADV_POPULATE_WRITE there
 * (Linux 5.14), and a fault bringing in one page, not a huge page?  NULL,
 * or why not.
 */
static const char *
pages_countable(void)
{
	static char why[128];
	size_t len = 4 << 20, i;
	unsigned char vec[1024];
	unsigned int n = 0;
	char *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return "mmap failed";
	why[0] = '\0';
	if (madvise(p, 4096, MADV_POPULATE_WRITE) != 0) {
		snprintf(why, sizeof(why), "MADV_POPULATE_WRITE: %s",
		    strerror(errno));
	} else {
		p[len / 2] = 1;
		if (mincore(p, len, vec) == 0)
			for (i = 0; i < len / 4096; i++)
				n += vec[i] & 1;
		if (n != 2)
			snprintf(why, sizeof(why), "two faults brought in %u "
			    "pages (transparent huge pages?)", n);
	}
	munmap(p, len);
	return why[0] != '\0' ? why : NULL;
}

static void
test_prefault(void)
{
	const char *why;
	int n;

	if ((why = pages_countable()) != NULL) {
		skip(4, "%s", why);
		return;
	}
	n = first_run(1, 256, 512, false);
	ok(n == 257, "prefault_ahead 256 with the worker: %d of the first "
	    "512 pages in (the caller's and 256 more)", n);
	n = first_run(1, 0, 512, false);
	ok(n == 32, "prefault_ahead 0: %d pages in (the caller's run of 32)",
	    n);
	n = first_run(0, 256, 512, false);
	ok(n == 32, "no worker: %d pages in (the caller's run of 32)", n);
	/* Right away: it waits for the worker, and takes the run back. */
	n = first_run(1, 256, 512, true);
	ok(n == 1, "zs_pool_report right after: %d page in (the object's)",
	    n);
}

/*
 * OS ops that hold the first MADV_POPULATE_WRITE of the section's pages
 * after `armed` is set until `released` (the handle table's words are
 * faulted in that way too), and note where the pool's one section is.
 */
struct hold {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	bool		armed, holding, released;
	size_t		section_size;
	char		*section;
};

static void *
hold_map(void *ctx, size_t len)
{
	struct hold *h = ctx;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (len == h->section_size) {
		/* Pages, not huge pages, so that mincore() counts them. */
		(void)madvise(p, len, MADV_NOHUGEPAGE);
		pthread_mutex_lock(&h->lock);
		h->section = p;
		pthread_mutex_unlock(&h->lock);
	}
	return p;
}

static int
hold_unmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	return munmap(addr, len);
}

static int
hold_advise(void *ctx, void *addr, size_t len, int advice)
{
	struct hold *h = ctx;

	pthread_mutex_lock(&h->lock);
	if (advice == MADV_POPULATE_WRITE && h->armed &&
	    h->section != NULL && (char *)addr >= h->section &&
	    (char *)addr < h->section + h->section_size) {
		h->armed = false;
		h->holding = true;
		pthread_cond_broadcast(&h->cond);
		while (!h->released)
			pthread_cond_wait(&h->cond, &h->lock);
		h->holding = false;
	}
	pthread_mutex_unlock(&h->lock);
	return madvise(addr, len, advice);
}

struct alloc_arg {
	struct zs_pool	*pool;
	struct tobj	 o;
	int		 error;
};

static void *
alloc_thread(void *arg)
{
	struct alloc_arg *a = arg;

	a->error = tobj_put(a->pool, &a->o, 1, 3000);
	return NULL;
}

/* Data pages of the section that are not resident. */
static int
section_out(struct zs_pool *pool, const struct hold *h)
{
	static unsigned char vec[1024];
	struct zs_section_stats st;
	unsigned int i, n = 0;

	if (zs_section_stats(pool, 0, &st) != 0 ||
	    st.pages > sizeof(vec) || mincore(h->section, h->section_size,
	    vec) != 0)
		return -1;
	for (i = st.pages_meta; i < st.pages; i++)
		n += !(vec[i] & 1);
	return (int)n;
}

static void
test_report_vs_populate(void)
{
	static const struct zs_os_ops ops_tmpl = { hold_map, hold_unmap,
	    hold_advise, NULL };
	struct zs_os_ops ops = ops_tmpl;
	struct zs_section_stats st;
	struct zs_pool_config cfg;
	struct alloc_arg a;
	struct tobj o;
	struct hold h;
	pthread_t t;
	const char *why;
	long n1, n2;
	int out;

	if ((why = pages_countable()) != NULL) {
		skip(7, "%s", why);
		return;
	}
	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&h.lock, NULL);
	pthread_cond_init(&h.cond, NULL);
	h.section_size = 1 << 20;
	h.armed = true;
	ops.ctx = &h;
	zs_pool_config_init(&cfg);
	cfg.section_size = h.section_size;
	cfg.async_free = 0;		/* the caller faults its run in */
	cfg.page_cache = 0;
	cfg.free_page_reporting = 0;	/* reports come from here */
	cfg.os_ops = &ops;
	a.pool = zs_create_pool(&cfg);
	if (a.pool == NULL) {
		ok(0, "zs_create_pool: %s", strerror(errno));
		return;
	}

	/* The first object: its page and the 31 after it are claimed. */
	pthread_create(&t, NULL, alloc_thread, &a);
	pthread_mutex_lock(&h.lock);
	while (!h.holding)
		pthread_cond_wait(&h.cond, &h.lock);
	pthread_mutex_unlock(&h.lock);
	/* A page of the run taken and freed again meanwhile is still in it. */
	ok(tobj_put(a.pool, &o, 2, ZS_MAX_ALLOC_SIZE) == 0 &&
	    tobj_intact(a.pool, &o), "a huge object allocated meanwhile");
	tobj_drop(a.pool, &o);
	n1 = zs_pool_report(a.pool);
	pthread_mutex_lock(&h.lock);
	h.released = true;
	pthread_cond_broadcast(&h.cond);
	pthread_mutex_unlock(&h.lock);
	pthread_join(t, NULL);
	ok(a.error == 0 && tobj_intact(a.pool, &a.o), "object written while "
	    "a report ran");
	ok(n1 == 0, "the report left the run being faulted in alone (%ld "
	    "pages given back)", n1);
	zs_section_stats(a.pool, 0, &st);
	out = section_out(a.pool, &h);
	ok(out >= 0 && st.pages_reported == (unsigned int)out, "pages counted "
	    "as reported: %u; not resident: %d", st.pages_reported, out);

	/* Faulted in and still free: the next report gives them back. */
	n2 = zs_pool_report(a.pool);
	zs_section_stats(a.pool, 0, &st);
	out = section_out(a.pool, &h);
	ok(n2 == 31, "the next report gave back the run's 31 free pages (%ld)",
	    n2);
	ok(out >= 0 && st.pages_reported == (unsigned int)out, "then counted "
	    "as reported: %u; not resident: %d", st.pages_reported, out);
	ok(pool_valid(a.pool), "pool valid");
	tobj_drop(a.pool, &a.o);
	zs_destroy_pool(a.pool);
	pthread_cond_destroy(&h.cond);
	pthread_mutex_destroy(&h.lock);
}

int
main(void)
{
	tap_watchdog(600);
	test_prefault();
	test_report_vs_populate();
	objs = calloc(MAX_OBJS, sizeof(*objs));
	if (objs == NULL)
		return 99;
	/* Touch the table now so it counts in the baseline. */
	memset(objs, 0, MAX_OBJS * sizeof(*objs));
	srand(11);
	test_worker();
	test_explicit(false);
	test_explicit(true);
	free(objs);
	return done_testing();
}
