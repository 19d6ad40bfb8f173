/*
 * zs.h - libzs, a compressed-object allocator derived from zsmalloc.
 *
 * A pool stores objects of 1..ZS_MAX_ALLOC_SIZE bytes packed into zspages
 * (chains of 4 KiB pages) grouped by size class.  zs_malloc() returns a
 * handle, not an address: objects move when the pool is compacted, and only
 * the pool knows where a handle's object currently lives.  Access goes
 * through calls that pin the handle while its bytes are read or written.
 *
 * All calls are thread-safe.  Functions returning int return 0 (or a count)
 * on success and -errno on failure; functions returning a pointer or a
 * handle return NULL / 0 and set errno.  The library never prints and never
 * exits.
 */
#ifndef ZS_H
#define ZS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZS_PAGE_SIZE		4096
#define ZS_MAX_ALLOC_SIZE	ZS_PAGE_SIZE	/* largest object */
#define ZS_MAX_CHAIN		16		/* most pages in one zspage */
#define ZS_FULLNESS_GROUPS	12		/* empty, 1..10 (0-99%), full */
#define ZS_MAX_FREE_BATCH	64		/* largest free_batch */
#define ZS_MAX_PREFAULT		1024		/* largest prefault_ahead */
#define ZS_MAX_PAGE_CACHE	64		/* largest page_cache */

/*
 * 0 is never a valid handle.  A handle holds its object's index in the
 * pool's handle table and a 16-bit generation.  A handle used after
 * zs_free() is refused (EINVAL) as long as its index has been given to
 * new objects fewer than 65,536 times since; the 65,536th of them gets a
 * handle equal to the stale one, which then reaches that object.  This is
 * a debugging aid, not a guarantee: never use a handle after freeing it.
 */
typedef uint64_t zs_handle_t;

struct zs_pool;

/*
 * Every request the pool makes to the OS for memory goes through these
 * three calls.  The defaults are mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|
 * MAP_ANONYMOUS), munmap and madvise.  Tests replace them to make the Nth
 * call fail.  map returns NULL (errno set) on failure.
 */
struct zs_os_ops {
	void	*(*map)(void *ctx, size_t len);
	int	 (*unmap)(void *ctx, void *addr, size_t len);
	int	 (*advise)(void *ctx, void *addr, size_t len, int advice);
	void	 *ctx;
};

struct zs_pool_config {
	/* Bytes the pool grows by; a power of two, 256 KiB .. 1 GiB.
	 * Default 4 MiB. */
	size_t			 section_size;
	/* Most pages a zspage may chain, 1..ZS_MAX_CHAIN.  Default 16. */
	unsigned int		 max_chain;
	/* Cap on the bytes of sections the pool may map; 0 = none. */
	size_t			 max_size;
	/* Non-zero: emptied zspages are freed in batches by a worker
	 * thread.  Default 1. */
	int			 async_free;
	/* Non-zero: a worker gives free pages back to the OS (madvise
	 * MADV_DONTNEED) report_delay_ms after frees happen.  Default 1,
	 * 2000 ms. */
	int			 free_page_reporting;
	unsigned int		 report_delay_ms;
	/* Non-zero: the pool's mutexes inherit priority
	 * (PTHREAD_PRIO_INHERIT), for callers at real-time priority
	 * sharing the pool with normal ones.  Default 0: such mutexes
	 * cost more to take even when free. */
	int			 priority_inherit;
	/* Frees of zspage objects (not huge ones) are gathered per CPU
	 * and carried out this many at a time, so that the cache misses
	 * of one overlap those of the others.  Up to free_batch - 1 of
	 * them per CPU wait for the next zs_free() on that CPU or for a
	 * call that needs them done: zs_compact, zs_pool_flush,
	 * zs_pool_report, migration and offline, a zs_malloc() short of
	 * memory.  Statistics do not carry them out; they count them
	 * apart (objs_pending_free).  0 or 1: every zs_free() is done
	 * before it returns.  At most ZS_MAX_FREE_BATCH.  Default 16. */
	unsigned int		 free_batch;
	/* With async_free: when allocation reaches pages the OS has not
	 * backed yet, the caller faults in the pages it takes (before it
	 * takes any lock a reader may wait for) and the worker thread the
	 * next prefault_ahead, in the background, so that a growing
	 * pool's page faults run beside the allocations instead of inside
	 * them.  0 or 1, or without async_free: the caller faults in a
	 * run of 32 pages itself.  At most ZS_MAX_PREFAULT.  Default 256
	 * (1 MiB). */
	unsigned int		 prefault_ahead;
	/* Free pages each CPU keeps for its zspages, taken from the
	 * sections this many at a time, so that threads filling zspages
	 * on different CPUs do not take turns at the pool's page lists
	 * for every page.  They count as free; zs_pool_report, offline
	 * and shrink take them back, and so does an allocation or a
	 * migration that finds no other page.  0: every
	 * page comes from the sections.  At most ZS_MAX_PAGE_CACHE.
	 * Default 16. */
	unsigned int		 page_cache;
	/* NULL: the default OS calls. */
	const struct zs_os_ops	*os_ops;
};

/* Fill cfg with the defaults. */
void		 zs_pool_config_init(struct zs_pool_config *cfg);

/* cfg may be NULL for the defaults.  NULL + errno (EINVAL, ENOMEM; ENOTSUP
 * where the OS page is not 4096 bytes). */
struct zs_pool	*zs_create_pool(const struct zs_pool_config *cfg);
/* Frees everything, live objects included.  Accepts NULL. */
void		 zs_destroy_pool(struct zs_pool *pool);

/*
 * Pools that outlive their process (arena.c).
 *
 * zs_arena_create() makes a pool whose memory -- sections, page
 * descriptors, handle table, zspage descriptors, and root_size bytes the
 * caller may use as it likes (zs_arena_root) -- is the memfd fd, mapped
 * at one address that is recorded in it.  fd must be empty (size 0); it
 * is sized (sparse: only what is used costs memory) and sealed against
 * shrinking and growing where sealing is allowed.  Memory given back to
 * the OS is punched out of the file.
 *
 * Another process holding the same fd (after the first one died) calls
 * zs_arena_attach(): the arena is mapped at the same address (so pointers
 * inside it hold), and the pool is returned in recovery: only
 * zs_arena_root(), zs_arena_mark() and zs_arena_recover() may be called.
 * The caller names every handle it still holds with zs_arena_mark() (each
 * once or more), then zs_arena_recover() rebuilds everything else from
 * them: objects no marked handle names (allocated but not yet published
 * by the caller when the process died, or freed half way) are freed, the
 * free lists, fullness lists and counters are built anew, and the pool is
 * ready for every call.  What the caller keeps in the root must name
 * handles only through stores that cannot tear (see zsd's store.c).
 *
 * Errors (NULL + errno, or -errno): EINVAL for a bad fd or config;
 * EPROTO for an arena of another format or geometry (left as it is);
 * EADDRINUSE when the arena's address is taken in this process; ENOMEM.
 * cfg->section_size and max_chain of an attached pool are the arena's;
 * its other fields are the caller's.
 */
struct zs_recovery {
	uint64_t	handles_marked;	/* distinct handles named */
	uint64_t	objects_freed;	/* live objects no handle named */
	uint64_t	zspages_freed;	/* zspages left with no object */
	uint64_t	pages_kept;	/* pages holding marked objects */
	uint64_t	sections_kept;
	uint64_t	sections_freed;	/* with no marked object: unmapped */
};

struct zs_pool	*zs_arena_create(const struct zs_pool_config *cfg, int fd,
		     size_t root_size);
struct zs_pool	*zs_arena_attach(const struct zs_pool_config *cfg, int fd);
/* The caller's root: root_size bytes, zero when created. */
void		*zs_arena_root(struct zs_pool *pool, size_t *sizep);
/* -EINVAL if handle does not name a live object of the arena. */
int		 zs_arena_mark(struct zs_pool *pool, zs_handle_t handle);
/*
 * -EUCLEAN with why filled if the arena is inconsistent (two zspages
 * claiming one page, say): the pool is then of no use but to destroy.
 */
int		 zs_arena_recover(struct zs_pool *pool, struct zs_recovery *res,
		     char *why, size_t whylen);
/* Whether the pool lives in an arena; and is attached, not recovered. */
int		 zs_pool_is_arena(struct zs_pool *pool);
int		 zs_arena_recovering(struct zs_pool *pool);

/*
 * Allocate an object of size bytes (1..ZS_MAX_ALLOC_SIZE).  Its contents
 * are undefined until written.  Returns 0 and sets errno: EINVAL for a bad
 * size, ENOMEM when the OS (or max_size) refuses memory; the pool stays
 * usable either way.
 */
zs_handle_t	 zs_malloc(struct zs_pool *pool, size_t size);
/*
 * zs_malloc(pool, len) and zs_obj_write() of src in one call, cheaper than
 * the two: the object is written before the handle is returned, without
 * pinning it or looking it up again.  The same errors, and EINVAL for a
 * NULL src.
 */
zs_handle_t	 zs_malloc_write(struct zs_pool *pool, const void *src,
		     size_t len);
/*
 * -EINVAL for a handle that is not live (freed, never issued).  The handle
 * is dead when it returns, though with free_batch the slot may be given
 * back a little later (see struct zs_pool_config).
 */
int		 zs_free(struct zs_pool *pool, zs_handle_t handle);

/*
 * Copy len bytes (len <= the object's size) into the object / out of it.
 * -EINVAL for a bad handle or length.
 */
int		 zs_obj_write(struct zs_pool *pool, zs_handle_t handle,
		     const void *src, size_t len);
int		 zs_obj_copy(struct zs_pool *pool, zs_handle_t handle,
		     void *dst, size_t len);

/*
 * Pin the object and return a pointer to its bytes: straight into the pool
 * when the object lies within one page, else into local_copy (which must
 * hold ZS_MAX_ALLOC_SIZE bytes) after copying it there.  *size, if not
 * NULL, receives the size given to zs_malloc().  The object cannot move or
 * be freed until zs_obj_read_end(); the caller must not call into the pool
 * for the same handle in between.  NULL + EINVAL for a bad handle.
 */
const void	*zs_obj_read_begin(struct zs_pool *pool, zs_handle_t handle,
		     void *local_copy, size_t *size);
/*
 * Drop the pin zs_obj_read_begin() took.  A handle that is not live, or
 * not pinned, is refused (errno EINVAL) and nothing is unpinned.
 */
void		 zs_obj_read_end(struct zs_pool *pool, zs_handle_t handle);

/* The size given to zs_malloc(), or 0 (errno EINVAL) for a bad handle. */
size_t		 zs_obj_size(struct zs_pool *pool, zs_handle_t handle);

/*
 * Objects of this size or larger are stored one per page, in the huge
 * class.  A caller that would store such an object compressed may as well
 * store it raw.
 */
size_t		 zs_huge_class_size(struct zs_pool *pool);

struct zs_compact_result {
	uint64_t	pages_freed;	/* net: given back less populated */
	uint64_t	objs_moved;
	uint64_t	bytes_moved;
};

/*
 * Move objects out of the emptiest zspages of every class into the fullest
 * and free the zspages emptied.  Safe while other threads use the pool;
 * objects pinned at the time are skipped.  Returns pages freed (>= 0).
 * result may be NULL.
 */
long		 zs_compact(struct zs_pool *pool, struct zs_compact_result *result);

/*
 * Carry out the frees waiting in batches, then wait until every zspage
 * queued for asynchronous free has been freed (and the worker's page
 * prefault, if one is under way, is done).
 */
void		 zs_pool_flush(struct zs_pool *pool);

/*
 * Give every free page that is still resident back to the OS now, in the
 * calling thread, without waiting for the reporting worker; first does
 * what zs_pool_flush() does, so pages waiting on frees count too.  Free
 * pages another thread's allocation is faulting in meanwhile are left
 * for a later report.  Returns the pages given back.
 */
long		 zs_pool_report(struct zs_pool *pool);

/*
 * Moving memory out of the way.
 *
 * Sections are numbered 0..zs_section_count()-1; a number whose section
 * has been taken offline (or never existed) answers -ENOENT.
 *
 * zs_obj_migrate() moves the pages holding the object (its zspage's, or
 * its huge page) to other pages; the object's handle and bytes do not
 * change.  -EAGAIN if an object of that zspage is pinned right now
 * (retry), -ENOMEM if no free page exists outside the pages being moved
 * (migration never grows the pool), -EINVAL for a bad handle.
 *
 * zs_section_migrate() isolates a section (nothing is allocated in it),
 * moves every object out of it, and puts it back online, empty.
 * zs_section_offline() does the same and then unmaps it, page
 * descriptors included.  Both give up after a bounded number of retries
 * on pinned objects (-EAGAIN; offline also while the free worker is
 * faulting in pages of the section) or when there is no room elsewhere
 * (-ENOMEM); the section is then online and usable as before.  They
 * return the number of pages moved.
 *
 * zs_pool_shrink() offlines the emptiest sections until at least bytes
 * have been unmapped or nothing more can be; returns the bytes unmapped.
 */
int		 zs_obj_migrate(struct zs_pool *pool, zs_handle_t handle);
unsigned int	 zs_section_count(struct zs_pool *pool);
long		 zs_section_migrate(struct zs_pool *pool, unsigned int section);
long		 zs_section_offline(struct zs_pool *pool, unsigned int section);
uint64_t	 zs_pool_shrink(struct zs_pool *pool, uint64_t bytes);

struct zs_section_stats {
	unsigned int	index;
	unsigned int	pages;		/* all, memmap included */
	unsigned int	pages_meta;	/* header and memmap */
	unsigned int	pages_used;	/* in zspages or huge objects, or
					   in a CPU's page cache */
	unsigned int	pages_free;
	unsigned int	pages_reported;	/* free and given back */
	int		isolated;
};

int		 zs_section_stats(struct zs_pool *pool, unsigned int section,
		     struct zs_section_stats *st);

/*
 * zs_pool_stats() takes no lock and carries out no waiting free, so that
 * it may be called from any thread, as often as wanted, beside the
 * pool's heaviest use.  Each figure is exact when it is read, but they
 * are read one after another, not as one snapshot: while other threads
 * use the pool, figures that add up when it is quiet (pages_used +
 * pages_free + ... against pages_mapped) may be off by what changed
 * meanwhile.
 *
 * Frees not done yet are reported as not done, and counted apart:
 *   - objs_pending_free: objects whose zs_free() has returned but whose
 *     slot waits in a batch (see free_batch; huge objects are freed at
 *     once).  They still count in objects, bytes_requested and
 *     bytes_held, and their zspages in zspages and pages_used; live
 *     objects are objects - objs_pending_free.
 *   - zspages_pending_free: zspages emptied and queued for the free
 *     worker (async_free), and a run of pages it is faulting in.  They
 *     still count in zspages and pages_used.
 * zs_pool_flush() first makes both 0, for figures that are exact for a
 * quiet pool.
 */
struct zs_pool_stats {
	uint64_t	pages_used;	/* pages of zspages and huge objects */
	uint64_t	pages_free;	/* mapped pages on the free lists or
					   in the CPUs' page caches */
	uint64_t	pages_reported;	/* free pages not resident: given back
					   to the OS, or never touched */
	uint64_t	pages_meta;	/* page descriptors, handle and zspage tables */
	uint64_t	pages_mapped;	/* all section pages, metadata included */
	uint64_t	sections;
	uint64_t	zspages;
	uint64_t	zspages_pending_free; /* queued for the free worker */
	uint64_t	objects;	/* live objects, and those whose
					   free is pending */
	uint64_t	huge_objects;	/* live objects in the huge class */
	uint64_t	bytes_requested; /* sum of live objects' sizes */
	uint64_t	bytes_held;	/* sum of their class slot sizes */
	uint64_t	pages_compacted; /* pages freed by compaction, ever */
	uint64_t	objs_compacted;	/* objects moved by compaction, ever */
	uint64_t	malloc_failures; /* zs_malloc() refused for lack of memory */
	uint64_t	pages_migrated;	/* pages moved by migration, ever */
	uint64_t	sections_offlined; /* sections unmapped by offline, ever */
	uint64_t	isolated_zspages; /* off their lists being compacted or
					   migrated right now */
	uint64_t	objs_pending_free; /* freed, the slot not yet given
					   back (free_batch) */
	uint64_t	pages_freeable;	/* what compaction could free at
					   best: the classes' freeable_pages
					   summed */
};

void		 zs_pool_stats(struct zs_pool *pool, struct zs_pool_stats *st);
/* pages_used alone, without taking a lock: cheap enough for every write. */
uint64_t	 zs_pool_pages_used(struct zs_pool *pool);

struct zs_class_stats {
	unsigned int	index;
	unsigned int	size;		/* slot size in bytes */
	unsigned int	pages_per_zspage;
	unsigned int	objs_per_zspage;
	int		huge;		/* one object per page */
	uint64_t	zspages;
	uint64_t	objs_allocated;	/* slots in this class's zspages */
	uint64_t	objs_used;	/* slots holding an object */
	uint64_t	pages_used;
	uint64_t	freeable_pages;	/* what compaction could free at best */
	uint64_t	fullness[ZS_FULLNESS_GROUPS];
};

/*
 * The classes that are in use after merging, indexed 0..count-1 in
 * increasing size.  zs_class_stats() returns -ENOENT past the last one.
 * It takes that class's lock (allocation and free in the class wait for
 * it, briefly) and, like zs_pool_stats(), carries out no waiting free:
 * objs_used counts the objects whose free is pending.
 */
unsigned int	 zs_class_count(struct zs_pool *pool);
int		 zs_class_stats(struct zs_pool *pool, unsigned int index,
		     struct zs_class_stats *st);

/*
 * Walk the whole pool and check every invariant: descriptors, free lists,
 * fullness lists and counts, every object's handle pointing back at it.
 * Meant for a quiescent pool (tests, debug).  0, or -EUCLEAN with a
 * description of the first problem written to why (if not NULL).
 */
int		 zs_pool_validate(struct zs_pool *pool, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif

#endif /* ZS_H */
