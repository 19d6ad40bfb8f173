/*
 * test-fault.c - the OS refusing memory, at every call the pool makes.
 *
 * A workload (create, fill, free, compact, report, shrink, refill) runs
 * through an ops table that makes the Nth mmap, madvise or munmap fail --
 * once, or from then on until the workload lifts it -- for every N the
 * workload reaches.  Each time: failures are clean (ENOMEM from zs_malloc,
 * nothing else), every object written reads back, the pool validates and
 * works again once the OS does, and after zs_destroy_pool every byte mapped
 * has been unmapped, except what a failed munmap had to leave.
 */
#include <config.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "objs.h"

#define NR	600

enum call { MAP, ADVISE, UNMAP, NR_CALLS };
static const char *const call_name[] = { "mmap", "madvise", "munmap" };

struct faults {
	pthread_mutex_t	lock;
	unsigned int	calls[NR_CALLS];
	enum call	kind;
	unsigned int	at;		/* fail the at-th call of kind; 0 none */
	bool		sticky;		/* and every one after it */
	bool		lifted;		/* the workload has stopped faults */
	size_t		mapped, unmapped, leaked;
	unsigned int	nomem;		/* zs_malloc ENOMEMs seen */
};

static bool
should_fail(struct faults *f, enum call kind)
{
	unsigned int n = ++f->calls[kind];

	return !f->lifted && f->at != 0 && f->kind == kind &&
	    (n == f->at || (f->sticky && n > f->at));
}

static void *
f_map(void *ctx, size_t len)
{
	struct faults *f = ctx;
	void *p = NULL;

	pthread_mutex_lock(&f->lock);
	if (!should_fail(f, MAP)) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			p = NULL;
		else
			f->mapped += len;
	}
	pthread_mutex_unlock(&f->lock);
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

static int
f_unmap(void *ctx, void *addr, size_t len)
{
	struct faults *f = ctx;
	int r = -1;

	pthread_mutex_lock(&f->lock);
	if (should_fail(f, UNMAP)) {
		f->leaked += len;	/* gone for good; so be it */
	} else if ((r = munmap(addr, len)) == 0) {
		f->unmapped += len;
	}
	pthread_mutex_unlock(&f->lock);
	if (r != 0)
		errno = EINVAL;
	return r;
}

static int
f_advise(void *ctx, void *addr, size_t len, int advice)
{
	struct faults *f = ctx;
	bool fail;

	pthread_mutex_lock(&f->lock);
	fail = should_fail(f, ADVISE);
	pthread_mutex_unlock(&f->lock);
	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	return madvise(addr, len, advice);
}

static struct tobj objs[NR + NR / 2];

static uint32_t
size_of(unsigned int i)
{
	return (uint32_t)(i * 2654435761u % 4096) + 1;
}

/*
 * Run the workload; returns NULL if it went right, else what went wrong.
 * unclean counts zs_malloc failures other than ENOMEM.
 */
static const char *
workload(struct faults *f)
{
	static const struct zs_os_ops ops_tmpl = { f_map, f_unmap, f_advise,
	    NULL };
	struct zs_os_ops ops = ops_tmpl;
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	const char *what = NULL;
	unsigned int i, n = 0;
	int error;

	ops.ctx = f;
	zs_pool_config_init(&cfg);
	cfg.section_size = 256 << 10;
	cfg.free_page_reporting = 0;	/* reports come from here, in order */
	cfg.os_ops = &ops;
	pool = zs_create_pool(&cfg);
	if (pool == NULL)
		return errno == ENOMEM ? NULL : "zs_create_pool: not ENOMEM";

	for (i = 0; i < NR; i++, n++) {
		error = tobj_put(pool, &objs[i], i, size_of(i));
		f->nomem += error == -ENOMEM;
		if (error != 0 && error != -ENOMEM) {
			what = "zs_malloc failed with something else than ENOMEM";
			goto out;
		}
	}
	if (tobj_count_bad(pool, objs, n) != 0) {
		what = "an object written before a fault is damaged";
		goto out;
	}
	for (i = 0; i < NR; i += 3)
		tobj_drop(pool, &objs[i]);
	zs_compact(pool, NULL);
	zs_pool_flush(pool);
	zs_pool_report(pool);
	zs_pool_shrink(pool, 2 << 20);
	for (; n < NR + NR / 2; n++) {
		error = tobj_put(pool, &objs[n], n, size_of(n));
		f->nomem += error == -ENOMEM;
		if (error != 0 && error != -ENOMEM) {
			what = "zs_malloc failed with something else than ENOMEM";
			goto out;
		}
	}
	if (tobj_count_bad(pool, objs, n) != 0) {
		what = "an object is damaged after compact/report/shrink";
		goto out;
	}
	if (!pool_valid(pool)) {
		what = "the pool does not validate under faults";
		goto out;
	}

	/* The OS is generous again: everything must work. */
	pthread_mutex_lock(&f->lock);
	f->lifted = true;
	pthread_mutex_unlock(&f->lock);
	for (i = 0; i < n; i++)
		if (objs[i].handle == 0 &&
		    tobj_put(pool, &objs[i], i + 7 * NR, size_of(i)) != 0) {
			what = "allocation fails after the faults stopped";
			goto out;
		}
	if (tobj_count_bad(pool, objs, n) != 0 || !pool_valid(pool))
		what = "the pool is damaged after the faults stopped";
out:
	for (i = 0; i < n; i++)
		tobj_drop(pool, &objs[i]);
	zs_destroy_pool(pool);
	return what;
}

static void
init_faults(struct faults *f, enum call kind, unsigned int at, bool sticky)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->kind = kind;
	f->at = at;
	f->sticky = sticky;
}

int
main(void)
{
	struct faults f;
	unsigned int clean[NR_CALLS], k, at, runs, broken, leaks, nomem;
	const char *what, *first;
	int sticky;

	tap_watchdog(600);
	init_faults(&f, MAP, 0, false);
	what = workload(&f);
	ok(what == NULL && f.mapped == f.unmapped, "clean run: %s; %u mmap, "
	    "%u madvise, %u munmap calls; %zu bytes mapped, %zu unmapped",
	    what ? what : "fine", f.calls[MAP], f.calls[ADVISE],
	    f.calls[UNMAP], f.mapped, f.unmapped);
	memcpy(clean, f.calls, sizeof(clean));

	for (k = 0; k < NR_CALLS; k++)
		for (sticky = 0; sticky < 2; sticky++) {
			first = NULL;
			broken = leaks = runs = nomem = 0;
			/* One past the clean count too: nothing fails then. */
			for (at = 1; at <= clean[k] + 1; at++, runs++) {
				init_faults(&f, k, at, sticky);
				what = workload(&f);
				nomem += f.nomem;
				if (what != NULL && broken++ == 0)
					first = what;
				if (f.mapped != f.unmapped + f.leaked &&
				    leaks++ == 0)
					diag("%s #%u: %zu mapped, %zu unmapped, "
					    "%zu leaked by a failed munmap",
					    call_name[k], at, f.mapped,
					    f.unmapped, f.leaked);
			}
			ok(broken == 0, "%s failing at call N%s, every N of "
			    "%u: %s", call_name[k], sticky ? " and on" : "",
			    runs, first ? first : "clean failures, objects "
			    "intact, pool usable after");
			ok(leaks == 0, "%s failing at call N%s: all memory "
			    "unmapped at destroy", call_name[k],
			    sticky ? " and on" : "");
			if (k == MAP)
				ok(nomem > 0, "%s failing at call N%s: zs_malloc "
				    "said ENOMEM %u times", call_name[k],
				    sticky ? " and on" : "", nomem);
		}
	return done_testing();
}
