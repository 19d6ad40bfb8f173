/*
 * validate.c - walk the whole pool and check every invariant.
 *
 * For tests and debugging, on a quiescent pool: no thread may be calling
 * into it meanwhile (pins held across zs_obj_read_begin/end are fine).
 * Checks, in order: every section's memmap and free list; every zspage on
 * a class list or the free queue against its class, its pages and the
 * handles of its objects; every huge page against its handle; the handle
 * table; and the pool's counters against what the walk counted.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "zs-internal.h"

struct walk {
	struct zs_pool	*pool;
	char		*why;
	size_t		 whylen;
	uint64_t	 zspage_pages;	/* pages seen in zspages */
	uint64_t	 zspages;
	uint64_t	 huge_pages;
	uint64_t	 objects;
	uint64_t	 bytes_requested;
	uint64_t	 bytes_held;
	uint64_t	 class_handles;	/* free handles the classes keep */
	uint64_t	 cached_pages;	/* seen in sections as OWNER_CACHED */
};

static int __attribute__((format(printf, 2, 3)))
fail(struct walk *wk, const char *fmt, ...)
{
	va_list ap;

	if (wk->why != NULL && wk->whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(wk->why, wk->whylen, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

#define CHECK(wk, cond, ...) do {					\
	if (!(cond))							\
		return fail((wk), __VA_ARGS__);				\
} while (0)

static int
check_huge_page(struct walk *wk, uint32_t pfn, const struct zs_page *pg)
{
	struct zs_pool *pool = wk->pool;
	uint32_t top = atomic_load(&pool->handle_top);
	uint64_t v;

	CHECK(wk, pg->owner > 0 && pg->owner < top,
	    "huge page %u: bad handle index %u", pfn, pg->owner);
	v = atomic_load(handle_word(pool, pg->owner));
	CHECK(wk, (v & HW_ALLOC) && (v & HW_HUGE) && HW_LOC(v) == pfn,
	    "huge page %u: handle %u does not point back", pfn, pg->owner);
	CHECK(wk, pg->huge_size >= pool->huge_size &&
	    pg->huge_size <= ZS_MAX_ALLOC_SIZE,
	    "huge page %u: size %u", pfn, pg->huge_size);
	wk->huge_pages++;
	wk->objects++;
	wk->bytes_requested += pg->huge_size;
	wk->bytes_held += PAGE_SIZE;
	return 0;
}

static int
check_section(struct walk *wk, uint32_t slot, struct section *sec)
{
	struct zs_pool *pool = wk->pool;
	uint32_t i, n = 0, reported = 0, prev = PAGE_NIL, nfree = 0;
	int error;

	CHECK(wk, sec->index == slot, "section %u: index %u", slot, sec->index);
	CHECK(wk, sec->nr_pages == 1u << pool->sec_shift,
	    "section %u: %u pages", slot, sec->nr_pages);
	for (i = sec->free_head; i != PAGE_NIL; i = sec->pages[i].next) {
		CHECK(wk, i >= sec->first_data && i < sec->nr_pages &&
		    n < sec->nr_pages, "section %u: free list broken at %u",
		    slot, i);
		CHECK(wk, sec->pages[i].state == PAGE_FREE,
		    "section %u: page %u on the free list in state %u", slot,
		    i, sec->pages[i].state);
		CHECK(wk, sec->pages[i].prev == prev,
		    "section %u: page %u: bad back link", slot, i);
		prev = i;
		n++;
	}
	CHECK(wk, prev == sec->free_tail, "section %u: bad tail", slot);
	CHECK(wk, n == sec->nr_free, "section %u: %u pages on the free list, "
	    "nr_free %u", slot, n, sec->nr_free);
	for (i = 0; i < sec->nr_pages; i++) {
		const struct zs_page *pg = &sec->pages[i];
		uint32_t pfn = slot << pool->sec_shift | i;

		CHECK(wk, (i < sec->first_data) == (pg->state == PAGE_META),
		    "section %u: page %u state %u", slot, i, pg->state);
		if (pg->flags & PG_REPORTED) {
			CHECK(wk, pg->state == PAGE_FREE,
			    "page %u: reported but state %u", pfn, pg->state);
			reported++;
		}
		/* Only while an allocation faults its run in. */
		CHECK(wk, !(pg->flags & PG_POPULATING),
		    "page %u: still marked as being faulted in", pfn);
		if (pg->state == PAGE_FREE)
			nfree++;
		if (pg->state == PAGE_ZSPAGE && pg->owner == OWNER_CACHED)
			wk->cached_pages++;
		if (pg->state == PAGE_HUGE &&
		    (error = check_huge_page(wk, pfn, pg)) != 0)
			return error;
	}
	CHECK(wk, nfree == sec->nr_free + sec->nr_reporting, "section %u: %u "
	    "free pages, nr_free %u + %u being reported", slot, nfree,
	    sec->nr_free, sec->nr_reporting);
	CHECK(wk, reported == sec->nr_reported, "section %u: %u reported, "
	    "nr_reported %u", slot, reported, sec->nr_reported);
	return 0;
}

static int
check_zspage(struct walk *wk, struct size_class *c, struct zspage *z,
    bool queued)
{
	struct zs_pool *pool = wk->pool;
	uint8_t seen[(MAX_OBJS_PER_ZSPAGE + 8) / 8];
	uint32_t top = atomic_load(&pool->handle_top);
	unsigned int i, live = 0, chain = 0, dormant = 0, populated = 0, obj;

	CHECK(wk, z->class_idx == c->index, "zspage %u: class %u, on class %u",
	    z->id, z->class_idx, c->index);
	CHECK(wk, zspage_of(pool, z->id) == z, "zspage %u: bad id", z->id);
	CHECK(wk, z->inuse <= z->fresh && z->fresh <= c->objs_per_zspage,
	    "zspage %u: inuse %u fresh %u", z->id, z->inuse, z->fresh);
	for (i = 0; i < ZS_MAX_CHAIN; i++) {
		uint32_t slot = z->pfn[i] >> pool->sec_shift;
		const struct zs_page *pg;

		if (z->pfn[i] == PFN_NONE)
			continue;
		CHECK(wk, i < c->pages_per_zspage, "zspage %u: page %u of %u "
		    "populated", z->id, i, c->pages_per_zspage);
		CHECK(wk, slot < pool->nr_section_slots &&
		    atomic_load(&pool->sections[slot]) != NULL,
		    "zspage %u: page %u in no section", z->id, z->pfn[i]);
		pg = section_page(pool, z->pfn[i]);
		CHECK(wk, pg->state == PAGE_ZSPAGE && pg->owner == z->id,
		    "zspage %u: page %u state %u owner %u", z->id, z->pfn[i],
		    pg->state, pg->owner);
		populated++;
	}
	CHECK(wk, populated == z->nr_pages, "zspage %u: %u pages populated, "
	    "nr_pages %u", z->id, populated, z->nr_pages);
	memset(seen, 0, sizeof(seen));
	for (obj = 0; obj < z->fresh; obj++) {
		size_t start = (size_t)obj * c->size;
		unsigned int first = (unsigned int)(start >> PAGE_SHIFT);
		unsigned int last = (unsigned int)((start + c->size - 1) >>
		    PAGE_SHIFT);
		struct obj_hdr *hdr;
		uint32_t hidx;
		uint64_t v;

		if (z->pfn[first] == PFN_NONE) {
			dormant++;
			continue;
		}
		hdr = zspage_slot(pool, c, z, obj, NULL);
		if (!(hdr->tag & 1))
			continue;
		hidx = hdr->tag >> 1;
		live++;
		seen[obj / 8] |= 1u << (obj % 8);
		for (i = first; i <= last; i++)
			CHECK(wk, z->pfn[i] != PFN_NONE, "zspage %u slot %u: "
			    "page %u not populated", z->id, obj, i);
		CHECK(wk, hidx > 0 && hidx < top, "zspage %u slot %u: handle "
		    "index %u", z->id, obj, hidx);
		v = atomic_load(handle_word(pool, hidx));
		CHECK(wk, (v & HW_ALLOC) && !(v & HW_HUGE) &&
		    HW_LOC(v) == z->id && HW_OBJ(v) == obj,
		    "zspage %u slot %u: handle %u does not point back", z->id,
		    obj, hidx);
		CHECK(wk, hdr->size > 0 && hdr->size + OBJ_HDR_SIZE <= c->size,
		    "zspage %u slot %u: size %u in class %u", z->id, obj,
		    hdr->size, c->size);
		wk->objects++;
		wk->bytes_requested += hdr->size;
		wk->bytes_held += c->size;
	}
	CHECK(wk, live == z->inuse, "zspage %u: %u live slots, inuse %u",
	    z->id, live, z->inuse);
	for (obj = z->freeobj; obj != OBJ_NONE; chain++) {
		struct obj_hdr *hdr;

		CHECK(wk, obj < z->fresh && !(seen[obj / 8] & (1u << obj % 8)) &&
		    z->pfn[((size_t)obj * c->size) >> PAGE_SHIFT] != PFN_NONE,
		    "zspage %u: free chain broken at %u", z->id, obj);
		seen[obj / 8] |= 1u << (obj % 8);
		hdr = zspage_slot(pool, c, z, obj, NULL);
		CHECK(wk, !(hdr->tag & 1), "zspage %u: live slot %u on the "
		    "free chain", z->id, obj);
		obj = hdr->tag >> 1;
	}
	CHECK(wk, live + chain + dormant == z->fresh, "zspage %u: %u live + "
	    "%u free + %u dormant != %u used slots", z->id, live, chain,
	    dormant, z->fresh);
	CHECK(wk, !(z->flags & ZSPAGE_ISOLATED), "zspage %u: isolated", z->id);
	if (queued)
		CHECK(wk, z->inuse == 0, "zspage %u: queued for free with %u "
		    "objects", z->id, z->inuse);
	else
		CHECK(wk, z->inuse > 0, "zspage %u: empty on a class list",
		    z->id);
	wk->zspage_pages += z->nr_pages;
	wk->zspages++;
	return 0;
}

/* The free handle indices a class keeps (class lock held). */
static int
check_class_handles(struct walk *wk, struct size_class *c)
{
	struct zs_pool *pool = wk->pool;
	uint32_t top = atomic_load(&pool->handle_top);
	unsigned int i;
	uint64_t v;

	CHECK(wk, c->nr_handles <= CLASS_HANDLES, "class %u keeps %u free "
	    "handles", c->size, c->nr_handles);
	for (i = 0; i < c->nr_handles; i++) {
		CHECK(wk, c->handles[i] > 0 && c->handles[i] < top,
		    "class %u: free handle index %u", c->size, c->handles[i]);
		v = atomic_load(handle_word(pool, c->handles[i]));
		CHECK(wk, !(v & (HW_ALLOC | HW_PIN)), "class %u: free handle "
		    "%u is live", c->size, c->handles[i]);
	}
	wk->class_handles += c->nr_handles;
	return 0;
}

static int
check_class(struct walk *wk, struct size_class *c)
{
	uint64_t zspages = 0, used = 0, pages = 0;
	uint64_t requested = wk->bytes_requested;
	unsigned int g;
	int error;

	if ((error = check_class_handles(wk, c)) != 0)
		return error;
	if (c->huge) {
		CHECK(wk, c->nr_zspages == c->objs_used, "huge class: %ju pages"
		    ", %ju objects", (uintmax_t)c->nr_zspages,
		    (uintmax_t)c->objs_used);
		return 0;
	}
	for (g = 0; g < ZS_FULLNESS_GROUPS; g++) {
		struct list_head *e;
		uint64_t n = 0;

		for (e = c->fullness[g].next; e != &c->fullness[g];
		    e = e->next) {
			struct zspage *z = list_entry(e, struct zspage, list);

			CHECK(wk, z->fullness == g && class_fullness(c,
			    z->inuse) == g, "zspage %u: in group %u, fullness "
			    "%u, inuse %u", z->id, g, z->fullness, z->inuse);
			if ((error = check_zspage(wk, c, z, false)) != 0)
				return error;
			n++;
			used += z->inuse;
			pages += z->nr_pages;
		}
		CHECK(wk, n == c->nr_in_group[g], "class %u group %u: %ju "
		    "zspages, counted %ju", c->size, g, (uintmax_t)n,
		    (uintmax_t)c->nr_in_group[g]);
		zspages += n;
	}
	CHECK(wk, zspages == c->nr_zspages && used == c->objs_used,
	    "class %u: %ju zspages / %ju objects, counted %ju / %ju", c->size,
	    (uintmax_t)zspages, (uintmax_t)used, (uintmax_t)c->nr_zspages,
	    (uintmax_t)c->objs_used);
	CHECK(wk, pages == c->nr_pages, "class %u: %ju pages populated, "
	    "counted %ju", c->size, (uintmax_t)pages,
	    (uintmax_t)c->nr_pages);
	requested = wk->bytes_requested - requested;
	CHECK(wk, requested == c->bytes_requested, "class %u: %ju bytes "
	    "requested, counted %ju", c->size, (uintmax_t)c->bytes_requested,
	    (uintmax_t)requested);
	return 0;
}

static int
check_handles(struct walk *wk)
{
	struct zs_pool *pool = wk->pool;
	uint32_t top = atomic_load(&pool->handle_top), i, chain = 0;
	uint64_t live = 0;

	for (i = 1; i < top; i++)
		if (atomic_load(handle_word(pool, i)) & HW_ALLOC)
			live++;
	CHECK(wk, live == wk->objects, "%ju live handles, %ju objects",
	    (uintmax_t)live, (uintmax_t)wk->objects);
	for (i = pool->handle_free; i != 0; chain++) {
		uint64_t v;

		CHECK(wk, i < top && chain < top, "handle free list broken at "
		    "%u", i);
		v = atomic_load(handle_word(pool, i));
		CHECK(wk, !(v & (HW_ALLOC | HW_PIN)), "handle %u: live on the "
		    "free list", i);
		i = HW_LOC(v);
	}
	CHECK(wk, live + chain + wk->class_handles == top - 1, "%ju live + "
	    "%u free + %ju kept by classes handles != %u", (uintmax_t)live,
	    chain, (uintmax_t)wk->class_handles, top - 1);
	return 0;
}

static int
check_sections(struct walk *wk)
{
	struct zs_pool *pool = wk->pool;
	uint64_t nfree = 0, reported = 0, sections = 0;
	uint32_t slot;
	int error;

	for (slot = 0; slot < pool->nr_section_slots; slot++) {
		struct section *sec = atomic_load(&pool->sections[slot]);

		if (sec == NULL)
			continue;
		if ((error = check_section(wk, slot, sec)) != 0)
			return error;
		sections++;
		CHECK(wk, slot >= pool->free_hint || sec->state !=
		    SECTION_ONLINE || sec->nr_free == 0, "section %u has %u "
		    "free pages below the allocation hint %u", slot,
		    sec->nr_free, pool->free_hint);
		if (sec->state == SECTION_ONLINE)
			nfree += sec->nr_free;
		reported += sec->nr_reported;
	}
	CHECK(wk, sections == pool->nr_sections && nfree == pool->nr_free_pages
	    && reported == pool->nr_reported_pages, "sections %ju/%ju, free "
	    "%ju/%ju, reported %ju/%ju", (uintmax_t)sections,
	    (uintmax_t)pool->nr_sections, (uintmax_t)nfree,
	    (uintmax_t)pool->nr_free_pages, (uintmax_t)reported,
	    (uintmax_t)pool->nr_reported_pages);
	return 0;
}

static int
check_cached_page(struct walk *wk, uint32_t pfn)
{
	struct zs_pool *pool = wk->pool;
	const struct zs_page *pg;

	CHECK(wk, (pfn >> pool->sec_shift) < pool->nr_section_slots &&
	    section_of(pool, pfn) != NULL, "cached page %u: no section", pfn);
	pg = section_page(pool, pfn);
	CHECK(wk, pg->state == PAGE_ZSPAGE && pg->owner == OWNER_CACHED,
	    "cached page %u: state %u, owner %u", pfn, pg->state, pg->owner);
	return 0;
}

/*
 * Every page in a CPU's cache is a zspage page with no zspage yet, and
 * every such page is in one cache, once.
 */
static int
check_page_caches(struct walk *wk)
{
	struct zs_pool *pool = wk->pool;
	struct page_cache *pc;
	uint64_t cached = 0;
	unsigned int i, k;
	int error = 0;

	for (i = 0; pool->page_caches != NULL && error == 0 &&
	    i <= pool->page_cache_mask; i++) {
		pc = &pool->page_caches[i];
		pthread_mutex_lock(&pc->lock);
		pthread_mutex_lock(&pool->page_lock);
		if (pc->first + pc->n > ZS_MAX_PAGE_CACHE)
			error = fail(wk, "page cache %u: pages [%u, %u)", i,
			    pc->first, pc->first + pc->n);
		for (k = pc->first; error == 0 && k < pc->first + pc->n; k++)
			error = check_cached_page(wk, pc->pfn[k]);
		cached += pc->n;
		pthread_mutex_unlock(&pool->page_lock);
		pthread_mutex_unlock(&pc->lock);
	}
	if (error != 0)
		return error;
	CHECK(wk, cached == wk->cached_pages, "%ju pages in the caches, %ju "
	    "in the sections say they are", (uintmax_t)cached,
	    (uintmax_t)wk->cached_pages);
	return 0;
}

static int
check_free_queue(struct walk *wk)
{
	struct zs_pool *pool = wk->pool;
	struct list_head *e;
	int error;

	for (e = pool->free_queue.next; e != &pool->free_queue; e = e->next) {
		struct zspage *z = list_entry(e, struct zspage, list);

		if ((error = check_zspage(wk, &pool->class_store[z->class_idx],
		    z, true)) != 0)
			return error;
	}
	return 0;
}

static int
check_totals(struct walk *wk, const struct obj_totals *t)
{
	struct zs_pool *pool = wk->pool;

	CHECK(wk, wk->huge_pages == pool->huge_class->nr_zspages,
	    "%ju huge pages, huge class has %ju", (uintmax_t)wk->huge_pages,
	    (uintmax_t)pool->huge_class->nr_zspages);
	CHECK(wk, wk->objects == t->objects &&
	    wk->huge_pages == t->huge_objects,
	    "counted %ju objects (%ju huge), stats say %ju (%ju)",
	    (uintmax_t)wk->objects, (uintmax_t)wk->huge_pages,
	    (uintmax_t)t->objects, (uintmax_t)t->huge_objects);
	CHECK(wk, wk->bytes_requested == t->bytes_requested &&
	    wk->bytes_held == t->bytes_held,
	    "counted %ju bytes requested, %ju held; stats say %ju, %ju",
	    (uintmax_t)wk->bytes_requested, (uintmax_t)wk->bytes_held,
	    (uintmax_t)t->bytes_requested, (uintmax_t)t->bytes_held);
	CHECK(wk, wk->zspage_pages + wk->huge_pages ==
	    STAT_GET(pool, pages_used) && wk->zspages ==
	    STAT_GET(pool, nr_zspages), "counted %ju pages used in %ju "
	    "zspages, stats say %ju in %ju", (uintmax_t)(wk->zspage_pages +
	    wk->huge_pages), (uintmax_t)wk->zspages,
	    (uintmax_t)STAT_GET(pool, pages_used),
	    (uintmax_t)STAT_GET(pool, nr_zspages));
	return 0;
}

/*
 * Each part is checked under the locks that guard it, taken in the pool's
 * lock order, one class at a time; the totals are compared at the end,
 * which is why the pool must be quiescent.
 */
int
zs_pool_validate(struct zs_pool *pool, char *why, size_t whylen)
{
	struct obj_totals t;
	struct walk wk;
	unsigned int i;
	int error;

	/* Zspages the free worker has taken off its queue are on no list. */
	zs_pool_flush(pool);
	memset(&wk, 0, sizeof(wk));
	wk.pool = pool;
	wk.why = why;
	wk.whylen = whylen;
	if (why != NULL && whylen > 0)
		why[0] = '\0';

	pthread_mutex_lock(&pool->grow_lock);
	pthread_mutex_lock(&pool->page_lock);
	error = check_sections(&wk);
	pthread_mutex_unlock(&pool->page_lock);
	pthread_mutex_unlock(&pool->grow_lock);

	for (i = 0; error == 0 && i < pool->nr_classes; i++) {
		struct size_class *c = pool->classes[i];

		class_lock(c);
		pthread_mutex_lock(&pool->page_lock);
		error = check_class(&wk, c);
		pthread_mutex_unlock(&pool->page_lock);
		class_unlock(c);
	}
	if (error == 0) {
		pthread_mutex_lock(&pool->free_lock);
		error = check_free_queue(&wk);
		pthread_mutex_unlock(&pool->free_lock);
	}
	if (error == 0)
		error = check_page_caches(&wk);
	if (error == 0) {
		pthread_mutex_lock(&pool->handle_lock);
		error = check_handles(&wk);
		pthread_mutex_unlock(&pool->handle_lock);
	}
	if (error == 0) {
		pool_obj_totals(pool, &t);
		pthread_mutex_lock(&pool->huge_class->lock);
		error = check_totals(&wk, &t);
		pthread_mutex_unlock(&pool->huge_class->lock);
	}
	return error;
}
