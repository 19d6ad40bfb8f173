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
 * cfg.prefault_ahead and the async worker, the run is the pages taken and
 * prefault_ahead more; the caller faults in what it takes and the worker
 * does the rest meanwhile (one run at a time, pool->prefault_run:
 * while the worker has one, runs are POPULATE_RUN pages and the
 * caller's).  Otherwise the run is POPULATE_RUN pages, all the caller's.
 *
 * Every page section_alloc_pages() returns is resident: the pages it
 * took that may not be -- reported ones, and those of a run someone is
 * still faulting in -- it faults in itself before it returns, if the
 * run did not.  Its caller holds no class lock and no pin (zs-internal.h,
 * "No fault"), and whoever writes the pages later under one takes no
 * fault.
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

/*
 * A run was claimed as resident but its madvise failed: the pages of it
 * still free may not be resident, so they count as reported again, and
 * whoever takes one faults it in first.  (One taken and freed meanwhile
 * was faulted in by its taker: counted as reported, it is merely not
 * reported again.)  page_lock held.
 */
static void
run_unclaim(struct zs_pool *pool, struct section *sec, uint32_t lo,
    uint32_t hi)
{
	uint32_t i;

	for (i = lo; i < hi; i++)
		if (sec->pages[i].state == PAGE_FREE &&
		    !(sec->pages[i].flags & PG_REPORTED)) {
			sec->pages[i].flags |= PG_REPORTED;
			sec->nr_reported++;
			pool->nr_reported_pages++;
		}
}

/* The worker's run is done (or was never handed over); faulted in or not. */
void
prefault_run_end(struct zs_pool *pool, bool in)
{
	struct prefault_run *run = &pool->prefault_run;

	pthread_mutex_lock(&pool->page_lock);
	if (!in)
		run_unclaim(pool, run->sec, run->lo, run->hi);
	run->sec = NULL;
	pthread_mutex_unlock(&pool->page_lock);
}

/*
 * Fault in a claimed run, the pages this call takes (at most n, the first
 * of the run) here, and with pop->ahead the rest on the worker.  Returns
 * how many bytes from pop->addr are in now, 0 if the madvise failed (the
 * caller then faults in its own pages one by one).  page_lock not held;
 * the caller holds the run's first page, so its section stays.
 */
static size_t
populate(struct zs_pool *pool, struct populate *pop, unsigned int n)
{
	size_t now = pop->len;
	uint32_t i;
	bool in;

	if (pop->ahead && (size_t)n << PAGE_SHIFT < now)
		now = (size_t)n << PAGE_SHIFT;
	in = os_advise(pool, pop->addr, now, MADV_POPULATE_WRITE) == 0;
	if (pop->ahead) {
		/* Failed: the worker tries the whole run, ends it either way. */
		if (!in)
			free_prefault(pool, pop->addr, pop->len);
		else if (now < pop->len)
			free_prefault(pool, pop->addr + now, pop->len - now);
		else
			prefault_run_end(pool, true);
	} else {
		/* Free ones may be reported now: they stay out. */
		pthread_mutex_lock(&pool->page_lock);
		for (i = pop->lo; i < pop->hi; i++)
			pop->sec->pages[i].flags &= ~PG_POPULATING;
		if (!in)
			run_unclaim(pool, pop->sec, pop->lo, pop->hi);
		pthread_mutex_unlock(&pool->page_lock);
	}
	pop->len = 0;
	return in ? now : 0;
}

/*
 * Fault in the pages pfns[i] with bit i of cold set, but for those in
 * [lo, hi), which the run took care of.  Adjacent pages go together.
 */
static void
populate_cold(struct zs_pool *pool, const uint32_t *pfns, unsigned int n,
    uint64_t cold, const char *lo, const char *hi)
{
	unsigned int i;
	char *p, *end;

	for (i = 0; i < n; i++) {
		if (!(cold >> i & 1))
			continue;
		p = pfn_to_addr(pool, pfns[i]);
		if (p >= lo && p < hi)
			continue;
		end = p + PAGE_SIZE;
		while (i + 1 < n && (cold >> (i + 1) & 1) &&
		    pfn_to_addr(pool, pfns[i + 1]) == end &&
		    !(end >= lo && end < hi)) {
			end += PAGE_SIZE;
			i++;
		}
		os_populate(pool, p, (size_t)(end - p));
	}
}

/*
 * Take up to n free pages; page_lock held.  Returns how many were taken,
 * and sets bit i of *cold for each pfns[i] that may not be resident: it
 * was reported, or is in a run being faulted in (by a caller or by the
 * worker), whose fault may not have reached it yet.
 */
static unsigned int
section_take_pages(struct zs_pool *pool, unsigned int n, uint32_t *pfns,
    enum page_state state, uint32_t owner, uint16_t huge_size,
    struct populate *pop, uint64_t *cold)
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
			*cold |= 1ull << got;
		} else if ((pg->flags & PG_POPULATING) ||
		    (sec == pool->prefault_run.sec &&
		    idx >= pool->prefault_run.lo &&
		    idx < pool->prefault_run.hi)) {
			*cold |= 1ull << got;
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
 * Allocate n pages (at most 64), resident, growing the pool by a section
 * when the free lists run dry (unless ALLOC_NOGROW), and mark them
 * state/owner.  No class lock or pin held: this may fault.  0 or -ENOMEM
 * (nothing taken then).
 */
int
section_alloc_pages(struct zs_pool *pool, unsigned int n, uint32_t *pfns,
    enum page_state state, uint32_t owner, uint16_t huge_size, int flags)
{
	struct populate pop = { .len = 0 };
	unsigned int got = 0, took;
	uint64_t avail, cold;
	size_t done;
	char *run;
	int error;

	hold_none();
	zs_assert(n <= 64);
	for (;;) {
		pthread_mutex_lock(&pool->page_lock);
		/* Not enough free pages, and no growing: take none. */
		if ((flags & ALLOC_NOGROW) && pool->nr_free_pages < n) {
			pthread_mutex_unlock(&pool->page_lock);
			return -ENOMEM;
		}
		cold = 0;
		took = section_take_pages(pool, n - got, pfns + got, state,
		    owner, huge_size, &pop, &cold);
		pthread_mutex_unlock(&pool->page_lock);
		run = pop.addr;
		done = pop.len != 0 ? populate(pool, &pop, n) : 0;
		if (cold != 0)
			populate_cold(pool, pfns + got, took, cold, run,
			    run + done);
		got += took;
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
 *
 * A class lock holder takes a cached page (page_cache_take), so the
 * cache's lock is never held across a fault: its pages are resident
 * (section_alloc_pages), and it is filled by page_reserve_fill(), with
 * no lock held while the pages are taken and faulted in, the cache's
 * lock only to put them in.
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

/* A cache's lock, counted in debug builds like a class lock. */
static void
cache_lock(struct page_cache *pc)
{
	pthread_mutex_lock(&pc->lock);
	hold_take();
}

static void
cache_unlock(struct page_cache *pc)
{
	hold_drop();
	pthread_mutex_unlock(&pc->lock);
}

static struct page_cache *
cache_here(struct zs_pool *pool)
{
	return &pool->page_caches[pool_cpu_list(pool->page_cache_mask)];
}

/* Page pfn, taken OWNER_CACHED, is zspage owner's from now on. */
void
page_set_owner(struct zs_pool *pool, uint32_t pfn, uint32_t owner)
{
	__atomic_store_n(&section_page(pool, pfn)->owner, owner,
	    __ATOMIC_RELAXED);
}

/* pg->owner, where its taker may be setting it (page_set_owner). */
uint32_t
page_owner(const struct zs_page *pg)
{
	return __atomic_load_n(&pg->owner, __ATOMIC_RELAXED);
}

/*
 * A page for zspage owner from this CPU's cache, under owner's class
 * lock: resident, and the cache's lock is never held long.  -EAGAIN when
 * the cache is empty (or there is none): the caller drops its lock and
 * fills a page_reserve.
 */
int
page_cache_take(struct zs_pool *pool, uint32_t owner, uint32_t *pfnp)
{
	struct page_cache *pc;

	if (pool->page_caches == NULL)
		return -EAGAIN;
	pc = cache_here(pool);
	cache_lock(pc);
	if (pc->n == 0) {
		cache_unlock(pc);
		return -EAGAIN;
	}
	*pfnp = pc->pfn[pc->first++];
	LOCKED_SUB(pc->n, 1);
	page_set_owner(pool, *pfnp, owner);
	cache_unlock(pc);
	return 0;
}

/*
 * Put n resident pages taken OWNER_CACHED in this CPU's cache, up to
 * cfg.page_cache; the others, and those of a section isolated since they
 * were taken, go back to the free lists.  The section is looked at with
 * the cache's lock and page_lock held, so an offline that isolates it
 * either sees these pages put back, or drains them from the cache after:
 * once it has drained the caches, none takes a page of its section.
 */
static void
page_cache_put(struct zs_pool *pool, const uint32_t *pfns, unsigned int n)
{
	struct page_cache *pc = cache_here(pool);
	uint32_t back[ZS_MAX_PAGE_CACHE];
	unsigned int i, nback = 0;

	zs_assert(n <= ZS_MAX_PAGE_CACHE);
	cache_lock(pc);
	if (pc->first + pc->n + n > ZS_MAX_PAGE_CACHE) {
		memmove(pc->pfn, pc->pfn + pc->first, pc->n *
		    sizeof(*pc->pfn));
		pc->first = 0;
	}
	pthread_mutex_lock(&pool->page_lock);
	for (i = 0; i < n; i++) {
		if (pc->n < pool->cfg.page_cache &&
		    section_of(pool, pfns[i])->state == SECTION_ONLINE)
			pc->pfn[pc->first + pc->n++] = pfns[i];
		else
			back[nback++] = pfns[i];
	}
	pthread_mutex_unlock(&pool->page_lock);
	section_free_pages(pool, back, nback);
	cache_unlock(pc);
}

/*
 * Add a resident page to r, taken OWNER_CACHED, for a class lock hold to
 * come.  No class lock, cache lock or pin held: this may fault, and grow
 * the pool unless ALLOC_NOGROW.  The page comes from this CPU's cache;
 * if that is empty, cfg.page_cache pages are taken from the sections and
 * faulted in, one for r and the rest for the cache (a cache never maps
 * a section: with too few free pages, the page comes alone, as does the
 * page that maps a section, and near max_size the last pages).  0 or
 * -ENOMEM.
 */
int
page_reserve_fill(struct zs_pool *pool, struct page_reserve *r, int flags)
{
	uint32_t pfns[ZS_MAX_PAGE_CACHE];
	struct page_cache *pc;
	int error;

	zs_assert(r->n < ZS_MAX_CHAIN);
	if (pool->page_caches != NULL) {
		pc = cache_here(pool);
		cache_lock(pc);
		if (pc->n > 0) {
			r->pfn[r->n++] = pc->pfn[pc->first++];
			pc->n--;
			cache_unlock(pc);
			return 0;
		}
		cache_unlock(pc);
		if (section_alloc_pages(pool, pool->cfg.page_cache, pfns,
		    PAGE_ZSPAGE, OWNER_CACHED, 0, ALLOC_NOGROW) == 0) {
			r->pfn[r->n++] = pfns[0];
			page_cache_put(pool, pfns + 1,
			    pool->cfg.page_cache - 1);
			return 0;
		}
	}
	error = section_alloc_pages(pool, 1, &r->pfn[r->n], PAGE_ZSPAGE,
	    OWNER_CACHED, 0, flags);
	if (error == 0)
		r->n++;
	return error;
}

/*
 * Make r hold n pages, those missing taken from the sections without
 * growing the pool, nor touching the caches: migration's destinations.
 * No lock or pin held.  0 or -ENOMEM (r as it was).
 */
int
page_reserve_take(struct zs_pool *pool, struct page_reserve *r,
    unsigned int n)
{
	int error;

	zs_assert(n <= ZS_MAX_CHAIN);
	if (r->n >= n)
		return 0;
	error = section_alloc_pages(pool, n - r->n, r->pfn + r->n,
	    PAGE_ZSPAGE, OWNER_CACHED, 0, ALLOC_NOGROW);
	if (error == 0)
		r->n = n;
	return error;
}

/* The pages r has left go to this CPU's cache, or the free lists. */
void
page_reserve_release(struct zs_pool *pool, struct page_reserve *r)
{
	if (r->n == 0)
		return;
	if (pool->page_caches != NULL)
		page_cache_put(pool, r->pfn, r->n);
	else
		section_free_pages(pool, r->pfn, r->n);
	r->n = 0;
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
		cache_lock(pc);
		section_free_pages(pool, pc->pfn + pc->first, pc->n);
		drained += pc->n;
		LOCKED_SET(pc->n, 0);
		cache_unlock(pc);
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
