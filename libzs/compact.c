/*
 * compact.c - move objects out of the emptiest zspages of a class into the
 * fullest ones, and give back the pages that frees.
 *
 * A class is worth compacting while its zspages have more pages populated
 * than its objects would need packed as tightly as zspages allow
 * (class_freeable_pages): free slots in pages no object has reached yet
 * cost nothing.  Then, under the class lock, the emptiest zspage is taken
 * off its
 * list (isolated) and its objects moved, lowest slot first, into the
 * fullest zspage with room.  If it empties, the zspage is freed; if the
 * other zspages fill up first, the pages of its low slots that no object
 * overlaps any more are given back (zspage_release_free_pages) and the
 * class is done, once that zspage's remaining objects are packed into its
 * lowest slots, so its upper pages empty too.  Moving an object means
 * pinning its handle; an object that is pinned (being read, written or
 * freed right now), or dead with its free waiting in a batch, is left
 * where it is, never waited for, since its pinner may be waiting for this
 * class lock.  The lock is dropped between zspages so the class keeps serving.
 *
 * The pages counted as freed are net: zspages populate lazily, so an object
 * moved into a slot no object has reached before may populate a page
 * there.  Each step (one zspage emptied, or packed) counts the change in
 * the class's populated pages, which only the holder of its lock changes.
 *
 * Such a page comes from the CPU's cache or from the class's own reserve
 * (struct page_reserve), resident, so that no fault happens with the lock
 * and an object's pin held (zs-internal.h, "No fault").  When neither has
 * one, the object is unpinned, the zspage put back on its list, and the
 * lock dropped while a page is fetched and faulted in; then the loop
 * picks the emptiest zspage again, as if the lock had been dropped
 * between zspages, which it always may be.
 */
#include <config.h>

#include "zs-internal.h"

struct compact_ctl {
	int64_t		pages_net;
	uint64_t	objs_moved;
	uint64_t	bytes_moved;
};

/*
 * Move the objects of src (isolated) into other zspages of c, taking the
 * pages they need from r or the CPU's cache.  Returns 0, -ENOSPC when the
 * other zspages ran out of room, -EAGAIN when a page was needed that
 * neither had.  *blocked is set when an object was pinned and had to be
 * left behind.
 */
static int
compact_zspage(struct zs_pool *pool, struct size_class *c, struct zspage *src,
    struct compact_ctl *ctl, bool *blocked, struct page_reserve *r)
{
	unsigned char buf[PAGE_SIZE];
	unsigned int obj;

	for (obj = 0; obj < src->fresh && src->inuse > 0; obj++) {
		struct obj_hdr *hdr;
		_Atomic uint64_t *w;
		struct zspage *dst;
		uint32_t hidx;
		uint64_t v;
		size_t len;
		int to;

		if (src->pfn[((size_t)obj * c->size) >> PAGE_SHIFT] == PFN_NONE)
			continue;	/* dormant */
		hdr = zspage_slot(pool, c, src, obj, NULL);
		if (!(hdr->tag & 1))
			continue;
		dst = class_fullest_zspage(c);
		if (dst == NULL)
			return -ENOSPC;
		hidx = hdr->tag >> 1;
		w = handle_word(pool, hidx);
		if (!handle_trypin(w, &v)) {
			*blocked = true;
			continue;
		}
		zs_assert(!(v & HW_HUGE) && HW_LOC(v) == src->id &&
		    HW_OBJ(v) == obj);
		len = OBJ_HDR_SIZE + hdr->size;
		zspage_copy_out(pool, c, src, obj, 0, buf, len);
		/* No fault here: its pages come from r or the cache. */
		to = zspage_alloc_slot(pool, c, dst, hidx, hdr->size, r);
		if (to < 0) {
			handle_unpin(w);
			return to;
		}
		zspage_copy_in(pool, c, dst, (unsigned int)to, 0, buf, len);
		class_regroup_zspage(c, dst);
		handle_set_unpin(w, (v & ~HW_WHERE_MASK) |
		    hw_where(false, (unsigned int)to, dst->id));
		zspage_free_slot(pool, c, src, obj);
		ctl->objs_moved++;
		ctl->bytes_moved += len;
	}
	return 0;
}

/*
 * Pack the objects of src (isolated) into its lowest slots, highest object
 * first, so that its upper pages empty and can be given back.  Returns
 * -EAGAIN if it stopped for a page that neither r nor the cache had.
 */
static int
compact_pack(struct zs_pool *pool, struct size_class *c, struct zspage *src,
    struct compact_ctl *ctl, bool *blocked, struct page_reserve *r)
{
	unsigned char buf[PAGE_SIZE];
	unsigned int lo = 0, hi = src->fresh;
	int error = 0;

	for (;;) {
		struct obj_hdr *hdr;
		_Atomic uint64_t *w;
		unsigned int from;
		uint64_t v;
		size_t len;

		while (lo < hi && zspage_slot_live(pool, c, src, lo))
			lo++;
		while (hi > lo && !zspage_slot_live(pool, c, src, hi - 1))
			hi--;
		if (lo + 1 >= hi)
			break;
		from = hi - 1;
		/*
		 * The page of slot lo before the pin (if the pin fails,
		 * zspage_release_free_pages gives it back).
		 */
		if ((error = zspage_populate_slot(pool, c, src, lo, r)) != 0)
			break;
		hdr = zspage_slot(pool, c, src, from, NULL);
		w = handle_word(pool, hdr->tag >> 1);
		if (!handle_trypin(w, &v)) {
			*blocked = true;
			break;
		}
		len = OBJ_HDR_SIZE + hdr->size;
		zspage_copy_out(pool, c, src, from, 0, buf, len);
		zspage_copy_in(pool, c, src, lo, 0, buf, len);
		handle_set_unpin(w, (v & ~HW_WHERE_MASK) |
		    hw_where(false, lo, src->id));
		hdr->tag = 0;		/* free; the chain is rebuilt below */
		hdr->size = 0;
		ctl->objs_moved++;
		ctl->bytes_moved += len;
		lo++;
		hi--;
	}
	zspage_rebuild_chain(pool, c, src);
	return error;
}

static void
compact_class(struct zs_pool *pool, struct size_class *c,
    struct compact_ctl *ctl)
{
	struct page_reserve r = { .n = 0 };
	struct zspage *src;
	bool room = true, blocked = false, empty, fetch;
	uint64_t pages;
	int error;

	class_lock(c);
	while (room && !blocked && class_freeable_pages(c) > 0) {
		src = class_emptiest_zspage(c);
		if (src == NULL)
			break;
		pages = c->nr_pages;
		class_remove_zspage(c, src);
		src->flags |= ZSPAGE_ISOLATED;
		error = compact_zspage(pool, c, src, ctl, &blocked, &r);
		src->flags &= ~ZSPAGE_ISOLATED;
		empty = src->inuse == 0;
		if (empty) {
			class_retire_zspage(c, src);
		} else {
			/* The others are full: pack src itself. */
			if (error == -ENOSPC && !blocked)
				error = compact_pack(pool, c, src, ctl,
				    &blocked, &r);
			(void)zspage_release_free_pages(pool, c, src);
			class_insert_zspage(c, src);
		}
		/* Done, unless it stopped for a page (and is not blocked). */
		fetch = error == -EAGAIN && !blocked;
		room = empty || fetch;
		/*
		 * Net: the pages src gave back, less those the objects moved
		 * populated where they went.
		 */
		ctl->pages_net += (int64_t)(pages - c->nr_pages);
		class_unlock(c);
		if (empty)
			free_release_zspage(pool, src);
		if (fetch && page_reserve_fill(pool, &r, 0) != 0)
			room = false;
		class_lock(c);
	}
	class_unlock(c);
	page_reserve_release(pool, &r);
}

long
zs_compact(struct zs_pool *pool, struct zs_compact_result *result)
{
	struct compact_ctl ctl = { 0, 0, 0 };
	uint64_t freed;
	unsigned int i;

	/* A dead object waiting in a batch would block its class. */
	free_drain(pool);
	for (i = 0; i < pool->nr_classes; i++)
		if (!pool->classes[i]->huge)
			compact_class(pool, pool->classes[i], &ctl);
	freed = ctl.pages_net > 0 ? (uint64_t)ctl.pages_net : 0;
	STAT_ADD(pool, pages_compacted, freed);
	STAT_ADD(pool, objs_compacted, ctl.objs_moved);
	if (result != NULL) {
		result->pages_freed = freed;
		result->objs_moved = ctl.objs_moved;
		result->bytes_moved = ctl.bytes_moved;
	}
	return (long)freed;
}
