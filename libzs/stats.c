/*
 * stats.c - pool totals and the per-class table.
 */
#include <config.h>

#include <string.h>

#include "zs-internal.h"

static uint64_t
pages_for(uint64_t bytes)
{
	return (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
}

/* The object counters: each class's, summed under its lock. */
void
pool_obj_totals(struct zs_pool *pool, struct obj_totals *t)
{
	struct size_class *c;
	unsigned int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < pool->nr_classes; i++) {
		c = pool->classes[i];
		class_lock(c);
		t->objects += c->objs_used;
		t->bytes_requested += c->bytes_requested;
		t->bytes_held += c->objs_used * c->size;
		if (c->huge)
			t->huge_objects += c->objs_used;
		class_unlock(c);
	}
}

uint64_t
zs_pool_pages_used(struct zs_pool *pool)
{
	return STAT_GET(pool, pages_used);
}

void
zs_pool_stats(struct zs_pool *pool, struct zs_pool_stats *st)
{
	uint64_t handles, zspage_descs;
	struct obj_totals t;

	free_drain(pool);	/* counts as if every zs_free() were done */
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&pool->page_lock);
	st->pages_free = pool->nr_free_pages;
	st->pages_reported = pool->nr_reported_pages;
	st->sections = pool->nr_sections;
	st->pages_mapped = pool->nr_sections << pool->sec_shift;
	st->pages_meta = pool->nr_memmap_pages;
	pthread_mutex_unlock(&pool->page_lock);

	handles = atomic_load_explicit(&pool->handle_top, memory_order_relaxed);
	pthread_mutex_lock(&pool->zspage_lock);
	zspage_descs = pool->zspage_top;
	pthread_mutex_unlock(&pool->zspage_lock);
	/* The tables are touched only as far as they have been used. */
	st->pages_meta += pages_for(handles * sizeof(uint64_t)) +
	    pages_for(zspage_descs * sizeof(struct zspage));

	st->pages_free += page_cache_count(pool);

	pthread_mutex_lock(&pool->free_lock);
	st->zspages_pending_free = pool->nr_queued;
	pthread_mutex_unlock(&pool->free_lock);

	st->pages_used = STAT_GET(pool, pages_used);
	st->zspages = STAT_GET(pool, nr_zspages);
	pool_obj_totals(pool, &t);
	st->objects = t.objects;
	st->huge_objects = t.huge_objects;
	st->bytes_requested = t.bytes_requested;
	st->bytes_held = t.bytes_held;
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
	free_drain(pool);
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
