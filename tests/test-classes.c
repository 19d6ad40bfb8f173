/*
 * test-classes.c - size class geometry, at several chain lengths, and
 * which class each object size lands in.
 */
#include <config.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "objs.h"

#define HDR	8	/* slot header: slot size = object size + 8, rounded */

static struct zs_pool *
pool_with_chain(unsigned int max_chain)
{
	struct zs_pool_config cfg;

	zs_pool_config_init(&cfg);
	cfg.max_chain = max_chain;
	return zs_create_pool(&cfg);
}

/* The worst share of a zspage no slot fits in, over all classes. */
static void
check_geometry(unsigned int max_chain, double worst_allowed)
{
	struct zs_pool *pool = pool_with_chain(max_chain);
	struct zs_class_stats st, prev = { 0 };
	unsigned int i, n, bad_order = 0, bad_geom = 0, merged_same = 0;
	double worst = 0;

	if (!ok(pool != NULL, "pool with max_chain %u", max_chain))
		return;
	n = zs_class_count(pool);
	for (i = 0; i < n; i++) {
		unsigned int span, objs;

		if (zs_class_stats(pool, i, &st) != 0) {
			bad_geom++;
			continue;
		}
		if (st.huge)
			break;
		span = st.pages_per_zspage * ZS_PAGE_SIZE;
		objs = span / st.size;
		if (objs > 4095)
			objs = 4095;
		if (st.size < 32 || st.size % 16 != 0 || st.size > 4096 ||
		    st.pages_per_zspage < 1 ||
		    st.pages_per_zspage > max_chain ||
		    st.objs_per_zspage != objs)
			bad_geom++;
		if (i > 0 && st.size <= prev.size)
			bad_order++;
		if (i > 0 && st.pages_per_zspage == prev.pages_per_zspage &&
		    st.objs_per_zspage == prev.objs_per_zspage)
			merged_same++;
		if ((double)(span - objs * st.size) / span > worst)
			worst = (double)(span - objs * st.size) / span;
		prev = st;
	}
	ok(i > 10 && i == n - 1, "%u classes, the huge one last", n);
	ok(bad_geom == 0, "every class: slot a multiple of 16 in 32..4096, "
	    "1..%u pages, objects = pages * 4096 / size", max_chain);
	ok(bad_order == 0, "slot sizes strictly increase");
	ok(merged_same == 0, "neighbours with the same geometry are merged");
	ok(worst <= worst_allowed, "worst tail waste %.2f%% (at most %.0f%%)",
	    100 * worst, 100 * worst_allowed);
	ok(zs_class_stats(pool, n - 1, &st) == 0 && st.huge &&
	    st.size == 4096 && st.pages_per_zspage == 1 &&
	    st.objs_per_zspage == 1, "huge class: one 4096-byte object a page");
	ok(zs_class_stats(pool, n, &st) == -ENOENT,
	    "zs_class_stats past the last class: -ENOENT");
	zs_destroy_pool(pool);
}

/* Where does an object of each size go? */
static void
check_mapping(void)
{
	struct zs_pool *pool = pool_with_chain(16);
	struct zs_class_stats st[300];
	unsigned int n = zs_class_count(pool), i, size, wrong = 0;

	for (i = 0; i < n && i < 300; i++)
		zs_class_stats(pool, i, &st[i]);
	for (size = 1; size <= ZS_MAX_ALLOC_SIZE; size++) {
		zs_handle_t h = zs_malloc(pool, size);
		unsigned int want, got = n;
		struct zs_class_stats now;

		/* The smallest class whose slot holds size + header. */
		for (want = 0; want < n - 1 && st[want].size < size + HDR;
		    want++)
			;
		for (i = 0; i < n; i++)
			if (zs_class_stats(pool, i, &now) == 0 &&
			    now.objs_used == 1)
				got = i;
		if ((h == 0 || got != want) && wrong++ == 0)
			diag("size %u: class %u, expected %u", size, got, want);
		zs_free(pool, h);
		/* Class stats count a free waiting in a batch as not done. */
		zs_pool_flush(pool);
	}
	ok(wrong == 0, "every size 1..4096 lands in the smallest class that "
	    "holds it");
	ok(zs_huge_class_size(pool) == 4096 - HDR + 1,
	    "objects of %zu bytes and more are huge",
	    zs_huge_class_size(pool));
	zs_destroy_pool(pool);
}

/* An unsigned int field of the config: max is accepted, max + 1 not. */
static void
check_limit(const char *name, size_t field, unsigned int max)
{
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	unsigned int v;

	for (v = max; v <= max + 1; v++) {
		zs_pool_config_init(&cfg);
		memcpy((char *)&cfg + field, &v, sizeof(v));
		errno = 0;
		pool = zs_create_pool(&cfg);
		if (v == max)
			ok(pool != NULL, "%s %u is accepted", name, v);
		else
			ok(pool == NULL && errno == EINVAL,
			    "refused with EINVAL: %s %u", name, v);
		zs_destroy_pool(pool);
	}
}

static void
check_bad_config(void)
{
	static const struct {
		size_t		section;
		unsigned int	chain;
		const char	*what;
	} bad[] = {
		{ (256 << 10) + 4096, 16, "section size not a power of two" },
		{ 128 << 10, 16, "section size below 256 KiB" },
		{ (size_t)2 << 30, 16, "section size above 1 GiB" },
		{ 4 << 20, 0, "max_chain 0" },
		{ 4 << 20, ZS_MAX_CHAIN + 1, "max_chain 17" },
	};
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	unsigned int i;
	int status;
	pid_t pid;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		zs_pool_config_init(&cfg);
		cfg.section_size = bad[i].section;
		cfg.max_chain = bad[i].chain;
		errno = 0;
		pool = zs_create_pool(&cfg);
		ok(pool == NULL && errno == EINVAL, "refused with EINVAL: %s",
		    bad[i].what);
		zs_destroy_pool(pool);
	}
	check_limit("free_batch", offsetof(struct zs_pool_config, free_batch),
	    ZS_MAX_FREE_BATCH);
	check_limit("prefault_ahead", offsetof(struct zs_pool_config,
	    prefault_ahead), ZS_MAX_PREFAULT);
	check_limit("page_cache", offsetof(struct zs_pool_config, page_cache),
	    ZS_MAX_PAGE_CACHE);
	zs_pool_config_init(&cfg);
	cfg.section_size = 1 << 30;
	cfg.max_chain = 1;
	pool = zs_create_pool(&cfg);
	ok(pool != NULL, "1 GiB sections and max_chain 1 are accepted");
	zs_destroy_pool(pool);

	/* In a child, so that a crash fails this point, not the program. */
	fflush(stdout);
	if ((pid = fork()) == 0) {
		zs_destroy_pool(NULL);
		_exit(0);
	}
	ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "zs_destroy_pool(NULL) returns");
}

int
main(void)
{
	tap_watchdog(600);
	check_geometry(1, 0.05);
	check_geometry(4, 0.03);
	check_geometry(16, 0.01);
	check_mapping();
	check_bad_config();
	return done_testing();
}
