/*
 * handle.c - the handle table and handle pinning.
 *
 * A handle is (generation << 32 | index).  The index names a 64-bit word
 * in a two-level table (a directory of chunks of HANDLE_CHUNK words, each
 * chunk mapped when first needed); the word says where the object is now
 * (see zs-internal.h).  Freed indices go on a LIFO free list threaded
 * through the words, and each reuse bumps the word's 16-bit generation, so
 * a stale handle kept after zs_free() is refused rather than taken for the
 * object that reused its index.
 *
 * Pinning sets the word's PIN bit.  Whoever holds the pin may read and
 * write the object and knows it stays where the word says.  Readers and
 * freers spin for the pin (then yield, then nap); movers (compaction) only
 * try, since they hold a class lock that a pin holder may be waiting for.
 */
#include <config.h>

#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "zs-internal.h"

int
handle_table_init(struct zs_pool *pool)
{
	pool->handle_dir = calloc(HANDLE_DIR, sizeof(*pool->handle_dir));
	if (pool->handle_dir == NULL)
		return -ENOMEM;
	pool_mutex_init(&pool->handle_lock);
	pool->handle_free = 0;
	atomic_init(&pool->handle_top, 1);	/* index 0 is never issued */
	return 0;
}

void
handle_table_destroy(struct zs_pool *pool)
{
	uint32_t i;

	if (pool->handle_dir == NULL)
		return;
	for (i = 0; i < HANDLE_DIR; i++) {
		_Atomic uint64_t *chunk = atomic_load_explicit(
		    &pool->handle_dir[i], memory_order_relaxed);

		if (chunk != NULL)
			os_unmap(pool, (void *)chunk,
			    HANDLE_CHUNK * sizeof(*chunk));
	}
	free(pool->handle_dir);
	pool->handle_dir = NULL;
	pthread_mutex_destroy(&pool->handle_lock);
}

/* The word of an index below handle_top. */
_Atomic uint64_t *
handle_word(struct zs_pool *pool, uint32_t idx)
{
	_Atomic uint64_t *chunk = atomic_load_explicit(
	    &pool->handle_dir[idx >> HANDLE_CHUNK_SHIFT], memory_order_acquire);

	return &chunk[idx & (HANDLE_CHUNK - 1)];
}

/*
 * A new handle, not yet live: its word has ALLOC clear until zs_malloc()
 * stores the object's place.  0 + ENOMEM when the table cannot grow.
 */
zs_handle_t
handle_alloc(struct zs_pool *pool)
{
	_Atomic uint64_t *w, *chunk;
	uint32_t idx, gen;
	uint64_t v;

	pthread_mutex_lock(&pool->handle_lock);
	if (pool->handle_free != 0) {
		idx = pool->handle_free;
		w = handle_word(pool, idx);
		v = atomic_load_explicit(w, memory_order_relaxed);
		pool->handle_free = HW_LOC(v);
		gen = HW_GEN(v);
	} else {
		idx = atomic_load_explicit(&pool->handle_top,
		    memory_order_relaxed);
		if (idx >= HANDLE_MAX)
			goto nomem;
		chunk = atomic_load_explicit(
		    &pool->handle_dir[idx >> HANDLE_CHUNK_SHIFT],
		    memory_order_relaxed);
		if (chunk == NULL) {
			chunk = os_map(pool, HANDLE_CHUNK * sizeof(*chunk));
			if (chunk == NULL)
				goto nomem;
			atomic_store_explicit(
			    &pool->handle_dir[idx >> HANDLE_CHUNK_SHIFT],
			    chunk, memory_order_release);
		}
		w = &chunk[idx & (HANDLE_CHUNK - 1)];
		gen = 0;
		atomic_store_explicit(&pool->handle_top, idx + 1,
		    memory_order_release);
	}
	atomic_store_explicit(w, (uint64_t)gen << HW_GEN_SHIFT,
	    memory_order_relaxed);
	pthread_mutex_unlock(&pool->handle_lock);
	return (zs_handle_t)gen << 32 | idx;

nomem:
	pthread_mutex_unlock(&pool->handle_lock);
	errno = ENOMEM;
	return 0;
}

/*
 * Retire an index: clear ALLOC (and PIN), bump the generation, push it on
 * the free list.  The caller holds the pin or the handle never went live.
 */
void
handle_release(struct zs_pool *pool, uint32_t idx)
{
	_Atomic uint64_t *w;
	uint64_t gen;

	pthread_mutex_lock(&pool->handle_lock);
	w = handle_word(pool, idx);
	gen = (HW_GEN(atomic_load_explicit(w, memory_order_relaxed)) + 1) &
	    0xffff;
	atomic_store_explicit(w, gen << HW_GEN_SHIFT |
	    (uint64_t)pool->handle_free << HW_LOC_SHIFT, memory_order_release);
	pool->handle_free = idx;
	pthread_mutex_unlock(&pool->handle_lock);
}

/* A handle that is not live: abort in debug builds, else -EINVAL. */
int
handle_bad(void)
{
#ifdef ZS_DEBUG
	pool_assert_fail("handle is live", __FILE__, __LINE__);
#endif
	errno = EINVAL;
	return -EINVAL;
}

static const struct timespec pin_nap = { 0, 50 * 1000 };

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * Pin a live handle, waiting while someone else holds it.  On success
 * *wordp is its word and *val the word's value, PIN included.
 */
int
handle_pin(struct zs_pool *pool, zs_handle_t handle, _Atomic uint64_t **wordp,
    uint64_t *val)
{
	uint32_t idx = (uint32_t)handle, gen = (uint32_t)(handle >> 32);
	unsigned int spins = 0;
	_Atomic uint64_t *w;
	uint64_t v;

	if (idx == 0 || gen > 0xffff || idx >= atomic_load_explicit(
	    &pool->handle_top, memory_order_acquire))
		return handle_bad();
	w = handle_word(pool, idx);
	v = atomic_load_explicit(w, memory_order_relaxed);
	for (;;) {
		if (!(v & HW_ALLOC) || HW_GEN(v) != gen)
			return handle_bad();
		if (v & HW_PIN) {
			/*
			 * Pins are short, but the holder may sleep (a
			 * migration faulting pages in) or run below us: a
			 * real-time caller's sched_yield() lets only its
			 * equals run.  After a while, sleep.
			 */
			if (++spins < 100)
				cpu_relax();
			else if (spins < 200)
				sched_yield();
			else
				nanosleep(&pin_nap, NULL);
			v = atomic_load_explicit(w, memory_order_relaxed);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(w, &v, v | HW_PIN,
		    memory_order_acquire, memory_order_relaxed))
			break;
	}
	*wordp = w;
	*val = v | HW_PIN;
	return 0;
}

/* Pin if live and not pinned; never waits. */
bool
handle_trypin(_Atomic uint64_t *w, uint64_t *val)
{
	uint64_t v = atomic_load_explicit(w, memory_order_relaxed);

	if (!(v & HW_ALLOC) || (v & HW_PIN))
		return false;
	if (!atomic_compare_exchange_strong_explicit(w, &v, v | HW_PIN,
	    memory_order_acquire, memory_order_relaxed))
		return false;
	*val = v | HW_PIN;
	return true;
}

void
handle_unpin(_Atomic uint64_t *w)
{
	atomic_fetch_and_explicit(w, ~HW_PIN, memory_order_release);
}

/* Store a new value into a pinned word, unpinning it. */
void
handle_set_unpin(_Atomic uint64_t *w, uint64_t v)
{
	atomic_store_explicit(w, v & ~HW_PIN, memory_order_release);
}
