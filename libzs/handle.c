/*
 * handle.c - the handle table and handle pinning.
 *
 * A handle is (generation << 32 | index).  The index names a 64-bit word
 * in a two-level table (a directory of chunks of HANDLE_CHUNK words, each
 * chunk mapped when first needed); the word says where the object is now
 * (see zs-internal.h).  A freed handle's word has ALLOC clear, and each
 * handle made live on an index gets the next value of the word's 16-bit
 * generation, so a stale handle kept after zs_free() is refused rather
 * than taken for the object that reused its index -- until the index has
 * been handed out 65,536 times more: then the generation has come round
 * and the stale handle equals a live one (zs.h says so).  An index taken
 * for an allocation that fails goes back unchanged, using no generation.
 * Freed indices wait in their class (see class_handle_get) and, past a
 * few, on a LIFO free list threaded through the words.
 *
 * Pinning sets the word's PIN bit.  Whoever holds the pin may read and
 * write the object and knows it stays where the word says.  Readers and
 * freers spin for the pin (then yield, then nap); movers (compaction) only
 * try, since they hold a class lock that a pin holder may be waiting for.
 *
 * Words are handed out under a class lock, and written there
 * (handle_publish), so a word never used must not cost a fault there:
 * the table hands out new indices only below handle_ready, up to which
 * handle_table_grow() has mapped the chunks and faulted the words in,
 * with no lock held.
 */

/* Words handle_table_grow() faults in at a time: 4 pages. */
#define HANDLE_GROW	(4 * PAGE_SIZE / sizeof(uint64_t))
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
	pool_mutex_init(pool, &pool->handle_lock);
	pool->handle_free = 0;
	atomic_init(&pool->handle_top, 1);	/* index 0 is never issued */
	pool->handle_ready = 0;
	return 0;
}

void
handle_table_destroy(struct zs_pool *pool)
{
	uint32_t i;

	if (pool->handle_dir == NULL)
		return;
	for (i = 0; pool->arena == NULL && i < HANDLE_DIR; i++) {
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
 * Up to n free indices, from the table's free list first, then never used
 * ones below handle_ready; their words have ALLOC clear.  Returns how
 * many; 0 and EAGAIN when the table must grow first, ENOMEM when it is
 * full.
 */
static unsigned int
handle_take(struct zs_pool *pool, uint32_t *idx, unsigned int n)
{
	unsigned int got = 0;
	uint32_t top;

	pthread_mutex_lock(&pool->handle_lock);
	while (got < n && pool->handle_free != 0) {
		idx[got] = pool->handle_free;
		pool->handle_free = HW_LOC(atomic_load_explicit(
		    handle_word(pool, idx[got]), memory_order_relaxed));
		got++;
	}
	top = atomic_load_explicit(&pool->handle_top, memory_order_relaxed);
	while (got < n && top < pool->handle_ready)
		idx[got++] = top++;
	atomic_store_explicit(&pool->handle_top, top, memory_order_release);
	pthread_mutex_unlock(&pool->handle_lock);
	if (got == 0)
		errno = top < HANDLE_MAX ? EAGAIN : ENOMEM;
	return got;
}

/*
 * Make HANDLE_GROW more words ready to hand out: map their chunk if it is
 * not, and fault them in.  No class lock or pin held: both may wait.
 * Two threads may grow at once: they fault in the same words, which
 * changes nothing, and the chunk mapped second is unmapped.  0, or
 * -ENOMEM when the table is full or cannot be mapped.
 */
int
handle_table_grow(struct zs_pool *pool)
{
	_Atomic uint64_t *chunk, *mine = NULL;
	uint32_t ready, end, k;

	hold_none();
	pthread_mutex_lock(&pool->handle_lock);
	ready = pool->handle_ready;
	pthread_mutex_unlock(&pool->handle_lock);
	if (ready >= HANDLE_MAX)
		return -ENOMEM;
	k = ready >> HANDLE_CHUNK_SHIFT;
	chunk = atomic_load_explicit(&pool->handle_dir[k],
	    memory_order_acquire);
	if (chunk == NULL) {
		/* Zero-filled: generation 0, not ALLOC. */
		mine = pool->arena != NULL ? arena_handle_chunk(pool, k) :
		    os_map(pool, HANDLE_CHUNK * sizeof(*chunk));
		if (mine == NULL)
			return -ENOMEM;
		pthread_mutex_lock(&pool->handle_lock);
		chunk = atomic_load_explicit(&pool->handle_dir[k],
		    memory_order_relaxed);
		if (chunk == NULL) {
			atomic_store_explicit(&pool->handle_dir[k], mine,
			    memory_order_release);
			chunk = mine;
			mine = NULL;
		}
		pthread_mutex_unlock(&pool->handle_lock);
		if (mine != NULL && pool->arena == NULL)
			os_unmap(pool, (void *)mine,
			    HANDLE_CHUNK * sizeof(*mine));
	}
	/* Within the chunk: the next one may not be mapped. */
	end = (ready + HANDLE_GROW) & ~(uint32_t)(HANDLE_GROW - 1);
	if (end > (k + 1) << HANDLE_CHUNK_SHIFT)
		end = (k + 1) << HANDLE_CHUNK_SHIFT;
	os_populate(pool, (void *)&chunk[ready & (HANDLE_CHUNK - 1)],
	    (size_t)(end - ready) * sizeof(*chunk));
	pthread_mutex_lock(&pool->handle_lock);
	if (pool->handle_ready < end)
		pool->handle_ready = end;
	pthread_mutex_unlock(&pool->handle_lock);
	return 0;
}

/* Push n free indices on the table's free list. */
static void
handle_give(struct zs_pool *pool, const uint32_t *idx, unsigned int n)
{
	_Atomic uint64_t *w;
	unsigned int i;
	uint64_t v;

	pthread_mutex_lock(&pool->handle_lock);
	for (i = 0; i < n; i++) {
		w = handle_word(pool, idx[i]);
		v = atomic_load_explicit(w, memory_order_relaxed);
		atomic_store_explicit(w, (v & HW_GEN_MASK) |
		    (uint64_t)pool->handle_free << HW_LOC_SHIFT,
		    memory_order_relaxed);
		pool->handle_free = idx[i];
	}
	pthread_mutex_unlock(&pool->handle_lock);
}

/*
 * A free index for a new object of class c, its word's ALLOC clear until
 * zs_malloc() stores the object's place.  Class lock held.  0 and EAGAIN
 * when the table must grow first (handle_table_grow, without the lock),
 * 0 and ENOMEM when it cannot.
 *
 * Each class keeps up to CLASS_HANDLES free indices under its own lock and
 * goes to the table's list, under handle_lock, for CLASS_HANDLE_BATCH at a
 * time: malloc and free take the class lock anyway, and threads working on
 * different classes then share no lock.
 */
uint32_t
class_handle_get(struct zs_pool *pool, struct size_class *c)
{
	if (c->nr_handles == 0) {
		c->nr_handles = handle_take(pool, c->handles,
		    CLASS_HANDLE_BATCH);
		if (c->nr_handles == 0)
			return 0;
	}
	return c->handles[--c->nr_handles];
}

/*
 * Retire index idx into class c's free indices: clear ALLOC (and PIN),
 * keep the generation (the next handle_publish moves it on).  Class lock
 * held, and the handle's pin, or the handle never went live.
 */
void
class_handle_put(struct zs_pool *pool, struct size_class *c, uint32_t idx)
{
	_Atomic uint64_t *w = handle_word(pool, idx);

	atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) &
	    HW_GEN_MASK, memory_order_release);
	if (c->nr_handles == CLASS_HANDLES) {
		c->nr_handles -= CLASS_HANDLE_BATCH;
		handle_give(pool, c->handles + c->nr_handles,
		    CLASS_HANDLE_BATCH);
	}
	c->handles[c->nr_handles++] = idx;
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
 * The word of handle, or NULL if no handle of that index and generation
 * was ever issued.  Whether it is live is the word's to say.
 */
_Atomic uint64_t *
handle_lookup(struct zs_pool *pool, zs_handle_t handle)
{
	uint32_t idx = (uint32_t)handle;

	if (idx == 0 || handle >> 32 > 0xffff || idx >= atomic_load_explicit(
	    &pool->handle_top, memory_order_acquire))
		return NULL;
	return handle_word(pool, idx);
}

/*
 * Pin a live handle, waiting while someone else holds it.  On success
 * *wordp is its word and *val the word's value, PIN included.
 */
int
handle_pin(struct zs_pool *pool, zs_handle_t handle, _Atomic uint64_t **wordp,
    uint64_t *val)
{
	uint32_t gen = (uint32_t)(handle >> 32);
	unsigned int spins = 0;
	_Atomic uint64_t *w;
	uint64_t v;

	if ((w = handle_lookup(pool, handle)) == NULL)
		return handle_bad();
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
	hold_take();
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
	hold_take();
	*val = v | HW_PIN;
	return true;
}

/*
 * A plain store, not a read-modify-write: while the word is pinned only its
 * holder writes it (others only try to pin, which fails), so nothing is
 * lost.  A locked instruction here would wait until every store before it
 * -- the object just copied into the pool, often into memory not in cache
 * -- had reached the cache; a store lets the caller go on meanwhile.
 */
void
handle_unpin(_Atomic uint64_t *w)
{
	atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) &
	    ~HW_PIN, memory_order_release);
	hold_drop();
}

/*
 * Make a free handle's word live, saying where its object is (hw_where),
 * pinned if pin, with the next generation; class lock held.  Returns the
 * generation, the handle's upper half.
 */
uint32_t
handle_publish(_Atomic uint64_t *w, uint64_t where, bool pin)
{
	uint32_t gen = (HW_GEN(atomic_load_explicit(w, memory_order_relaxed)) +
	    1) & 0xffff;
	uint64_t v = HW_ALLOC | (uint64_t)gen << HW_GEN_SHIFT | where;

	os_assert_resident((const void *)w, sizeof(*w));
	atomic_store_explicit(w, pin ? v | HW_PIN : v, memory_order_release);
	if (pin)
		hold_take();
	return gen;
}

/* Store a new value into a pinned word, unpinning it. */
void
handle_set_unpin(_Atomic uint64_t *w, uint64_t v)
{
	atomic_store_explicit(w, v & ~HW_PIN, memory_order_release);
	hold_drop();
}
