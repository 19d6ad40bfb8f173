/*
 * idle.c - pages nobody has used for a while: marked idle, recompressed
 * with zstd, or written back to the backing file.
 *
 * Ages.  Every read, write or discard of slot i sets atime[i] (see
 * store-int.h) to the store's clock, seconds since the store was opened
 * (CLOCK_MONOTONIC_COARSE, read once a page: a few nanoseconds through
 * the vDSO), which also clears the slot's idle mark.  store_mark_idle
 * sets the mark on every page, or on those not used for some seconds, as
 * zram's "idle" file does; a pass then picks marked pages, or pages old
 * enough by their age alone (the automatic policy's way).  The table
 * costs 4 bytes a slot, in private memory: a successor that recovers the
 * slots starts every age again at 0 and every mark cleared.
 *
 * Recompression.  A picked page is read (its slot locked), recompressed
 * with zstd at the recompression level without any lock, and its new
 * object allocated; then the slot is locked again and, if it still holds
 * exactly what was read, it takes the new object through the journal
 * (each page old or new, as a write) and the old one is freed.  A page
 * rewritten, discarded or even read meanwhile keeps what it holds (a
 * page in use is no longer idle), and the new object is freed.  A page
 * whose object would not be at least RECOMPRESS_GAIN bytes smaller
 * keeps it, and is marked tried (ATIME_TRIED, which a read keeps and a
 * write clears) so that no later pass spends zstd on its bytes again; a
 * huge page tried in vain is what writeback calls incompressible.
 *
 * Writeback.  Picked pages' objects are copied, still compressed, into a
 * block buffer one after the other, as many as fit in 4 KiB (a huge page
 * takes a block of its own); the block is written to a free block of the
 * backing file, and then each slot that still holds what was copied is
 * switched to SLOT_BACKED (block and offset in its value, the length and
 * codec as before) and its object freed.  Packing pays: at lz4's usual
 * 2-3x, two or three pages go to a block, and reading one back is still
 * one 4 KiB read.  A block is free again when its last page is
 * discarded or overwritten (backing.c); a block whose pages die one by
 * one keeps its room until the last goes (the file is not compacted).
 * A block that cannot be written (a full file system, an I/O error)
 * leaves its pages where they were, in memory, and ends the pass.
 *
 * Pages that share an object (same-page merging) are left alone by both:
 * giving each its own would take more memory, not less.  A page whose
 * object is indexed but its own (one reference) is taken: the slot gets
 * a new object, not indexed, and its reference to the old one is given
 * back, which frees it and its node, or, if a writer merged a copy into
 * it meanwhile, leaves it to that copy.  Merging lets it be: new copies
 * of the page are stored anew.
 *
 * Threads: the passes run on the caller's thread, at normal priority,
 * with a store context of their own; they hold a slot's lock only to
 * read or switch it, as a reader or writer would.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-int.h"

#define RECOMPRESS_GAIN	16u	/* bytes less: a smaller size class */
#define PACK_MAX	64u	/* pages in one block of the file */
#define PASS_CHECK	1024u	/* slots between looks at cancel */

int64_t
store_clock_seconds(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

uint32_t
store_now(struct store *st)
{
	int64_t t;

	t = store_clock_seconds() - st->epoch +
	    atomic_load_explicit(&st->clock_shift, memory_order_relaxed);
	if (t < 0)
		return 0;
	return t > ATIME_SECONDS ? ATIME_SECONDS : (uint32_t)t;
}

void
store_clock_advance(struct store *st, uint32_t seconds)
{
	atomic_fetch_add(&st->clock_shift, seconds);
}

static uint32_t
atime_age(uint32_t a, uint32_t now)
{
	uint32_t t = a & ATIME_SECONDS;

	return now > t ? now - t : 0;
}

uint64_t
store_next_used(struct store *st, uint64_t i)
{
	uint64_t c, nr_chunks = (st->nr_pages + STORE_CHUNK - 1) /
	    STORE_CHUNK;

	for (c = i / STORE_CHUNK; c < nr_chunks; c++) {
		if (atomic_load_explicit(&st->chunks[c / 64],
		    memory_order_relaxed) & (1ull << (c % 64)))
			return i > c * STORE_CHUNK ? i : c * STORE_CHUNK;
	}
	return st->nr_pages;
}

uint64_t
store_mark_idle(struct store *st, uint32_t min_age)
{
	uint32_t now = store_now(st);
	pthread_mutex_t *lock;
	uint64_t i, marked = 0;

	for (i = store_next_used(st, 0); i < st->nr_pages;
	    i = store_next_used(st, i + 1)) {
		lock = store_slot_lock(st, i);
		pthread_mutex_lock(lock);
		if (st->slots[i].type != SLOT_EMPTY &&
		    !(st->atime[i] & ATIME_IDLE) &&
		    atime_age(st->atime[i], now) >= min_age) {
			st->atime[i] |= ATIME_IDLE;
			marked++;
		}
		pthread_mutex_unlock(lock);
	}
	atomic_fetch_add_explicit(&st->counters[0].idle_pages, marked,
	    memory_order_relaxed);
	return marked;
}

/* Whether pass takes slot s of atime a.  Called with the slot locked. */
static bool
pass_picks(struct store *st, const struct store_pass *pass,
    const struct slot *s, uint32_t a, uint32_t now)
{
	if (s->type != SLOT_COMPRESSED && s->type != SLOT_RAW)
		return false;
	if ((pass->pick & PICK_IDLE) && !(a & ATIME_IDLE) &&
	    (pass->min_age == 0 || atime_age(a, now) < pass->min_age))
		return false;
	if ((pass->pick & (PICK_HUGE | PICK_INCOMPRESSIBLE)) &&
	    s->type != SLOT_RAW)
		return false;
	if ((pass->pick & PICK_INCOMPRESSIBLE) && !(a & ATIME_TRIED))
		return false;
	/* Last: it takes the index shard's lock. */
	return s->node == 0 || merge_refs(st->merge, s->node) == 1;
}

/*
 * Whether the pass must end before its next slot: done, or cancelled
 * (looked at first and every PASS_CHECK slots, counted by *n).
 */
static bool
pass_over(const struct store_pass *pass, struct store_pass_result *res,
    unsigned int *n)
{
	if (pass->max_pages != 0 && res->pages >= pass->max_pages)
		return true;
	return (*n)++ % PASS_CHECK == 0 && pass->cancel != NULL &&
	    atomic_load_explicit(pass->cancel, memory_order_relaxed);
}

static bool
slot_same(const struct slot *a, const struct slot *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/*
 * Slot i, read as was with access time a, gets new if it still holds
 * was and has not been used since; true if so.
 */
static bool
pass_switch(struct store *st, struct store_ctx *ctx, uint64_t i,
    const struct slot *was, uint32_t a, const struct slot *new,
    uint32_t set)
{
	pthread_mutex_t *lock = store_slot_lock(st, i);
	struct slot old;

	pthread_mutex_lock(lock);
	if (!slot_same(&st->slots[i], was) || st->atime[i] != a) {
		pthread_mutex_unlock(lock);
		return false;
	}
	store_replace_locked(st, ctx, i, new, &old);
	st->atime[i] |= set;
	pthread_mutex_unlock(lock);
	store_release(st, ctx, &old);
	return true;
}

void
store_recompress(struct store *st, struct store_ctx *ctx,
    const struct store_pass *pass, struct store_pass_result *res)
{
	pthread_mutex_t *lock;
	struct slot s, new;
	zs_handle_t handle;
	uint32_t a, now = store_now(st);
	size_t cap, len;
	uint64_t i;
	unsigned int n = 0;
	int level, error;

	memset(res, 0, sizeof(*res));
	level = atomic_load_explicit(&st->recomp_level, memory_order_relaxed);
	codec_ctx_set_level(ctx->codec, level);
	ctx->zstd_level = level;
	for (i = store_next_used(st, 0); i < st->nr_pages &&
	    !pass_over(pass, res, &n); i = store_next_used(st, i + 1)) {
		lock = store_slot_lock(st, i);
		pthread_mutex_lock(lock);
		s = st->slots[i];
		a = st->atime[i];
		if ((a & ATIME_TRIED) || s.len < pass->threshold ||
		    s.len <= RECOMPRESS_GAIN || !pass_picks(st, pass, &s, a,
		    now)) {
			pthread_mutex_unlock(lock);
			continue;
		}
		res->scanned++;
		error = store_decode(st, ctx, &s, ctx->page);
		pthread_mutex_unlock(lock);
		if (error != 0) {
			res->failed++;
			continue;
		}
		cap = s.len - RECOMPRESS_GAIN;
		if (cap > st->compress_cap)
			cap = st->compress_cap;
		len = codec_compress(ctx->codec, CODEC_ZSTD, ctx->page,
		    ctx->cbuf, cap);
		if (len == 0) {
			/* No gain: keep it, and do not try again. */
			pthread_mutex_lock(lock);
			if (slot_same(&st->slots[i], &s) &&
			    st->atime[i] == a)
				st->atime[i] |= ATIME_TRIED;
			pthread_mutex_unlock(lock);
			continue;
		}
		if ((handle = zs_malloc_write(st->pool, ctx->cbuf, len)) == 0) {
			res->error = -ENOMEM;
			break;
		}
		new = (struct slot){ .value = handle, .len = (uint16_t)len,
		    .type = SLOT_COMPRESSED, .codec = CODEC_ZSTD };
		if (!pass_switch(st, ctx, i, &s, a, &new, ATIME_TRIED)) {
			(void)zs_free(st->pool, handle);
			continue;
		}
		res->pages++;
		res->bytes_saved += s.len - len;
		STAT_ADD(ctx, recompressed, 1);
		STAT_ADD(ctx, recompress_saved, s.len - len);
	}
}

/* What a writeback pass has packed into ctx->block so far. */
struct pack {
	unsigned int	n;
	size_t		fill;			/* bytes of the block */
	struct {
		uint64_t	i;
		struct slot	was;
		uint32_t	a;		/* its access time, read */
		uint16_t	in;		/* offset in the block */
	}		page[PACK_MAX];
};

/*
 * Write the packed block to the file, then switch its slots to it.  0,
 * or -errno if the block could not be written (its pages stay).
 */
static int
pack_flush(struct store *st, struct store_ctx *ctx, struct pack *p,
    struct store_pass_result *res)
{
	uint64_t block;
	unsigned int k;
	struct slot new;
	int error;

	if (p->n == 0)
		return 0;
	memset(ctx->block + p->fill, 0, ZSD_PAGE_SIZE - p->fill);
	if ((error = backing_alloc(st->backing, p->n, &block)) == 0 &&
	    (error = backing_write(st->backing, block, ctx->block)) != 0)
		for (k = 0; k < p->n; k++)
			backing_put(st->backing, block);
	if (error != 0) {
		res->failed += p->n;
		p->n = 0;
		p->fill = 0;
		return error;
	}
	res->bytes_written += ZSD_PAGE_SIZE;
	for (k = 0; k < p->n; k++) {
		const struct slot *was = &p->page[k].was;

		new = (struct slot){ .value = SLOT_BACKED_POS(block,
		    p->page[k].in), .len = was->len, .type = SLOT_BACKED,
		    .codec = was->type == SLOT_RAW ? 0 : was->codec };
		if (!pass_switch(st, ctx, p->page[k].i, was, p->page[k].a,
		    &new, 0)) {
			backing_put(st->backing, block);
			continue;
		}
		res->pages++;
		STAT_ADD(ctx, bd_writes, 1);
	}
	p->n = 0;
	p->fill = 0;
	return 0;
}

void
store_writeback(struct store *st, struct store_ctx *ctx,
    const struct store_pass *pass, struct store_pass_result *res)
{
	struct pack *p;
	pthread_mutex_t *lock;
	const void *src;
	struct slot s;
	uint32_t a, now = store_now(st);
	uint64_t i;
	unsigned int n = 0;

	memset(res, 0, sizeof(*res));
	if (st->backing == NULL) {
		res->error = -ENXIO;
		return;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		res->error = -ENOMEM;
		return;
	}
	for (i = store_next_used(st, 0); i < st->nr_pages;
	    i = store_next_used(st, i + 1)) {
		if (pass_over(pass, res, &n) || (pass->max_pages != 0 &&
		    res->pages + p->n >= pass->max_pages))
			break;
		lock = store_slot_lock(st, i);
		pthread_mutex_lock(lock);
		s = st->slots[i];
		a = st->atime[i];
		if (!pass_picks(st, pass, &s, a, now)) {
			pthread_mutex_unlock(lock);
			continue;
		}
		if (p->fill + s.len > ZSD_PAGE_SIZE || p->n == PACK_MAX) {
			/* Full: write it, then this slot again. */
			pthread_mutex_unlock(lock);
			if ((res->error = pack_flush(st, ctx, p, res)) != 0)
				break;
			i--;
			continue;
		}
		if (p->n == 0 && pass->max_bytes != 0 &&
		    res->bytes_written + ZSD_PAGE_SIZE > pass->max_bytes) {
			pthread_mutex_unlock(lock);
			break;
		}
		res->scanned++;
		if ((src = zs_obj_read_begin(st->pool, s.value, ctx->local,
		    NULL)) == NULL) {
			pthread_mutex_unlock(lock);
			res->failed++;
			continue;
		}
		memcpy(ctx->block + p->fill, src, s.len);
		zs_obj_read_end(st->pool, s.value);
		pthread_mutex_unlock(lock);
		p->page[p->n].i = i;
		p->page[p->n].was = s;
		p->page[p->n].a = a;
		p->page[p->n].in = (uint16_t)p->fill;
		p->n++;
		p->fill += s.len;
	}
	if (res->error == 0)
		res->error = pack_flush(st, ctx, p, res);
	free(p);
}
