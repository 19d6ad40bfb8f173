/*
 * zs-internal.h - libzs internals: the structures, their locks and the
 * prototypes shared between the library's files.
 *
 * Layout of the pool
 * ------------------
 * The pool grows by sections: anonymous mappings of cfg.section_size bytes.
 * The first pages of a section hold the section header and the section's
 * memmap -- one struct zs_page per page of the section -- so the pool needs
 * no memory outside itself to describe its pages, and unmapping a section
 * removes its descriptors with it.  Pages are named by a pool page number
 * (pfn): section index << sec_shift | page index within the section.
 *
 * Objects live in zspages: 1..max_chain pages (not contiguous) holding
 * objs_per_zspage slots of one size class back to back, so a slot may
 * straddle two pages.  A zspage's pages are populated only while some slot
 * in them is in use (zspage.c).  Every slot starts with an 8-byte header (struct
 * obj_hdr): for a live object, the index of its handle and its size; for a
 * free slot, the next free slot.  The huge class has no zspages: each huge
 * object is one page whose descriptor holds its handle and size.
 *
 * A handle is (generation << 32 | index) into the handle table, a two-level
 * table of 64-bit words.  The word says where the object is (zspage id and
 * slot, or pfn for a huge object), and carries a PIN bit.
 *
 * Locks, in the order they are taken (a lock may be taken while holding
 * only those above it):
 *
 *   1. handle PIN bit  -- bit spinlock in the handle word.  Held while an
 *      object's bytes are read or written and while it is freed.  Whoever
 *      moves an object (compaction) holds the class lock and may only
 *      *try* to pin; it skips objects it cannot pin.  zs_malloc_write's
 *      handle is born pinned, under the class lock, and stays pinned
 *      while the bytes are copied in after that lock is dropped: no one
 *      can be waiting for it yet, and its holder takes no lock meanwhile.
 *   1b. a free_shard's lock -- a list of batched frees; held while its
 *      batch is freed, so that a drain waits for batches under way.
 *      Taken with no pin held (the handles on it are dead).
 *   2. class->lock     -- the class's fullness lists, its zspages' inuse,
 *      freeobj, fullness and flags, every slot header in them, the
 *      class counters and the class's free handles.
 *   2b. a page_cache's lock -- a CPU's cached pages (section.c).  Held
 *      while pages are put in, which takes page_lock (to check their
 *      sections) and frees those left over, and while it is drained,
 *      which takes page_lock and report_lock.  Never held while pages
 *      are taken from the sections (they may be faulted in, or a
 *      section mapped): the cache is filled by page_reserve_fill, with
 *      no lock held, and the pages put in after.
 *   3. pool->grow_lock -- serialises mapping new sections and unmapping
 *      them (offline.c holds offline_lock, then this).
 *   4. leaf locks, never nested with each other except page_lock under
 *      grow_lock: pool->page_lock (section free lists, page descriptors,
 *      section states), pool->handle_lock (the handle table's free
 *      list and growth; taken under a class lock to refill or drain the
 *      class's own free handles), pool->
 *      zspage_lock (zspage id free list), pool->free_lock (async free
 *      queue), pool->report_lock (reporting state).
 *
 * pool->offline_lock comes before all of these: it is held across a whole
 * section offline, which takes class locks.
 *
 * Prefault (section.c, free.c): pool->prefault_run, the one run of free
 * pages the free worker may be faulting in, is under page_lock (reporting
 * leaves its pages alone meanwhile); pool->prefault, the worker's copy of
 * its address range, under free_lock.  The worker touches the run with no
 * lock held, and ends it under page_lock; section_remove() refuses a
 * section while the run is in it, so the run's pages stay mapped.
 *
 * No fault under a pin or a class lock.  A reader (zs_obj_read_begin,
 * the swap-in path, often at real-time priority) waits for a pin; a pin
 * holder may wait for a class lock (zs_free, a migration) and a class
 * lock holder for a CPU's page cache lock.  A page fault on a machine
 * that swaps may take milliseconds (reclaim, even I/O), so none of those
 * is held while memory that may not be resident is touched: pages are
 * faulted in when taken, by section_alloc_pages(), which is never called
 * with one held; a class lock holder that needs a page takes a resident
 * one from its CPU's cache or from a reserve of its own (struct
 * page_reserve), or else drops the lock, fills the reserve, takes the
 * lock again and looks at everything afresh.  Likewise the handle table
 * hands out words only below handle_ready, faulted in beforehand.  In
 * debug builds each thread counts the class locks, cache locks and pins
 * it holds (hold_take, hold_drop): whatever may fault asserts that it
 * holds none, and memory written while holding one must be resident
 * (os_assert_resident, by mincore).
 *
 * A handle word is only changed with its PIN bit held, or, while the
 * handle is not allocated, by the owner of handle_lock or of the lock of
 * the class that keeps it.  A handle whose free waits in a batch is dead
 * (ALLOC clear, the object's place kept) and on no free list: no one can
 * pin it, and its slot still reads as live, so its object stays put until
 * the batch frees the slot under the class lock.
 *
 * Statistics (stats.c) take none of these locks: zs_pool_stats() may be
 * called from any thread at any time, and must not make allocation and
 * free wait.  Every counter it reports is either an atomic updated
 * without a lock (STAT_ADD) or a field written only under its lock but
 * declared _Atomic, so that it can be read without that lock (LOCKED_ADD
 * and UNLOCKED_GET below).  Each figure is exact at the moment it is
 * read; the figures are not one snapshot of the pool.
 */
#ifndef ZS_INTERNAL_H
#define ZS_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "zs.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif

#define PAGE_SHIFT		12
#define PAGE_SIZE		4096u
#define PAGE_MASK		(PAGE_SIZE - 1)

#define CLASS_STEP		16u		/* slot sizes are multiples */
#define CLASS_MIN		32u
#define NR_SIZE_SLOTS		(PAGE_SIZE / CLASS_STEP)	/* 16..4096 */
#define OBJ_HDR_SIZE		8u
#define MAX_OBJS_PER_ZSPAGE	4095u		/* 12 bits in a handle word */
#define OBJ_NONE		0xffffu		/* end of a zspage's free chain */

#define FULLNESS_EMPTY		0
#define FULLNESS_FULL		(ZS_FULLNESS_GROUPS - 1)

#ifdef ZS_DEBUG
void	pool_assert_fail(const char *, const char *, int) __attribute__((noreturn));
#define zs_assert(x)	((x) ? (void)0 : pool_assert_fail(#x, __FILE__, __LINE__))
#else
#define zs_assert(x)	((void)0)
#endif

/*
 * Class locks, CPU cache locks and pins this thread holds (debug builds;
 * see "No fault" above).  A pin counts while a call into the library
 * holds it; the one zs_obj_read_begin() hands its caller is the caller's
 * until zs_obj_read_end(), and not counted meanwhile.
 */
#ifdef ZS_DEBUG
extern _Thread_local unsigned int os_holds;

static inline void
hold_take(void)
{
	os_holds++;
}

static inline void
hold_drop(void)
{
	zs_assert(os_holds > 0);
	os_holds--;
}

static inline void
hold_none(void)
{
	zs_assert(os_holds == 0);
}
#else
static inline void hold_take(void) {}
static inline void hold_drop(void) {}
static inline void hold_none(void) {}
#endif

/* ------------------------------------------------------------------ */
/* Intrusive doubly linked lists.                                       */

struct list_head {
	struct list_head	*next, *prev;
};

static inline void
list_init(struct list_head *h)
{
	h->next = h->prev = h;
}

static inline bool
list_empty(const struct list_head *h)
{
	return h->next == h;
}

static inline void
list_insert(struct list_head *n, struct list_head *prev,
    struct list_head *next)
{
	n->next = next;
	n->prev = prev;
	prev->next = n;
	next->prev = n;
}

static inline void
list_add(struct list_head *n, struct list_head *h)
{
	list_insert(n, h, h->next);
}

static inline void
list_add_tail(struct list_head *n, struct list_head *h)
{
	list_insert(n, h->prev, h);
}

static inline void
list_del(struct list_head *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

#define list_entry(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/* ------------------------------------------------------------------ */
/* Pages and sections (section.c).                                       */

enum page_state {
	PAGE_META = 0,		/* section header or memmap */
	PAGE_FREE,		/* on its section's free list */
	PAGE_ZSPAGE,		/* part of a zspage: owner = zspage id; or
				   in a CPU's page cache: OWNER_CACHED */
	PAGE_HUGE,		/* one huge object: owner = handle index */
};

#define OWNER_CACHED	UINT32_MAX	/* no zspage id is */

#define PG_REPORTED	0x01	/* free and not resident: given back to the
				   OS, or never touched since mapped */
#define PG_POPULATING	0x02	/* in a run an allocation is faulting in
				   (section.c): not reported until it is
				   done; kept while the page is taken and
				   freed again meanwhile */

/*
 * One per page of a section, in the section's own memmap.  All fields under
 * pool->page_lock, except owner and huge_size of an allocated page, which
 * are written before the page is published and then only read.  (A page
 * in a CPU's cache is allocated with owner OWNER_CACHED; the cache's lock
 * guards it until the page is handed out with its zspage's id.  One in a
 * caller's page_reserve gets its zspage's id under that zspage's class
 * lock, with page_set_owner(): an offline may be reading it meanwhile,
 * with page_owner().)
 */
struct zs_page {
	uint32_t	next, prev;	/* free list, page index; PAGE_NIL */
	uint32_t	owner;		/* see enum page_state */
	uint8_t		state;		/* enum page_state */
	uint8_t		flags;		/* PG_* */
	uint16_t	huge_size;	/* PAGE_HUGE: the object's size */
};

#define PAGE_NIL	UINT32_MAX

/*
 * An isolated section is being emptied (offline.c): nothing is allocated
 * from it, and the pages freed into it stay on its own free list, which
 * does not count in pool->nr_free_pages.
 */
enum section_state {
	SECTION_ONLINE = 0,
	SECTION_ISOLATED,
};

/*
 * The header at the start of every section.  index, nr_pages and
 * first_data are constant; everything else is under pool->page_lock.
 */
struct section {
	uint32_t	index;		/* slot in pool->sections */
	uint32_t	nr_pages;	/* pages in the section, memmap included */
	uint32_t	first_data;	/* pages before it hold header + memmap */
	uint32_t	state;		/* enum section_state */
	uint32_t	free_head;	/* free list head, PAGE_NIL if empty */
	uint32_t	free_tail;
	uint32_t	nr_free;	/* pages on the free list */
	uint32_t	nr_reported;	/* of those, PG_REPORTED */
	uint32_t	nr_reporting;	/* free, off the list, being reported */
	uint32_t	unused;
	struct zs_page	pages[];	/* memmap */
};

/* ------------------------------------------------------------------ */
/* Size classes and zspages (class.c, zspage.c).                          */

/*
 * A zspage.  id and class_idx are constant while allocated.  pfn[] and
 * nr_pages change under the class lock, and only for pages no live object
 * overlaps, so whoever holds a live object's pin may read the pfn[] entries
 * of that object's pages without the lock.  list, inuse, freeobj, fresh,
 * fullness and flags are under the class lock -- or, once queued for async
 * free, list under pool->free_lock.
 */
struct zspage {
	struct list_head	list;	/* fullness list, free queue, id free list */
	uint32_t	id;
	uint16_t	inuse;		/* live objects */
	uint16_t	freeobj;	/* first freed slot or OBJ_NONE */
	uint16_t	fresh;		/* slots from here on never used yet */
	uint16_t	class_idx;
	uint8_t		fullness;	/* group, index into class->fullness */
	uint8_t		nr_pages;	/* populated pages */
	uint8_t		flags;		/* ZSPAGE_* */
	uint8_t		unused;
	uint32_t	pfn[ZS_MAX_CHAIN];
};

#define PFN_NONE	UINT32_MAX	/* a zspage page not populated */

#define ZSPAGE_ISOLATED	0x01	/* off its fullness list while compacted
				   or migrated: set and cleared in one hold
				   of the class lock, so no one else sees it */
#define ZSPAGE_FREEING	0x02	/* empty, off its list, about to be freed */

/*
 * Frees waiting to be carried out together (free.c): a list per CPU (CPUs
 * beyond 64 share), on cache lines of its own, all under its lock, which
 * is also held while a batch taken off it is freed.  Each entry is the
 * index of a handle whose word has ALLOC clear but still says where the
 * object is; its slot still holds the object's header, so no one can pin,
 * move or free it again.
 */
struct free_shard {
	pthread_mutex_t		lock;
	_Atomic unsigned int	n;		/* entries not yet freed */
	uint32_t		hidx[ZS_MAX_FREE_BATCH];
} __attribute__((aligned(64)));

#define CLASS_HANDLES		32	/* free handles a class keeps */
#define CLASS_HANDLE_BATCH	16	/* moved to or from the table's list */

/*
 * Resident pages a caller took, with no lock held, for a class lock hold
 * to come (section.c): PAGE_ZSPAGE with owner OWNER_CACHED until a
 * zspage takes one (page_set_owner).  Those left over go back with
 * page_reserve_release().
 */
struct page_reserve {
	unsigned int	n;
	uint32_t	pfn[ZS_MAX_CHAIN];
};

/*
 * A size class.  size, objs_per_zspage, pages_per_zspage, index and huge
 * are constant after pool creation; the rest is under lock.
 *
 * The class keeps the counters of its objects (the pool's totals are their
 * sums) and a few free handle indices of its own, so that malloc and free
 * take no other lock and touch no counter shared by every class.
 * objs_used, bytes_requested and nr_pages are summed for zs_pool_stats()
 * without the lock: written with LOCKED_ADD/LOCKED_SUB.
 */
struct size_class {
	pthread_mutex_t		lock;
	uint16_t		size;		/* slot size, header included */
	uint16_t		objs_per_zspage;
	uint16_t		index;		/* in pool->class_store */
	uint8_t			pages_per_zspage;
	uint8_t			huge;
	struct list_head	fullness[ZS_FULLNESS_GROUPS];
	uint64_t		nr_zspages;	/* on the fullness lists (or huge
						   pages) and isolated */
	_Atomic uint64_t	nr_pages;	/* populated pages of those
						   zspages (not huge) */
	_Atomic uint64_t	objs_used;
	_Atomic uint64_t	bytes_requested;	/* by the objs_used */
	uint64_t		nr_in_group[ZS_FULLNESS_GROUPS];
	unsigned int		nr_handles;
	uint32_t		handles[CLASS_HANDLES];	/* free, ALLOC clear */
};

/* The header at the start of every slot of a zspage. */
struct obj_hdr {
	uint32_t	tag;		/* live: handle index << 1 | 1;
					   free: next free slot << 1 */
	uint16_t	size;		/* live: the size asked for */
	uint16_t	unused;
};

/* ------------------------------------------------------------------ */
/* Handles (handle.c).                                                   */

/*
 * A handle word:
 *   bit  0      PIN
 *   bit  1      ALLOC: the handle is live
 *   bits 2-17   generation, also in the handle's upper half
 *   bit  18     HUGE: bits 31-63 are a pfn, not a zspage id
 *   bits 19-30  slot index in the zspage
 *   bits 31-63  zspage id / pfn; for a free handle, the next free index
 */
#define HW_PIN		(1ull << 0)
#define HW_ALLOC	(1ull << 1)
#define HW_GEN_SHIFT	2
#define HW_GEN_MASK	(0xffffull << HW_GEN_SHIFT)
#define HW_HUGE		(1ull << 18)
#define HW_OBJ_SHIFT	19
#define HW_OBJ_MASK	(0xfffull << HW_OBJ_SHIFT)
#define HW_LOC_SHIFT	31
#define HW_LOC_MASK	(~0ull << HW_LOC_SHIFT)
#define HW_WHERE_MASK	(HW_HUGE | HW_OBJ_MASK | HW_LOC_MASK)

#define HW_GEN(w)	((uint32_t)(((w) & HW_GEN_MASK) >> HW_GEN_SHIFT))
#define HW_OBJ(w)	((uint32_t)(((w) & HW_OBJ_MASK) >> HW_OBJ_SHIFT))
#define HW_LOC(w)	((uint32_t)((w) >> HW_LOC_SHIFT))

static inline uint64_t
hw_where(bool huge, uint32_t obj, uint32_t loc)
{
	return (huge ? HW_HUGE : 0) | ((uint64_t)obj << HW_OBJ_SHIFT) |
	    ((uint64_t)loc << HW_LOC_SHIFT);
}

#define HANDLE_CHUNK_SHIFT	16
#define HANDLE_CHUNK		(1u << HANDLE_CHUNK_SHIFT)	/* words */
#define HANDLE_DIR		(1u << 15)	/* 2^31 handles at most */
#define HANDLE_MAX		(HANDLE_DIR * HANDLE_CHUNK)

#define ZSPAGE_CHUNK_SHIFT	12
#define ZSPAGE_CHUNK		(1u << ZSPAGE_CHUNK_SHIFT)	/* structs */
#define ZSPAGE_DIR		(1u << 18)

/* ------------------------------------------------------------------ */
/* The pool (pool.c).                                                    */

struct zs_pool {
	struct zs_pool_config	cfg;
	struct zs_os_ops	ops;
	unsigned int		sec_shift;	/* log2(pages per section) */
	uint32_t		max_sections;

	/* size class of every slot size (NR_SIZE_SLOTS of 16 bytes) */
	struct size_class	*size_class[NR_SIZE_SLOTS];
	struct size_class	 class_store[NR_SIZE_SLOTS + 1]; /* + huge */
	struct size_class	*classes[NR_SIZE_SLOTS + 1]; /* distinct, by size */
	unsigned int		 nr_classes;
	struct size_class	*huge_class;
	size_t			 huge_size;	/* smallest object size in it */

	/* handles: dir is written under handle_lock, read lock-free */
	pthread_mutex_t		 handle_lock;
	_Atomic(_Atomic uint64_t *) *handle_dir;
	uint32_t		 handle_free;	/* free list head, 0 = none */
	_Atomic uint32_t	 handle_top;	/* indices below were issued */
	uint32_t		 handle_ready;	/* words below are mapped and
						   faulted in (handle_lock) */

	/* zspage structs: dir written under zspage_lock, read lock-free */
	pthread_mutex_t		 zspage_lock;
	_Atomic(struct zspage *) *zspage_dir;
	struct list_head	 zspage_free;
	_Atomic uint32_t	 zspage_top;	/* ids below were issued */

	/* sections and free pages */
	pthread_mutex_t		 grow_lock;
	pthread_mutex_t		 page_lock;
	_Atomic(struct section *) *sections;	/* [max_sections] */
	uint32_t		 nr_section_slots; /* high-water mark */
	uint32_t		 free_hint;	/* no free pages below this slot */
	struct prefault_run {		/* the run the worker has, if any */
		struct section	*sec;	/* NULL: none */
		uint32_t	 lo, hi;	/* its pages [lo, hi) in sec */
	}			 prefault_run;
	/* under page_lock, read without it by stats.c */
	_Atomic uint64_t	 nr_sections;
	_Atomic uint64_t	 nr_free_pages;	/* on lists of online sections */
	_Atomic uint64_t	 nr_reported_pages; /* in all sections */
	_Atomic uint64_t	 nr_memmap_pages;

	/* section offline (offline.c): one at a time */
	pthread_mutex_t		 offline_lock;

	/* free page reporting (report.c), under report_lock */
	pthread_mutex_t		 report_lock;
	pthread_cond_t		 report_wake;
	pthread_cond_t		 report_idle;
	_Atomic int		 report_state;	/* enum report_state */
	bool			 report_again;	/* requested while active */
	bool			 report_stop;
	bool			 report_running;
	uint32_t		 report_cursor;	/* section to start from */
	pthread_t		 report_thread;

	/* asynchronous free (free.c), under free_lock */
	pthread_mutex_t		 free_lock;
	pthread_cond_t		 free_wake;	/* work queued or stop */
	pthread_cond_t		 free_idle;	/* queue drained */
	struct list_head	 free_queue;
	_Atomic uint64_t	 nr_queued;	/* queued or being freed, and the
					   prefault run; read by stats.c */
	bool			 free_stop;
	bool			 free_running;
	bool			 free_ready;	/* free_worker_start() ran: the
					   queue and its lock exist */
	struct prefault {			/* for the worker to fault in */
		char		*addr;
		size_t		 len;		/* 0: none */
	}			 prefault;
	pthread_t		 free_thread;

	/* batched frees (free.c): NULL when cfg.free_batch < 2 */
	struct free_shard	*free_shards;
	unsigned int		 free_shard_mask;	/* shards - 1 */

	/* free pages kept per CPU (section.c): NULL when cfg.page_cache 0 */
	struct page_cache	*page_caches;
	unsigned int		 page_cache_mask;	/* caches - 1 */

	/* counters, updated with relaxed atomics (objects: per class) */
	_Atomic uint64_t	 pages_used;
	_Atomic uint64_t	 nr_zspages;
	_Atomic uint64_t	 pages_compacted;
	_Atomic uint64_t	 objs_compacted;
	_Atomic uint64_t	 malloc_failures;
	_Atomic uint64_t	 pages_migrated;
	_Atomic uint64_t	 sections_offlined;
	_Atomic uint64_t	 isolated_zspages;

	/* arena.c: the memfd the pool lives in; NULL: private memory */
	struct arena		*arena;
	bool			 recovering;	/* attached, not recovered */
};

enum report_state {
	REPORT_IDLE = 0,	/* nothing to do */
	REPORT_REQUESTED,	/* pages were freed: run after the delay */
	REPORT_ACTIVE,		/* running */
};

#define STAT_ADD(pool, field, n) \
	atomic_fetch_add_explicit(&(pool)->field, (n), memory_order_relaxed)
#define STAT_SUB(pool, field, n) \
	atomic_fetch_sub_explicit(&(pool)->field, (n), memory_order_relaxed)
#define STAT_GET(pool, field) \
	atomic_load_explicit(&(pool)->field, memory_order_relaxed)

/*
 * An _Atomic counter that only its lock's holder writes: a relaxed load
 * and store, no read-modify-write (which would cost a locked instruction
 * on every malloc and free for nothing), so that stats.c can read it
 * without the lock (UNLOCKED_GET).  The holder may read it as it likes.
 */
#define LOCKED_ADD(var, n) \
	atomic_store_explicit(&(var), atomic_load_explicit(&(var), \
	    memory_order_relaxed) + (n), memory_order_relaxed)
#define LOCKED_SUB(var, n) \
	atomic_store_explicit(&(var), atomic_load_explicit(&(var), \
	    memory_order_relaxed) - (n), memory_order_relaxed)
#define LOCKED_SET(var, v) \
	atomic_store_explicit(&(var), (v), memory_order_relaxed)
#define UNLOCKED_GET(var) \
	atomic_load_explicit(&(var), memory_order_relaxed)

/*
 * memcpy for object and page copies (hundreds to thousands of bytes).
 * When it can bound the length (a slot is at most a page), GCC inlines
 * memcpy as "rep movsq", which copied at well under half the speed of the
 * C library's memcpy in bench/zs-bench.  The empty asm hides the bound, so
 * the call stays.
 */
static inline void
bulk_copy(void *dst, const void *src, size_t n)
{
	__asm__("" : "+r"(n));
	memcpy(dst, src, n);
}

/* pool.c */
struct zs_pool *pool_new(const struct zs_pool_config *);
int	 pool_start(struct zs_pool *);
void	 pool_mutex_init(struct zs_pool *, pthread_mutex_t *);
void	*pool_cpu_array_new(struct zs_pool *, size_t, size_t, unsigned int *);
void	 pool_cpu_array_free(void *, size_t, size_t, unsigned int);
unsigned int pool_cpu_list(unsigned int);

/* stats.c */
struct obj_totals {
	uint64_t	objects, huge_objects, bytes_requested, bytes_held;
	uint64_t	pages_freeable;
};
void	 pool_obj_totals(struct zs_pool *, struct obj_totals *);

/* os.c */
extern const struct zs_os_ops os_default_ops;
void	*os_map(struct zs_pool *, size_t);
void	 os_unmap(struct zs_pool *, void *, size_t);
int	 os_advise(struct zs_pool *, void *, size_t, int);
void	 os_populate(struct zs_pool *, void *, size_t);
#ifdef ZS_DEBUG
void	 os_assert_resident(const void *, size_t);
#else
static inline void os_assert_resident(const void *p, size_t n) {}
#endif

/* Class locks, counted in debug builds. */
static inline void
class_lock(struct size_class *c)
{
	pthread_mutex_lock(&c->lock);
	hold_take();
}

static inline void
class_unlock(struct size_class *c)
{
	hold_drop();
	pthread_mutex_unlock(&c->lock);
}

/* section.c */
/*
 * A CPU's page cache: pages taken off the sections' lists for the zspages
 * of allocations on that CPU, PAGE_ZSPAGE with owner OWNER_CACHED until
 * one is handed out (the taker writes the owner, under lock, before the
 * zspage publishes the page).  pfn[first, first + n) are left.
 */
struct page_cache {
	pthread_mutex_t		lock;
	unsigned int		first;
	_Atomic unsigned int	n;	/* read by stats.c without the lock */
	uint32_t		pfn[ZS_MAX_PAGE_CACHE];
} __attribute__((aligned(64)));

#define ALLOC_NOGROW	0x01	/* fail rather than map a section */
int	 section_alloc_pages(struct zs_pool *, unsigned int, uint32_t *,
	    enum page_state, uint32_t, uint16_t, int);
void	 page_set_owner(struct zs_pool *, uint32_t, uint32_t);
uint32_t page_owner(const struct zs_page *);
int	 page_cache_init(struct zs_pool *);
void	 page_cache_destroy(struct zs_pool *);
int	 page_cache_take(struct zs_pool *, uint32_t, uint32_t *);
int	 page_reserve_fill(struct zs_pool *, struct page_reserve *, int);
int	 page_reserve_take(struct zs_pool *, struct page_reserve *,
	    unsigned int);
void	 page_reserve_release(struct zs_pool *, struct page_reserve *);
uint64_t page_cache_drain(struct zs_pool *);
void	 prefault_run_end(struct zs_pool *, bool);
uint64_t page_cache_count(struct zs_pool *);
struct section *section_of(struct zs_pool *, uint32_t);
int	 section_isolate(struct zs_pool *, uint32_t, struct section **);
void	 section_unisolate(struct zs_pool *, struct section *);
bool	 section_is_empty(struct zs_pool *, struct section *);
int	 section_remove(struct zs_pool *, struct section *);
unsigned int section_take_unreported(struct zs_pool *, uint32_t,
	    struct section **, uint32_t *, unsigned int);
void	 section_put_reported(struct zs_pool *, struct section *,
	    const uint32_t *, unsigned int, bool);
void	 section_free_pages(struct zs_pool *, const uint32_t *, unsigned int);
struct zs_page *section_page(struct zs_pool *, uint32_t);
void	 section_destroy_all(struct zs_pool *);

static inline char *
pfn_to_addr(struct zs_pool *pool, uint32_t pfn)
{
	struct section *sec = atomic_load_explicit(
	    &pool->sections[pfn >> pool->sec_shift], memory_order_acquire);

	return (char *)sec + ((size_t)(pfn & ((1u << pool->sec_shift) - 1))
	    << PAGE_SHIFT);
}

/* class.c */
int	 class_init_all(struct zs_pool *);
void	 class_destroy_all(struct zs_pool *);
struct size_class *class_for_size(struct zs_pool *, size_t);
unsigned int class_fullness(const struct size_class *, unsigned int);
void	 class_insert_zspage(struct size_class *, struct zspage *);
void	 class_remove_zspage(struct size_class *, struct zspage *);
void	 class_regroup_zspage(struct size_class *, struct zspage *);
void	 class_retire_zspage(struct size_class *, struct zspage *);
uint64_t class_freeable_pages(const struct size_class *);
struct zspage *class_fullest_zspage(struct size_class *);
struct zspage *class_emptiest_zspage(struct size_class *);

/* handle.c */
int	 handle_table_init(struct zs_pool *);
void	 handle_table_destroy(struct zs_pool *);
int	 handle_table_grow(struct zs_pool *);
uint32_t class_handle_get(struct zs_pool *, struct size_class *);
void	 class_handle_put(struct zs_pool *, struct size_class *, uint32_t);
_Atomic uint64_t *handle_word(struct zs_pool *, uint32_t);
_Atomic uint64_t *handle_lookup(struct zs_pool *, zs_handle_t);
uint32_t handle_publish(_Atomic uint64_t *, uint64_t, bool);
int	 handle_pin(struct zs_pool *, zs_handle_t, _Atomic uint64_t **,
	    uint64_t *);
bool	 handle_trypin(_Atomic uint64_t *, uint64_t *);
void	 handle_unpin(_Atomic uint64_t *);
void	 handle_set_unpin(_Atomic uint64_t *, uint64_t);
int	 handle_bad(void);

/* zspage.c */
int	 zspage_table_init(struct zs_pool *);
void	 zspage_table_destroy(struct zs_pool *);
struct zspage *zspage_of(struct zs_pool *, uint32_t);
struct zspage *zspage_create(struct zs_pool *, struct size_class *);
void	 zspage_destroy(struct zs_pool *, struct zspage *);
struct obj_hdr *zspage_slot(struct zs_pool *, const struct size_class *,
	    const struct zspage *, unsigned int, unsigned int *);
int	 zspage_alloc_slot(struct zs_pool *, struct size_class *,
	    struct zspage *, uint32_t, size_t, struct page_reserve *);
int	 zspage_populate_slot(struct zs_pool *, struct size_class *,
	    struct zspage *, unsigned int, struct page_reserve *);
unsigned int zspage_pages_in(struct zs_pool *, const struct zspage *,
	    const struct section *);
bool	 zspage_slot_live(struct zs_pool *, const struct size_class *,
	    const struct zspage *, unsigned int);
void	 zspage_rebuild_chain(struct zs_pool *, const struct size_class *,
	    struct zspage *);
unsigned int zspage_release_free_pages(struct zs_pool *,
	    struct size_class *, struct zspage *);
void	 zspage_free_slot(struct zs_pool *, struct size_class *,
	    struct zspage *, unsigned int);
void	 zspage_copy_in(struct zs_pool *, const struct size_class *,
	    const struct zspage *, unsigned int, size_t, const void *, size_t);
void	 zspage_copy_out(struct zs_pool *, const struct size_class *,
	    const struct zspage *, unsigned int, size_t, void *, size_t);

/* report.c */
int	 report_start(struct zs_pool *);
void	 report_stop(struct zs_pool *);
void	 report_request(struct zs_pool *);

/* offline.c */
int	 migrate_zspage_pages(struct zs_pool *, struct size_class *,
	    struct zspage *, const struct section *, uint32_t,
	    struct page_reserve *);

/* free.c */
int	 free_worker_start(struct zs_pool *);
void	 free_worker_stop(struct zs_pool *);
void	 free_release_zspage(struct zs_pool *, struct zspage *);
void	 free_prefault(struct zs_pool *, char *, size_t);
void	 free_zspages_now(struct zs_pool *, struct list_head *);
int	 free_batch_init(struct zs_pool *);
void	 free_batch_destroy(struct zs_pool *);
void	 free_defer(struct zs_pool *, uint32_t);
unsigned int free_drain(struct zs_pool *);
uint64_t free_pending_count(struct zs_pool *);

/* arena.c */
void	*arena_handle_chunk(struct zs_pool *, uint32_t);
void	*arena_zspage_chunk(struct zs_pool *, uint32_t);
struct section *arena_section(struct zs_pool *, uint32_t);
int	 arena_release(struct zs_pool *, void *, size_t);
void	 arena_unmap(struct zs_pool *);

/* obj.c */
void	 obj_free_slot(struct zs_pool *, uint32_t, uint64_t);

#endif /* ZS_INTERNAL_H */
