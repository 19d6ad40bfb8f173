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
	pthread_mutex_init(&pool->zspage_lock, NULL);
	list_init(&pool->zspage_free);
	pool->zspage_top = 0;
	return 0;
}

void
zspage_table_destroy(struct zs_pool *pool)
{
	uint32_t i;

	if (pool->zspage_dir == NULL)
		return;
	for (i = 0; i < ZSPAGE_DIR; i++) {
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
		chunk = os_map(pool, ZSPAGE_CHUNK * sizeof(*chunk));
		if (chunk == NULL)
			goto out;
		atomic_store_explicit(&pool->zspage_dir[id >>
		    ZSPAGE_CHUNK_SHIFT], chunk, memory_order_release);
	}
	z = &chunk[id & (ZSPAGE_CHUNK - 1)];
	z->id = id;
	pool->zspage_top++;
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

/* A new, empty zspage of class c, on no list.  NULL + ENOMEM. */
struct zspage *
zspage_create(struct zs_pool *pool, struct size_class *c)
{
	struct zspage *z;
	int error;

	z = zspage_desc_alloc(pool);
	if (z == NULL)
		return NULL;
	error = section_alloc_pages(pool, c->pages_per_zspage, z->pfn,
	    PAGE_ZSPAGE, z->id, 0);
	if (error != 0) {
		zspage_desc_free(pool, z);
		errno = -error;
		return NULL;
	}
	list_init(&z->list);
	z->inuse = 0;
	z->freeobj = OBJ_NONE;
	z->fresh = 0;
	z->class_idx = c->index;
	z->fullness = FULLNESS_EMPTY;
	z->nr_pages = c->pages_per_zspage;
	z->flags = 0;
	STAT_ADD(pool, pages_used, z->nr_pages);
	STAT_ADD(pool, nr_zspages, 1);
	return z;
}

/* Give back an empty zspage's pages and descriptor. */
void
zspage_destroy(struct zs_pool *pool, struct zspage *z)
{
	zs_assert(z->inuse == 0);
	section_free_pages(pool, z->pfn, z->nr_pages);
	STAT_SUB(pool, pages_used, z->nr_pages);
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

/* Take a slot for handle index hidx; class lock held.  Returns the slot. */
unsigned int
zspage_alloc_slot(struct zs_pool *pool, struct size_class *c,
    struct zspage *z, uint32_t hidx, size_t size)
{
	struct obj_hdr *hdr;
	unsigned int obj;

	zs_assert(z->inuse < c->objs_per_zspage);
	if (z->freeobj != OBJ_NONE) {
		obj = z->freeobj;
		hdr = zspage_slot(pool, c, z, obj, NULL);
		zs_assert(!(hdr->tag & 1));
		z->freeobj = (uint16_t)(hdr->tag >> 1);
	} else {
		obj = z->fresh++;
		zs_assert(obj < c->objs_per_zspage);
		hdr = zspage_slot(pool, c, z, obj, NULL);
	}
	hdr->tag = hidx << 1 | 1;
	hdr->size = (uint16_t)size;
	hdr->unused = 0;
	z->inuse++;
	c->objs_used++;
	return obj;
}

/* Put slot obj on the zspage's free chain; class lock held. */
void
zspage_free_slot(struct zs_pool *pool, struct size_class *c,
    struct zspage *z, unsigned int obj)
{
	struct obj_hdr *hdr = zspage_slot(pool, c, z, obj, NULL);

	zs_assert(hdr->tag & 1);
	hdr->tag = (uint32_t)z->freeobj << 1;
	hdr->size = 0;
	z->freeobj = (uint16_t)obj;
	z->inuse--;
	c->objs_used--;
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
		memcpy(pfn_to_addr(pool, z->pfn[pos >> PAGE_SHIFT]) + in, s, n);
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
		memcpy(d, pfn_to_addr(pool, z->pfn[pos >> PAGE_SHIFT]) + in, n);
		pos += n;
		d += n;
		len -= n;
	}
}
