/*
 * offline.c - moving memory out of the way: zspage migration, section
 * isolation and offline, shrinking the pool.
 *
 * Migrating a zspage (the movable-zspage idea from zsmalloc) is three
 * steps in one hold of its class lock: isolate it (off its fullness list,
 * so nothing new is allocated in it), migrate its pages (pin every live
 * object -- if one is pinned by a reader, back off with -EAGAIN rather
 * than wait -- copy each page to a new one and switch pfn[]), and put it
 * back on the list its fullness calls for.  No one else takes the lock
 * meanwhile, so no object of it is freed: it goes back with the objects
 * it had, at least one.  Handle words name the zspage by id, not by page,
 * so moving its pages leaves every handle as it was.
 *
 * Offlining a section (the memory hot-remove idea): isolate it -- a state
 * on the section: allocation skips it and pages freed into it stay on its
 * own list -- migrate every zspage page and huge page out of it, then
 * unmap it with the page descriptors inside it.  Migration never grows
 * the pool (ALLOC_NOGROW).  If it cannot finish -- no room elsewhere, or
 * objects still pinned after MIGRATE_TRIES passes -- the section is put
 * back online as it is.
 */
#include <config.h>

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zs-internal.h"

#define MIGRATE_TRIES	50	/* passes over a section before giving up */

/*
 * Class lock held for all three, from isolation to putback.  A zspage on
 * its way to be freed is not isolated (-EAGAIN); one isolated already
 * cannot be met, since isolation never outlasts the lock hold it is made
 * in.
 */
static int
zspage_isolate(struct zs_pool *pool, struct size_class *c, struct zspage *z)
{
	if (z->flags & ZSPAGE_FREEING)
		return -EAGAIN;
	zs_assert(!(z->flags & ZSPAGE_ISOLATED) && z->inuse > 0);
	class_remove_zspage(c, z);
	z->flags |= ZSPAGE_ISOLATED;
	STAT_ADD(pool, isolated_zspages, 1);
	return 0;
}

static void
zspage_putback(struct zs_pool *pool, struct size_class *c, struct zspage *z)
{
	zs_assert(z->inuse > 0);
	z->flags &= ~ZSPAGE_ISOLATED;
	STAT_SUB(pool, isolated_zspages, 1);
	class_insert_zspage(c, z);
}

/* Pin or unpin every live object of z but the one whose index is held. */
static bool
zspage_pin_all(struct zs_pool *pool, struct size_class *c, struct zspage *z,
    uint32_t held, bool pin)
{
	unsigned int obj, done;
	uint64_t v;

	for (obj = 0; obj < z->fresh; obj++) {
		uint32_t hidx;

		if (!zspage_slot_live(pool, c, z, obj))
			continue;
		hidx = zspage_slot(pool, c, z, obj, NULL)->tag >> 1;
		if (hidx == held)
			continue;
		if (!pin) {
			handle_unpin(handle_word(pool, hidx));
		} else if (!handle_trypin(handle_word(pool, hidx), &v)) {
			/* Undo the ones before. */
			for (done = 0; done < obj; done++) {
				if (!zspage_slot_live(pool, c, z, done))
					continue;
				hidx = zspage_slot(pool, c, z, done,
				    NULL)->tag >> 1;
				if (hidx != held)
					handle_unpin(handle_word(pool, hidx));
			}
			return false;
		}
	}
	return true;
}

/*
 * Move the pages of isolated zspage z that lie in section `from` (all its
 * pages if from is NULL) to new pages.  Class lock held; held is the index
 * of a handle the caller has pinned already (or 0).  Returns pages moved,
 * -EAGAIN if an object is pinned, -ENOMEM if no free page is left.
 */
static int
zspage_migrate(struct zs_pool *pool, struct size_class *c, struct zspage *z,
    const struct section *from, uint32_t held)
{
	unsigned int p;
	int moved = 0, error = 0;

	if (!zspage_pin_all(pool, c, z, held, true))
		return -EAGAIN;
	for (p = 0; p < c->pages_per_zspage; p++) {
		uint32_t old = z->pfn[p], pfn;

		if (old == PFN_NONE ||
		    (from != NULL && section_of(pool, old) != from))
			continue;
		error = section_alloc_pages(pool, 1, &pfn, PAGE_ZSPAGE, z->id,
		    0, ALLOC_NOGROW);
		if (error != 0)
			break;
		bulk_copy(pfn_to_addr(pool, pfn), pfn_to_addr(pool, old),
		    PAGE_SIZE);
		z->pfn[p] = pfn;
		section_free_pages(pool, &old, 1);
		moved++;
	}
	zspage_pin_all(pool, c, z, held, false);
	STAT_ADD(pool, pages_migrated, moved);
	return error != 0 && moved == 0 ? error : moved;
}

/* Isolate, migrate, put back; the class lock held throughout. */
int
migrate_zspage_pages(struct zs_pool *pool, struct size_class *c,
    struct zspage *z, const struct section *from, uint32_t held)
{
	int error, moved;

	if ((error = zspage_isolate(pool, c, z)) != 0)
		return error;
	moved = zspage_migrate(pool, c, z, from, held);
	zspage_putback(pool, c, z);
	return moved;
}

/* Move a huge object's page; its handle is pinned (value v). */
static int
huge_migrate(struct zs_pool *pool, _Atomic uint64_t *w, uint64_t v)
{
	uint32_t old = HW_LOC(v), pfn;
	struct zs_page *pg = section_page(pool, old);
	int error;

	error = section_alloc_pages(pool, 1, &pfn, PAGE_HUGE, pg->owner,
	    pg->huge_size, ALLOC_NOGROW);
	if (error != 0)
		return error;
	bulk_copy(pfn_to_addr(pool, pfn), pfn_to_addr(pool, old), PAGE_SIZE);
	handle_set_unpin(w, (v & ~HW_WHERE_MASK) | hw_where(true, 0, pfn));
	section_free_pages(pool, &old, 1);
	STAT_ADD(pool, pages_migrated, 1);
	return 1;
}

static int
obj_migrate(struct zs_pool *pool, zs_handle_t handle)
{
	_Atomic uint64_t *w;
	struct size_class *c;
	struct zspage *z;
	uint64_t v;
	int moved;

	if (handle_pin(pool, handle, &w, &v) != 0)
		return -EINVAL;
	if (v & HW_HUGE) {
		moved = huge_migrate(pool, w, v);
		if (moved < 0)
			handle_unpin(w);
		return moved < 0 ? moved : 0;
	}
	/* Our pin keeps the object, so its zspage, where it is. */
	z = zspage_of(pool, HW_LOC(v));
	c = &pool->class_store[z->class_idx];
	pthread_mutex_lock(&c->lock);
	moved = migrate_zspage_pages(pool, c, z, NULL, (uint32_t)handle);
	pthread_mutex_unlock(&c->lock);
	handle_unpin(w);
	return moved < 0 ? moved : 0;
}

int
zs_obj_migrate(struct zs_pool *pool, zs_handle_t handle)
{
	int error;

	/* Dead objects waiting in a batch would fail it with -EAGAIN. */
	free_drain(pool);
	error = obj_migrate(pool, handle);
	/* Pages in the CPUs' caches are room too. */
	if (error == -ENOMEM && page_cache_drain(pool) > 0)
		error = obj_migrate(pool, handle);
	return error;
}

/*
 * Move whatever page idx of isolated section sec holds out of it.
 * Returns pages moved (0 if it was free or changed meanwhile), -EAGAIN,
 * or -ENOMEM.
 */
static int
section_evacuate_page(struct zs_pool *pool, struct section *sec,
    uint32_t idx)
{
	uint32_t pfn = sec->index << pool->sec_shift | idx, owner;
	struct size_class *c;
	_Atomic uint64_t *w;
	struct zspage *z;
	unsigned int state;
	uint64_t v;
	int moved;

	pthread_mutex_lock(&pool->page_lock);
	state = sec->pages[idx].state;
	owner = sec->pages[idx].owner;
	/*
	 * An owner wrote its class before it took this page.  A cached
	 * page (none after the drain: see section_move_out) has no owner.
	 */
	if (state == PAGE_ZSPAGE && owner == OWNER_CACHED)
		state = PAGE_FREE;
	c = state == PAGE_ZSPAGE ?
	    &pool->class_store[zspage_of(pool, owner)->class_idx] : NULL;
	pthread_mutex_unlock(&pool->page_lock);

	if (state == PAGE_HUGE) {
		w = handle_word(pool, owner);
		if (!handle_trypin(w, &v))
			return -EAGAIN;
		if (!(v & HW_HUGE) || HW_LOC(v) != pfn) {
			handle_unpin(w);	/* freed and reused meanwhile */
			return 0;
		}
		moved = huge_migrate(pool, w, v);
		if (moved < 0)
			handle_unpin(w);
		return moved;
	}
	if (state != PAGE_ZSPAGE)
		return 0;

	pthread_mutex_lock(&c->lock);
	pthread_mutex_lock(&pool->page_lock);
	z = zspage_of(pool, owner);
	/*
	 * While the page is the zspage's, the zspage is not freed: read it
	 * now.  One on its way to the free worker (FREEING, set under the
	 * class lock we hold) may be freed, and its descriptor taken by
	 * another class, as soon as the page lock is dropped: skip it.
	 */
	if (sec->pages[idx].state != PAGE_ZSPAGE ||
	    sec->pages[idx].owner != owner || z->class_idx != c->index ||
	    (z->flags & ZSPAGE_FREEING))
		z = NULL;	/* freed meanwhile; look again next pass */
	pthread_mutex_unlock(&pool->page_lock);
	moved = z != NULL ? migrate_zspage_pages(pool, c, z, sec, 0) : 0;
	pthread_mutex_unlock(&c->lock);
	return moved;
}

static void
backoff(unsigned int attempt)
{
	struct timespec ts = { 0, (long)(attempt + 1) * 200000 };

	if (attempt == 0)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/* Empty an isolated section.  Returns pages moved, -EAGAIN or -ENOMEM. */
static long
section_evacuate(struct zs_pool *pool, struct section *sec)
{
	unsigned int attempt;
	long moved = 0;
	uint32_t idx;
	int r;

	for (attempt = 0; attempt < MIGRATE_TRIES; attempt++) {
		for (idx = sec->first_data; idx < sec->nr_pages; idx++) {
			r = section_evacuate_page(pool, sec, idx);
			/* Pages cached since the drain are room too. */
			if (r == -ENOMEM && page_cache_drain(pool) > 0)
				r = section_evacuate_page(pool, sec, idx);
			if (r == -ENOMEM)
				return r;
			if (r > 0)
				moved += r;
		}
		/* Zspages emptied meanwhile hold pages until freed. */
		zs_pool_flush(pool);
		if (section_is_empty(pool, sec))
			return moved;
		backoff(attempt);
	}
	return -EAGAIN;
}

static long
section_move_out(struct zs_pool *pool, unsigned int slot, bool unmap)
{
	struct section *sec;
	long moved;
	int error;

	pthread_mutex_lock(&pool->offline_lock);
	free_drain(pool);
	error = section_isolate(pool, slot, &sec);
	if (error != 0) {
		pthread_mutex_unlock(&pool->offline_lock);
		return error;
	}
	/* Isolated: the caches may hold its pages but take no more. */
	page_cache_drain(pool);
	moved = section_evacuate(pool, sec);
	if (moved >= 0 && unmap) {
		/* Busy only while the worker faults in free pages of it. */
		if (section_remove(pool, sec) == 0) {
			STAT_ADD(pool, sections_offlined, 1);
		} else {
			section_unisolate(pool, sec);
			moved = -EAGAIN;
		}
	} else {
		section_unisolate(pool, sec);
	}
	pthread_mutex_unlock(&pool->offline_lock);
	return moved;
}

long
zs_section_migrate(struct zs_pool *pool, unsigned int section)
{
	return section_move_out(pool, section, false);
}

long
zs_section_offline(struct zs_pool *pool, unsigned int section)
{
	return section_move_out(pool, section, true);
}

unsigned int
zs_section_count(struct zs_pool *pool)
{
	unsigned int n;

	pthread_mutex_lock(&pool->page_lock);
	n = pool->nr_section_slots;
	pthread_mutex_unlock(&pool->page_lock);
	return n;
}

int
zs_section_stats(struct zs_pool *pool, unsigned int section,
    struct zs_section_stats *st)
{
	struct section *sec;
	int error = 0;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&pool->page_lock);
	sec = section < pool->nr_section_slots ? atomic_load_explicit(
	    &pool->sections[section], memory_order_relaxed) : NULL;
	if (sec == NULL) {
		error = -ENOENT;
	} else {
		st->index = section;
		st->pages = sec->nr_pages;
		st->pages_meta = sec->first_data;
		st->pages_free = sec->nr_free + sec->nr_reporting;
		st->pages_used = sec->nr_pages - sec->first_data -
		    st->pages_free;
		st->pages_reported = sec->nr_reported;
		st->isolated = sec->state != SECTION_ONLINE;
	}
	pthread_mutex_unlock(&pool->page_lock);
	return error;
}

struct shrink_candidate {
	uint32_t	slot;
	uint32_t	used;
};

static int
candidate_cmp(const void *a, const void *b)
{
	const struct shrink_candidate *x = a, *y = b;

	if (x->used != y->used)
		return x->used < y->used ? -1 : 1;
	return x->slot < y->slot ? 1 : (x->slot > y->slot ? -1 : 0);
}

uint64_t
zs_pool_shrink(struct zs_pool *pool, uint64_t bytes)
{
	struct shrink_candidate *cand;
	uint64_t released = 0;
	unsigned int n = 0, i, slots = zs_section_count(pool);
	struct zs_section_stats st;

	if (slots == 0 || (cand = calloc(slots, sizeof(*cand))) == NULL)
		return 0;
	for (i = 0; i < slots; i++)
		if (zs_section_stats(pool, i, &st) == 0 && !st.isolated) {
			cand[n].slot = i;
			cand[n].used = st.pages_used;
			n++;
		}
	/* Emptiest first; among equals the highest, so use moves down. */
	qsort(cand, n, sizeof(*cand), candidate_cmp);
	for (i = 0; i < n && released < bytes; i++)
		if (zs_section_offline(pool, cand[i].slot) >= 0)
			released += pool->cfg.section_size;
	free(cand);
	return released;
}
