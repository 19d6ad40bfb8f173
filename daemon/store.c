/*
 * store.c - the slot table of one swap file.
 *
 * Slot i holds the 4 KiB page at byte i * 4096 of the file, as one of:
 * nothing (reads as zeros); a page made of one repeated 64-bit word, kept
 * as the word without an object (zero pages are the common case); a libzs
 * object holding the page compressed; or a libzs object holding the page
 * itself, when compression would not bring it below the pool's huge class
 * size (the object takes a whole page either way, and reading it needs no
 * decompression).
 *
 * Writing a page compresses it into the thread's scratch and copies the
 * result into a new object (zs_malloc_write), both outside any lock; only
 * then is the slot locked, its entry replaced, and the old object freed
 * once the lock is dropped.  A partial page is read, patched and written
 * back with the slot locked throughout, so two partial writes to one page
 * cannot lose each other's bytes.  A reader holds the slot's lock while it
 * maps and decompresses the object, which is what keeps a writer from
 * freeing the object underneath it.  The I/O calls never call malloc:
 * each thread's buffers and codec state are in its struct store_ctx.
 *
 * The memory limit (mem_limit in zsd.conf(5)).  Below it every write is
 * taken.  When the pool uses as much as the limit or more, a page is
 * taken only if storing it does not grow its slot's object: a
 * same-filled page (no object) always; a page for a slot without an
 * object is refused with -ENOSPC before it is compressed; a page for a
 * slot holding an object is compressed and taken if its object is no
 * larger than the old one (which is freed right after: the pool holds
 * both for that moment), refused otherwise.  A discard is never refused,
 * not even one that rewrites the rest of a page.  The check reads the
 * pool's size and is not atomic with the allocation that follows it, so
 * writers that pass it at the same moment may each take the pool over
 * the limit by one object (at most two pool pages).  (zram allocates
 * first and checks after, which spends a compression and an allocation
 * on every page it refuses.)
 *
 * Locking.  Slots are guarded by STORE_STRIPES mutexes, slot i by stripe
 * i % STORE_STRIPES: consecutive pages, as one large request split across
 * workers, fall on different locks.  A thread holds at most one stripe at
 * a time, and may call into the content index (merge.c, a lock per shard
 * of it) and the pool (which has its own locks) while holding it: the
 * order is stripe, index shard, pool.  An object's references are taken
 * and dropped under its shard's lock alone; a slot's stripe lock keeps
 * its own reference, so a reader of the slot holds the object alive.
 * Options and statistics are atomics, readable and settable from any
 * thread without a lock.
 *
 * Same-page merging (merge in zsd.conf(5)).  A page that is not
 * same-filled is hashed (merge_page_hash) and looked up in the store's
 * content index (merge.c) before it is compressed; if an object of the
 * same key reads back equal to the page byte for byte, the slot takes a
 * reference to that object and nothing is compressed or allocated: the
 * page takes no new memory, not even at the memory limit.  Otherwise the
 * new object is indexed, with one reference.  A slot with a node (.node)
 * gives its reference back when it is overwritten, discarded or
 * destroyed; the last one frees the object.  Objects are named by handle,
 * so compaction and migration move shared objects like any other.
 *
 * Hashing costs a fraction of compressing a page, wasted when nothing
 * merges.  So each context judges its hashed writes in windows of
 * MERGE_WINDOW: a window without a single merge puts it into skipping, in
 * which only one write in MERGE_SAMPLE is hashed (and indexed, so that
 * later copies of it can be found); the first merge of such a sampled
 * write ends skipping.  Writes not hashed are counted in merge_skipped.
 *
 * Statistics are kept in STORE_SHARDS sets of counters, each on cache
 * lines of its own; a thread's context counts into one set (contexts take
 * them in turn), so that threads writing at the same time do not take
 * turns owning one cache line for every page.  store_stats sums them.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "store-int.h"

#define MERGE_WINDOW	256u		/* hashed writes judged at once */
#define MERGE_SAMPLE	16u		/* skipping: one write in this many
					   is hashed */

static bool
codec_valid(int id)
{
	return id == CODEC_LZ4 || id == CODEC_ZSTD;
}

pthread_mutex_t *
store_slot_lock(struct store *st, uint64_t i)
{
	return &st->stripes[i & (STORE_STRIPES - 1)].lock;
}

/*
 * If every 64-bit word of the page is the same, that word.  The last word
 * is compared first: most pages that are not same-filled differ there
 * already.  memcpy, because callers' buffers need not be aligned.
 */
static bool
page_same_filled(const void *page, uint64_t *word)
{
	const unsigned char *p = page;
	uint64_t first, w;
	size_t i;

	memcpy(&first, p, sizeof(first));
	memcpy(&w, p + ZSD_PAGE_SIZE - sizeof(w), sizeof(w));
	if (w != first)
		return false;
	for (i = sizeof(w); i < ZSD_PAGE_SIZE - sizeof(w); i += sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		if (w != first)
			return false;
	}
	*word = first;
	return true;
}

static void
page_fill(void *page, uint64_t word)
{
	unsigned char *p = page;
	size_t i;

	if (word == 0) {
		memset(page, 0, ZSD_PAGE_SIZE);
		return;
	}
	for (i = 0; i < ZSD_PAGE_SIZE; i += sizeof(word))
		memcpy(p + i, &word, sizeof(word));
}

/*
 * Raise the context's set's mem_used_max to what the pool uses now, if
 * that is more; the store's is the largest of the sets'.
 */
static void
store_note_used(struct store *st, struct store_ctx *ctx)
{
	_Atomic uint64_t *maxp = &ctx->counters->mem_used_max;
	uint64_t used, max;

	used = zs_pool_pages_used(st->pool) * ZSD_PAGE_SIZE;
	max = atomic_load_explicit(maxp, memory_order_relaxed);
	while (used > max && !atomic_compare_exchange_weak_explicit(maxp,
	    &max, used, memory_order_relaxed, memory_order_relaxed))
		;
}

/* The zstd level may have changed since this thread last compressed. */
static void
store_ctx_sync_level(struct store *st, struct store_ctx *ctx)
{
	int level = atomic_load_explicit(&st->zstd_level,
	    memory_order_relaxed);

	if (level != ctx->zstd_level) {
		codec_ctx_set_level(ctx->codec, level);
		ctx->zstd_level = level;
	}
}

/* What a write to a slot holding s may take at the limit. */
#define STORE_ROOM_ANY	SIZE_MAX	/* no limit, or a discard */

static size_t
slot_room(const struct slot *s)
{
	return s->type == SLOT_COMPRESSED || s->type == SLOT_RAW ? s->len : 0;
}

/* Whether the pool uses as much as the memory limit, or more. */
static bool
store_at_limit(struct store *st)
{
	uint64_t limit = atomic_load_explicit(&st->mem_limit,
	    memory_order_relaxed);

	return limit != 0 &&
	    zs_pool_pages_used(st->pool) * ZSD_PAGE_SIZE >= limit;
}

/*
 * merge_same_fn: whether the object handle holds page, read back into the
 * context's buffers.  Called with a shard of the index locked.
 */
static int
store_same(void *arg, zs_handle_t handle, unsigned int codec,
    const void *page, size_t *len)
{
	struct store_ctx *ctx = arg;
	struct zs_pool *pool = ctx->st->pool;
	const void *src;
	size_t size;
	int same;

	if ((src = zs_obj_read_begin(pool, handle, ctx->local, &size)) ==
	    NULL)
		return -EIO;
	if (codec == 0)
		same = size == ZSD_PAGE_SIZE &&
		    memcmp(src, page, ZSD_PAGE_SIZE) == 0;
	else
		same = codec_decompress(ctx->codec, (enum codec_id)codec, src,
		    size, ctx->match) == 0 &&
		    memcmp(ctx->match, page, ZSD_PAGE_SIZE) == 0;
	zs_obj_read_end(pool, handle);
	*len = size;
	return same;
}

/* Whether this write is hashed; see "Same-page merging" at the top. */
static bool
store_merge_wanted(struct store *st, struct store_ctx *ctx)
{
	if (!atomic_load_explicit(&st->merge_on, memory_order_relaxed))
		return false;
	if (!ctx->merge_skipping || ++ctx->merge_tick >= MERGE_SAMPLE) {
		ctx->merge_tick = 0;
		return true;
	}
	STAT_ADD(ctx, merge_skipped, 1);
	return false;
}

/* A hashed write merged or not: judge the window when it is full. */
static void
store_merge_judge(struct store_ctx *ctx, bool merged)
{
	if (merged && ctx->merge_skipping) {
		ctx->merge_skipping = false;
		ctx->merge_hashed = ctx->merge_hits = 0;
		return;
	}
	ctx->merge_hits += merged;
	if (++ctx->merge_hashed < MERGE_WINDOW)
		return;
	ctx->merge_skipping = ctx->merge_hits == 0;
	ctx->merge_hashed = ctx->merge_hits = 0;
}

/* The entry for a reference just taken to a shared object. */
static void
store_merge_took(struct store_ctx *ctx, const struct merge_obj *mo,
    struct slot *out)
{
	*out = (struct slot){ .value = mo->handle, .node = mo->node,
	    .len = mo->len, .type = mo->codec == 0 ? SLOT_RAW :
	    SLOT_COMPRESSED, .codec = mo->codec };
	STAT_ADD(ctx, pages_merged, 1);
	STAT_ADD(ctx, merge_saved, mo->len);
	if (mo->refs == 2)
		STAT_ADD(ctx, merge_objects, 1);
	STAT_ADD(ctx, merge_collisions, mo->collisions);
	store_merge_judge(ctx, true);
}

/*
 * Make the entry for a page, object included, without touching the
 * table: a reference to an equal object if the index has one (which takes
 * no room), else a new object, which may take room bytes at most
 * (STORE_ROOM_ANY: any), or the page is refused with -ENOSPC, before it
 * is compressed if room is 0.  Nothing needs to be undone on failure.
 */
static int
store_encode(struct store *st, struct store_ctx *ctx, const void *page,
    size_t room, struct slot *out)
{
	struct merge_obj mo = { 0 };
	const void *src;
	zs_handle_t handle;
	uint64_t word;
	uint32_t key = 0;
	size_t len;
	bool merging;
	int codec;

	if (page_same_filled(page, &word)) {
		*out = (struct slot){ .value = word, .type = SLOT_SAME };
		return 0;
	}
	if ((merging = store_merge_wanted(st, ctx))) {
		key = merge_page_hash(page);
		if (merge_find(st->merge, key, page, store_same, ctx, &mo)) {
			store_merge_took(ctx, &mo, out);
			return 0;
		}
	}
	if (room == 0)
		goto refuse;

	codec = atomic_load_explicit(&st->codec, memory_order_relaxed);
	if (codec == CODEC_ZSTD)
		store_ctx_sync_level(st, ctx);
	len = codec_compress(ctx->codec, (enum codec_id)codec, page,
	    ctx->cbuf, st->compress_cap);
	if (len != 0) {
		src = ctx->cbuf;
		*out = (struct slot){ .len = (uint16_t)len,
		    .type = SLOT_COMPRESSED, .codec = (uint8_t)codec };
	} else {
		src = page;
		len = ZSD_PAGE_SIZE;
		*out = (struct slot){ .len = ZSD_PAGE_SIZE,
		    .type = SLOT_RAW };
	}
	if (len > room)
		goto refuse;

	/* EINVAL would be a length libzs rejects: a bug. */
	if ((handle = zs_malloc_write(st->pool, src, len)) == 0)
		return errno == ENOMEM ? -ENOMEM : -EIO;
	store_note_used(st, ctx);
	out->value = handle;
	if (!merging)
		return 0;
	mo.handle = handle;
	mo.len = (uint16_t)len;
	mo.codec = out->type == SLOT_RAW ? 0 : out->codec;
	if (merge_insert(st->merge, key, page, store_same, ctx, &mo)) {
		/* Stored by another thread meanwhile: ours goes. */
		(void)zs_free(st->pool, handle);
		store_merge_took(ctx, &mo, out);
		return 0;
	}
	STAT_ADD(ctx, merge_collisions, mo.collisions);
	out->node = mo.node;
	store_merge_judge(ctx, false);
	return 0;
refuse:
	if (merging) {
		STAT_ADD(ctx, merge_collisions, mo.collisions);
		store_merge_judge(ctx, false);
	}
	STAT_ADD(ctx, limit_refusals, 1);
	return -ENOSPC;
}

/*
 * A page written back: one read of its block (into the context's
 * buffer, aligned for O_DIRECT), then decompressed or copied out.
 */
static int
store_decode_backed(struct store *st, struct store_ctx *ctx,
    const struct slot *s, void *page)
{
	size_t in = SLOT_BACKED_IN(s->value);
	int error;

	if (st->backing == NULL)
		return -EIO;
	if ((error = backing_read(st->backing, SLOT_BACKED_BLOCK(s->value),
	    ctx->block)) != 0)
		return error;
	STAT_ADD(ctx, bd_reads, 1);
	if (s->codec == 0) {
		bulk_copy(page, ctx->block, ZSD_PAGE_SIZE);
		return 0;
	}
	return codec_decompress(ctx->codec, (enum codec_id)s->codec,
	    ctx->block + in, s->len, page);
}

/* The page an entry holds, into page.  Called with the slot locked. */
int
store_decode(struct store *st, struct store_ctx *ctx, const struct slot *s,
    void *page)
{
	const void *src;
	int error = 0;

	switch (s->type) {
	case SLOT_EMPTY:
		memset(page, 0, ZSD_PAGE_SIZE);
		return 0;
	case SLOT_SAME:
		page_fill(page, s->value);
		return 0;
	case SLOT_BACKED:
		return store_decode_backed(st, ctx, s, page);
	}
	/* Pinned until read_end: compaction cannot move it meanwhile. */
	src = zs_obj_read_begin(st->pool, s->value, ctx->local, NULL);
	if (src == NULL)
		return -EIO;
	if (s->type == SLOT_RAW)
		bulk_copy(page, src, ZSD_PAGE_SIZE);
	else
		error = codec_decompress(ctx->codec, (enum codec_id)s->codec,
		    src, s->len, page);
	zs_obj_read_end(st->pool, s->value);
	return error;
}

/* Count an entry in or out of the gauges.  Called with the slot locked. */
static void
store_account(struct store_ctx *ctx, const struct slot *s, bool in)
{
	uint64_t compr = 0;

	if (s->type == SLOT_EMPTY)
		return;
	if (s->type == SLOT_BACKED) {
		if (in) {
			STAT_ADD(ctx, pages_stored, 1);
			STAT_ADD(ctx, bd_count, 1);
			STAT_ADD(ctx, bd_bytes, s->len);
		} else {
			STAT_SUB(ctx, pages_stored, 1);
			STAT_SUB(ctx, bd_count, 1);
			STAT_SUB(ctx, bd_bytes, s->len);
		}
		return;
	}
	if (s->type == SLOT_COMPRESSED || s->type == SLOT_RAW)
		compr = s->len;
	if (in) {
		STAT_ADD(ctx, pages_stored, 1);
		STAT_ADD(ctx, compr_data_size, compr);
		if (s->type == SLOT_SAME)
			STAT_ADD(ctx, same_pages, 1);
		if (s->type == SLOT_RAW)
			STAT_ADD(ctx, huge_pages, 1);
	} else {
		STAT_SUB(ctx, pages_stored, 1);
		STAT_SUB(ctx, compr_data_size, compr);
		if (s->type == SLOT_SAME)
			STAT_SUB(ctx, same_pages, 1);
		if (s->type == SLOT_RAW)
			STAT_SUB(ctx, huge_pages, 1);
	}
}

/*
 * Put new in slot i; old gets what was there.  Slot locked.  In an arena,
 * through the stripe's journal: a process killed while the 16 bytes of
 * the slot are written leaves the journal naming it, and recovery writes
 * it again.  The signal fences keep the compiler from moving the slot's
 * stores across the journal's (a process's death is asynchronous to it,
 * as a signal is; its stores that were made all reach memory).
 */
void
store_replace_locked(struct store *st, struct store_ctx *ctx, uint64_t i,
    const struct slot *new, struct slot *old)
{
	struct journal *j;

	*old = st->slots[i];
	if (st->journal == NULL) {
		st->slots[i] = *new;
	} else {
		j = &st->journal[i & (STORE_STRIPES - 1)];
		j->entry = *new;
		atomic_store_explicit(&j->slot, i + 1, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
		st->slots[i] = *new;
		atomic_signal_fence(memory_order_seq_cst);
		atomic_store_explicit(&j->slot, 0, memory_order_release);
	}
	if (new->type != SLOT_EMPTY)
		store_chunk_used(st, i);
	store_account(ctx, old, false);
	store_account(ctx, new, true);
}

/*
 * Free an entry's object, once it is out of the table, or give back its
 * reference if others hold it too, or its place in the backing file.
 * ctx NULL: count nothing.
 */
void
store_release(struct store *st, struct store_ctx *ctx, const struct slot *s)
{
	uint32_t refs;

	if (s->type == SLOT_BACKED) {
		backing_put(st->backing, SLOT_BACKED_BLOCK(s->value));
		return;
	}
	if (s->type != SLOT_COMPRESSED && s->type != SLOT_RAW)
		return;
	if (s->node != 0 && (refs = merge_put(st->merge, s->node)) != 0) {
		if (ctx != NULL) {
			STAT_SUB(ctx, pages_merged, 1);
			STAT_SUB(ctx, merge_saved, s->len);
			if (refs == 1)
				STAT_SUB(ctx, merge_objects, 1);
		}
		return;
	}
	(void)zs_free(st->pool, s->value);
}

/* Replace slot i by a whole page. */
static int
store_write_page(struct store *st, struct store_ctx *ctx, uint64_t i,
    const void *page)
{
	pthread_mutex_t *lock = store_slot_lock(st, i);
	size_t room = STORE_ROOM_ANY;
	struct slot new, old;
	uint32_t now;
	int error;

	/*
	 * At the limit: what the slot holds now, read under its lock.  A
	 * writer of the same slot meanwhile may change it; the kernel never
	 * writes one slot twice at once, and the overshoot is an object.
	 */
	if (store_at_limit(st)) {
		pthread_mutex_lock(lock);
		room = slot_room(&st->slots[i]);
		pthread_mutex_unlock(lock);
	}
	if ((error = store_encode(st, ctx, page, room, &new)) != 0)
		return error;
	now = store_now(st);
	pthread_mutex_lock(lock);
	store_replace_locked(st, ctx, i, &new, &old);
	store_touch(st, ctx, i, now, true);
	pthread_mutex_unlock(lock);
	store_release(st, ctx, &old);
	return 0;
}

/*
 * Replace n bytes at in of slot i by src, or by zeros if src is NULL:
 * read, patch and write back, all under the slot's lock.  Zeroing is a
 * discard, which the memory limit never refuses.
 */
static int
store_patch_page(struct store *st, struct store_ctx *ctx, uint64_t i,
    size_t in, const void *src, size_t n)
{
	pthread_mutex_t *lock = store_slot_lock(st, i);
	size_t room = STORE_ROOM_ANY;
	struct slot new, old;
	int error;

	pthread_mutex_lock(lock);
	old = st->slots[i];
	/* Zeroing part of an empty or zero-filled page changes nothing. */
	if (src == NULL && (old.type == SLOT_EMPTY ||
	    (old.type == SLOT_SAME && old.value == 0))) {
		pthread_mutex_unlock(lock);
		return 0;
	}
	if ((error = store_decode(st, ctx, &old, ctx->page)) != 0)
		goto out;
	if (src != NULL)
		bulk_copy(ctx->page + in, src, n);
	else
		memset(ctx->page + in, 0, n);
	if (src != NULL && store_at_limit(st))
		room = slot_room(&old);
	if ((error = store_encode(st, ctx, ctx->page, room, &new)) != 0)
		goto out;
	store_replace_locked(st, ctx, i, &new, &old);
	store_touch(st, ctx, i, store_now(st), true);
	pthread_mutex_unlock(lock);
	store_release(st, ctx, &old);
	return 0;
out:
	pthread_mutex_unlock(lock);
	return error;
}

bool
store_io_valid(struct store *st, struct store_ctx *ctx, uint64_t off,
    uint64_t len)
{
	if (off <= st->size && len <= st->size - off)
		return true;
	STAT_ADD(ctx, invalid_io, 1);
	return false;
}

int
store_write(struct store *st, struct store_ctx *ctx, uint64_t off,
    const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t in, n;
	uint64_t i;
	int error;

	if (!store_io_valid(st, ctx, off, len))
		return -EFBIG;
	while (len > 0) {
		i = off >> ZSD_PAGE_SHIFT;
		in = off & (ZSD_PAGE_SIZE - 1);
		n = ZSD_PAGE_SIZE - in < len ? ZSD_PAGE_SIZE - in : len;
		if (n == ZSD_PAGE_SIZE)
			error = store_write_page(st, ctx, i, p);
		else
			error = store_patch_page(st, ctx, i, in, p, n);
		if (error != 0) {
			STAT_ADD(ctx, failed_writes, 1);
			return error;
		}
		STAT_ADD(ctx, writes, 1);
		off += n;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Fault injection for zsd-stress's tests, in debug builds only
 * (--enable-debug): with ZSD_FAULT_CORRUPT_PAGE=N in zsd's environment,
 * every read of page N returns it with byte 100 flipped, as a corrupt
 * store would.  Other builds compile it to nothing.
 */
#ifdef ZS_DEBUG
static void
store_fault_read(uint64_t i, unsigned char *page)
{
	static _Atomic long long corrupt = -2;	/* -2: not looked up yet */
	long long n = atomic_load(&corrupt);
	const char *s;

	if (n == -2) {
		s = getenv("ZSD_FAULT_CORRUPT_PAGE");
		n = s != NULL && *s >= '0' && *s <= '9' ? atoll(s) : -1;
		atomic_store(&corrupt, n);
	}
	if (n >= 0 && (uint64_t)n == i)
		page[100] ^= 0x5a;
}
#else
static inline void
store_fault_read(uint64_t i, unsigned char *page)
{
}
#endif

long
store_read(struct store *st, struct store_ctx *ctx, uint64_t off, void *buf,
    size_t len)
{
	unsigned char *p = buf;
	pthread_mutex_t *lock;
	size_t in, n, done;
	struct slot s;
	uint64_t i;
	uint32_t now;
	int error;

	if (!store_io_valid(st, ctx, off, len)) {
		if (off >= st->size)
			return 0;
		len = st->size - off;
	}
	if (len > LONG_MAX)
		len = LONG_MAX & ~(size_t)(ZSD_PAGE_SIZE - 1);
	now = store_now(st);
	for (done = 0; done < len; done += n, off += n) {
		i = off >> ZSD_PAGE_SHIFT;
		in = off & (ZSD_PAGE_SIZE - 1);
		n = ZSD_PAGE_SIZE - in < len - done ?
		    ZSD_PAGE_SIZE - in : len - done;
		lock = store_slot_lock(st, i);
		pthread_mutex_lock(lock);
		s = st->slots[i];
		if (s.type != SLOT_EMPTY)
			store_touch(st, ctx, i, now, false);
		if (n == ZSD_PAGE_SIZE) {
			error = store_decode(st, ctx, &s, p + done);
			store_fault_read(i, p + done);
		} else if ((error = store_decode(st, ctx, &s,
		    ctx->page)) == 0) {
			store_fault_read(i, ctx->page);
			bulk_copy(p + done, ctx->page + in, n);
		}
		pthread_mutex_unlock(lock);
		if (error != 0) {
			STAT_ADD(ctx, failed_reads, 1);
			return error;
		}
		STAT_ADD(ctx, reads, 1);
	}
	return (long)done;
}

int
store_discard(struct store *st, struct store_ctx *ctx, uint64_t off,
    uint64_t len)
{
	static const struct slot empty;
	pthread_mutex_t *lock;
	struct slot old;
	uint64_t i, in, n;
	int error;

	/* Like a hole punched past the end of a file: nothing there. */
	if (off >= st->size)
		return 0;
	if (len > st->size - off)
		len = st->size - off;
	for (; len > 0; off += n, len -= n) {
		i = off >> ZSD_PAGE_SHIFT;
		in = off & (ZSD_PAGE_SIZE - 1);
		n = ZSD_PAGE_SIZE - in < len ? ZSD_PAGE_SIZE - in : len;
		if (n < ZSD_PAGE_SIZE) {
			error = store_patch_page(st, ctx, i, (size_t)in, NULL,
			    (size_t)n);
			if (error != 0) {
				STAT_ADD(ctx, failed_writes, 1);
				return error;
			}
		} else {
			lock = store_slot_lock(st, i);
			pthread_mutex_lock(lock);
			store_replace_locked(st, ctx, i, &empty, &old);
			store_untouch(st, ctx, i);
			pthread_mutex_unlock(lock);
			store_release(st, ctx, &old);
		}
		STAT_ADD(ctx, discards, 1);
	}
	return 0;
}

void
store_set_options(struct store *st, const struct store_options *opt)
{
	/* An unknown codec keeps the old one: new writes must have one. */
	if (codec_valid(opt->codec))
		atomic_store_explicit(&st->codec, opt->codec,
		    memory_order_relaxed);
	atomic_store_explicit(&st->zstd_level, opt->zstd_level,
	    memory_order_relaxed);
	atomic_store_explicit(&st->mem_limit, opt->mem_limit,
	    memory_order_relaxed);
	atomic_store_explicit(&st->merge_on, opt->merge && st->merge != NULL,
	    memory_order_relaxed);
	atomic_store_explicit(&st->recomp_level, opt->recompress_level,
	    memory_order_relaxed);
}

void
store_destroy(struct store *st)
{
	uint64_t i;

	if (st == NULL)
		return;
	/* An arena's slots and objects are the next process's. */
	if (st->slots != NULL && st->root == NULL)
		for (i = 0; i < st->nr_pages; i++)
			store_release(st, NULL, &st->slots[i]);
	if (st->root == NULL) {
		free(st->slots);
		free(st->counters);
	}
	free(st->atime);
	free(st->chunks);
	merge_destroy(st->merge);
	while (st->nr_stripes > 0)
		pthread_mutex_destroy(&st->stripes[--st->nr_stripes].lock);
	free(st->stripes);
	free(st);
}

/* The layout of a root for nr_pages; its size in root->size. */
static void
store_root_layout(uint64_t nr_pages, struct store_root *r)
{
	uint64_t off;

	memset(r, 0, sizeof(*r));
	memcpy(r->magic, STORE_ROOT_MAGIC, sizeof(r->magic));
	r->version = STORE_ROOT_VERSION;
	r->stripes = STORE_STRIPES;
	r->nr_pages = nr_pages;
	off = ROOT_ALIGN;
	r->slots_off = off;
	off += (nr_pages * sizeof(struct slot) + ROOT_ALIGN - 1) /
	    ROOT_ALIGN * ROOT_ALIGN;
	r->journal_off = off;
	off += STORE_STRIPES * sizeof(struct journal);
	r->counters_off = off;
	off += (STORE_SHARDS * sizeof(struct counters) + ROOT_ALIGN - 1) /
	    ROOT_ALIGN * ROOT_ALIGN;
	r->nodes_off = off;
	r->nodes_size = merge_nodes_size(nr_pages);
	r->size = off + r->nodes_size;
}

size_t
store_root_size(uint64_t nr_pages)
{
	struct store_root r;

	store_root_layout(nr_pages, &r);
	return r.size;
}

/*
 * Whether a recovered slot names a place in the backing file that can
 * hold it; if so, that block counts it.
 */
static bool
store_backed_valid(struct store *st, const struct slot *s)
{
	size_t in = SLOT_BACKED_IN(s->value);

	if (s->node != 0 || s->len == 0 || s->len > ZSD_PAGE_SIZE ||
	    in + s->len > ZSD_PAGE_SIZE)
		return false;
	if (s->codec == 0 ? s->len != ZSD_PAGE_SIZE : !codec_valid(s->codec))
		return false;
	return backing_get(st->backing, SLOT_BACKED_BLOCK(s->value));
}

/*
 * A store in a recovering arena: replay the journals, name every handle
 * a slot holds to the pool, recover the pool, count the index's
 * references anew, and recompute the gauges.  A slot whose handle the
 * pool does not know (it cannot happen after a crash; it would after a
 * bug) is emptied and counted lost.
 */
static int
store_recover(struct store *st, char *why, size_t whylen)
{
	struct store_recovery *rec = &st->recovery;
	struct counters *c0 = &st->counters[0];
	uint64_t i, stored = 0, same = 0, huge = 0, compr = 0;
	uint64_t merged = 0, mobjs = 0, msaved = 0;
	uint64_t backed = 0, bd_bytes = 0, last = 0, used, blocks, id = 0;
	uint8_t *seen = NULL;
	unsigned int k;
	int error;

	for (k = 0; k < STORE_STRIPES; k++) {
		struct journal *j = &st->journal[k];
		uint64_t s = atomic_load(&j->slot);

		if (s != 0 && s <= st->nr_pages &&
		    ((s - 1) & (STORE_STRIPES - 1)) == k) {
			st->slots[s - 1] = j->entry;
			rec->journal_replayed++;
		}
		atomic_store(&j->slot, 0);
	}
	for (i = 0; i < st->nr_pages; i++) {
		if (st->slots[i].type != SLOT_BACKED)
			continue;
		backed++;
		if (SLOT_BACKED_BLOCK(st->slots[i].value) + 1 > last)
			last = SLOT_BACKED_BLOCK(st->slots[i].value) + 1;
	}
	if (backed != 0 && st->backing == NULL) {
		snprintf(why, whylen, "%llu pages are in a backing file and "
		    "none is open: set backing_file to it",
		    (unsigned long long)backed);
		return -ENXIO;
	}
	if (backed != 0 && (((error = backing_id(st->backing, &id)) != 0 &&
	    error != -EEXIST) || id == 0 || id != *st->backing_id)) {
		snprintf(why, whylen, "%llu pages are in a backing file, and "
		    "%s", (unsigned long long)backed, error != 0 &&
		    error != -EEXIST ? "its header cannot be read" : "the one "
		    "given is another file: set backing_file to theirs");
		return error != 0 && error != -EEXIST ? error : -ENXIO;
	}
	if (backed != 0 && (backing_usage(st->backing, &used, &blocks),
	    last > blocks)) {
		snprintf(why, whylen, "pages are in block %llu of the backing "
		    "file, which has %llu: is it the same file?",
		    (unsigned long long)(last - 1),
		    (unsigned long long)blocks);
		return -ENXIO;
	}
	backed = 0;
	if (st->merge != NULL && (error = merge_recover_begin(st->merge)) != 0)
		return error;
	for (i = 0; i < st->nr_pages; i++) {
		struct slot *s = &st->slots[i];

		if (s->type == SLOT_BACKED) {
			if (!store_backed_valid(st, s)) {
				memset(s, 0, sizeof(*s));
				rec->pages_lost++;
			}
			continue;
		}
		if (s->type != SLOT_COMPRESSED && s->type != SLOT_RAW) {
			if (s->type > SLOT_BACKED) {
				memset(s, 0, sizeof(*s));
				rec->pages_lost++;
			}
			continue;
		}
		if ((s->type == SLOT_COMPRESSED ? s->len == 0 ||
		    s->len >= ZSD_PAGE_SIZE || !codec_valid(s->codec) :
		    s->len != ZSD_PAGE_SIZE) ||
		    zs_arena_mark(st->pool, s->value) != 0 ||
		    (s->node != 0 && (st->merge == NULL ||
		    !merge_recover_ref(st->merge, s->node, s->value,
		    s->type == SLOT_RAW ? 0 : s->codec)))) {
			memset(s, 0, sizeof(*s));
			rec->pages_lost++;
		}
	}
	if ((error = zs_arena_recover(st->pool, &rec->pool, why, whylen)) != 0)
		return error;
	if (st->merge != NULL)
		merge_recover_end(st->merge);

	/* The gauges, from the slots: all in the first set. */
	if (st->merge != NULL) {
		uint64_t nodes = merge_nodes_size(st->nr_pages) /
		    16;		/* a node is 16 bytes */

		if ((seen = calloc(nodes / 8 + 1, 1)) == NULL)
			return -ENOMEM;
	}
	for (i = 0; i < st->nr_pages; i++) {
		const struct slot *s = &st->slots[i];
		uint32_t refs;

		if (s->type == SLOT_EMPTY)
			continue;
		store_chunk_used(st, i);
		stored++;
		same += s->type == SLOT_SAME;
		huge += s->type == SLOT_RAW;
		if (s->type == SLOT_SAME)
			continue;
		if (s->type == SLOT_BACKED) {
			backed++;
			bd_bytes += s->len;
			continue;
		}
		compr += s->len;
		if (s->node == 0) {
			rec->objects++;
			continue;
		}
		if (seen[(s->node - 1) / 8] & (1u << ((s->node - 1) % 8)))
			continue;
		seen[(s->node - 1) / 8] |= (uint8_t)(1u << ((s->node - 1) % 8));
		rec->objects++;
		/* Of an object's holders, all but one are merged pages. */
		refs = merge_node_refs(st->merge, s->node);
		if (refs < 2)
			continue;
		merged += refs - 1;
		msaved += (uint64_t)s->len * (refs - 1);
		mobjs++;
	}
	free(seen);
	for (k = 0; k < STORE_SHARDS; k++) {
		struct counters *c = &st->counters[k];

		atomic_store(&c->pages_stored, 0);
		atomic_store(&c->same_pages, 0);
		atomic_store(&c->huge_pages, 0);
		atomic_store(&c->compr_data_size, 0);
		atomic_store(&c->pages_merged, 0);
		atomic_store(&c->merge_objects, 0);
		atomic_store(&c->merge_saved, 0);
		atomic_store(&c->idle_pages, 0);
		atomic_store(&c->bd_count, 0);
		atomic_store(&c->bd_bytes, 0);
	}
	atomic_store(&c0->pages_stored, stored);
	atomic_store(&c0->same_pages, same);
	atomic_store(&c0->huge_pages, huge);
	atomic_store(&c0->compr_data_size, compr);
	atomic_store(&c0->pages_merged, merged);
	atomic_store(&c0->merge_objects, mobjs);
	atomic_store(&c0->merge_saved, msaved);
	atomic_store(&c0->bd_count, backed);
	rec->backed = backed;
	atomic_store(&c0->bd_bytes, bd_bytes);
	rec->merged = merged;
	rec->pages = stored;
	return 0;
}

/*
 * A store with no page in its backing file makes the file its own: a
 * new id in the file's header and in the root.  (One with pages there
 * was checked against the file by store_recover.)  A file whose first
 * block holds something else is not written over, and one that cannot
 * be read or written is not used: the store goes on without a backing
 * file, and store_backing_problem says why.
 */
static void
store_claim_backing(struct store *st)
{
	uint64_t id = 0;
	int error;

	if (st->backing == NULL || st->recovery.backed != 0)
		return;
	if ((error = backing_id(st->backing, &id)) == -EEXIST)
		snprintf(st->backing_problem, sizeof(st->backing_problem),
		    "the backing file's first block holds other data (not a "
		    "file zsd made): zsd does not write over it");
	else if (error != 0)
		snprintf(st->backing_problem, sizeof(st->backing_problem),
		    "reading the backing file's header: %s",
		    strerror(-error));
	if (error != 0)
		goto fail;
	/* Not at boot's expense: the clock will do if the pool is empty. */
	for (id = 0; id == 0; )
		if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
			id = (uint64_t)store_clock_seconds() << 32 ^
			    (uint64_t)getpid() ^ (uintptr_t)st;
	if ((error = backing_claim(st->backing, id)) != 0) {
		snprintf(st->backing_problem, sizeof(st->backing_problem),
		    "writing the backing file's header: %s",
		    strerror(-error));
		goto fail;
	}
	*st->backing_id = id;
	return;
fail:
	st->backing = NULL;
}

const char *
store_backing_problem(const struct store *st)
{
	return st->backing_problem[0] != '\0' ? st->backing_problem : NULL;
}

struct store *
store_create(struct zs_pool *pool, uint64_t nr_pages,
    const struct store_options *opt, int *errorp)
{
	return store_open(pool, nr_pages, opt, NULL, 0, errorp);
}

struct store *
store_open(struct zs_pool *pool, uint64_t nr_pages,
    const struct store_options *opt, char *why, size_t whylen, int *errorp)
{
	struct store_root want;
	struct store *st;
	char *root = NULL;
	size_t huge, root_size = 0;
	bool recovering = false;
	int error;

	if (pool == NULL || nr_pages == 0 || !codec_valid(opt->codec) ||
	    nr_pages > UINT64_MAX >> ZSD_PAGE_SHIFT ||
	    nr_pages > SIZE_MAX / sizeof(struct slot)) {
		*errorp = -EINVAL;
		return NULL;
	}
	if (zs_pool_is_arena(pool)) {
		root = zs_arena_root(pool, &root_size);
		/*
		 * A recovering arena's root says how many pages; it has no
		 * store yet if its process died before store_open was done.
		 */
		recovering = zs_arena_recovering(pool);
		if (recovering && memcmp(root, STORE_ROOT_MAGIC, 8) == 0)
			nr_pages = ((struct store_root *)(void *)root)->nr_pages;
		else
			recovering = false;
		store_root_layout(nr_pages, &want);
		if (want.size > root_size || (recovering && memcmp(root, &want,
		    sizeof(want)) != 0)) {
			if (why != NULL)
				snprintf(why, whylen, "the arena's store is of "
				    "another layout or version");
			*errorp = -EPROTO;
			return NULL;
		}
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		*errorp = -ENOMEM;
		return NULL;
	}
	st->pool = pool;
	st->nr_pages = nr_pages;
	st->size = nr_pages << ZSD_PAGE_SHIFT;
	st->backing = opt->backing;
	st->epoch = store_clock_seconds();
	st->backing_id = root != NULL ? (uint64_t *)(void *)(root +
	    ROOT_BACKING_ID) : &st->own_id;
	if (root != NULL) {
		st->root = (struct store_root *)(void *)root;
		st->slots = (struct slot *)(void *)(root + want.slots_off);
		st->journal = (struct journal *)(void *)(root +
		    want.journal_off);
		st->counters = (struct counters *)(void *)(root +
		    want.counters_off);
	}
	/* What compresses to the huge class size or more is stored raw. */
	huge = zs_huge_class_size(pool);
	st->compress_cap = (huge < ZSD_PAGE_SIZE ? huge : ZSD_PAGE_SIZE) - 1;

	/* A file too large to index is served without merging. */
	if ((st->merge = merge_create(nr_pages, root != NULL ?
	    root + want.nodes_off : NULL, &error)) == NULL &&
	    error != -EFBIG)
		goto fail;
	store_set_options(st, opt);

	error = -ENOMEM;
	/* Untouched calloc pages cost nothing until their slots are used. */
	if (st->slots == NULL && (st->slots = calloc((size_t)nr_pages,
	    sizeof(*st->slots))) == NULL)
		goto fail;
	if ((st->atime = calloc((size_t)nr_pages, sizeof(*st->atime))) ==
	    NULL || (st->chunks = calloc((size_t)((nr_pages + STORE_CHUNK *
	    64 - 1) / (STORE_CHUNK * 64)), sizeof(*st->chunks))) == NULL)
		goto fail;
	if ((st->stripes = aligned_alloc(CACHE_LINE, STORE_STRIPES *
	    sizeof(*st->stripes))) == NULL)
		goto fail;
	if (st->counters == NULL) {
		if ((st->counters = aligned_alloc(CACHE_LINE, STORE_SHARDS *
		    sizeof(*st->counters))) == NULL)
			goto fail;
		memset(st->counters, 0, STORE_SHARDS * sizeof(*st->counters));
	}
	for (; st->nr_stripes < STORE_STRIPES; st->nr_stripes++) {
		if ((error = -pthread_mutex_init(
		    &st->stripes[st->nr_stripes].lock, NULL)) != 0)
			goto fail;
	}
	if (recovering) {
		if ((error = store_recover(st, why, whylen)) != 0)
			goto fail;
	} else if (root != NULL) {
		if (zs_arena_recovering(pool) && (error = zs_arena_recover(pool,
		    &st->recovery.pool, why, whylen)) != 0)
			goto fail;
		/* Last: a root with its magic is a store to recover. */
		memcpy(root, &want, sizeof(want));
	}
	store_claim_backing(st);
	return st;

fail:
	/* Recovery failed or not: the arena stays as it is. */
	store_destroy(st);
	*errorp = error;
	return NULL;
}

void
store_recovered(const struct store *st, struct store_recovery *out)
{
	*out = st->recovery;
}

uint64_t
store_nr_pages(const struct store *st)
{
	return st->nr_pages;
}

void
store_ctx_destroy(struct store_ctx *ctx)
{
	if (ctx == NULL)
		return;
	codec_ctx_destroy(ctx->codec);
	free(ctx);
}

struct store_ctx *
store_ctx_create(struct store *st)
{
	struct store_ctx *ctx;
	int saved;

	if ((ctx = aligned_alloc(ZSD_PAGE_SIZE, sizeof(*ctx))) == NULL)
		return NULL;
	memset(ctx, 0, sizeof(*ctx));
	ctx->st = st;
	ctx->counters = &st->counters[atomic_fetch_add_explicit(&st->next_set,
	    1, memory_order_relaxed) % STORE_SHARDS];
	ctx->zstd_level = atomic_load_explicit(&st->zstd_level,
	    memory_order_relaxed);
	if ((ctx->codec = codec_ctx_create(ctx->zstd_level)) == NULL) {
		saved = errno;
		store_ctx_destroy(ctx);
		errno = saved;
		return NULL;
	}
	return ctx;
}

/* The field at offset off of every set, summed. */
static uint64_t
stat_sum(const struct store *st, size_t off)
{
	uint64_t sum = 0;
	unsigned int k;

	for (k = 0; k < STORE_SHARDS; k++)
		sum += atomic_load_explicit((_Atomic uint64_t *)(void *)
		    ((char *)&st->counters[k] + off), memory_order_relaxed);
	return sum;
}

static uint64_t
stat_max(const struct store *st, size_t off)
{
	uint64_t max = 0, v;
	unsigned int k;

	for (k = 0; k < STORE_SHARDS; k++) {
		v = atomic_load_explicit((_Atomic uint64_t *)(void *)
		    ((char *)&st->counters[k] + off), memory_order_relaxed);
		if (v > max)
			max = v;
	}
	return max;
}

/*
 * A gauge, summed while other threads may count.  The sets are read one
 * after the other, so a page counted in and out meanwhile may be seen in
 * one set and not the other: for a moment the sum may be a little high,
 * or below zero, which is read as zero.
 */
static uint64_t
gauge_sum(const struct store *st, size_t off)
{
	uint64_t sum = stat_sum(st, off);

	return (int64_t)sum < 0 ? 0 : sum;
}

#define STAT_SUM(st, f)		stat_sum((st), offsetof(struct counters, f))
#define GAUGE_SUM(st, f)	gauge_sum((st), offsetof(struct counters, f))

uint64_t
store_pages_stored(struct store *st)
{
	return GAUGE_SUM(st, pages_stored);
}

/* Each shared object once. */
static uint64_t
compr_size(uint64_t compr, uint64_t merge_saved)
{
	return compr > merge_saved ? compr - merge_saved : 0;
}

uint64_t
store_compr_size(struct store *st)
{
	return compr_size(GAUGE_SUM(st, compr_data_size),
	    GAUGE_SUM(st, merge_saved));
}

void
store_stats(struct store *st, struct store_stats *out)
{
	struct zs_pool_stats ps;

	zs_pool_stats(st->pool, &ps);
	memset(out, 0, sizeof(*out));
	out->pages_stored = GAUGE_SUM(st, pages_stored);
	out->orig_data_size = out->pages_stored * ZSD_PAGE_SIZE;
	out->merge_saved = GAUGE_SUM(st, merge_saved);
	out->compr_data_size = compr_size(GAUGE_SUM(st, compr_data_size),
	    out->merge_saved);
	out->mem_used_total = zs_pool_pages_used(st->pool) * ZSD_PAGE_SIZE;
	out->mem_limit = atomic_load_explicit(&st->mem_limit,
	    memory_order_relaxed);
	out->mem_used_max = stat_max(st, offsetof(struct counters,
	    mem_used_max));
	out->same_pages = GAUGE_SUM(st, same_pages);
	out->huge_pages = GAUGE_SUM(st, huge_pages);
	out->pages_compacted = ps.pages_compacted;
	out->failed_reads = STAT_SUM(st, failed_reads);
	out->failed_writes = STAT_SUM(st, failed_writes);
	out->reads = STAT_SUM(st, reads);
	out->writes = STAT_SUM(st, writes);
	out->discards = STAT_SUM(st, discards);
	out->limit_refusals = STAT_SUM(st, limit_refusals);
	out->invalid_io = STAT_SUM(st, invalid_io);
	out->pages_merged = GAUGE_SUM(st, pages_merged);
	out->merge_objects = GAUGE_SUM(st, merge_objects);
	out->merge_collisions = STAT_SUM(st, merge_collisions);
	out->merge_skipped = STAT_SUM(st, merge_skipped);
	out->idle_pages = GAUGE_SUM(st, idle_pages);
	out->recompressed = STAT_SUM(st, recompressed);
	out->recompress_saved = STAT_SUM(st, recompress_saved);
	out->bd_count = GAUGE_SUM(st, bd_count);
	out->bd_bytes = GAUGE_SUM(st, bd_bytes);
	out->bd_reads = STAT_SUM(st, bd_reads);
	out->bd_writes = STAT_SUM(st, bd_writes);
	if (st->backing != NULL)
		backing_usage(st->backing, &out->bd_blocks_used,
		    &out->bd_blocks);
}

void
store_reset_max(struct store *st)
{
	uint64_t used = zs_pool_pages_used(st->pool) * ZSD_PAGE_SIZE;
	unsigned int k;

	for (k = 0; k < STORE_SHARDS; k++)
		atomic_store_explicit(&st->counters[k].mem_used_max,
		    k == 0 ? used : 0, memory_order_relaxed);
}
