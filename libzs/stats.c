/*
 * stats.c - pool totals and the per-class table.
 *
 * zs_pool_stats() takes no lock and carries out no free: zsd calls it
 * from the control thread and from the FUSE threads (mm_stat), beside
 * swap I/O.  zs_class_stats() takes its own class's lock, one at a time.
 */
#include <config.h>

#include <string.h>

#include "zs-internal.h"

static uint64_t
pages_for(uint64_t bytes)
{
	return (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
}

/*
 * The object counters: each class's, summed without the class locks (see
 * zs-internal.h), so that statistics never make malloc or free wait.
 */
void
pool_obj_totals(struct zs_pool *pool, struct obj_totals *t)
{
	struct size_class *c;
	unsigned int i;
	uint64_t used;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < pool->nr_classes; i++) {
		c = pool->classes[i];
		used = UNLOCKED_GET(c->objs_used);
		t->objects += used;
		t->bytes_requested += UNLOCKED_GET(c->bytes_requested);
		t->bytes_held += used * c->size;
		if (c->huge)
			t->huge_objects += used;
		t->pages_freeable += class_freeable_pages(c);
	}
}

uint64_t
zs_pool_pages_used(struct zs_pool *pool)
{
	return STAT_GET(pool, pages_used);
}

/*
 * Every figure from a counter read without a lock, and no frees carried
 * out: any thread may ask at any time without making the pool's users
 * wait (zs.h says what the frees still waiting count as).
 */
void
zs_pool_stats(struct zs_pool *pool, struct zs_pool_stats *st)
{
	uint64_t handles, zspage_descs;
	struct obj_totals t;

	memset(st, 0, sizeof(*st));
	st->pages_free = UNLOCKED_GET(pool->nr_free_pages) +
	    page_cache_count(pool);
	st->pages_reported = UNLOCKED_GET(pool->nr_reported_pages);
	st->sections = UNLOCKED_GET(pool->nr_sections);
	st->pages_mapped = st->sections << pool->sec_shift;

	handles = UNLOCKED_GET(pool->handle_top);
	zspage_descs = UNLOCKED_GET(pool->zspage_top);
	/* The tables are touched only as far as they have been used. */
	st->pages_meta = UNLOCKED_GET(pool->nr_memmap_pages) +
	    pages_for(handles * sizeof(uint64_t)) +
	    pages_for(zspage_descs * sizeof(struct zspage));

	st->zspages_pending_free = UNLOCKED_GET(pool->nr_queued);
	st->objs_pending_free = free_pending_count(pool);

	st->pages_used = STAT_GET(pool, pages_used);
	st->zspages = STAT_GET(pool, nr_zspages);
	pool_obj_totals(pool, &t);
	st->objects = t.objects;
	st->huge_objects = t.huge_objects;
	st->bytes_requested = t.bytes_requested;
	st->bytes_held = t.bytes_held;
	st->pages_freeable = t.pages_freeable;
	st->pages_compacted = STAT_GET(pool, pages_compacted);
	st->objs_compacted = STAT_GET(pool, objs_compacted);
	st->malloc_failures = STAT_GET(pool, malloc_failures);
	st->pages_migrated = STAT_GET(pool, pages_migrated);
	st->sections_offlined = STAT_GET(pool, sections_offlined);
	st->isolated_zspages = STAT_GET(pool, isolated_zspages);
}

unsigned int
zs_class_count(struct zs_pool *pool)
{
	return pool->nr_classes;
}

int
zs_class_stats(struct zs_pool *pool, unsigned int index,
    struct zs_class_stats *st)
{
	struct size_class *c;
	unsigned int g;

	if (index >= pool->nr_classes)
		return -ENOENT;
	c = pool->classes[index];
	memset(st, 0, sizeof(*st));
	st->index = index;
	st->size = c->size;
	st->pages_per_zspage = c->pages_per_zspage;
	st->objs_per_zspage = c->objs_per_zspage;
	st->huge = c->huge;

	class_lock(c);
	st->zspages = c->nr_zspages;
	st->objs_used = c->objs_used;
	for (g = 0; g < ZS_FULLNESS_GROUPS; g++)
		st->fullness[g] = c->nr_in_group[g];
	/* Zspages populate lazily: the pages they have, not could have. */
	st->pages_used = c->huge ? c->nr_zspages : c->nr_pages;
	st->freeable_pages = class_freeable_pages(c);
	class_unlock(c);

	st->objs_allocated = st->zspages * c->objs_per_zspage;
	if (c->huge) {
		/* Every huge page is full. */
		st->fullness[FULLNESS_FULL] = st->zspages;
	}
	return 0;
}
