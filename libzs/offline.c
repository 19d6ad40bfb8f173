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
 * The new pages are taken and faulted in before: with the lock and the
 * pins held, a fault would keep readers of every object of the zspage
 * waiting (zs-internal.h, "No fault").  Under the lock the zspage's pages
 * are counted; if the reserve (struct page_reserve) holds fewer, the lock
 * -- and the pin of the object that named the zspage -- is dropped, the
 * reserve filled, and everything looked up again from the start, as if
 * for the first time: only what is found with the lock held is used, so
 * whatever changed meanwhile is seen.  A huge object's new page is taken
 * before its pin likewise, and the pin then checks that the object is
 * still where the page was looked up.
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
 * pages if from is NULL) to pages of r, which holds enough of them,
 * resident.  Class lock held; held is the index of a handle the caller
 * has pinned already (or 0).  Returns pages moved, or -EAGAIN if an
 * object is pinned.
 */
static int
zspage_migrate(struct zs_pool *pool, struct size_class *c, struct zspage *z,
    const struct section *from, uint32_t held, struct page_reserve *r)
{
	unsigned int p;
	int moved = 0;

	zs_assert(zspage_pages_in(pool, z, from) <= r->n);
	if (!zspage_pin_all(pool, c, z, held, true))
		return -EAGAIN;
	for (p = 0; p < c->pages_per_zspage; p++) {
		uint32_t old = z->pfn[p], pfn;

		if (old == PFN_NONE ||
		    (from != NULL && section_of(pool, old) != from))
			continue;
		pfn = r->pfn[--r->n];
		page_set_owner(pool, pfn, z->id);
		os_assert_resident(pfn_to_addr(pool, pfn), PAGE_SIZE);
		bulk_copy(pfn_to_addr(pool, pfn), pfn_to_addr(pool, old),
		    PAGE_SIZE);
		z->pfn[p] = pfn;
		section_free_pages(pool, &old, 1);
		moved++;
	}
	zspage_pin_all(pool, c, z, held, false);
	STAT_ADD(pool, pages_migrated, moved);
	return moved;
}

/*
 * Isolate, migrate, put back; the class lock held throughout, and r
 * holding the pages (zspage_pages_in).
 */
int
migrate_zspage_pages(struct zs_pool *pool, struct size_class *c,
    struct zspage *z, const struct section *from, uint32_t held,
    struct page_reserve *r)
{
	int error, moved;

	if ((error = zspage_isolate(pool, c, z)) != 0)
		return error;
	moved = zspage_migrate(pool, c, z, from, held, r);
	zspage_putback(pool, c, z);
	return moved;
}

/*
 * Move a huge object's page to page pfn, taken (PAGE_HUGE, its owner and
 * size) and faulted in before the pin; its handle is pinned (value v).
 */
static void
huge_migrate(struct zs_pool *pool, _Atomic uint64_t *w, uint64_t v,
    uint32_t pfn)
{
	uint32_t old = HW_LOC(v);

	os_assert_resident(pfn_to_addr(pool, pfn), PAGE_SIZE);
	bulk_copy(pfn_to_addr(pool, pfn), pfn_to_addr(pool, old), PAGE_SIZE);
	handle_set_unpin(w, (v & ~HW_WHERE_MASK) | hw_where(true, 0, pfn));
	section_free_pages(pool, &old, 1);
	STAT_ADD(pool, pages_migrated, 1);
}

/*
 * Each pass pins the object afresh and finds its zspage, or its huge page,
 * from the word; when the pages taken beforehand are too few, it lets go
 * of pin and lock, takes more and passes again.  A huge object stays huge
 * and keeps its size as long as its handle is live, so its page, taken
 * for that size, fits whenever the pin finds it still huge.
 */
static int
obj_migrate(struct zs_pool *pool, zs_handle_t handle)
{
	struct page_reserve r = { .n = 0 };
	uint32_t hidx = (uint32_t)handle, huge = PFN_NONE;
	_Atomic uint64_t *w;
	struct size_class *c;
	struct zspage *z;
	unsigned int need;
	uint64_t v;
	int moved, error;

	for (;;) {
		if (handle_pin(pool, handle, &w, &v) != 0) {
			error = -EINVAL;
			break;
		}
		if ((v & HW_HUGE) && huge != PFN_NONE) {
			huge_migrate(pool, w, v, huge);
			huge = PFN_NONE;
			error = 0;
			break;
		}
		if (v & HW_HUGE) {
			uint16_t size = section_page(pool, HW_LOC(v))->huge_size;

			handle_unpin(w);
			error = section_alloc_pages(pool, 1, &huge, PAGE_HUGE,
			    hidx, size, ALLOC_NOGROW);
			if (error != 0)
				break;
			continue;
		}
		/* Our pin keeps the object, so its zspage, where it is. */
		z = zspage_of(pool, HW_LOC(v));
		c = &pool->class_store[z->class_idx];
		class_lock(c);
		need = zspage_pages_in(pool, z, NULL);
		if (need <= r.n) {
			moved = migrate_zspage_pages(pool, c, z, NULL, hidx,
			    &r);
			class_unlock(c);
			handle_unpin(w);
			error = moved < 0 ? moved : 0;
			break;
		}
		class_unlock(c);
		handle_unpin(w);
		if ((error = page_reserve_take(pool, &r, need)) != 0)
			break;
	}
	page_reserve_release(pool, &r);
	if (huge != PFN_NONE)
		section_free_pages(pool, &huge, 1);
	return error;
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
 * Move huge object page pfn, of an isolated section, holding the object
 * of handle index owner and size bytes when looked up.  The new page is
 * taken first; the pin then says whether the object is still there: no
 * page of an isolated section is allocated again, so an object there is
 * the one looked up, with that size.
 */
static int
section_evacuate_huge(struct zs_pool *pool, uint32_t pfn, uint32_t owner,
    uint16_t size)
{
	_Atomic uint64_t *w = handle_word(pool, owner);
	uint32_t new;
	uint64_t v;
	int error;

	error = section_alloc_pages(pool, 1, &new, PAGE_HUGE, owner, size,
	    ALLOC_NOGROW);
	if (error != 0)
		return error;
	if (!handle_trypin(w, &v)) {
		error = -EAGAIN;
	} else if (!(v & HW_HUGE) || HW_LOC(v) != pfn) {
		handle_unpin(w);	/* freed and reused meanwhile */
		error = 0;
	} else {
		huge_migrate(pool, w, v, new);
		return 1;
	}
	section_free_pages(pool, &new, 1);
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
	struct page_reserve r = { .n = 0 };
	struct size_class *c;
	struct zspage *z;
	unsigned int state, need;
	uint16_t size;
	int moved;

	pthread_mutex_lock(&pool->page_lock);
	state = sec->pages[idx].state;
	owner = page_owner(&sec->pages[idx]);
	size = sec->pages[idx].huge_size;
	/*
	 * An owner wrote its class before it took this page.  A page not
	 * in a zspage yet (a reserve's; none is cached after the drain:
	 * see section_move_out) has no owner.
	 */
	if (state == PAGE_ZSPAGE && owner == OWNER_CACHED)
		state = PAGE_FREE;
	c = state == PAGE_ZSPAGE ?
	    &pool->class_store[zspage_of(pool, owner)->class_idx] : NULL;
	pthread_mutex_unlock(&pool->page_lock);

	if (state == PAGE_HUGE)
		return section_evacuate_huge(pool, pfn, owner, size);
	if (state != PAGE_ZSPAGE)
		return 0;

	for (;;) {
		class_lock(c);
		pthread_mutex_lock(&pool->page_lock);
		z = zspage_of(pool, owner);
		/*
		 * While the page is the zspage's, the zspage is not freed:
		 * read it now.  One on its way to the free worker
		 * (FREEING, set under the class lock we hold) may be freed,
		 * and its descriptor taken by another class, as soon as the
		 * page lock is dropped: skip it.
		 */
		if (sec->pages[idx].state != PAGE_ZSPAGE ||
		    page_owner(&sec->pages[idx]) != owner ||
		    z->class_idx != c->index || (z->flags & ZSPAGE_FREEING))
			z = NULL;	/* freed meanwhile; look again next pass */
		pthread_mutex_unlock(&pool->page_lock);
		need = z != NULL ? zspage_pages_in(pool, z, sec) : 0;
		if (need <= r.n)
			break;
		/* Take the pages without the lock; then check it all again. */
		class_unlock(c);
		if ((moved = page_reserve_take(pool, &r, need)) != 0)
			goto out;
	}
	moved = z != NULL ? migrate_zspage_pages(pool, c, z, sec, 0, &r) : 0;
	class_unlock(c);
out:
	page_reserve_release(pool, &r);
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
