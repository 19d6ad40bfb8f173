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
