/*
 * zspage.c - zspages: their descriptors and the slots inside them.
 *
 * Descriptors live in a table of chunks mapped as needed and are named by
 * id, which is what handle words and page descriptors store; an id stays
 * valid as long as the zspage exists, wherever its pages move.  Slot i of
 * a zspage starts at byte i * class->size of the concatenated pages; a
 * slot may run over into the next page.  Slots below `fresh` that are free
 * form a chain through their headers starting at freeobj; slots from
 * `fresh` on have never been used, so a new zspage touches no page until
 * an object goes there.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "zs-internal.h"

int
zspage_table_init(struct zs_pool *pool)
{
	pool->zspage_dir = calloc(ZSPAGE_DIR, sizeof(*pool->zspage_dir));
	if (pool->zspage_dir == NULL)
		return -ENOMEM;
	pool_mutex_init(pool, &pool->zspage_lock);
	list_init(&pool->zspage_free);
	LOCKED_SET(pool->zspage_top, 0);
	return 0;
}

void
zspage_table_destroy(struct zs_pool *pool)
{
	uint32_t i;

	if (pool->zspage_dir == NULL)
		return;
	for (i = 0; pool->arena == NULL && i < ZSPAGE_DIR; i++) {
		struct zspage *chunk = atomic_load_explicit(
		    &pool->zspage_dir[i], memory_order_relaxed);

		if (chunk != NULL)
			os_unmap(pool, chunk, ZSPAGE_CHUNK * sizeof(*chunk));
	}
	free(pool->zspage_dir);
	pool->zspage_dir = NULL;
	pthread_mutex_destroy(&pool->zspage_lock);
}

struct zspage *
zspage_of(struct zs_pool *pool, uint32_t id)
{
	struct zspage *chunk = atomic_load_explicit(
	    &pool->zspage_dir[id >> ZSPAGE_CHUNK_SHIFT], memory_order_acquire);

	return &chunk[id & (ZSPAGE_CHUNK - 1)];
}

static struct zspage *
zspage_desc_alloc(struct zs_pool *pool)
{
	struct zspage *z = NULL, *chunk;
	uint32_t id;

	pthread_mutex_lock(&pool->zspage_lock);
	if (!list_empty(&pool->zspage_free)) {
		z = list_entry(pool->zspage_free.next, struct zspage, list);
		list_del(&z->list);
		goto out;
	}
	id = pool->zspage_top;
	if (id >= ZSPAGE_DIR * ZSPAGE_CHUNK) {
		errno = ENOMEM;
		goto out;
	}
	chunk = atomic_load_explicit(&pool->zspage_dir[id >>
	    ZSPAGE_CHUNK_SHIFT], memory_order_relaxed);
	if (chunk == NULL) {
		chunk = pool->arena != NULL ? arena_zspage_chunk(pool,
		    id >> ZSPAGE_CHUNK_SHIFT) :
		    os_map(pool, ZSPAGE_CHUNK * sizeof(*chunk));
		if (chunk == NULL)
			goto out;
		atomic_store_explicit(&pool->zspage_dir[id >>
		    ZSPAGE_CHUNK_SHIFT], chunk, memory_order_release);
	}
	z = &chunk[id & (ZSPAGE_CHUNK - 1)];
	z->id = id;
	LOCKED_ADD(pool->zspage_top, 1);
out:
	pthread_mutex_unlock(&pool->zspage_lock);
	return z;
}

static void
zspage_desc_free(struct zs_pool *pool, struct zspage *z)
{
	pthread_mutex_lock(&pool->zspage_lock);
	list_add(&z->list, &pool->zspage_free);
	pthread_mutex_unlock(&pool->zspage_lock);
}

/*
 * Page population.  A zspage takes a page only when a slot that overlaps
 * the page is about to be used, and gives back pages no live slot
 * overlaps (zspage_release_free_pages), so a zspage costs the pages its
 * objects need, not pages_per_zspage.  Unpopulated pages have pfn
 * PFN_NONE.  Free slots below `fresh` are of two kinds: those whose header
 * page is populated are on the free chain; those whose header page is not
 * ("dormant") are on no chain, and join it when their page comes back.
 */

/* Slots whose header starts in page i: [first, end). */
static unsigned int
slot_first_in_page(const struct size_class *c, unsigned int i)
{
	return (unsigned int)(((size_t)i * PAGE_SIZE + c->size - 1) / c->size);
}

static void
chain_push(struct zs_pool *pool, const struct size_class *c,
    struct zspage *z, unsigned int obj)
{
	struct obj_hdr *hdr = zspage_slot(pool, c, z, obj, NULL);

	hdr->tag = (uint32_t)z->freeobj << 1;
	hdr->size = 0;
	hdr->unused = 0;
	z->freeobj = (uint16_t)obj;
}

/*
 * Give page i a page frame and chain up the dormant slots starting in it;
 * class lock held, maybe a pin too.  The page comes from r (may be NULL),
 * else from the CPU's cache; either way it is resident, so writing the
 * slot headers faults nothing in.  -EAGAIN if neither has one: the
 * caller, who must not fault with the lock held, drops it and fills r.
 */
static int
zspage_populate(struct zs_pool *pool, struct size_class *c,
    struct zspage *z, unsigned int i, struct page_reserve *r)
{
	unsigned int obj, end;
	uint32_t pfn;
	int error;

	zs_assert(z->pfn[i] == PFN_NONE);
	if (r != NULL && r->n > 0) {
		pfn = r->pfn[--r->n];
		page_set_owner(pool, pfn, z->id);
	} else if ((error = page_cache_take(pool, z->id, &pfn)) != 0) {
		return error;
	}
	os_assert_resident(pfn_to_addr(pool, pfn), PAGE_SIZE);
	z->pfn[i] = pfn;
	z->nr_pages++;
	LOCKED_ADD(c->nr_pages, 1);
	STAT_ADD(pool, pages_used, 1);
	end = slot_first_in_page(c, i + 1);
	if (end > z->fresh)
		end = z->fresh;
	for (obj = slot_first_in_page(c, i); obj < end; obj++)
		chain_push(pool, c, z, obj);
	return 0;
}

/* Populate every page slot obj overlaps (see zspage_populate). */
int
zspage_populate_slot(struct zs_pool *pool, struct size_class *c,
    struct zspage *z, unsigned int obj, struct page_reserve *r)
{
	size_t start = (size_t)obj * c->size;
	unsigned int p, last = (unsigned int)((start + c->size - 1) >>
	    PAGE_SHIFT);
	int error;

	for (p = (unsigned int)(start >> PAGE_SHIFT); p <= last; p++)
		if (z->pfn[p] == PFN_NONE &&
		    (error = zspage_populate(pool, c, z, p, r)) != 0)
			return error;
	return 0;
}

/*
 * How many of z's populated pages lie in section from (all of them if
 * from is NULL): the pages migrating them takes.  Class lock held.
 */
unsigned int
zspage_pages_in(struct zs_pool *pool, const struct zspage *z,
    const struct section *from)
{
	unsigned int p, n = 0;

	for (p = 0; p < ZS_MAX_CHAIN; p++)
		if (z->pfn[p] != PFN_NONE &&
		    (from == NULL || section_of(pool, z->pfn[p]) == from))
			n++;
	return n;
}

/* A new, empty zspage of class c, with no pages yet, on no list. */
struct zspage *
zspage_create(struct zs_pool *pool, struct size_class *c)
{
	struct zspage *z;
	unsigned int i;

	z = zspage_desc_alloc(pool);
	if (z == NULL)
		return NULL;
	list_init(&z->list);
	z->inuse = 0;
	z->freeobj = OBJ_NONE;
	z->fresh = 0;
	z->class_idx = c->index;
	z->fullness = FULLNESS_EMPTY;
	z->nr_pages = 0;
	z->flags = 0;
	for (i = 0; i < ZS_MAX_CHAIN; i++)
		z->pfn[i] = PFN_NONE;
	STAT_ADD(pool, nr_zspages, 1);
	return z;
}

/* Give back an empty zspage's pages and descriptor. */
void
zspage_destroy(struct zs_pool *pool, struct zspage *z)
{
	uint32_t pfns[ZS_MAX_CHAIN];
	unsigned int i, n = 0;

	zs_assert(z->inuse == 0);
	for (i = 0; i < ZS_MAX_CHAIN; i++)
		if (z->pfn[i] != PFN_NONE)
			pfns[n++] = z->pfn[i];
	zs_assert(n == z->nr_pages);
	section_free_pages(pool, pfns, n);
	STAT_SUB(pool, pages_used, n);
	STAT_SUB(pool, nr_zspages, 1);
	zspage_desc_free(pool, z);
}

/* Where slot obj starts, and how many bytes of its page follow. */
struct obj_hdr *
zspage_slot(struct zs_pool *pool, const struct size_class *c,
    const struct zspage *z, unsigned int obj, unsigned int *room)
{
	size_t off = (size_t)obj * c->size;
	unsigned int in = (unsigned int)(off & PAGE_MASK);

	if (room != NULL)
		*room = PAGE_SIZE - in;
	return (struct obj_hdr *)(pfn_to_addr(pool, z->pfn[off >> PAGE_SHIFT])
	    + in);
}

/*
 * Take a slot for handle index hidx, populating pages as needed from r
 * or the CPU's cache (zspage_populate); class lock held, z not full.
 * Returns the slot, or -EAGAIN if a page was needed that neither had (z
 * unchanged but for pages it may have gained).
 */
int
zspage_alloc_slot(struct zs_pool *pool, struct size_class *c,
    struct zspage *z, uint32_t hidx, size_t size, struct page_reserve *r)
{
	struct obj_hdr *hdr;
	unsigned int obj, p;
	int error;

	zs_assert(z->inuse < c->objs_per_zspage);
	for (;;) {
		if (z->freeobj != OBJ_NONE) {
			obj = z->freeobj;
			hdr = zspage_slot(pool, c, z, obj, NULL);
			zs_assert(!(hdr->tag & 1));
			z->freeobj = (uint16_t)(hdr->tag >> 1);
			error = zspage_populate_slot(pool, c, z, obj, r);
			if (error != 0) {
				chain_push(pool, c, z, obj);
				return error;
			}
			break;
		}
		if (z->fresh < c->objs_per_zspage) {
			obj = z->fresh;
			error = zspage_populate_slot(pool, c, z, obj, r);
			if (error != 0)
				return error;
			z->fresh++;
			break;
		}
		/* The free slots left are dormant: bring one page back. */
		for (p = 0; p < c->pages_per_zspage; p++)
			if (z->pfn[p] == PFN_NONE &&
			    slot_first_in_page(c, p) < z->fresh)
				break;
		zs_assert(p < c->pages_per_zspage);
		error = zspage_populate(pool, c, z, p, r);
		if (error != 0)
			return error;
	}
	hdr = zspage_slot(pool, c, z, obj, NULL);
	hdr->tag = hidx << 1 | 1;
	hdr->size = (uint16_t)size;
	hdr->unused = 0;
	z->inuse++;
	LOCKED_ADD(c->objs_used, 1);
	return (int)obj;
}

/* Put slot obj on the zspage's free chain; class lock held. */
void
zspage_free_slot(struct zs_pool *pool, struct size_class *c,
    struct zspage *z, unsigned int obj)
{
	zs_assert(zspage_slot(pool, c, z, obj, NULL)->tag & 1);
	chain_push(pool, c, z, obj);
	z->inuse--;
	LOCKED_SUB(c->objs_used, 1);
}

/* Is slot obj (below fresh) holding an object? */
bool
zspage_slot_live(struct zs_pool *pool, const struct size_class *c,
    const struct zspage *z, unsigned int obj)
{
	if (z->pfn[((size_t)obj * c->size) >> PAGE_SHIFT] == PFN_NONE)
		return false;
	return zspage_slot(pool, c, z, obj, NULL)->tag & 1;
}

/*
 * Thread every free slot whose header page is populated onto the chain
 * again, lowest first, after slots were taken and freed without it.
 */
void
zspage_rebuild_chain(struct zs_pool *pool, const struct size_class *c,
    struct zspage *z)
{
	unsigned int obj;

	z->freeobj = OBJ_NONE;
	for (obj = z->fresh; obj-- > 0;)
		if (z->pfn[((size_t)obj * c->size) >> PAGE_SHIFT] != PFN_NONE &&
		    !(zspage_slot(pool, c, z, obj, NULL)->tag & 1))
			chain_push(pool, c, z, obj);
}

/*
 * Give back the pages of z that no live slot overlaps; class lock held.
 * Free slots starting in them leave the chain and go dormant.  Returns
 * the number of pages freed.
 */
unsigned int
zspage_release_free_pages(struct zs_pool *pool, struct size_class *c,
    struct zspage *z)
{
	uint32_t busy = 0, idle = 0, pfns[ZS_MAX_CHAIN];
	struct obj_hdr *tail = NULL;
	unsigned int obj, p, n = 0;

	for (obj = 0; obj < z->fresh; obj++) {
		size_t start = (size_t)obj * c->size;
		unsigned int first = (unsigned int)(start >> PAGE_SHIFT);
		unsigned int last = (unsigned int)((start + c->size - 1) >>
		    PAGE_SHIFT);

		if (z->pfn[first] == PFN_NONE ||
		    !(zspage_slot(pool, c, z, obj, NULL)->tag & 1))
			continue;
		for (p = first; p <= last; p++)
			busy |= 1u << p;
	}
	for (p = 0; p < c->pages_per_zspage; p++)
		if (z->pfn[p] != PFN_NONE && !(busy & (1u << p)))
			idle |= 1u << p;
	if (idle == 0)
		return 0;

	/* Rebuild the chain without the slots whose header is idle. */
	obj = z->freeobj;
	z->freeobj = OBJ_NONE;
	while (obj != OBJ_NONE) {
		struct obj_hdr *hdr = zspage_slot(pool, c, z, obj, NULL);
		unsigned int next = hdr->tag >> 1;

		if (!(idle & (1u << (((size_t)obj * c->size) >> PAGE_SHIFT)))) {
			if (tail != NULL)
				tail->tag = obj << 1;
			else
				z->freeobj = (uint16_t)obj;
			tail = hdr;
		}
		obj = next;
	}
	if (tail != NULL)
		tail->tag = OBJ_NONE << 1;
	for (p = 0; p < c->pages_per_zspage; p++)
		if (idle & (1u << p)) {
			pfns[n++] = z->pfn[p];
			z->pfn[p] = PFN_NONE;
		}
	section_free_pages(pool, pfns, n);
	z->nr_pages = (uint8_t)(z->nr_pages - n);
	LOCKED_SUB(c->nr_pages, n);
	STAT_SUB(pool, pages_used, n);
	return n;
}

/*
 * Copy len bytes to / from offset `at` of slot obj, crossing into the next
 * page where the slot does.
 */
void
zspage_copy_in(struct zs_pool *pool, const struct size_class *c,
    const struct zspage *z, unsigned int obj, size_t at, const void *src,
    size_t len)
{
	size_t pos = (size_t)obj * c->size + at;
	const char *s = src;

	while (len > 0) {
		size_t in = pos & PAGE_MASK, n = PAGE_SIZE - in;

		if (n > len)
			n = len;
		bulk_copy(pfn_to_addr(pool, z->pfn[pos >> PAGE_SHIFT]) + in, s,
		    n);
		pos += n;
		s += n;
		len -= n;
	}
}

void
zspage_copy_out(struct zs_pool *pool, const struct size_class *c,
    const struct zspage *z, unsigned int obj, size_t at, void *dst,
    size_t len)
{
	size_t pos = (size_t)obj * c->size + at;
	char *d = dst;

	while (len > 0) {
		size_t in = pos & PAGE_MASK, n = PAGE_SIZE - in;

		if (n > len)
			n = len;
		bulk_copy(d, pfn_to_addr(pool, z->pfn[pos >> PAGE_SHIFT]) + in,
		    n);
		pos += n;
		d += n;
		len -= n;
	}
}
