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
#define NR_TAIL	40000
#define PAGE	4096u

static struct tobj objs[NR], tail[NR_TAIL];

static uint32_t
size_of(unsigned int i)
{
	/* A spread of classes, straddling sizes and huge ones. */
	static const uint32_t base[] = { 24, 100, 333, 700, 1200, 2000, 2900,
	    3500, 4090 };

	return base[i % 9] + (i / 9) % 7;
}

/*
 * Per class: fullness groups add up, and the pages the classes say they
 * use, and could free, add up to the pool's.  Their freeable pages in
 * *freeable, and the pages their zspages would take if every page of
 * them were populated in *spanned.
 */
static int
classes_consistent(struct zs_pool *pool, uint64_t *freeable,
    uint64_t *spanned)
{
	unsigned int i, g, n = zs_class_count(pool);
	struct zs_class_stats st;
	struct zs_pool_stats ps;
	uint64_t sum, pages = 0;

	*freeable = 0;
	*spanned = 0;
	for (i = 0; i < n; i++) {
		if (zs_class_stats(pool, i, &st) != 0)
			return 0;
		for (g = 0, sum = 0; g < ZS_FULLNESS_GROUPS; g++)
			sum += st.fullness[g];
		if (!st.huge && (sum != st.zspages || st.objs_allocated !=
		    st.zspages * st.objs_per_zspage || st.objs_used >
		    st.objs_allocated || st.pages_used >
		    st.zspages * st.pages_per_zspage ||
		    st.freeable_pages > st.pages_used)) {
			diag("class %u (size %u): %llu zspages, %llu in groups,"
			    " %llu pages, %llu freeable", i, st.size,
			    (unsigned long long)st.zspages,
			    (unsigned long long)sum,
			    (unsigned long long)st.pages_used,
			    (unsigned long long)st.freeable_pages);
			return 0;
		}
		*freeable += st.freeable_pages;
		*spanned += st.zspages * st.pages_per_zspage;
		pages += st.pages_used;
	}
	zs_pool_stats(pool, &ps);
	if (pages != ps.pages_used || *freeable != ps.pages_freeable) {
		diag("the classes use %llu pages, the pool %llu; freeable "
		    "%llu, the pool's %llu", (unsigned long long)pages,
		    (unsigned long long)ps.pages_used,
		    (unsigned long long)*freeable,
		    (unsigned long long)ps.pages_freeable);
		return 0;
	}
	return 1;
}

/* The header in every slot: the huge class takes what a slot cannot. */
static unsigned int
obj_hdr_size(struct zs_pool *pool)
{
	return PAGE + 1 - (unsigned int)zs_huge_class_size(pool);
}

/*
 * Give every class of zspages of more than a page a last zspage 60% full,
 * whose upper pages no object has reached yet: its slots are the fullest
 * free ones once two thirds of the others are freed, so compaction moves
 * objects into it and has to populate its pages.  Returns the objects
 * stored in tail[], or 0 on failure.
 */
static unsigned int
add_partial_zspages(struct zs_pool *pool)
{
	unsigned int i, n = 0, hdr = obj_hdr_size(pool);
	struct zs_class_stats st;
	uint64_t zspages, want;

	for (i = 0; zs_class_stats(pool, i, &st) == 0; i++) {
		if (st.huge || st.pages_per_zspage < 2)
			continue;
		/* Fill the class's last zspage; the next object starts one. */
		zspages = st.zspages;
		while (st.zspages == zspages) {
			if (n >= NR_TAIL || tobj_put(pool, &tail[n], NR + n,
			    st.size - hdr) != 0)
				return 0;
			n++;
			zs_class_stats(pool, i, &st);
		}
		for (want = st.objs_per_zspage * 6 / 10; want > 1; want--) {
			if (n >= NR_TAIL || tobj_put(pool, &tail[n], NR + n,
			    st.size - hdr) != 0)
				return 0;
			n++;
		}
	}
	return n;
}

static void
compact_frees(void)
{
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	struct zs_pool_stats before, after;
	struct zs_compact_result res;
	uint64_t freeable, left, spanned;
	unsigned int i, n, bad = 0;
	long freed;

	zs_pool_config_init(&cfg);
	cfg.free_page_reporting = 0;
	pool = zs_create_pool(&cfg);
	for (i = 0; i < NR; i++)
		bad += tobj_put(pool, &objs[i], i, size_of(i)) != 0;
	ok(bad == 0, "%u objects stored", NR);
	n = add_partial_zspages(pool);
	ok(n > 0, "%u more fill a zspage 60%% in each class", n);
	srand(3);
	for (i = 0; i < NR; i++)
		if (rand() % 3 != 0)
			tobj_drop(pool, &objs[i]);
	zs_pool_flush(pool);
	zs_pool_stats(pool, &before);
	i = classes_consistent(pool, &freeable, &spanned);
	ok(i && freeable > 0, "after freeing two thirds: %llu pages freeable",
	    (unsigned long long)freeable);
	ok(before.pages_used < spanned, "zspages partly populated: %llu "
	    "pages used of the %llu they span",
	    (unsigned long long)before.pages_used,
	    (unsigned long long)spanned);

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
	ok((uint64_t)freed <= freeable && (uint64_t)freed >= freeable * 9 / 10,
	    "it freed at most, and at least 90%% of, what the classes said "
	    "was freeable");
	ok(after.pages_compacted == (uint64_t)freed &&
	    after.objs_compacted == res.objs_moved,
	    "stats count pages and objects compacted");
	ok(after.objects == before.objects &&
	    after.bytes_requested == before.bytes_requested,
	    "same objects, same bytes");
	ok(tobj_count_bad(pool, objs, NR) == 0 &&
	    tobj_count_bad(pool, tail, n) == 0, "every object intact");
	i = classes_consistent(pool, &left, &spanned);
	ok(i && left <= freeable / 10,
	    "classes consistent, %llu pages freeable left",
	    (unsigned long long)left);
	ok(pool_valid(pool), "pool valid after compaction");
	ok(zs_compact(pool, NULL) <= (long)left,
	    "a second compaction finds (almost) nothing");
	for (i = 0; i < NR; i++)
		tobj_drop(pool, &objs[i]);
	for (i = 0; i < n; i++)
		tobj_drop(pool, &tail[i]);
	zs_destroy_pool(pool);
}

/*
 * One zspage full but for one slot, and one more object in a zspage of its
 * own, which has populated one of its pages: the one page it holds is all
 * that compaction can free, and the class says so.
 */
static void
freeable_exact(void)
{
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	struct zs_class_stats st;
	struct zs_pool_stats before, after;
	struct tobj *o;
	unsigned int i, k, hdr, bad = 0;
	long freed;

	zs_pool_config_init(&cfg);
	cfg.free_page_reporting = 0;
	pool = zs_create_pool(&cfg);
	hdr = obj_hdr_size(pool);
	for (k = 0; zs_class_stats(pool, k, &st) == 0; k++)
		if (!st.huge && st.pages_per_zspage >= 2 &&
		    st.objs_per_zspage >= 3)
			break;
	if (!ok(!st.huge && st.pages_per_zspage >= 2, "class %u: %u bytes, "
	    "%u objects in %u pages", k, st.size, st.objs_per_zspage,
	    st.pages_per_zspage)) {
		zs_destroy_pool(pool);
		return;
	}
	o = calloc(st.objs_per_zspage + 1, sizeof(*o));
	for (i = 0; i <= st.objs_per_zspage; i++)
		bad += tobj_put(pool, &o[i], i, st.size - hdr) != 0;
	tobj_drop(pool, &o[0]);
	zs_pool_flush(pool);
	zs_class_stats(pool, k, &st);
	zs_pool_stats(pool, &before);
	ok(bad == 0 && st.zspages == 2 &&
	    st.pages_used == st.pages_per_zspage + 1u &&
	    st.pages_used == before.pages_used,
	    "2 zspages, %llu pages used (pool: %llu), %llu freeable",
	    (unsigned long long)st.pages_used,
	    (unsigned long long)before.pages_used,
	    (unsigned long long)st.freeable_pages);
	freed = zs_compact(pool, NULL);
	zs_pool_flush(pool);
	zs_pool_stats(pool, &after);
	ok(freed == 1 && st.freeable_pages == 1 &&
	    before.pages_used - after.pages_used == 1,
	    "compaction frees the one page said to be freeable (%ld; pages "
	    "used %llu -> %llu)", freed, (unsigned long long)before.pages_used,
	    (unsigned long long)after.pages_used);
	zs_class_stats(pool, k, &st);
	ok(st.freeable_pages == 0 && st.pages_used == st.pages_per_zspage &&
	    tobj_count_bad(pool, o, st.objs_per_zspage + 1) == 0,
	    "nothing freeable left, every object intact");
	for (i = 0; i <= st.objs_per_zspage; i++)
		tobj_drop(pool, &o[i]);
	free(o);
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
	freeable_exact();
	compact_with_reader();
	return done_testing();
}
