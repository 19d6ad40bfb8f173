/*
 * test-compact.c - compaction frees what it says, keeps every object, and
 * runs alongside a reader.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "objs.h"

#define NR	30000

static struct tobj objs[NR];

static uint32_t
size_of(unsigned int i)
{
	/* A spread of classes, straddling sizes and huge ones. */
	static const uint32_t base[] = { 24, 100, 333, 700, 1200, 2000, 2900,
	    3500, 4090 };

	return base[i % 9] + (i / 9) % 7;
}

/* Per class: fullness groups add up, nothing freeable is left over. */
static int
classes_consistent(struct zs_pool *pool, uint64_t *freeable)
{
	unsigned int i, g, n = zs_class_count(pool);
	struct zs_class_stats st;
	uint64_t sum;

	*freeable = 0;
	for (i = 0; i < n; i++) {
		if (zs_class_stats(pool, i, &st) != 0)
			return 0;
		for (g = 0, sum = 0; g < ZS_FULLNESS_GROUPS; g++)
			sum += st.fullness[g];
		if (!st.huge && (sum != st.zspages || st.objs_allocated !=
		    st.zspages * st.objs_per_zspage || st.objs_used >
		    st.objs_allocated)) {
			diag("class %u (size %u): %llu zspages, %llu in groups",
			    i, st.size, (unsigned long long)st.zspages,
			    (unsigned long long)sum);
			return 0;
		}
		*freeable += st.freeable_pages;
	}
	return 1;
}

static void
compact_frees(void)
{
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	struct zs_pool_stats before, after;
	struct zs_compact_result res;
	uint64_t freeable, left;
	unsigned int i, bad = 0;
	long freed;

	zs_pool_config_init(&cfg);
	cfg.free_page_reporting = 0;
	pool = zs_create_pool(&cfg);
	for (i = 0; i < NR; i++)
		bad += tobj_put(pool, &objs[i], i, size_of(i)) != 0;
	ok(bad == 0, "%u objects stored", NR);
	srand(3);
	for (i = 0; i < NR; i++)
		if (rand() % 3 != 0)
			tobj_drop(pool, &objs[i]);
	zs_pool_flush(pool);
	zs_pool_stats(pool, &before);
	i = classes_consistent(pool, &freeable);
	ok(i && freeable > 0, "after freeing two thirds: %llu pages freeable",
	    (unsigned long long)freeable);

	freed = zs_compact(pool, &res);
	zs_pool_flush(pool);
	zs_pool_stats(pool, &after);
	ok(freed > 0 && (uint64_t)freed == res.pages_freed,
	    "zs_compact freed %ld pages, moving %llu objects (%llu bytes)",
	    freed, (unsigned long long)res.objs_moved,
	    (unsigned long long)res.bytes_moved);
	ok(before.pages_used - after.pages_used == (uint64_t)freed,
	    "pages used fell by exactly that (%llu -> %llu)",
	    (unsigned long long)before.pages_used,
	    (unsigned long long)after.pages_used);
	ok((uint64_t)freed >= freeable * 9 / 10,
	    "it freed at least 90%% of what the classes said was freeable");
	ok(after.pages_compacted == (uint64_t)freed &&
	    after.objs_compacted == res.objs_moved,
	    "stats count pages and objects compacted");
	ok(after.objects == before.objects &&
	    after.bytes_requested == before.bytes_requested,
	    "same objects, same bytes");
	ok(tobj_count_bad(pool, objs, NR) == 0, "every object intact");
	i = classes_consistent(pool, &left);
	ok(i && left <= freeable / 10,
	    "classes consistent, %llu pages freeable left",
	    (unsigned long long)left);
	ok(pool_valid(pool), "pool valid after compaction");
	ok(zs_compact(pool, NULL) <= (long)left,
	    "a second compaction finds (almost) nothing");
	for (i = 0; i < NR; i++)
		tobj_drop(pool, &objs[i]);
	zs_destroy_pool(pool);
}

/* A reader checks objects while the main thread frees and compacts. */
static struct zs_pool *shared;
static atomic_bool stop;
static atomic_uint reader_bad, reader_reads;

static void *
reader(void *arg)
{
	unsigned int i = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		/* Objects at multiples of 4 are never freed. */
		if (!tobj_intact(shared, &objs[i]))
			atomic_fetch_add(&reader_bad, 1);
		atomic_fetch_add(&reader_reads, 1);
		i = (i + 4) % NR;
	}
	return NULL;
}

static void
compact_with_reader(void)
{
	pthread_t t;
	unsigned int i, round;
	long freed = 0;

	shared = zs_create_pool(NULL);
	for (i = 0; i < NR; i++)
		tobj_put(shared, &objs[i], i + NR, size_of(i));
	pthread_create(&t, NULL, reader, NULL);
	/* Free and refill the objects the reader leaves alone, compacting
	 * each time, until it has read each of its objects a few times. */
	for (round = 0; round < 200 && (round < 6 ||
	    atomic_load(&reader_reads) < NR); round++) {
		for (i = round % 3 + 1; i < NR; i += 4)
			tobj_drop(shared, &objs[i]);
		freed += zs_compact(shared, NULL);
		for (i = round % 3 + 1; i < NR; i += 4)
			tobj_put(shared, &objs[i], i + round * NR, size_of(i));
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	ok(freed > 0, "%u compactions under a reader freed %ld pages",
	    round, freed);
	ok(atomic_load(&reader_bad) == 0, "the reader saw every object right "
	    "(%u reads)", atomic_load(&reader_reads));
	ok(tobj_count_bad(shared, objs, NR) == 0, "every object intact");
	ok(pool_valid(shared), "pool valid");
	zs_destroy_pool(shared);
}

int
main(void)
{
	tap_watchdog(600);
	compact_frees();
	compact_with_reader();
	return done_testing();
}
