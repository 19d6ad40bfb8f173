/*
 * persist.c - the pool and the store of a serving zsd, in memory that can
 * outlive the process serving them.
 *
 * zsd_pool_open gives the daemon its pool and store.  With an arena fd
 * (shared memory held outside the serving process, see keeper.c), an empty
 * arena is formatted, and an arena a dead server left is recovered: the
 * pool is mapped at the address it had, the store's journal is replayed,
 * every handle a slot holds is named to libzs, which frees what the crash
 * orphaned and rebuilds its lists, and the pool is validated before the
 * first request is served.  Without one (-1), the pool and the store are
 * private memory, gone with the process.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "zsd.h"

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * The backing file, if one is set.  One that cannot be opened leaves
 * writeback off, with the reason logged and kept for zsctl status: swap
 * itself works without it.  (A store that has pages in it refuses to
 * open without it, in store_open.)
 */
static void
zsd_backing_open(struct zsd *z)
{
	const char *path = z->cfg.backing_file;

	z->backing_error[0] = '\0';
	if (path[0] == '\0')
		return;
	/* A file as large as the swap file, a device whole, unless told. */
	if ((z->backing = backing_open(path, z->cfg.backing_size,
	    z->cfg.disksize, z->backing_error,
	    sizeof(z->backing_error))) == NULL) {
		log_warnx("%s: writeback is off, pages stay in memory",
		    z->backing_error);
		return;
	}
	if (!backing_direct(z->backing))
		log_warnx("backing file %s: its file system refuses O_DIRECT: "
		    "its pages also go through the page cache", path);
}

/*
 * The pool's max_size for a swap file of nr_pages pages: the most it can
 * ever need, so that the bound never refuses a page memory would have
 * taken.  Each page of the file is at most one live object (merged pages
 * share one); beside those are objects in flight -- a write's new object
 * until the old one is freed, an idle pass's recompressed copy, frees
 * waiting in a batch -- which POOL_SLACK_OBJECTS covers many times over.
 * A live object keeps at most one zspage alive, of at most max_chain
 * pages however empty the rest of it is; a huge object takes one page.
 * Sections spend under 2% of their pages on page descriptors: 1/16 more
 * covers them, and two sections more the rounding.  A pool at its bound
 * refuses a write with ENOMEM, as one out of memory does, once libzs has
 * drained its batches and caches.
 *
 * The bound reserves address space only, but an arena must fit where it
 * is mapped (libzs/arena.c, ARENA_HINT): unbounded it would be 4 TiB.
 */
#define POOL_SLACK_OBJECTS	16384

static size_t
zsd_pool_max_size(uint64_t nr_pages, const struct zs_pool_config *pcfg)
{
	uint64_t bytes;

	bytes = (nr_pages + POOL_SLACK_OBJECTS) * pcfg->max_chain *
	    ZSD_PAGE_SIZE;
	bytes += bytes / 16 + 2 * (uint64_t)pcfg->section_size;
	return bytes < SIZE_MAX ? (size_t)bytes : SIZE_MAX;
}

int
zsd_pool_open(struct zsd *z, int arena_fd, char *why, size_t whylen)
{
	uint64_t nr_pages = z->cfg.disksize / ZSD_PAGE_SIZE;
	struct zs_pool_config pcfg;
	struct store_recovery rec;
	struct store_options opt;
	struct timespec t0;
	struct stat sb;
	char vwhy[256];
	int error;

	z->recovered = false;
	zs_pool_config_init(&pcfg);
	/* I/O threads at real-time priority wait on locks normal ones hold. */
	pcfg.priority_inherit = z->cfg.rt_priority > 0;
	pcfg.max_size = zsd_pool_max_size(nr_pages, &pcfg);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (arena_fd < 0) {
		z->pool = zs_create_pool(&pcfg);
	} else if (fstat(arena_fd, &sb) != 0) {
		error = -errno;
		snprintf(why, whylen, "the arena fd %d", arena_fd);
		return error;
	} else if (sb.st_size == 0) {
		z->pool = zs_arena_create(&pcfg, arena_fd,
		    store_root_size(nr_pages));
	} else {
		/*
		 * Bounded by its own size, made for the store it holds,
		 * which keeps its size whatever disksize says now.
		 */
		pcfg.max_size = 0;
		z->pool = zs_arena_attach(&pcfg, arena_fd);
		z->recovered = true;
	}
	if (z->pool == NULL) {
		error = -errno;
		snprintf(why, whylen, "%s", !z->recovered ? "creating the pool" :
		    errno == EPROTO ? "the pool a previous zsd left is of "
		    "another format: it is left as it is" :
		    errno == EADDRINUSE ? "the pool a previous zsd left cannot "
		    "be mapped at its address" : "attaching the pool a "
		    "previous zsd left");
		return error;
	}
	zsd_backing_open(z);
	store_options_of(&z->cfg, &opt);
	opt.backing = z->backing;
	why[0] = '\0';
	z->store = store_open(z->pool, nr_pages, &opt, why, whylen, &error);
	if (z->store == NULL) {
		backing_close(z->backing);
		z->backing = NULL;
		if (why[0] == '\0')
			snprintf(why, whylen, "creating a store of %llu pages",
			    (unsigned long long)nr_pages);
		else if (error == -ENXIO && z->backing_error[0] != '\0')
			snprintf(why + strlen(why), whylen - strlen(why),
			    " (%s)", z->backing_error);
		zs_destroy_pool(z->pool);
		z->pool = NULL;
		return error;
	}
	if (store_backing_problem(z->store) != NULL) {
		snprintf(z->backing_error, sizeof(z->backing_error), "%s",
		    store_backing_problem(z->store));
		log_warnx("%s: writeback is off, pages stay in memory",
		    z->backing_error);
		backing_close(z->backing);
		z->backing = NULL;
	}
	if (!z->recovered)
		return 0;

	store_recovered(z->store, &rec);
	if (zs_pool_validate(z->pool, vwhy, sizeof(vwhy)) != 0)
		log_warnx("the recovered pool is not consistent: %s", vwhy);
	log_info("recovered %llu pages (%llu objects, %llu merged) of the "
	    "zsd that died, in %.1f ms: %llu orphaned objects freed, %llu "
	    "writes replayed, %llu pages lost",
	    (unsigned long long)rec.pages, (unsigned long long)rec.objects,
	    (unsigned long long)rec.merged, elapsed_ms(&t0),
	    (unsigned long long)rec.pool.objects_freed,
	    (unsigned long long)rec.journal_replayed,
	    (unsigned long long)rec.pages_lost);
	if (store_nr_pages(z->store) != nr_pages) {
		z->cfg.disksize = store_nr_pages(z->store) * ZSD_PAGE_SIZE;
		log_warnx("disksize: the swap file keeps its size of %llu MiB "
		    "until zsd stops", (unsigned long long)(z->cfg.disksize >>
		    20));
	}
	return 0;
}
