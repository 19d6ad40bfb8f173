/*
 * test-nopin.c - no page fault while the pool holds a class lock or an
 * object's pin.
 *
 * A reader (zs_obj_read_begin: the swap-in path) waits for its object's
 * pin, and zs_malloc and zs_free wait for their class's lock.  A page
 * fault on a machine that swaps may take milliseconds, so the pool faults
 * its memory in before it takes either.  Here the pool's OS ops hold the
 * first MADV_POPULATE_WRITE that one thread -- the mover -- makes, until
 * the main thread has, within a deadline, read every object back and
 * allocated and freed an object of the class the mover works in.  Had the
 * fault been taken under the lock or a pin, that could not finish before
 * the hold ends.  The mover allocates, compacts, migrates an object (a
 * huge one too) and takes a section offline, each time after
 * zs_pool_report() has given every free page back, so that the pages it
 * takes must be faulted in.
 *
 * Then a stress run under load: readers, a writer, and a mover that
 * compacts, migrates, offlines and reports in turn.  In debug builds
 * libzs checks the same property itself all along, and aborts if
 * anything may fault with a class lock, a cache lock or a pin held, or
 * writes memory under one that mincore() says is not in.
 *
 *	test-nopin [seconds [seed]]	(stress run: 2 s, seed 1)
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "objs.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif

#define SECTION		(1u << 20)
#define OBJ_SIZE	1000u		/* the mover's class */
#define HUGE_SIZE	4000u
#define NR_OBJS		2048u
#define DEADLINE_MS	5000		/* for what a held fault must not stop */
#define HOLD_MAX_S	60		/* a hold ends by itself after this */

/*
 * The OS ops: count MADV_POPULATE_WRITE calls, and hold the mover's
 * first one once armed, until released.  Sections get no huge pages, so
 * that a fault brings in one page and libzs's mincore() checks see it.
 */
static struct hold {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	pthread_t	mover;
	bool		go, armed, holding, held, released;
	atomic_uint	populates;
} h = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *
hold_map(void *ctx, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);

	(void)ctx;
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static int
hold_unmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	return munmap(addr, len);
}

static void
deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static int
hold_advise(void *ctx, void *addr, size_t len, int advice)
{
	struct timespec until;

	(void)ctx;
	if (advice == MADV_POPULATE_WRITE) {
		atomic_fetch_add(&h.populates, 1);
		pthread_mutex_lock(&h.lock);
		if (h.armed && pthread_equal(pthread_self(), h.mover)) {
			h.armed = false;
			h.holding = h.held = true;
			pthread_cond_broadcast(&h.cond);
			deadline(&until, HOLD_MAX_S * 1000);
			while (!h.released && pthread_cond_timedwait(&h.cond,
			    &h.lock, &until) != ETIMEDOUT)
				;
			h.holding = false;
		}
		pthread_mutex_unlock(&h.lock);
	}
	return madvise(addr, len, advice);
}

static const struct zs_os_ops hold_ops = { hold_map, hold_unmap,
    hold_advise, NULL };

static struct zs_pool *
new_pool(void)
{
	struct zs_pool_config cfg;
	struct zs_pool *pool;

	zs_pool_config_init(&cfg);
	cfg.section_size = SECTION;
	cfg.free_page_reporting = 0;	/* reports come from here */
	cfg.os_ops = &hold_ops;
	if ((pool = zs_create_pool(&cfg)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	return pool;
}

/* The objects of a scenario: the checker reads them all. */
static struct tobj objs[NR_OBJS];
static unsigned int nr_objs;

/* ------------------------------------------------------------------ */
/* One fault, held.                                                     */

struct mover {
	struct zs_pool	*pool;
	long		(*op)(struct mover *);
	zs_handle_t	 handle;	/* to migrate */
	unsigned int	 section;	/* to offline */
	long		 result;
	bool		 done;
};

static void *
mover_main(void *arg)
{
	struct mover *m = arg;
	long r;

	pthread_mutex_lock(&h.lock);
	while (!h.go)
		pthread_cond_wait(&h.cond, &h.lock);
	pthread_mutex_unlock(&h.lock);
	r = m->op(m);
	pthread_mutex_lock(&h.lock);
	m->result = r;
	m->done = true;
	pthread_cond_broadcast(&h.cond);
	pthread_mutex_unlock(&h.lock);
	return NULL;
}

struct checker {
	struct zs_pool	*pool;
	unsigned int	 bad;
	bool		 alloc_ok, done;
};

/* Read every object; allocate and free one of the mover's class. */
static void *
checker_main(void *arg)
{
	struct checker *ck = arg;
	struct tobj o;

	ck->bad = tobj_count_bad(ck->pool, objs, nr_objs);
	ck->alloc_ok = tobj_put(ck->pool, &o, 7, OBJ_SIZE) == 0 &&
	    tobj_intact(ck->pool, &o);
	tobj_drop(ck->pool, &o);
	pthread_mutex_lock(&h.lock);
	ck->done = true;
	pthread_cond_broadcast(&h.cond);
	pthread_mutex_unlock(&h.lock);
	return NULL;
}

/*
 * Run m->op on a mover thread, after every free page was given back.
 * Once the mover is held in a fault, the checker must be done before
 * DEADLINE_MS.  Returns the op's result.
 */
static long
held_fault(const char *what, struct mover *m)
{
	struct checker ck = { .pool = m->pool };
	struct timespec until;
	pthread_t t, c;
	bool held, done;

	zs_pool_report(m->pool);
	pthread_mutex_lock(&h.lock);
	h.go = h.armed = h.holding = h.held = h.released = false;
	m->done = false;
	pthread_mutex_unlock(&h.lock);
	if (pthread_create(&t, NULL, mover_main, m) != 0)
		bail("pthread_create");
	pthread_mutex_lock(&h.lock);
	h.mover = t;
	h.armed = h.go = true;
	pthread_cond_broadcast(&h.cond);
	deadline(&until, HOLD_MAX_S * 1000);
	while (!h.holding && !m->done && pthread_cond_timedwait(&h.cond,
	    &h.lock, &until) != ETIMEDOUT)
		;
	held = h.holding;
	h.armed = false;
	pthread_mutex_unlock(&h.lock);
	if (!held) {
		ok(0, "%s: faulted no page in", what);
		pthread_join(t, NULL);
		return m->result;
	}

	if (pthread_create(&c, NULL, checker_main, &ck) != 0)
		bail("pthread_create");
	pthread_mutex_lock(&h.lock);
	deadline(&until, DEADLINE_MS);
	while (!ck.done && pthread_cond_timedwait(&h.cond, &h.lock,
	    &until) != ETIMEDOUT)
		;
	done = ck.done;
	h.released = true;
	pthread_cond_broadcast(&h.cond);
	pthread_mutex_unlock(&h.lock);
	ok(done, "%s: while its fault was held, %u objects read and one "
	    "allocated and freed in its class", what, nr_objs);
	pthread_join(c, NULL);
	pthread_join(t, NULL);
	ok(ck.bad == 0 && ck.alloc_ok, "%s: they read back right (%u bad), "
	    "the allocation worked", what, ck.bad);
	return m->result;
}

static void
put_objs(struct zs_pool *pool, unsigned int n, uint32_t size)
{
	for (nr_objs = 0; nr_objs < n; nr_objs++)
		if (tobj_put(pool, &objs[nr_objs], nr_objs, size) != 0)
			bail("tobj_put: %s", strerror(errno));
}

static void
drop_objs(struct zs_pool *pool)
{
	unsigned int i;

	for (i = 0; i < nr_objs; i++)
		tobj_drop(pool, &objs[i]);
	nr_objs = 0;
}

static long
op_alloc(struct mover *m)
{
	static struct tobj more[NR_OBJS];
	bool held = false;
	long n, i;

	/* Until a page had to be faulted in. */
	for (n = 0; n < NR_OBJS && !held; n++) {
		if (tobj_put(m->pool, &more[n], 100000 + n, OBJ_SIZE) != 0)
			return -errno;
		pthread_mutex_lock(&h.lock);
		held = h.held;
		pthread_mutex_unlock(&h.lock);
	}
	for (i = 0; i < n; i++)
		tobj_drop(m->pool, &more[i]);
	return n;
}

static void
test_alloc(void)
{
	struct mover m = { .pool = new_pool(), .op = op_alloc };
	long n;

	put_objs(m.pool, 500, OBJ_SIZE);
	n = held_fault("allocation", &m);
	ok(n > 0, "allocation: %ld objects allocated", n);
	ok(pool_valid(m.pool), "allocation: pool valid");
	drop_objs(m.pool);
	zs_destroy_pool(m.pool);
}

/* The class of size-byte objects. */
static int
class_of(struct zs_pool *pool, uint32_t size, struct zs_class_stats *st)
{
	unsigned int i;

	for (i = 0; zs_class_stats(pool, i, st) == 0; i++)
		if (st->size >= size + 8)
			return 0;
	return -1;
}

static long
op_compact(struct mover *m)
{
	return zs_compact(m->pool, NULL);
}

/*
 * Four zspages of the class full, then one filled 60%, whose upper pages
 * are not populated yet; most objects of the full ones freed.  The 60%
 * one is then the fullest, and compaction moves objects into its slots
 * no object has reached: onto pages it must take.
 */
static void
test_compact(void)
{
	struct mover m = { .pool = new_pool(), .op = op_compact };
	struct zs_class_stats st;
	unsigned int per, i;
	long freed;

	if (class_of(m.pool, OBJ_SIZE, &st) != 0)
		bail("no class for %u bytes", OBJ_SIZE);
	per = st.objs_per_zspage;
	if (4 * per + per * 3 / 5 > NR_OBJS)
		bail("class of %u objects per zspage", per);
	put_objs(m.pool, 4 * per + per * 3 / 5, OBJ_SIZE);
	for (i = 0; i < 4 * per; i++)
		if (i % 5 != 0)
			tobj_drop(m.pool, &objs[i]);
	zs_pool_flush(m.pool);
	freed = held_fault("compaction", &m);
	ok(freed > 0, "compaction: freed %ld pages", freed);
	ok(tobj_count_bad(m.pool, objs, nr_objs) == 0 && pool_valid(m.pool),
	    "compaction: objects intact, pool valid");
	drop_objs(m.pool);
	zs_destroy_pool(m.pool);
}

/*
 * Again while an object of the zspage is busy: the checker's free may
 * wait in a batch there.
 */
static long
op_migrate(struct mover *m)
{
	unsigned int tries = 0;
	int r;

	while ((r = zs_obj_migrate(m->pool, m->handle)) == -EAGAIN &&
	    ++tries < 100)
		;
	return r;
}

static void
test_migrate(uint32_t size, const char *what)
{
	struct mover m = { .pool = new_pool(), .op = op_migrate };
	struct zs_pool_stats before, after;
	long r;

	put_objs(m.pool, 200, OBJ_SIZE);
	if (tobj_put(m.pool, &objs[nr_objs], 99, size) != 0)
		bail("tobj_put: %s", strerror(errno));
	m.handle = objs[nr_objs++].handle;
	zs_pool_stats(m.pool, &before);
	r = held_fault(what, &m);
	zs_pool_stats(m.pool, &after);
	ok(r == 0 && after.pages_migrated > before.pages_migrated,
	    "%s: %ld, %llu pages migrated", what, r,
	    (unsigned long long)(after.pages_migrated - before.pages_migrated));
	ok(tobj_count_bad(m.pool, objs, nr_objs) == 0 && pool_valid(m.pool),
	    "%s: objects intact, pool valid", what);
	drop_objs(m.pool);
	zs_destroy_pool(m.pool);
}

static long
op_offline(struct mover *m)
{
	return zs_section_offline(m->pool, m->section);
}

/*
 * Objects in section 0 and 1; then huge objects fill sections up to 4
 * and are freed, leaving room elsewhere for section 0's pages.
 */
static void
test_offline(void)
{
	struct mover m = { .pool = new_pool(), .op = op_offline };
	struct tobj *room;
	unsigned int n = 0, i;
	long r;

	put_objs(m.pool, 1500, OBJ_SIZE);
	if ((room = calloc(4 * SECTION / 4096, sizeof(*room))) == NULL)
		bail("calloc");
	while (zs_section_count(m.pool) < 5 &&
	    tobj_put(m.pool, &room[n], 200000 + n, HUGE_SIZE) == 0)
		n++;
	for (i = 0; i < n; i++)
		tobj_drop(m.pool, &room[i]);
	free(room);
	zs_pool_flush(m.pool);
	m.section = 0;
	r = held_fault("section offline", &m);
	ok(r > 0, "section offline: %ld pages moved", r);
	ok(tobj_count_bad(m.pool, objs, nr_objs) == 0 && pool_valid(m.pool),
	    "section offline: objects intact, pool valid");
	drop_objs(m.pool);
	zs_destroy_pool(m.pool);
}

/* ------------------------------------------------------------------ */
/* Under load.                                                          */

#define NR_STABLE	1024u	/* read all along, moved, never freed */
#define NR_CHURN	1024u	/* freed and allocated again */

static struct stress {
	struct zs_pool	*pool;
	struct tobj	 stable[NR_STABLE], churn[NR_CHURN];
	atomic_bool	 stop;
	atomic_uint	 reads, bad, moves;
	unsigned int	 seed;
} s;

static uint32_t
stress_size(unsigned int *seed)
{
	/* Most compress, some do not: a few huge ones. */
	return rand_r(seed) % 8 == 0 ? HUGE_SIZE + rand_r(seed) % 96 :
	    (uint32_t)(16 + rand_r(seed) % 3000);
}

static void *
stress_reader(void *arg)
{
	uint8_t want[ZS_MAX_ALLOC_SIZE], local[ZS_MAX_ALLOC_SIZE];
	unsigned int seed = s.seed + (unsigned int)(uintptr_t)arg;
	const struct tobj *o;
	const void *p;
	size_t size;

	while (!atomic_load(&s.stop)) {
		o = &s.stable[rand_r(&seed) % NR_STABLE];
		p = zs_obj_read_begin(s.pool, o->handle, local, &size);
		tobj_pattern(want, o->key, o->size);
		if (p == NULL || size != o->size || memcmp(p, want, size) != 0)
			atomic_fetch_add(&s.bad, 1);
		if (p != NULL)
			zs_obj_read_end(s.pool, o->handle);
		atomic_fetch_add(&s.reads, 1);
	}
	return NULL;
}

static void *
stress_writer(void *arg)
{
	unsigned int seed = s.seed + 100, i, key = 1000000;
	struct tobj *o;

	(void)arg;
	while (!atomic_load(&s.stop)) {
		o = &s.churn[rand_r(&seed) % NR_CHURN];
		tobj_drop(s.pool, o);
		(void)tobj_put(s.pool, o, key++, stress_size(&seed));
	}
	for (i = 0; i < NR_CHURN; i++)
		if (s.churn[i].handle != 0 && !tobj_intact(s.pool, &s.churn[i]))
			atomic_fetch_add(&s.bad, 1);
	return NULL;
}

static void *
stress_mover(void *arg)
{
	unsigned int seed = s.seed + 200, round = 0, sections;

	(void)arg;
	while (!atomic_load(&s.stop)) {
		switch (round++ % 5) {
		case 0:
			(void)zs_compact(s.pool, NULL);
			break;
		case 1:
			(void)zs_obj_migrate(s.pool,
			    s.stable[rand_r(&seed) % NR_STABLE].handle);
			break;
		case 2:
			sections = zs_section_count(s.pool);
			(void)zs_section_migrate(s.pool, rand_r(&seed) %
			    sections);
			break;
		case 3:
			sections = zs_section_count(s.pool);
			(void)zs_section_offline(s.pool, rand_r(&seed) %
			    sections);
			break;
		case 4:
			/* Every free page out: what is taken next faults. */
			(void)zs_pool_report(s.pool);
			break;
		}
		atomic_fetch_add(&s.moves, 1);
	}
	return NULL;
}

static void
test_stress(unsigned int seconds, unsigned int seed)
{
	pthread_t t[4];
	struct timespec nap = { 0, 0 };
	unsigned int i, pops, key = 0, r = seed;

	memset(&s, 0, sizeof(s));
	s.seed = seed;
	s.pool = new_pool();
	for (i = 0; i < NR_STABLE; i++)
		if (tobj_put(s.pool, &s.stable[i], key++, stress_size(&r)) != 0)
			bail("tobj_put: %s", strerror(errno));
	for (i = 0; i < NR_CHURN; i++)
		(void)tobj_put(s.pool, &s.churn[i], key++, stress_size(&r));
	pops = atomic_load(&h.populates);
	pthread_create(&t[0], NULL, stress_reader, (void *)1);
	pthread_create(&t[1], NULL, stress_reader, (void *)2);
	pthread_create(&t[2], NULL, stress_writer, NULL);
	pthread_create(&t[3], NULL, stress_mover, NULL);
	nap.tv_sec = seconds;
	nanosleep(&nap, NULL);
	atomic_store(&s.stop, true);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	pops = atomic_load(&h.populates) - pops;
	ok(pops > 0 && atomic_load(&s.moves) > 0, "%u s under load, seed %u: "
	    "%u reads, %u compactions, migrations, offlines and reports, %u "
	    "page runs faulted in", seconds, seed, atomic_load(&s.reads),
	    atomic_load(&s.moves), pops);
	ok(atomic_load(&s.bad) == 0, "every read saw the right bytes (%u "
	    "bad)", atomic_load(&s.bad));
	ok(tobj_count_bad(s.pool, s.stable, NR_STABLE) == 0 &&
	    tobj_count_bad(s.pool, s.churn, NR_CHURN) == 0,
	    "every object intact");
	ok(pool_valid(s.pool), "pool valid");
	for (i = 0; i < NR_STABLE; i++)
		tobj_drop(s.pool, &s.stable[i]);
	for (i = 0; i < NR_CHURN; i++)
		tobj_drop(s.pool, &s.churn[i]);
	zs_destroy_pool(s.pool);
}

int
main(int argc, char **argv)
{
	unsigned int seconds = argc > 1 ? (unsigned int)atoi(argv[1]) : 2;
	unsigned int seed = argc > 2 ? (unsigned int)atoi(argv[2]) : 1;

	tap_watchdog(600);
	test_alloc();
	test_compact();
	test_migrate(OBJ_SIZE, "migration");
	test_migrate(HUGE_SIZE, "huge object migration");
	test_offline();
	test_stress(seconds, seed);
	return done_testing();
}
