/*
 * class.c - size classes: their geometry and their fullness lists.
 *
 * Slot sizes run from 32 to 4096 bytes in 16-byte steps; a slot holds an
 * 8-byte header and the object.  For each slot size the zspage length (1
 * to max_chain pages) is the one that wastes the least memory per page,
 * counting both the tail no slot fits in and the zspage descriptor; ties go
 * to the shorter chain.  Neighbouring slot sizes that end up with the same
 * pages and objects per zspage use the same memory per object whichever
 * slot size they get, so they are merged into the largest one.
 *
 * Objects too large for a header (more than 4088 bytes) go to the huge
 * class: one object per page, no header, no zspage.
 *
 * Each class keeps its zspages on ZS_FULLNESS_GROUPS lists: 0 (empty), 1 to
 * 10 (0-9%, 10-19%, ..., 90-99% of the slots in use) and full.
 */
#include <config.h>

#include <stdlib.h>

#include "zs-internal.h"

static void
class_geometry(unsigned int size, unsigned int max_chain,
    unsigned int *pages, unsigned int *objs)
{
	uint64_t best_waste = 0, best_span = 1;
	unsigned int k;

	*pages = 0;
	*objs = 0;
	for (k = 1; k <= max_chain; k++) {
		uint64_t span = (uint64_t)k * PAGE_SIZE, waste;
		unsigned int n = (unsigned int)(span / size);

		if (n == 0)
			continue;
		if (n > MAX_OBJS_PER_ZSPAGE)
			n = MAX_OBJS_PER_ZSPAGE;
		waste = span - (uint64_t)n * size + sizeof(struct zspage);
		/* waste / span < best_waste / best_span */
		if (*pages == 0 || waste * best_span < best_waste * span) {
			best_waste = waste;
			best_span = span;
			*pages = k;
			*objs = n;
		}
	}
}

static void
class_setup(struct zs_pool *pool, struct size_class *c, unsigned int index,
    unsigned int size, unsigned int pages, unsigned int objs, bool huge)
{
	unsigned int g;

	c->index = (uint16_t)index;
	c->size = (uint16_t)size;
	c->pages_per_zspage = (uint8_t)pages;
	c->objs_per_zspage = (uint16_t)objs;
	c->huge = huge;
	for (g = 0; g < ZS_FULLNESS_GROUPS; g++) {
		list_init(&c->fullness[g]);
		c->nr_in_group[g] = 0;
	}
	c->nr_zspages = 0;
	LOCKED_SET(c->nr_pages, 0);
	LOCKED_SET(c->objs_used, 0);
	LOCKED_SET(c->bytes_requested, 0);
	c->nr_handles = 0;
	pool_mutex_init(pool, &c->lock);
}

int
class_init_all(struct zs_pool *pool)
{
	struct size_class *above = NULL;
	unsigned int i, pages, objs, n = 0;
	int idx;

	/* Walk down from the largest slot size, merging as we go. */
	for (idx = NR_SIZE_SLOTS - 1; idx >= 0; idx--) {
		unsigned int size = (unsigned int)(idx + 1) * CLASS_STEP;

		if (size < CLASS_MIN) {
			pool->size_class[idx] = above;
			continue;
		}
		class_geometry(size, pool->cfg.max_chain, &pages, &objs);
		if (above != NULL && above->pages_per_zspage == pages &&
		    above->objs_per_zspage == objs) {
			pool->size_class[idx] = above;
			continue;
		}
		above = &pool->class_store[idx];
		class_setup(pool, above, (unsigned int)idx, size, pages, objs,
		    false);
		pool->size_class[idx] = above;
	}

	pool->huge_class = &pool->class_store[NR_SIZE_SLOTS];
	class_setup(pool, pool->huge_class, NR_SIZE_SLOTS, PAGE_SIZE, 1, 1,
	    true);
	pool->huge_size = PAGE_SIZE - OBJ_HDR_SIZE + 1;

	/* The distinct classes, in increasing size, huge last. */
	for (i = 0; i < NR_SIZE_SLOTS; i++)
		if (pool->size_class[i] == &pool->class_store[i])
			pool->classes[n++] = &pool->class_store[i];
	pool->classes[n++] = pool->huge_class;
	pool->nr_classes = n;
	return 0;
}

void
class_destroy_all(struct zs_pool *pool)
{
	unsigned int i;

	for (i = 0; i < pool->nr_classes; i++)
		pthread_mutex_destroy(&pool->classes[i]->lock);
	pool->nr_classes = 0;
}

/* size is 1..ZS_MAX_ALLOC_SIZE. */
struct size_class *
class_for_size(struct zs_pool *pool, size_t size)
{
	size_t slot = size + OBJ_HDR_SIZE;

	if (slot > PAGE_SIZE)
		return pool->huge_class;
	return pool->size_class[(slot + CLASS_STEP - 1) / CLASS_STEP - 1];
}

unsigned int
class_fullness(const struct size_class *c, unsigned int inuse)
{
	if (inuse == 0)
		return FULLNESS_EMPTY;
	if (inuse >= c->objs_per_zspage)
		return FULLNESS_FULL;
	return 1 + inuse * 10 / c->objs_per_zspage;
}

/* The class lock is held by the callers of everything below. */

void
class_insert_zspage(struct size_class *c, struct zspage *z)
{
	unsigned int g = class_fullness(c, z->inuse);

	z->fullness = (uint8_t)g;
	list_add(&z->list, &c->fullness[g]);
	c->nr_in_group[g]++;
}

void
class_remove_zspage(struct size_class *c, struct zspage *z)
{
	zs_assert(c->nr_in_group[z->fullness] > 0);
	list_del(&z->list);
	c->nr_in_group[z->fullness]--;
}

/* Move z, on a list, to the list its inuse count calls for. */
void
class_regroup_zspage(struct size_class *c, struct zspage *z)
{
	zs_assert(!(z->flags & ZSPAGE_ISOLATED));
	if (class_fullness(c, z->inuse) == z->fullness)
		return;
	class_remove_zspage(c, z);
	class_insert_zspage(c, z);
}

/*
 * z, empty and on no list, leaves the class to be freed: its pages stop
 * counting as the class's now, though they go back only when it is freed.
 */
void
class_retire_zspage(struct size_class *c, struct zspage *z)
{
	zs_assert(z->inuse == 0 && !(z->flags & ZSPAGE_ISOLATED));
	zs_assert(c->nr_pages >= z->nr_pages);
	c->nr_zspages--;
	LOCKED_SUB(c->nr_pages, z->nr_pages);
	z->flags |= ZSPAGE_FREEING;
}

/*
 * The pages compaction could free at best: those populated, less those
 * the objects would take packed as tightly as zspages allow -- every
 * zspage full but one, whose objects fill its lowest slots.  With the
 * class lock held, or without it (zs_pool_stats), when the two counters
 * may be read a moment apart: each is read once, so the figure is never
 * more than the pages read as populated.
 */
uint64_t
class_freeable_pages(const struct size_class *c)
{
	uint64_t used = UNLOCKED_GET(c->objs_used);
	uint64_t pages = UNLOCKED_GET(c->nr_pages);
	uint64_t full = used / c->objs_per_zspage;
	uint64_t rest = used % c->objs_per_zspage;
	uint64_t least = full * c->pages_per_zspage +
	    (rest * c->size + PAGE_SIZE - 1) / PAGE_SIZE;

	if (c->huge || pages <= least)
		return 0;
	return pages - least;
}

/* The fullest zspage with a free slot, or NULL. */
struct zspage *
class_fullest_zspage(struct size_class *c)
{
	int g;

	for (g = FULLNESS_FULL - 1; g > FULLNESS_EMPTY; g--)
		if (!list_empty(&c->fullness[g]))
			return list_entry(c->fullness[g].next, struct zspage,
			    list);
	if (!list_empty(&c->fullness[FULLNESS_EMPTY]))
		return list_entry(c->fullness[FULLNESS_EMPTY].next,
		    struct zspage, list);
	return NULL;
}

/* The emptiest zspage holding at least one object, or NULL. */
struct zspage *
class_emptiest_zspage(struct size_class *c)
{
	int g;

	for (g = FULLNESS_EMPTY + 1; g < FULLNESS_FULL; g++)
		if (!list_empty(&c->fullness[g]))
			return list_entry(c->fullness[g].next, struct zspage,
			    list);
	return NULL;
}
