/*
 * obj.c - the object calls: malloc, free, read, write.
 *
 * zs_malloc takes a handle, then a slot in the fullest zspage of the class
 * with room (a new zspage if none), and publishes the slot in the handle
 * word.  zs_malloc_write publishes it pinned and copies the bytes in once
 * the class lock is dropped; no one else has the handle yet, and movers
 * skip a pinned object.  Everything that touches an existing object pins
 * its handle first, reads where the object is from the word, and only then
 * takes the class lock if it must change the zspage (free).
 *
 * Nothing is faulted in with the class lock held (zs-internal.h, "No
 * fault"): a new zspage gets its first page before the lock is taken,
 * and a slot that needs a page the CPU's cache does not have sends the
 * caller out of the lock to fetch one, after which it looks for a slot
 * afresh; so does a class out of free handle words that are faulted in.
 */
#include <config.h>

#include <string.h>

#include "zs-internal.h"

/*
 * A free handle index of class c, its class lock held.  With none whose
 * word is faulted in, the lock is dropped while the table grows, then
 * taken again.  0 when the table cannot grow.
 */
static uint32_t
malloc_handle(struct zs_pool *pool, struct size_class *c)
{
	uint32_t hidx;

	while ((hidx = class_handle_get(pool, c)) == 0 && errno == EAGAIN) {
		class_unlock(c);
		if (handle_table_grow(pool) != 0) {
			class_lock(c);
			return 0;
		}
		class_lock(c);
	}
	return hidx;
}

static zs_handle_t
malloc_huge(struct zs_pool *pool, size_t size, const void *src)
{
	struct size_class *c = pool->huge_class;
	uint32_t hidx, gen, pfn;
	int error;

	class_lock(c);
	hidx = malloc_handle(pool, c);
	class_unlock(c);
	if (hidx == 0)
		return 0;
	error = section_alloc_pages(pool, 1, &pfn, PAGE_HUGE, hidx,
	    (uint16_t)size, 0);
	class_lock(c);
	if (error != 0) {
		class_handle_put(pool, c, hidx);
		class_unlock(c);
		return 0;
	}
	c->nr_zspages++;
	LOCKED_ADD(c->objs_used, 1);
	LOCKED_ADD(c->bytes_requested, size);
	gen = handle_publish(handle_word(pool, hidx), hw_where(true, 0, pfn),
	    src != NULL);
	class_unlock(c);
	STAT_ADD(pool, pages_used, 1);
	if (src != NULL) {
		os_assert_resident(pfn_to_addr(pool, pfn), size);
		bulk_copy(pfn_to_addr(pool, pfn), src, size);
		handle_unpin(handle_word(pool, hidx));
	}
	return (zs_handle_t)gen << 32 | hidx;
}

static zs_handle_t
malloc_once(struct zs_pool *pool, size_t size, const void *src)
{
	struct page_reserve r = { .n = 0 };
	_Atomic uint64_t *w;
	struct size_class *c;
	struct zspage *z;
	zs_handle_t handle;
	uint32_t hidx, gen;
	int obj, error;

	c = class_for_size(pool, size);
	if (c->huge) {
		if ((handle = malloc_huge(pool, size, src)) == 0)
			goto fail;
		return handle;
	}

	class_lock(c);
	if ((hidx = malloc_handle(pool, c)) == 0)
		goto fail_unlock;
	for (;;) {
		z = class_fullest_zspage(c);
		if (z != NULL) {
			obj = zspage_alloc_slot(pool, c, z, hidx, size, &r);
			if (obj >= 0) {
				class_regroup_zspage(c, z);
				break;
			}
			/*
			 * It needs a page the CPU's cache does not have (z
			 * keeps the pages it got: it holds objects).  Fetch
			 * one without the lock, then look again: the class
			 * may have changed meanwhile.
			 */
			class_unlock(c);
			error = page_reserve_fill(pool, &r, 0);
			class_lock(c);
			if (error != 0)
				goto fail_handle;
			continue;
		}
		/*
		 * Make the zspage, and fetch the page its first slot needs,
		 * without the lock; others may go on.  Until its first
		 * object is in, it is on no list: no one else sees it.
		 */
		class_unlock(c);
		z = zspage_create(pool, c);
		error = z == NULL ? -ENOMEM : r.n > 0 ? 0 :
		    page_reserve_fill(pool, &r, 0);
		class_lock(c);
		if (error != 0)
			goto fail_zspage;
		obj = zspage_alloc_slot(pool, c, z, hidx, size, &r);
		zs_assert(obj == 0);
		class_insert_zspage(c, z);
		c->nr_zspages++;
		break;
	}
	LOCKED_ADD(c->bytes_requested, size);
	w = handle_word(pool, hidx);
	gen = handle_publish(w, hw_where(false, (uint32_t)obj, z->id),
	    src != NULL);
	class_unlock(c);
	if (src != NULL) {
		zspage_copy_in(pool, c, z, (unsigned int)obj, OBJ_HDR_SIZE,
		    src, size);
		handle_unpin(w);
	}
	page_reserve_release(pool, &r);
	return (zs_handle_t)gen << 32 | hidx;

fail_zspage:
	class_handle_put(pool, c, hidx);
	class_unlock(c);
	if (z != NULL)
		zspage_destroy(pool, z);
	goto fail;
fail_handle:
	class_handle_put(pool, c, hidx);
fail_unlock:
	class_unlock(c);
fail:
	page_reserve_release(pool, &r);
	return 0;	/* zs_malloc() sets errno */
}

static zs_handle_t
malloc_common(struct zs_pool *pool, size_t size, const void *src)
{
	zs_handle_t handle;

	if (size == 0 || size > ZS_MAX_ALLOC_SIZE) {
		errno = EINVAL;
		return 0;
	}
	handle = malloc_once(pool, size, src);
	/*
	 * Frees waiting in a batch may hold what is missing: the slots, or
	 * (once their zspages are freed) the pages; so may the other CPUs'
	 * page caches.
	 */
	if (handle == 0 && free_drain(pool) > 0) {
		zs_pool_flush(pool);
		handle = malloc_once(pool, size, src);
	}
	if (handle == 0 && page_cache_drain(pool) > 0)
		handle = malloc_once(pool, size, src);
	if (handle == 0) {
		STAT_ADD(pool, malloc_failures, 1);
		errno = ENOMEM;
	}
	return handle;
}

zs_handle_t
zs_malloc(struct zs_pool *pool, size_t size)
{
	return malloc_common(pool, size, NULL);
}

zs_handle_t
zs_malloc_write(struct zs_pool *pool, const void *src, size_t len)
{
	if (src == NULL) {
		errno = EINVAL;
		return 0;
	}
	return malloc_common(pool, len, src);
}

static void
free_huge(struct zs_pool *pool, uint64_t v, uint32_t hidx)
{
	struct size_class *c = pool->huge_class;
	uint32_t pfn = HW_LOC(v);
	struct zs_page *pg = section_page(pool, pfn);
	size_t size = pg->huge_size;

	zs_assert(pg->state == PAGE_HUGE);
	section_free_pages(pool, &pfn, 1);
	class_lock(c);
	c->nr_zspages--;
	LOCKED_SUB(c->objs_used, 1);
	LOCKED_SUB(c->bytes_requested, size);
	class_handle_put(pool, c, hidx);
	class_unlock(c);
	STAT_SUB(pool, pages_used, 1);
}

/*
 * Give back the slot of zspage object hidx, whose word v says where it is;
 * the handle is pinned, or dead with the place still in its word (a
 * batched free), so that the object cannot move meanwhile.
 */
void
obj_free_slot(struct zs_pool *pool, uint32_t hidx, uint64_t v)
{
	struct size_class *c;
	struct zspage *z;
	struct obj_hdr *hdr;
	bool empty = false;

	z = zspage_of(pool, HW_LOC(v));
	c = &pool->class_store[z->class_idx];
	class_lock(c);
	hdr = zspage_slot(pool, c, z, HW_OBJ(v), NULL);
	zs_assert(hdr->tag == (hidx << 1 | 1));
	LOCKED_SUB(c->bytes_requested, hdr->size);
	zspage_free_slot(pool, c, z, HW_OBJ(v));
	/* Retiring the handle unpins it. */
	class_handle_put(pool, c, hidx);
	zs_assert(!(z->flags & ZSPAGE_ISOLATED));
	if (z->inuse == 0) {
		class_remove_zspage(c, z);
		class_retire_zspage(c, z);
		empty = true;
	} else {
		class_regroup_zspage(c, z);
	}
	class_unlock(c);
	if (empty)
		free_release_zspage(pool, z);
}

int
zs_free(struct zs_pool *pool, zs_handle_t handle)
{
	uint32_t hidx = (uint32_t)handle;
	_Atomic uint64_t *w;
	uint64_t v;

	if (handle_pin(pool, handle, &w, &v) != 0)
		return -EINVAL;
	if (v & HW_HUGE) {
		free_huge(pool, v, hidx);
		hold_drop();	/* the pin went with the handle */
		return 0;
	}
	if (pool->free_shards == NULL) {
		obj_free_slot(pool, hidx, v);
		hold_drop();
		return 0;
	}
	/*
	 * Dead from here on (ALLOC clear): no one can pin the object, so it
	 * stays where the word says until the batch frees its slot.
	 */
	atomic_store_explicit(w, v & ~(HW_PIN | HW_ALLOC),
	    memory_order_release);
	hold_drop();
	free_defer(pool, hidx);
	return 0;
}

/*
 * Where a pinned object's bytes are: for a zspage object, its zspage, class
 * and slot (the payload follows the header); for a huge one, its page.
 */
struct obj_place {
	struct size_class	*class;
	struct zspage		*zspage;
	unsigned int		 obj;
	char			*huge_page;
	size_t			 size;
};

static void
obj_locate(struct zs_pool *pool, uint64_t v, struct obj_place *p)
{
	if (v & HW_HUGE) {
		uint32_t pfn = HW_LOC(v);

		p->class = pool->huge_class;
		p->zspage = NULL;
		p->huge_page = pfn_to_addr(pool, pfn);
		p->size = section_page(pool, pfn)->huge_size;
	} else {
		struct obj_hdr *hdr;

		p->zspage = zspage_of(pool, HW_LOC(v));
		p->class = &pool->class_store[p->zspage->class_idx];
		p->obj = HW_OBJ(v);
		p->huge_page = NULL;
		hdr = zspage_slot(pool, p->class, p->zspage, p->obj, NULL);
		p->size = hdr->size;
	}
}

int
zs_obj_write(struct zs_pool *pool, zs_handle_t handle, const void *src,
    size_t len)
{
	struct obj_place p;
	_Atomic uint64_t *w;
	uint64_t v;
	int error = 0;

	if (handle_pin(pool, handle, &w, &v) != 0)
		return -EINVAL;
	obj_locate(pool, v, &p);
	if (len > p.size)
		error = -EINVAL;
	else if (p.huge_page != NULL)
		bulk_copy(p.huge_page, src, len);
	else
		zspage_copy_in(pool, p.class, p.zspage, p.obj, OBJ_HDR_SIZE,
		    src, len);
	handle_unpin(w);
	return error;
}

int
zs_obj_copy(struct zs_pool *pool, zs_handle_t handle, void *dst, size_t len)
{
	struct obj_place p;
	_Atomic uint64_t *w;
	uint64_t v;
	int error = 0;

	if (handle_pin(pool, handle, &w, &v) != 0)
		return -EINVAL;
	obj_locate(pool, v, &p);
	if (len > p.size)
		error = -EINVAL;
	else if (p.huge_page != NULL)
		bulk_copy(dst, p.huge_page, len);
	else
		zspage_copy_out(pool, p.class, p.zspage, p.obj, OBJ_HDR_SIZE,
		    dst, len);
	handle_unpin(w);
	return error;
}

const void *
zs_obj_read_begin(struct zs_pool *pool, zs_handle_t handle, void *local_copy,
    size_t *size)
{
	struct obj_place p;
	struct obj_hdr *hdr;
	_Atomic uint64_t *w;
	unsigned int room;
	uint64_t v;

	if (handle_pin(pool, handle, &w, &v) != 0)
		return NULL;
	/* The pin is the caller's until zs_obj_read_end(): not counted. */
	hold_drop();
	obj_locate(pool, v, &p);
	if (size != NULL)
		*size = p.size;
	if (p.huge_page != NULL)
		return p.huge_page;
	hdr = zspage_slot(pool, p.class, p.zspage, p.obj, &room);
	if (OBJ_HDR_SIZE + p.size <= room)
		return (const char *)hdr + OBJ_HDR_SIZE;
	zspage_copy_out(pool, p.class, p.zspage, p.obj, OBJ_HDR_SIZE,
	    local_copy, p.size);
	return local_copy;
}

/*
 * Drop the pin zs_obj_read_begin() took.  Only a live handle of this
 * generation, pinned, can be the caller's: a freed one (whose index may
 * serve another object now, pinned by its own reader) or an unpinned one
 * is refused, not unpinned.
 */
void
zs_obj_read_end(struct zs_pool *pool, zs_handle_t handle)
{
	_Atomic uint64_t *w;
	uint64_t v;

	if ((w = handle_lookup(pool, handle)) == NULL) {
		(void)handle_bad();
		return;
	}
	v = atomic_load_explicit(w, memory_order_relaxed);
	if (!(v & HW_ALLOC) || HW_GEN(v) != handle >> 32 || !(v & HW_PIN)) {
		(void)handle_bad();
		return;
	}
	hold_take();	/* for handle_unpin to drop */
	handle_unpin(w);
}

size_t
zs_obj_size(struct zs_pool *pool, zs_handle_t handle)
{
	struct obj_place p;
	_Atomic uint64_t *w;
	uint64_t v;

	if (handle_pin(pool, handle, &w, &v) != 0)
		return 0;
	obj_locate(pool, v, &p);
	handle_unpin(w);
	return p.size;
}

size_t
zs_huge_class_size(struct zs_pool *pool)
{
	return pool->huge_size;
}
