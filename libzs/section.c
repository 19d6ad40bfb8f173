/*
 * section.c - the pool's memory: sections and their free page lists.
 *
 * A section is one anonymous mapping of cfg.section_size bytes.  It starts
 * with struct section and the memmap (a struct zs_page per page); those
 * pages are PAGE_META, the rest are handed out one page at a time.  Each
 * section keeps its own free list: recently freed pages (still resident)
 * at the head, where allocation takes from, pages never touched or given
 * back to the OS (PG_REPORTED) towards the tail.  Allocation prefers the
 * lowest-numbered section with free pages, so use gathers at the bottom of
 * the pool and the top sections drain.
 *
 * Taking a page that is not resident costs a page fault when it is first
 * written, and faults one page at a time are slow.  So when allocation
 * reaches a non-resident page, it claims the run of non-resident free
 * pages after it as resident (next in line on the free list) and faults
 * the run in with MADV_POPULATE_WRITE, outside the lock.  With
 * cfg.prefault_ahead and the async worker, the run is the page taken and
 * prefault_ahead more; the caller faults in only what it takes (a CPU's
 * page cache, taking pages for later, only the first) and the worker
 * does the rest meanwhile (one run at a time, pool->prefault_run:
 * while the worker has one, runs are POPULATE_RUN pages and the
 * caller's).  Otherwise the run is POPULATE_RUN pages, all the caller's.
 *
 * A claimed run stays on the free list while it is faulted in, and a
 * report given it then would be undone by the fault: resident pages
 * counted as reported.  So reporting leaves it alone: the worker's run is
 * pool->prefault_run, the caller's pages are PG_POPULATING until its
 * madvise returns.
 */
#include <config.h>

#include <string.h>

#include "zs-internal.h"

#define POPULATE_RUN		32

/* A range of pages to prefault once page_lock is dropped. */
struct populate {
	char		*addr;
	size_t		 len;
	bool		 ahead;	/* pool->prefault_run: after the caller's
				   pages, the worker's */
	struct section	*sec;	/* not ahead: pages [lo, hi) of sec are */
	uint32_t	 lo, hi;	/* PG_POPULATING */
};

static inline uint32_t
pages_per_section(const struct zs_pool *pool)
{
	return 1u << pool->sec_shift;
}

struct section *
section_of(struct zs_pool *pool, uint32_t pfn)
{
	return atomic_load_explicit(&pool->sections[pfn >> pool->sec_shift],
	    memory_order_acquire);
}

struct zs_page *
section_page(struct zs_pool *pool, uint32_t pfn)
{
	struct section *sec = atomic_load_explicit(
	    &pool->sections[pfn >> pool->sec_shift], memory_order_acquire);

	return &sec->pages[pfn & (pages_per_section(pool) - 1)];
}

/* Free list operations; page_lock held. */
static void
freelist_unlink(struct section *sec, uint32_t idx)
{
	struct zs_page *pg = &sec->pages[idx];

	if (pg->prev != PAGE_NIL)
		sec->pages[pg->prev].next = pg->next;
	else
		sec->free_head = pg->next;
	if (pg->next != PAGE_NIL)
		sec->pages[pg->next].prev = pg->prev;
	else
		sec->free_tail = pg->prev;
	pg->next = pg->prev = PAGE_NIL;
	sec->nr_free--;
}

static void
freelist_push_head(struct section *sec, uint32_t idx)
{
	struct zs_page *pg = &sec->pages[idx];

	pg->prev = PAGE_NIL;
	pg->next = sec->free_head;
	if (sec->free_head != PAGE_NIL)
		sec->pages[sec->free_head].prev = idx;
	else
		sec->free_tail = idx;
	sec->free_head = idx;
	sec->nr_free++;
}

static void
freelist_push_tail(struct section *sec, uint32_t idx)
{
	struct zs_page *pg = &sec->pages[idx];

	pg->next = PAGE_NIL;
	pg->prev = sec->free_tail;
	if (sec->free_tail != PAGE_NIL)
		sec->pages[sec->free_tail].next = idx;
	else
		sec->free_head = idx;
	sec->free_tail = idx;
	sec->nr_free++;
}

/* Map and publish a new section.  grow_lock held, page_lock not. */
static int
section_grow(struct zs_pool *pool)
{
	size_t size = pool->cfg.section_size;
	uint32_t nr = pages_per_section(pool), slot, i, first_data;
	struct section *sec;
	size_t meta;

	pthread_mutex_lock(&pool->page_lock);
	for (slot = 0; slot < pool->nr_section_slots; slot++)
		if (atomic_load_explicit(&pool->sections[slot],
		    memory_order_relaxed) == NULL)
			break;
	pthread_mutex_unlock(&pool->page_lock);
	if (slot >= pool->max_sections)
		return -ENOMEM;
	if (pool->cfg.max_size != 0 &&
	    (pool->nr_sections + 1) * size > pool->cfg.max_size)
		return -ENOMEM;

	sec = pool->arena != NULL ? arena_section(pool, slot) :
	    os_map(pool, size);
	if (sec == NULL)
		return -errno;

	meta = sizeof(*sec) + (size_t)nr * sizeof(struct zs_page);
	first_data = (uint32_t)((meta + PAGE_SIZE - 1) >> PAGE_SHIFT);
	sec->index = slot;
	sec->nr_pages = nr;
	sec->first_data = first_data;
	sec->state = SECTION_ONLINE;
	sec->free_head = sec->free_tail = PAGE_NIL;
	sec->nr_free = sec->nr_reported = 0;
	for (i = 0; i < nr; i++) {
		struct zs_page *pg = &sec->pages[i];

		pg->next = pg->prev = PAGE_NIL;
		pg->owner = 0;
		pg->huge_size = 0;
		if (i < first_data) {
			pg->state = PAGE_META;
			pg->flags = 0;
		} else {
			/* Never touched, so not resident: as if reported. */
			pg->state = PAGE_FREE;
			pg->flags = PG_REPORTED;
			freelist_push_tail(sec, i);
			sec->nr_reported++;
		}
	}

	pthread_mutex_lock(&pool->page_lock);
	atomic_store_explicit(&pool->sections[slot], sec, memory_order_release);
	if (slot == pool->nr_section_slots)
		pool->nr_section_slots++;
	if (slot < pool->free_hint)
		pool->free_hint = slot;
	LOCKED_ADD(pool->nr_sections, 1);
	LOCKED_ADD(pool->nr_free_pages, sec->nr_free);
	LOCKED_ADD(pool->nr_reported_pages, sec->nr_reported);
	LOCKED_ADD(pool->nr_memmap_pages, first_data);
	pthread_mutex_unlock(&pool->page_lock);
	return 0;
}

/*
 * Page idx of sec was not resident.  Claim it and the non-resident free
 * pages right after it as resident, and note the range to prefault.
 */
static void
section_claim_run(struct zs_pool *pool, struct section *sec, uint32_t idx,
    struct populate *pop)
{
	bool ahead = pool->cfg.async_free && pool->cfg.prefault_ahead > 1 &&
	    pool->prefault_run.sec == NULL;
	uint32_t run = ahead ? pool->cfg.prefault_ahead + 1 : POPULATE_RUN;
	uint32_t end = idx + 1, i;

	/*
	 * One run per call, the one faulted in: a page past its end is
	 * faulted in when first written.
	 */
	if (pop->len != 0)
		return;

	while (end < sec->nr_pages && end < idx + run &&
	    sec->pages[end].state == PAGE_FREE &&
	    (sec->pages[end].flags & PG_REPORTED)) {
		sec->pages[end].flags &= ~PG_REPORTED;
		sec->nr_reported--;
		LOCKED_SUB(pool->nr_reported_pages, 1);
		end++;
	}
	/* Next in line: to the head of the list, idx + 1 first. */
	for (i = end; i-- > idx + 1;) {
		freelist_unlink(sec, i);
		freelist_push_head(sec, i);
	}
	pop->addr = (char *)sec + ((size_t)idx << PAGE_SHIFT);
	pop->len = (size_t)(end - idx) << PAGE_SHIFT;
	pop->ahead = ahead;
	if (ahead) {
		pool->prefault_run = (struct prefault_run){ sec, idx, end };
	} else {
		/* Not reported until populate() is done with them. */
		for (i = idx; i < end; i++)
			sec->pages[i].flags |= PG_POPULATING;
		pop->sec = sec;
		pop->lo = idx;
		pop->hi = end;
	}
}

/* The worker's run is done (or was never handed over). */
void
prefault_run_end(struct zs_pool *pool)
{
	pthread_mutex_lock(&pool->page_lock);
	pool->prefault_run.sec = NULL;
	pthread_mutex_unlock(&pool->page_lock);
}

/*
 * Fault in a claimed run, the pages this call takes (at most n, the first
 * of the run) here, and with pop->ahead the rest on the worker.  Only a
 * speedup: a failure costs page faults later.  page_lock not held; the
 * caller holds the run's first page, so its section stays.
 */
static void
populate(struct zs_pool *pool, struct populate *pop, unsigned int n)
{
	size_t now = pop->len;
	uint32_t i;

	if (pop->ahead && (size_t)n << PAGE_SHIFT < now)
		now = (size_t)n << PAGE_SHIFT;
	(void)os_advise(pool, pop->addr, now, MADV_POPULATE_WRITE);
	if (pop->ahead) {
		if (now < pop->len)
			free_prefault(pool, pop->addr + now, pop->len - now);
		else
			prefault_run_end(pool);
	} else {
		/* Free ones may be reported now: they stay out. */
		pthread_mutex_lock(&pool->page_lock);
		for (i = pop->lo; i < pop->hi; i++)
			pop->sec->pages[i].flags &= ~PG_POPULATING;
		pthread_mutex_unlock(&pool->page_lock);
	}
	pop->len = 0;
}

/* Take up to n free pages; page_lock held.  Returns how many were taken. */
static unsigned int
section_take_pages(struct zs_pool *pool, unsigned int n, uint32_t *pfns,
    enum page_state state, uint32_t owner, uint16_t huge_size,
    struct populate *pop)
{
	unsigned int got = 0;
	uint32_t slot = pool->free_hint;

	while (got < n && pool->nr_free_pages > 0 &&
	    slot < pool->nr_section_slots) {
		struct section *sec = atomic_load_explicit(
		    &pool->sections[slot], memory_order_relaxed);
		struct zs_page *pg;
		uint32_t idx;

		if (sec == NULL || sec->nr_free == 0 ||
		    sec->state != SECTION_ONLINE) {
			if (slot == pool->free_hint)
				pool->free_hint = slot + 1;
			slot++;
			continue;
		}
		idx = sec->free_head;
		freelist_unlink(sec, idx);
		pg = &sec->pages[idx];
		zs_assert(pg->state == PAGE_FREE);
		if (pg->flags & PG_REPORTED) {
			pg->flags &= ~PG_REPORTED;
			sec->nr_reported--;
			LOCKED_SUB(pool->nr_reported_pages, 1);
			section_claim_run(pool, sec, idx, pop);
		}
		pg->state = state;
		pg->owner = owner;
		pg->huge_size = huge_size;
		LOCKED_SUB(pool->nr_free_pages, 1);
		pfns[got++] = (slot << pool->sec_shift) | idx;
	}
	/* Free pages the walk cannot reach would make the caller spin. */
	zs_assert(got == n || pool->nr_free_pages == 0);
	return got;
}

/*
 * Allocate n pages, growing the pool by a section when the free lists run
 * dry (unless ALLOC_NOGROW), and mark them state/owner.  0 or -ENOMEM
 * (nothing taken then).
 */
int
section_alloc_pages(struct zs_pool *pool, unsigned int n, uint32_t *pfns,
    enum page_state state, uint32_t owner, uint16_t huge_size, int flags)
{
	struct populate pop = { .len = 0 };
	unsigned int got = 0;
	uint64_t avail;
	int error;

	for (;;) {
		pthread_mutex_lock(&pool->page_lock);
		/* Not enough free pages, and no growing: take none. */
		if ((flags & ALLOC_NOGROW) && pool->nr_free_pages < n) {
			pthread_mutex_unlock(&pool->page_lock);
			return -ENOMEM;
		}
		got += section_take_pages(pool, n - got, pfns + got, state,
		    owner, huge_size, &pop);
		pthread_mutex_unlock(&pool->page_lock);
		if (pop.len != 0)
			populate(pool, &pop, flags & ALLOC_FIRST_NOW ? 1 : n);
		if (got == n)
			return 0;
		/* ALLOC_NOGROW found n free pages above: it took them all. */
		zs_assert(!(flags & ALLOC_NOGROW));

		pthread_mutex_lock(&pool->grow_lock);
		pthread_mutex_lock(&pool->page_lock);
		avail = pool->nr_free_pages;
		pthread_mutex_unlock(&pool->page_lock);
		error = avail > 0 ? 0 : section_grow(pool);
		pthread_mutex_unlock(&pool->grow_lock);
		if (error != 0) {
			section_free_pages(pool, pfns, got);
			return error;
		}
	}
}

void
section_free_pages(struct zs_pool *pool, const uint32_t *pfns, unsigned int n)
{
	unsigned int i;

	if (n == 0)
		return;
	pthread_mutex_lock(&pool->page_lock);
	for (i = 0; i < n; i++) {
		uint32_t slot = pfns[i] >> pool->sec_shift;
		uint32_t idx = pfns[i] & (pages_per_section(pool) - 1);
		struct section *sec = atomic_load_explicit(
		    &pool->sections[slot], memory_order_relaxed);
		struct zs_page *pg = &sec->pages[idx];

		zs_assert(pg->state == PAGE_ZSPAGE || pg->state == PAGE_HUGE);
		pg->state = PAGE_FREE;
		pg->owner = 0;
		pg->huge_size = 0;
		pg->flags &= PG_POPULATING;
		freelist_push_head(sec, idx);
		if (sec->state == SECTION_ONLINE) {
			LOCKED_ADD(pool->nr_free_pages, 1);
			if (slot < pool->free_hint)
				pool->free_hint = slot;
		}
	}
	pthread_mutex_unlock(&pool->page_lock);
	report_request(pool);
}

/*
 * Section isolation, for offline.c.  An isolated section keeps its free
 * list, but allocation skips it and its free pages stop counting as free
 * in the pool.  -ENOENT if there is no such section, -EBUSY if it is
 * isolated already.
 */
int
section_isolate(struct zs_pool *pool, uint32_t slot, struct section **secp)
{
	struct section *sec;
	int error = 0;

	pthread_mutex_lock(&pool->page_lock);
	sec = slot < pool->nr_section_slots ? atomic_load_explicit(
	    &pool->sections[slot], memory_order_relaxed) : NULL;
	if (sec == NULL) {
		error = -ENOENT;
	} else if (sec->state != SECTION_ONLINE) {
		error = -EBUSY;
	} else {
		sec->state = SECTION_ISOLATED;
		LOCKED_SUB(pool->nr_free_pages, sec->nr_free);
		*secp = sec;
	}
	pthread_mutex_unlock(&pool->page_lock);
	return error;
}

void
section_unisolate(struct zs_pool *pool, struct section *sec)
{
	pthread_mutex_lock(&pool->page_lock);
	zs_assert(sec->state == SECTION_ISOLATED);
	sec->state = SECTION_ONLINE;
	LOCKED_ADD(pool->nr_free_pages, sec->nr_free);
	if (sec->index < pool->free_hint)
		pool->free_hint = sec->index;
	pthread_mutex_unlock(&pool->page_lock);
}

/* Is every data page of an isolated section back on its free list? */
bool
section_is_empty(struct zs_pool *pool, struct section *sec)
{
	bool empty;

	pthread_mutex_lock(&pool->page_lock);
	empty = sec->nr_free == sec->nr_pages - sec->first_data;
	pthread_mutex_unlock(&pool->page_lock);
	return empty;
}

/*
 * Unpublish and unmap an isolated section, if empty and not the worker's
 * prefault run's (else -EBUSY).
 */
int
section_remove(struct zs_pool *pool, struct section *sec)
{
	/*
	 * An arena's section slot is the same memory each time it is used:
	 * punched before section_grow may take the slot again.
	 */
	pthread_mutex_lock(&pool->grow_lock);
	pthread_mutex_lock(&pool->page_lock);
	zs_assert(sec->state == SECTION_ISOLATED);
	/* Not while the worker may be faulting in a run of its pages. */
	if (sec->nr_free != sec->nr_pages - sec->first_data ||
	    pool->prefault_run.sec == sec) {
		pthread_mutex_unlock(&pool->page_lock);
		pthread_mutex_unlock(&pool->grow_lock);
		return -EBUSY;
	}
	atomic_store_explicit(&pool->sections[sec->index], NULL,
	    memory_order_release);
	LOCKED_SUB(pool->nr_sections, 1);
	LOCKED_SUB(pool->nr_reported_pages, sec->nr_reported);
	LOCKED_SUB(pool->nr_memmap_pages, sec->first_data);
	pthread_mutex_unlock(&pool->page_lock);
	if (pool->arena != NULL)
		(void)arena_release(pool, sec, pool->cfg.section_size);
	else
		os_unmap(pool, sec, pool->cfg.section_size);
	pthread_mutex_unlock(&pool->grow_lock);
	return 0;
}

/*
 * Free page reporting, for report.c.  Take up to max free pages of the
 * section in slot that are still resident, and not being faulted in (a
 * run claimed by an allocation: its fault would undo the report), off
 * its free list; they stay PAGE_FREE but are counted in nr_reporting
 * until section_put_reported(), and until then the section cannot be
 * emptied and so cannot go away.
 */
unsigned int
section_take_unreported(struct zs_pool *pool, uint32_t slot,
    struct section **secp, uint32_t *idx, unsigned int max)
{
	struct section *sec;
	unsigned int n = 0;
	uint32_t i, next;

	pthread_mutex_lock(&pool->page_lock);
	sec = slot < pool->nr_section_slots ? atomic_load_explicit(
	    &pool->sections[slot], memory_order_relaxed) : NULL;
	*secp = sec;
	if (sec == NULL || sec->state != SECTION_ONLINE)
		goto out;
	for (i = sec->free_head; i != PAGE_NIL && n < max &&
	    sec->nr_free > sec->nr_reported; i = next) {
		next = sec->pages[i].next;
		if (sec->pages[i].flags & (PG_REPORTED | PG_POPULATING))
			continue;
		/* Being faulted in: given back now, it would come back. */
		if (sec == pool->prefault_run.sec &&
		    i >= pool->prefault_run.lo && i < pool->prefault_run.hi)
			continue;
		freelist_unlink(sec, i);
		LOCKED_SUB(pool->nr_free_pages, 1);
		sec->nr_reporting++;
		idx[n++] = i;
	}
out:
	pthread_mutex_unlock(&pool->page_lock);
	return n;
}

/* Put them back, at the tail, marked reported if given back. */
void
section_put_reported(struct zs_pool *pool, struct section *sec,
    const uint32_t *idx, unsigned int n, bool reported)
{
	unsigned int k;

	pthread_mutex_lock(&pool->page_lock);
	for (k = 0; k < n; k++) {
		struct zs_page *pg = &sec->pages[idx[k]];

		if (reported) {
			pg->flags |= PG_REPORTED;
			sec->nr_reported++;
			LOCKED_ADD(pool->nr_reported_pages, 1);
			freelist_push_tail(sec, idx[k]);
		} else {
			freelist_push_head(sec, idx[k]);
		}
		sec->nr_reporting--;
		if (sec->state == SECTION_ONLINE)
			LOCKED_ADD(pool->nr_free_pages, 1);
	}
	/*
	 * While they were out, allocation may have found this section empty
	 * and moved the hint past it.
	 */
	if (n != 0 && sec->state == SECTION_ONLINE &&
	    sec->index < pool->free_hint)
		pool->free_hint = sec->index;
	pthread_mutex_unlock(&pool->page_lock);
}

/* Pool teardown: unmap every section, memmaps with them. */
void
section_destroy_all(struct zs_pool *pool)
{
	uint32_t slot;

	if (pool->sections == NULL)
		return;
	for (slot = 0; slot < pool->nr_section_slots; slot++) {
		struct section *sec = atomic_load_explicit(
		    &pool->sections[slot], memory_order_relaxed);

		/* An arena's stay in its file, for the next process. */
		if (sec != NULL && pool->arena == NULL)
			os_unmap(pool, sec, pool->cfg.section_size);
		atomic_store_explicit(&pool->sections[slot], NULL,
		    memory_order_relaxed);
	}
	LOCKED_SET(pool->nr_sections, 0);
}

/*
 * CPU page caches.  A zspage takes its pages one at a time as its slots
 * are used.  Taken straight from the sections, every page costs
 * page_lock and the free list's shared entries, which two CPUs filling
 * zspages at once hand back and forth between their caches.  Instead each
 * CPU takes cfg.page_cache pages in one section_alloc_pages() and hands
 * them out under a lock of its own.  Cached pages are PAGE_ZSPAGE with
 * owner OWNER_CACHED: off the free lists, so neither taken by others nor
 * reported; page_cache_drain() gives them back, for offline (after the
 * section is isolated, so that no cache takes its pages again), for
 * zs_pool_report(), and to an allocation or a migration that finds no
 * other page.  Lock order: class lock, cache lock, page_lock.
 */
int
page_cache_init(struct zs_pool *pool)
{
	if (pool->cfg.page_cache == 0)
		return 0;
	pool->page_caches = pool_cpu_array_new(pool, sizeof(struct page_cache),
	    offsetof(struct page_cache, lock), &pool->page_cache_mask);
	return pool->page_caches != NULL ? 0 : -ENOMEM;
}

/* The pages go with the sections. */
void
page_cache_destroy(struct zs_pool *pool)
{
	pool_cpu_array_free(pool->page_caches, sizeof(struct page_cache),
	    offsetof(struct page_cache, lock), pool->page_cache_mask);
	pool->page_caches = NULL;
}

/*
 * A page for zspage owner: from this CPU's cache, filled first if empty
 * from the free pages there are (a cache never maps a section), or
 * straight from the sections when there are too few: the page that maps
 * a section, and near max_size the last pages, go one at a time.  0 or
 * -ENOMEM.
 */
int
page_cache_alloc(struct zs_pool *pool, uint32_t owner, uint32_t *pfnp)
{
	struct page_cache *pc;

	if (pool->page_caches == NULL)
		return section_alloc_pages(pool, 1, pfnp, PAGE_ZSPAGE, owner,
		    0, 0);
	pc = &pool->page_caches[pool_cpu_list(pool->page_cache_mask)];
	pthread_mutex_lock(&pc->lock);
	if (pc->n == 0 && section_alloc_pages(pool, pool->cfg.page_cache,
	    pc->pfn, PAGE_ZSPAGE, OWNER_CACHED, 0,
	    ALLOC_NOGROW | ALLOC_FIRST_NOW) == 0) {
		pc->first = 0;
		LOCKED_SET(pc->n, pool->cfg.page_cache);
	}
	if (pc->n == 0) {
		pthread_mutex_unlock(&pc->lock);
		return section_alloc_pages(pool, 1, pfnp, PAGE_ZSPAGE, owner,
		    0, 0);
	}
	*pfnp = pc->pfn[pc->first++];
	LOCKED_SUB(pc->n, 1);
	section_page(pool, *pfnp)->owner = owner;
	pthread_mutex_unlock(&pc->lock);
	return 0;
}

/*
 * Give every cached page back to the free list of its section.  Returns
 * how many there were.
 */
uint64_t
page_cache_drain(struct zs_pool *pool)
{
	struct page_cache *pc;
	uint64_t drained = 0;
	unsigned int i;

	for (i = 0; pool->page_caches != NULL && i <= pool->page_cache_mask;
	    i++) {
		pc = &pool->page_caches[i];
		pthread_mutex_lock(&pc->lock);
		section_free_pages(pool, pc->pfn + pc->first, pc->n);
		drained += pc->n;
		LOCKED_SET(pc->n, 0);
		pthread_mutex_unlock(&pc->lock);
	}
	return drained;
}

/*
 * Pages in the caches now, for zs_pool_stats(): read without the caches'
 * locks, so a cache being filled or drained meanwhile may be counted
 * before or after.
 */
uint64_t
page_cache_count(struct zs_pool *pool)
{
	uint64_t n = 0;
	unsigned int i;

	if (pool->page_caches == NULL)
		return 0;
	for (i = 0; i <= pool->page_cache_mask; i++)
		n += UNLOCKED_GET(pool->page_caches[i].n);
	return n;
}
