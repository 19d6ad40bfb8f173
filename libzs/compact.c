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
 */
#include <config.h>

#include "zs-internal.h"

struct compact_ctl {
	int64_t		pages_net;
	uint64_t	objs_moved;
	uint64_t	bytes_moved;
};

/*
 * Move the objects of src (isolated) into other zspages of c.  Returns
 * false when they ran out of room (or pages).  *blocked is set when an
 * object was pinned and had to be left behind.
 */
static bool
compact_zspage(struct zs_pool *pool, struct size_class *c, struct zspage *src,
    struct compact_ctl *ctl, bool *blocked)
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
			return false;
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
		to = zspage_alloc_slot(pool, c, dst, hidx, hdr->size);
		if (to < 0) {
			handle_unpin(w);
			return false;
		}
		zspage_copy_in(pool, c, dst, (unsigned int)to, 0, buf, len);
		class_regroup_zspage(c, dst);
		handle_set_unpin(w, (v & ~HW_WHERE_MASK) |
		    hw_where(false, (unsigned int)to, dst->id));
		zspage_free_slot(pool, c, src, obj);
		ctl->objs_moved++;
		ctl->bytes_moved += len;
	}
	return true;
}

/*
 * Pack the objects of src (isolated) into its lowest slots, highest object
 * first, so that its upper pages empty and can be given back.
 */
static void
compact_pack(struct zs_pool *pool, struct size_class *c, struct zspage *src,
    struct compact_ctl *ctl, bool *blocked)
{
	unsigned char buf[PAGE_SIZE];
	unsigned int lo = 0, hi = src->fresh;

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
		hdr = zspage_slot(pool, c, src, from, NULL);
		w = handle_word(pool, hdr->tag >> 1);
		if (!handle_trypin(w, &v)) {
			*blocked = true;
			break;
		}
		if (zspage_populate_slot(pool, c, src, lo) != 0) {
			handle_unpin(w);
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
}

static void
compact_class(struct zs_pool *pool, struct size_class *c,
    struct compact_ctl *ctl)
{
	struct zspage *src;
	bool room = true, blocked = false, empty;
	uint64_t pages;

	pthread_mutex_lock(&c->lock);
	while (room && !blocked && class_freeable_pages(c) > 0) {
		src = class_emptiest_zspage(c);
		if (src == NULL)
			break;
		pages = c->nr_pages;
		class_remove_zspage(c, src);
		src->flags |= ZSPAGE_ISOLATED;
		room = compact_zspage(pool, c, src, ctl, &blocked);
		src->flags &= ~ZSPAGE_ISOLATED;
		empty = src->inuse == 0;
		if (empty) {
			class_retire_zspage(c, src);
		} else {
			if (!blocked)
				compact_pack(pool, c, src, ctl, &blocked);
			(void)zspage_release_free_pages(pool, c, src);
			class_insert_zspage(c, src);
			room = false;	/* the others are full */
		}
		/*
		 * Net: the pages src gave back, less those the objects moved
		 * populated where they went.
		 */
		ctl->pages_net += (int64_t)(pages - c->nr_pages);
		pthread_mutex_unlock(&c->lock);
		if (empty)
			free_release_zspage(pool, src);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
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
