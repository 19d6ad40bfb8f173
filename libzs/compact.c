/*
 * compact.c - move objects out of the emptiest zspages of a class into the
 * fullest ones and free the zspages emptied.
 *
 * A class is worth compacting when its free slots add up to at least one
 * whole zspage.  Then, under the class lock, the emptiest zspage is taken
 * off its list (isolated) and its objects moved one by one into the
 * fullest zspage with room.  Moving an object means pinning its handle; an
 * object that is pinned (being read, written or freed right now) is left
 * where it is, never waited for, since its pinner may be waiting for this
 * class lock.  The lock is dropped between zspages so the class keeps
 * serving allocations.
 */
#include <config.h>

#include "zs-internal.h"

/* Whole zspages' worth of free slots in the class; class lock held. */
static uint64_t
class_spare_zspages(const struct size_class *c)
{
	uint64_t allocated = c->nr_zspages * c->objs_per_zspage;

	return (allocated - c->objs_used) / c->objs_per_zspage;
}

struct compact_ctl {
	uint64_t	pages_freed;
	uint64_t	objs_moved;
	uint64_t	bytes_moved;
};

/*
 * Move the objects of src (isolated) into other zspages of c.  Returns
 * false when no destination is left.  *blocked is set when an object was
 * pinned and had to be left behind.
 */
static bool
compact_zspage(struct zs_pool *pool, struct size_class *c, struct zspage *src,
    struct compact_ctl *ctl, bool *blocked)
{
	unsigned char buf[PAGE_SIZE];
	unsigned int obj;

	for (obj = 0; obj < src->fresh && src->inuse > 0; obj++) {
		struct obj_hdr *hdr = zspage_slot(pool, c, src, obj, NULL);
		_Atomic uint64_t *w;
		struct zspage *dst;
		unsigned int to;
		uint32_t hidx;
		uint64_t v;
		size_t len;

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
		zspage_copy_in(pool, c, dst, to, 0, buf, len);
		class_regroup_zspage(c, dst);
		handle_set_unpin(w, (v & ~HW_WHERE_MASK) |
		    hw_where(false, to, dst->id));
		zspage_free_slot(pool, c, src, obj);
		ctl->objs_moved++;
		ctl->bytes_moved += len;
	}
	return true;
}

static void
compact_class(struct zs_pool *pool, struct size_class *c,
    struct compact_ctl *ctl)
{
	struct zspage *src;
	bool more = true, blocked = false;

	pthread_mutex_lock(&c->lock);
	while (more && !blocked && class_spare_zspages(c) > 0) {
		src = class_emptiest_zspage(c);
		if (src == NULL)
			break;
		class_remove_zspage(c, src);
		src->flags |= ZSPAGE_ISOLATED;
		more = compact_zspage(pool, c, src, ctl, &blocked);
		src->flags &= ~ZSPAGE_ISOLATED;
		if (src->inuse == 0) {
			c->nr_zspages--;
			ctl->pages_freed += src->nr_pages;
			STAT_ADD(pool, pages_compacted, src->nr_pages);
			pthread_mutex_unlock(&c->lock);
			free_release_zspage(pool, src);
		} else {
			class_insert_zspage(c, src);
			pthread_mutex_unlock(&c->lock);
		}
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
}

long
zs_compact(struct zs_pool *pool, struct zs_compact_result *result)
{
	struct compact_ctl ctl = { 0, 0, 0 };
	unsigned int i;

	for (i = 0; i < pool->nr_classes; i++)
		if (!pool->classes[i]->huge)
			compact_class(pool, pool->classes[i], &ctl);
	STAT_ADD(pool, objs_compacted, ctl.objs_moved);
	if (result != NULL) {
		result->pages_freed = ctl.pages_freed;
		result->objs_moved = ctl.objs_moved;
		result->bytes_moved = ctl.bytes_moved;
	}
	return (long)ctl.pages_freed;
}
