/*
 * test-mobility.c - moving objects out of the way: zs_obj_migrate,
 * section migrate and offline, zs_pool_shrink, and the cases where they
 * must give up and leave everything as it was.
 */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objs.h"

#define SECTION	(256u << 10)

/* Sizes across the classes, the huge one included. */
static uint32_t
size_of(uint32_t i)
{
	static const uint32_t sizes[] = { 40, 300, 1000, 1700, 2500, 3300,
	    4000, 4096 };

	return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))] - i % 13;
}

static int
put(struct zs_pool *pool, struct tobj *o, uint32_t key)
{
	return tobj_put(pool, o, key, size_of(key));
}

static struct zs_pool *
new_pool(size_t max_size)
{
	struct zs_pool_config cfg;

	zs_pool_config_init(&cfg);
	cfg.section_size = SECTION;
	cfg.max_size = max_size;
	cfg.free_page_reporting = 0;	/* test-report.c covers it */
	/* Pages counted per section; test_offline_cached has caches. */
	cfg.page_cache = 0;
	return zs_create_pool(&cfg);
}

/*
 * Fill section 0 with objects (those allocated while it is the only one),
 * then fill two more and free what went there, so there is room for
 * section 0's pages elsewhere.  Returns the objects of section 0.
 */
static unsigned int
fill_first_section(struct zs_pool *pool, struct tobj *objs, unsigned int max)
{
	struct tobj *extra = calloc(max, sizeof(*extra));
	unsigned int n = 0, m = 0, i;

	while (n < max && zs_section_count(pool) <= 1)
		if (put(pool, &objs[n], n) == 0)
			n++;
	/* The last one may have opened section 1. */
	while (m < max && zs_section_count(pool) <= 3)
		if (put(pool, &extra[m], 100000 + m) == 0)
			m++;
	for (i = 0; i < m; i++)
		zs_free(pool, extra[i].handle);
	zs_pool_flush(pool);
	free(extra);
	return n;
}

static void
test_obj_migrate(void)
{
	struct zs_pool *pool = new_pool(0);
	struct tobj objs[64];
	struct zs_pool_stats before, after;
	unsigned int i, moved_ok = 0;

	for (i = 0; i < 64; i++)
		put(pool, &objs[i], i);
	/* Free every other one so there are free pages to move to. */
	for (i = 0; i < 64; i += 2) {
		zs_free(pool, objs[i].handle);
		objs[i].handle = 0;
	}
	zs_pool_flush(pool);
	zs_pool_stats(pool, &before);
	for (i = 1; i < 64; i += 2)
		if (zs_obj_migrate(pool, objs[i].handle) == 0)
			moved_ok++;
	zs_pool_stats(pool, &after);
	ok(moved_ok == 32, "zs_obj_migrate moved all 32 objects (%u)",
	    moved_ok);
	ok(after.pages_migrated > before.pages_migrated,
	    "pages_migrated grew (%llu -> %llu)",
	    (unsigned long long)before.pages_migrated,
	    (unsigned long long)after.pages_migrated);
	ok(tobj_count_bad(pool, objs, 64) == 0, "handles and bytes unchanged");
	ok(after.objects == before.objects &&
	    after.pages_used == before.pages_used,
	    "same objects and pages used after migration");
#ifndef ZS_DEBUG	/* debug builds abort on a bad handle */
	ok(zs_obj_migrate(pool, objs[0].handle) == -EINVAL,
	    "migrating a freed handle: -EINVAL");
#endif
	ok(pool_valid(pool), "pool valid after migration");
	zs_destroy_pool(pool);
}

/*
 * A free still waiting in a batch does not hold up moving its zspage: the
 * object is dead, so zs_obj_migrate carries the batch out first.
 */
static void
test_migrate_beside_batched_free(void)
{
	struct zs_pool *pool = new_pool(0);
	struct tobj objs[10];
	unsigned int i, bad = 0;

	for (i = 0; i < 10; i++)
		bad += tobj_put(pool, &objs[i], i, 200) != 0;
	tobj_drop(pool, &objs[4]);
	ok(bad == 0 && zs_obj_migrate(pool, objs[5].handle) == 0,
	    "zs_obj_migrate beside an object whose free waits in a batch");
	ok(tobj_count_bad(pool, objs, 10) == 0, "the others intact");
	ok(pool_valid(pool), "pool valid");
	zs_destroy_pool(pool);
}

static void
test_offline_full(void)
{
	struct zs_pool *pool = new_pool(0);
	struct tobj *objs = calloc(4096, sizeof(*objs));
	struct zs_section_stats ss;
	struct zs_pool_stats st;
	unsigned int n;
	long moved;

	n = fill_first_section(pool, objs, 4096);
	zs_section_stats(pool, 0, &ss);
	ok(ss.pages_used + 2 >= ss.pages - ss.pages_meta,
	    "section 0 is full: %u of %u data pages used (%u objects)",
	    ss.pages_used, ss.pages - ss.pages_meta, n);
	moved = zs_section_offline(pool, 0);
	ok(moved >= (long)ss.pages_used, "offline moved %ld pages", moved);
	ok(zs_section_stats(pool, 0, &ss) == -ENOENT,
	    "section 0 is gone");
	zs_pool_stats(pool, &st);
	ok(st.sections_offlined == 1 && st.sections == 3,
	    "one section offlined, 3 left (%llu, %llu)",
	    (unsigned long long)st.sections_offlined,
	    (unsigned long long)st.sections);
	ok(tobj_count_bad(pool, objs, n) == 0, "all %u objects intact", n);
	ok(pool_valid(pool), "pool valid after offline");
	ok(zs_section_offline(pool, 0) == -ENOENT,
	    "offlining it again: -ENOENT");
	ok(put(pool, &objs[n], n) == 0 && tobj_count_bad(pool, objs, n + 1) == 0,
	    "pool still allocates");
	zs_destroy_pool(pool);
	free(objs);
}

/*
 * Offline of a section whose free pages sit in a CPU's page cache: the
 * cache gives them back, the section empties, and allocation goes on in
 * the others.
 */
static void
test_offline_cached(void)
{
	struct tobj *objs = calloc(4096, sizeof(*objs));
	struct zs_pool_config cfg;
	struct zs_section_stats ss;
	struct zs_pool_stats st;
	struct zs_pool *pool;
	unsigned int n = 0, i;
	long moved;

	zs_pool_config_init(&cfg);
	cfg.section_size = SECTION;
	cfg.free_page_reporting = 0;
	cfg.page_cache = 16;
	if (objs == NULL || (pool = zs_create_pool(&cfg)) == NULL)
		bail("out of memory");
	/* Two sections, then all free and no page cached: room in both. */
	while (n < 4096 && zs_section_count(pool) < 2)
		if (put(pool, &objs[n], n) == 0)
			n++;
	for (i = 0; i < n; i++)
		tobj_drop(pool, &objs[i]);
	zs_pool_report(pool);
	zs_pool_stats(pool, &st);
	ok(n < 4096 && st.pages_used == 0 && st.sections == 2,
	    "%u objects filled a section, all freed", n);
	/* One object: section 0's first page, and 15 more cached. */
	ok(put(pool, &objs[0], 0) == 0, "one object");
	zs_section_stats(pool, 0, &ss);
	zs_pool_stats(pool, &st);
	ok(ss.pages_used == 16 && st.pages_used == 1 &&
	    st.pages_free == 2 * (ss.pages - ss.pages_meta) - 1, "its page "
	    "and 15 cached ones off the free list; the cached ones count as "
	    "free (%u off, %llu used, %llu free)", ss.pages_used,
	    (unsigned long long)st.pages_used,
	    (unsigned long long)st.pages_free);
	ok(pool_valid(pool), "pool valid with pages cached");
	moved = zs_section_offline(pool, 0);
	ok(moved == 1 && zs_section_stats(pool, 0, &ss) == -ENOENT,
	    "offline of that section: the cache gave its pages back, the "
	    "object's page moved (%ld)", moved);
	ok(put(pool, &objs[1], 1) == 0 && put(pool, &objs[2], 2) == 0 &&
	    tobj_count_bad(pool, objs, 3) == 0, "objects intact, the pool "
	    "still allocates");
	zs_pool_stats(pool, &st);
	ok(st.sections_offlined == 1 && pool_valid(pool), "pool valid");
	zs_destroy_pool(pool);
	free(objs);
}

/*
 * A pool at its size limit whose last free pages sit in a CPU's page
 * cache, where whole-page objects (which take their page straight from
 * the sections) cannot reach them: an allocation that finds no page
 * takes the cached ones back, so the pool fills to its last page before
 * it refuses.
 */
static void
test_cache_at_limit(void)
{
	struct tobj *objs = calloc(4096, sizeof(*objs));
	struct zs_section_stats ss;
	struct zs_pool_config cfg;
	struct zs_pool_stats st;
	struct zs_pool *pool;
	unsigned int n = 2;

	zs_pool_config_init(&cfg);
	cfg.section_size = SECTION;
	cfg.max_size = SECTION;
	cfg.free_page_reporting = 0;
	cfg.page_cache = 16;
	if (objs == NULL || (pool = zs_create_pool(&cfg)) == NULL)
		bail("out of memory");
	/*
	 * Two objects, a page each.  The first maps the section (a cache
	 * never does); the second fills the cache of the CPU it runs on.
	 */
	ok(tobj_put(pool, &objs[0], 0, 3000) == 0 &&
	    tobj_put(pool, &objs[1], 1, 3000) == 0, "two objects");
	zs_section_stats(pool, 0, &ss);
	zs_pool_stats(pool, &st);
	ok(st.pages_used == 2 && ss.pages_used == 2 + 15,
	    "15 pages in a cache (%u off the free list, %llu used)",
	    ss.pages_used, (unsigned long long)st.pages_used);
	while (n < 4096 && tobj_put(pool, &objs[n], n, 4096) == 0)
		n++;
	zs_pool_stats(pool, &st);
	ok(errno == ENOMEM && st.pages_free == 0 && st.pages_used == n,
	    "%u whole-page objects, then ENOMEM with %llu pages free (%llu "
	    "used)", n - 2, (unsigned long long)st.pages_free,
	    (unsigned long long)st.pages_used);
	ok(tobj_count_bad(pool, objs, n) == 0 && pool_valid(pool),
	    "objects intact, pool valid");
	zs_destroy_pool(pool);
	free(objs);
}

static void
test_offline_no_room(void)
{
	struct zs_pool *pool = new_pool(SECTION);
	struct tobj *objs = calloc(4096, sizeof(*objs));
	struct zs_section_stats ss, ss2;
	struct zs_pool_stats st;
	unsigned int n = 0;
	int error = 0;

	while (n < 4096 && (error = put(pool, &objs[n], n)) == 0)
		n++;
	objs[n].handle = 0;
	ok(error == -ENOMEM && zs_section_count(pool) == 1,
	    "one-section pool filled until ENOMEM (%u objects)", n);
	zs_section_stats(pool, 0, &ss);
	ok(zs_section_offline(pool, 0) == -ENOMEM,
	    "offlining the only section: -ENOMEM");
	error = zs_section_stats(pool, 0, &ss2);
	ok(error == 0 && !ss2.isolated && ss2.pages_used == ss.pages_used,
	    "section back online, unchanged (%u pages used)", ss2.pages_used);
	zs_pool_stats(pool, &st);
	ok(st.isolated_zspages == 0 && st.sections_offlined == 0,
	    "nothing left isolated");
	ok(tobj_count_bad(pool, objs, n) == 0, "all %u objects intact", n);
	ok(pool_valid(pool), "pool valid after the cancelled offline");
	ok(zs_section_migrate(pool, 0) == -ENOMEM,
	    "migrating it: -ENOMEM too");
	zs_free(pool, objs[n - 1].handle);
	zs_pool_flush(pool);
	ok(put(pool, &objs[n - 1], n - 1) == 0 &&
	    tobj_count_bad(pool, objs, n) == 0,
	    "freeing one object makes room for another");
	ok(pool_valid(pool), "pool valid");
	zs_destroy_pool(pool);
	free(objs);
}

static void
test_offline_pinned(void)
{
	struct zs_pool *pool = new_pool(0);
	struct tobj *objs = calloc(4096, sizeof(*objs));
	uint8_t copy[ZS_MAX_ALLOC_SIZE], want[ZS_MAX_ALLOC_SIZE];
	struct zs_section_stats ss;
	const void *p;
	unsigned int n;
	size_t size;
	long r;

	n = fill_first_section(pool, objs, 4096);
	/* The first object is in section 0; hold it pinned. */
	p = zs_obj_read_begin(pool, objs[0].handle, copy, &size);
	r = zs_section_offline(pool, 0);
	ok(r == -EAGAIN, "offline with a reader holding an object: -EAGAIN "
	    "(%ld)", r);
	tobj_pattern(want, objs[0].key, objs[0].size);
	ok(p != NULL && size == objs[0].size &&
	    memcmp(p, want, size) == 0, "the reader's bytes stayed put");
	zs_obj_read_end(pool, objs[0].handle);
	ok(zs_section_stats(pool, 0, &ss) == 0 && !ss.isolated,
	    "section 0 back online");
	ok(tobj_count_bad(pool, objs, n) == 0, "all %u objects intact", n);
	ok(pool_valid(pool), "pool valid after the cancelled offline");
	r = zs_section_offline(pool, 0);
	ok(r > 0, "offline once the reader is done (%ld pages)", r);
	ok(tobj_count_bad(pool, objs, n) == 0, "all %u objects intact", n);
	ok(pool_valid(pool), "pool valid");
	zs_destroy_pool(pool);
	free(objs);
}

static void
test_section_migrate_and_shrink(void)
{
	struct zs_pool *pool = new_pool(0);
	struct tobj *objs = calloc(8192, sizeof(*objs));
	struct zs_section_stats ss;
	struct zs_pool_stats before, after;
	unsigned int n, i;
	uint64_t released;
	long r;

	n = fill_first_section(pool, objs, 4096);
	r = zs_section_migrate(pool, 0);
	if (zs_section_stats(pool, 0, &ss) != 0)
		ss.isolated = -1;
	ok(r > 0 && !ss.isolated && ss.pages_used == 0, "section migrate "
	    "empties section 0 and leaves it online (%ld pages moved, %u used)", r, ss.pages_used);
	ok(tobj_count_bad(pool, objs, n) == 0, "all %u objects intact", n);
	ok(put(pool, &objs[n], n) == 0, "section 0 takes allocations again");
	n++;

	/* Grow to many sections, free most at random, shrink. */
	while (n < 8192)
		put(pool, &objs[n], n), n++;
	for (i = 0; i < n; i++)
		if (rand() % 10 != 0) {
			zs_free(pool, objs[i].handle);
			objs[i].handle = 0;
		}
	zs_compact(pool, NULL);
	zs_pool_flush(pool);
	zs_pool_stats(pool, &before);
	released = zs_pool_shrink(pool, UINT64_MAX);
	zs_pool_stats(pool, &after);
	ok(released > 0 && released % SECTION == 0 &&
	    after.sections == before.sections - released / SECTION &&
	    after.pages_mapped < before.pages_mapped,
	    "shrink released %llu KiB: %llu -> %llu sections",
	    (unsigned long long)released >> 10,
	    (unsigned long long)before.sections,
	    (unsigned long long)after.sections);
	/* What is left is about what the objects need. */
	ok(after.pages_mapped - after.pages_meta <= after.pages_used +
	    SECTION / ZS_PAGE_SIZE,
	    "at most a section's worth of free pages left (%llu used, "
	    "%llu mapped)", (unsigned long long)after.pages_used,
	    (unsigned long long)after.pages_mapped);
	ok(tobj_count_bad(pool, objs, n) == 0, "objects intact after shrink");
	ok(pool_valid(pool), "pool valid after shrink");
	zs_destroy_pool(pool);
	free(objs);
}

int
main(void)
{
	tap_watchdog(600);
	srand(7);
	test_obj_migrate();
	test_migrate_beside_batched_free();
	test_offline_full();
	test_offline_cached();
	test_cache_at_limit();
	test_offline_no_room();
	test_offline_pinned();
	test_section_migrate_and_shrink();
	return done_testing();
}
