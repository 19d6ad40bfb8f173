/*
 * store-int.h - what the store's files share: the slot table, its locks,
 * counters and journal (store.c), and idle tracking, recompression and
 * writeback (idle.c).  The rest of the daemon sees the store through
 * zsd.h only.  The locking rules are at the top of store.c.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "zsd.h"

#define STORE_STRIPES	1024u		/* a power of two */
#define STORE_SHARDS	16u		/* sets of counters */
#define CACHE_LINE	64

/* Count into the set of the calling thread's context. */
#define STAT_ADD(ctx, f, n) \
	atomic_fetch_add_explicit(&(ctx)->counters->f, (n), \
	    memory_order_relaxed)
#define STAT_SUB(ctx, f, n) \
	atomic_fetch_sub_explicit(&(ctx)->counters->f, (n), \
	    memory_order_relaxed)

/*
 * One set of statistics: relaxed atomics, since contexts beyond
 * STORE_SHARDS share sets.  The gauges (pages_stored, same_pages,
 * huge_pages, compr_data_size) change with the entry, under its stripe
 * lock, so their sums over the sets never go below zero; one set's may,
 * when one thread counts a page in and another counts it out.  The
 * counters are bumped after the fact.
 */
struct counters {
	_Atomic uint64_t	pages_stored;
	_Atomic uint64_t	same_pages;
	_Atomic uint64_t	huge_pages;
	_Atomic uint64_t	compr_data_size;
	_Atomic uint64_t	mem_used_max;	/* pool bytes, seen on write */
	_Atomic uint64_t	reads;		/* pages */
	_Atomic uint64_t	writes;		/* pages */
	_Atomic uint64_t	discards;	/* pages */
	_Atomic uint64_t	failed_reads;	/* pages */
	_Atomic uint64_t	failed_writes;	/* pages, discards included */
	_Atomic uint64_t	limit_refusals;
	_Atomic uint64_t	invalid_io;	/* requests past the end */
	/* Merging: gauges, changed as references are taken and dropped. */
	_Atomic uint64_t	pages_merged;	/* refs beyond the first */
	_Atomic uint64_t	merge_objects;	/* objects of 2 references + */
	_Atomic uint64_t	merge_saved;	/* bytes of pages_merged's
						   objects */
	_Atomic uint64_t	merge_collisions; /* keys equal, bytes not */
	_Atomic uint64_t	merge_skipped;	/* writes not hashed */
	/*
	 * Idle pages (idle.c).  These fit in what was the struct's tail
	 * padding (it stays 192 bytes), so an arena written before them
	 * reads zeros here and the root's layout is unchanged.
	 */
	_Atomic uint64_t	idle_pages;	/* gauge: marked idle */
	_Atomic uint64_t	recompressed;	/* pages, counter */
	_Atomic uint64_t	recompress_saved; /* bytes, counter */
	_Atomic uint64_t	bd_count;	/* gauge: pages in the file */
	_Atomic uint64_t	bd_bytes;	/* gauge: their bytes there */
	_Atomic uint64_t	bd_reads;	/* pages, counter */
	_Atomic uint64_t	bd_writes;	/* pages, counter */
} __attribute__((aligned(CACHE_LINE)));

_Static_assert(sizeof(struct counters) == 192,
    "the arena's counters keep their size");

enum slot_type {
	SLOT_EMPTY = 0,		/* never written, or discarded: zeros */
	SLOT_SAME,		/* every 64-bit word is value; no object */
	SLOT_COMPRESSED,	/* value: handle of len bytes from codec */
	SLOT_RAW,		/* value: handle of the page itself */
	SLOT_BACKED,		/* value: where in the backing file
				   (SLOT_BACKED_POS); codec 0: raw */
};

/* A backed slot's value: byte in-block offset in the low 12 bits. */
#define SLOT_BACKED_POS(block, in)	((uint64_t)(block) << 12 | (in))
#define SLOT_BACKED_BLOCK(value)	((value) >> 12)
#define SLOT_BACKED_IN(value)		((size_t)((value) & 4095))

/*
 * An entry of the table; all of it guarded by the slot's stripe lock.
 * Slots sharing an object (merged pages) have the same value and node.
 */
struct slot {
	uint64_t	value;	/* fill word (SAME) or handle */
	uint32_t	node;	/* the object's index node + 1; 0: none */
	uint16_t	len;	/* object bytes: compressed, or 4096 (RAW) */
	uint8_t		type;	/* enum slot_type */
	uint8_t		codec;	/* enum codec_id, for SLOT_COMPRESSED */
};

_Static_assert(sizeof(struct slot) == 16, "a slot is 16 bytes");

/*
 * A stripe's journal entry, in the arena: the slot being replaced (+ 1;
 * 0: none) and its new entry, written before the slot is (see "Crashes").
 * Guarded by the stripe's lock.
 */
struct journal {
	_Atomic uint64_t	slot;
	struct slot		entry;
	uint64_t		unused;
};

#define STORE_ROOT_MAGIC	"ZSDSTOR"
#define STORE_ROOT_VERSION	1

/*
 * The start of the arena's root: what the store keeps there, where.
 * Written once by store_create; the regions follow, each aligned to
 * ROOT_ALIGN: the slots, the journal, the counters, the index's nodes.
 */
struct store_root {
	char		magic[8];
	uint32_t	version;
	uint32_t	stripes;
	uint64_t	nr_pages;
	uint64_t	slots_off, journal_off, counters_off, nodes_off;
	uint64_t	nodes_size;
	uint64_t	size;		/* all of it */
};

#define ROOT_ALIGN	4096u
/*
 * In the root's first page, after struct store_root (zeros in an arena
 * written before it was kept): the id of the backing file the store
 * writes pages to (backing.c), 0 until it has claimed one.
 */
#define ROOT_BACKING_ID	2048u

/* One lock per cache line, so that stripes do not share one. */
struct stripe {
	pthread_mutex_t	lock;
} __attribute__((aligned(CACHE_LINE)));

struct store {
	/* Set at creation, constant after. */
	struct zs_pool	*pool;		/* not ours; thread-safe */
	uint64_t	 nr_pages;
	uint64_t	 size;		/* nr_pages * 4096 */
	size_t		 compress_cap;	/* below the huge class size */
	struct stripe	*stripes;	/* STORE_STRIPES of them */
	unsigned int	 nr_stripes;	/* initialised, for destroy */

	struct slot	*slots;		/* slots[i]: stripes[stripe_of(i)] */
	struct merge_index *merge;	/* NULL: too many pages to index */
	/* In an arena (see "Crashes" at the top): the root, and a journal
	 * entry per stripe.  NULL: private memory. */
	struct store_root *root;
	struct journal	*journal;
	struct store_recovery recovery;	/* what recovery found */
	/* The backing file's id (ROOT_BACKING_ID, or own_id without an
	 * arena).  Set at open. */
	uint64_t		*backing_id;
	uint64_t		 own_id;
	char			 backing_problem[256]; /* why none, or "" */

	/* Options: atomics, changed by store_set_options at any time. */
	_Atomic int		codec;		/* enum codec_id, new writes */
	_Atomic int		zstd_level;
	_Atomic uint64_t	mem_limit;	/* pool bytes; 0: none */
	_Atomic bool		merge_on;	/* hash new pages */
	_Atomic int		recomp_level;	/* zstd level of recompression */

	/*
	 * Idle tracking (idle.c): atime[i] is slot i's last access, in
	 * seconds since epoch (CLOCK_MONOTONIC) and the ATIME_ flags, in
	 * private memory (4 bytes a slot); guarded like the slot.  Ages
	 * start again at 0 for what a successor recovers.
	 */
	uint32_t		*atime;
	int64_t			 epoch;
	_Atomic int64_t		 clock_shift;	/* tests: seconds added */
	/* The backing file, or NULL; set at open, constant after. */
	struct backing		*backing;
	/*
	 * Bit c: some slot of chunk c (STORE_CHUNK slots, a page of the
	 * table) has held a page since the store was opened.  Set on
	 * write, never cleared; the idle passes skip the chunks without
	 * it, so that they need not touch, and make resident, the parts
	 * of the table (in a tmpfs arena) that were never used.
	 */
	_Atomic uint64_t	*chunks;

	struct counters		*counters;	/* STORE_SHARDS sets */
	_Atomic unsigned int	 next_set;	/* for the next context */
};

/*
 * One thread's working memory: the only buffers the I/O path uses.
 * Owned by one thread at a time; no lock.
 */
struct store_ctx {
	unsigned char		 page[ZSD_PAGE_SIZE];	/* being patched */
	unsigned char		 cbuf[CODEC_DST_SIZE];	/* compressed */
	unsigned char		 local[ZS_MAX_ALLOC_SIZE]; /* read_begin */
	unsigned char		 match[ZSD_PAGE_SIZE];	/* merge candidate */
	/* A block of the backing file: read, or packed for writeback. */
	unsigned char		 block[ZSD_PAGE_SIZE]
				    __attribute__((aligned(ZSD_PAGE_SIZE)));
	struct store		*st;
	struct codec_ctx	*codec;
	struct counters		*counters;	/* the set this thread counts
						   into */
	int			 zstd_level;	/* what codec is set to */
	/* Merging's judgement of its hashed writes (see the top). */
	unsigned int		 merge_hashed;	/* in this window */
	unsigned int		 merge_hits;	/* merged, in this window */
	unsigned int		 merge_tick;	/* writes since one hashed */
	bool			 merge_skipping;
} __attribute__((aligned(ZSD_PAGE_SIZE)));

/*
 * memcpy for whole and partial pages.  GCC inlines a memcpy whose length
 * it can bound (here: at most a page) as "rep movsq", much slower than the
 * C library's; the empty asm hides the bound (libzs does the same).
 */
static inline void
bulk_copy(void *dst, const void *src, size_t n)
{
	__asm__("" : "+r"(n));
	memcpy(dst, src, n);
}

#define STORE_CHUNK	256u	/* slots: 4 KiB of the table */

/* Flags of atime[i], above its seconds. */
#define ATIME_IDLE	(1u << 31)	/* marked idle, not accessed since */
#define ATIME_TRIED	(1u << 30)	/* recompressed, or tried to be */
#define ATIME_SECONDS	(ATIME_TRIED - 1)

/* store.c */
pthread_mutex_t	*store_slot_lock(struct store *st, uint64_t i);
int		 store_decode(struct store *st, struct store_ctx *ctx,
		    const struct slot *s, void *page);
void		 store_replace_locked(struct store *st, struct store_ctx *ctx,
		    uint64_t i, const struct slot *new, struct slot *old);
void		 store_release(struct store *st, struct store_ctx *ctx,
		    const struct slot *s);

/* Slot i holds a page now: its chunk has been used. */
static inline void
store_chunk_used(struct store *st, uint64_t i)
{
	_Atomic uint64_t *w = &st->chunks[i / STORE_CHUNK / 64];
	uint64_t bit = 1ull << (i / STORE_CHUNK % 64);

	if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
		atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
}

/* idle.c */
int64_t		 store_clock_seconds(void);
/* The first slot from i on in a chunk that has been used, or nr_pages. */
uint64_t	 store_next_used(struct store *st, uint64_t i);
uint32_t	 store_now(struct store *st);
/*
 * Slot i was read or written (locked).  A read keeps ATIME_TRIED: the
 * bytes zstd could not shrink are the same.
 */
static inline void
store_touch(struct store *st, struct store_ctx *ctx, uint64_t i,
    uint32_t now, bool written)
{
	if (st->atime[i] & ATIME_IDLE)
		STAT_SUB(ctx, idle_pages, 1);
	st->atime[i] = now | (written ? 0 : st->atime[i] & ATIME_TRIED);
}
/* Slot i was emptied (locked). */
static inline void
store_untouch(struct store *st, struct store_ctx *ctx, uint64_t i)
{
	if (st->atime[i] & ATIME_IDLE)
		STAT_SUB(ctx, idle_pages, 1);
	st->atime[i] = 0;
}

#endif /* STORE_INT_H */
