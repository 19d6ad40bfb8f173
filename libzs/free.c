/*
 * free.c - batched frees of objects, asynchronous free of emptied zspages.
 *
 * Freeing an object touches three cache lines that are rarely in cache,
 * each found through the one before: the handle word, the zspage, the
 * slot's header.  With free_batch set, zs_free() only pins the handle and
 * marks it dead, then adds it to the list of the CPU it runs on; every
 * free_batch frees, the thread that fills the list frees them all,
 * prefetching each step for the whole batch before taking the next, so
 * the misses overlap instead of following one another.  Anything that
 * needs the slots back drains the lists first (free_drain).  Statistics
 * do not: they count the frees waiting here apart (free_pending_count),
 * without taking the lists' locks.
 *
 * Freeing the last object of a zspage takes the zspage off its class, but
 * giving its pages back means the page lock and the descriptor table lock:
 * with async_free set that work is queued and a worker thread does it in
 * batches, outside the hot path.  zs_pool_flush() drains the lists and
 * waits for the queue.
 *
 * The same worker faults in free pages ahead of allocation
 * (cfg.prefault_ahead, section.c), one run at a time; zs_pool_flush()
 * waits for that too (zs-internal.h says why the run's section stays
 * mapped).
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "zs-internal.h"

#define WORKER_BATCH	64	/* zspages the worker frees at a time */

/* Free a list of empty zspages now. */
void
free_zspages_now(struct zs_pool *pool, struct list_head *list)
{
	while (!list_empty(list)) {
		struct zspage *z = list_entry(list->next, struct zspage, list);

		list_del(&z->list);
		zspage_destroy(pool, z);
	}
}

/* An empty zspage, off every list, is done with. */
void
free_release_zspage(struct zs_pool *pool, struct zspage *z)
{
	if (!pool->cfg.async_free) {
		zspage_destroy(pool, z);
		return;
	}
	pthread_mutex_lock(&pool->free_lock);
	list_add_tail(&z->list, &pool->free_queue);
	LOCKED_ADD(pool->nr_queued, 1);
	pthread_cond_signal(&pool->free_wake);
	pthread_mutex_unlock(&pool->free_lock);
}

/*
 * Hand the worker the address range of pool->prefault_run (section.c
 * sends one at a time); the worker ends the run when done.
 */
void
free_prefault(struct zs_pool *pool, char *addr, size_t len)
{
	pthread_mutex_lock(&pool->free_lock);
	zs_assert(pool->prefault.len == 0);
	pool->prefault = (struct prefault){ addr, len };
	LOCKED_ADD(pool->nr_queued, 1);
	pthread_cond_signal(&pool->free_wake);
	pthread_mutex_unlock(&pool->free_lock);
}

/* Fault the run in; if that fails, its pages count as not in again. */
static void
prefault_run(struct zs_pool *pool, const struct prefault *pf)
{
	prefault_run_end(pool, os_advise(pool, pf->addr, pf->len,
	    MADV_POPULATE_WRITE) == 0);
}

static void *
free_worker(void *arg)
{
	struct zs_pool *pool = arg;
	struct list_head batch;
	struct prefault pf;
	unsigned int n;

	(void)pthread_setname_np(pthread_self(), "zs-free");
	list_init(&batch);
	pthread_mutex_lock(&pool->free_lock);
	for (;;) {
		while (list_empty(&pool->free_queue) &&
		    pool->prefault.len == 0 && !pool->free_stop)
			pthread_cond_wait(&pool->free_wake, &pool->free_lock);
		if (pool->prefault.len != 0) {
			pf = pool->prefault;
			pool->prefault.len = 0;
			pthread_mutex_unlock(&pool->free_lock);
			prefault_run(pool, &pf);
			pthread_mutex_lock(&pool->free_lock);
			LOCKED_SUB(pool->nr_queued, 1);
			if (pool->nr_queued == 0)
				pthread_cond_broadcast(&pool->free_idle);
			continue;
		}
		if (list_empty(&pool->free_queue))
			break;	/* stopping, and nothing left */
		for (n = 0; n < WORKER_BATCH && !list_empty(&pool->free_queue);
		    n++) {
			struct list_head *e = pool->free_queue.next;

			list_del(e);
			list_add_tail(e, &batch);
		}
		pthread_mutex_unlock(&pool->free_lock);
		free_zspages_now(pool, &batch);
		pthread_mutex_lock(&pool->free_lock);
		LOCKED_SUB(pool->nr_queued, n);
		if (pool->nr_queued == 0)
			pthread_cond_broadcast(&pool->free_idle);
	}
	pthread_mutex_unlock(&pool->free_lock);
	return NULL;
}

int
free_worker_start(struct zs_pool *pool)
{
	int error;

	pool_mutex_init(pool, &pool->free_lock);
	pthread_cond_init(&pool->free_wake, NULL);
	pthread_cond_init(&pool->free_idle, NULL);
	list_init(&pool->free_queue);
	LOCKED_SET(pool->nr_queued, 0);
	pool->free_stop = false;
	pool->free_running = false;
	pool->free_ready = true;
	if (!pool->cfg.async_free)
		return 0;
	error = pthread_create(&pool->free_thread, NULL, free_worker, pool);
	if (error != 0)
		return -error;
	pool->free_running = true;
	return 0;
}

/* Drain the queue and stop the worker. */
void
free_worker_stop(struct zs_pool *pool)
{
	if (pool->free_running) {
		pthread_mutex_lock(&pool->free_lock);
		pool->free_stop = true;
		pthread_cond_signal(&pool->free_wake);
		pthread_mutex_unlock(&pool->free_lock);
		pthread_join(pool->free_thread, NULL);
		pool->free_running = false;
	}
	free_zspages_now(pool, &pool->free_queue);
	LOCKED_SET(pool->nr_queued, 0);
}

/* A list per CPU the system may have, a power of two, at most 64. */
int
free_batch_init(struct zs_pool *pool)
{
	if (pool->cfg.free_batch < 2)
		return 0;
	pool->free_shards = pool_cpu_array_new(pool, sizeof(struct free_shard),
	    offsetof(struct free_shard, lock), &pool->free_shard_mask);
	return pool->free_shards != NULL ? 0 : -ENOMEM;
}

void
free_batch_destroy(struct zs_pool *pool)
{
	pool_cpu_array_free(pool->free_shards, sizeof(struct free_shard),
	    offsetof(struct free_shard, lock), pool->free_shard_mask);
	pool->free_shards = NULL;
}

/*
 * Free the slots of n dead handles.  Each step is begun for all of them
 * before any waits on it: the zspage of every object, then the header of
 * every object (found through its zspage), then the frees themselves.  A
 * dead handle's object cannot move, so its header page is read without
 * the class lock, as a pin holder would.
 */
static void
free_run(struct zs_pool *pool, const uint32_t *hidx, unsigned int n)
{
	uint64_t v[ZS_MAX_FREE_BATCH];
	const struct zspage *z;
	unsigned int i;

	for (i = 0; i < n; i++) {
		v[i] = atomic_load_explicit(handle_word(pool, hidx[i]),
		    memory_order_relaxed);
		__builtin_prefetch(zspage_of(pool, HW_LOC(v[i])), 1);
	}
	for (i = 0; i < n; i++) {
		z = zspage_of(pool, HW_LOC(v[i]));
		__builtin_prefetch(zspage_slot(pool,
		    &pool->class_store[z->class_idx], z, HW_OBJ(v[i]), NULL),
		    1);
	}
	for (i = 0; i < n; i++)
		obj_free_slot(pool, hidx[i], v[i]);
}

/* Free what list s holds, its lock held.  Returns how many. */
static unsigned int
shard_run(struct zs_pool *pool, struct free_shard *s)
{
	unsigned int n = s->n;

	/*
	 * Pending no longer, though not freed yet: for a moment stats.c
	 * counts them as objects only, as if their frees had not been
	 * asked for -- never as gone before they are.
	 */
	LOCKED_SET(s->n, 0);
	free_run(pool, s->hidx, n);
	return n;
}

/*
 * Add dead handle hidx to this CPU's list; free the list once full.  The
 * list's lock is held until its batch is freed, so that a drain that finds
 * the list empty knows every free taken off it is done.
 */
void
free_defer(struct zs_pool *pool, uint32_t hidx)
{
	struct free_shard *s;

	s = &pool->free_shards[pool_cpu_list(pool->free_shard_mask)];
	pthread_mutex_lock(&s->lock);
	s->hidx[s->n] = hidx;
	LOCKED_ADD(s->n, 1);
	if (s->n >= pool->cfg.free_batch)
		(void)shard_run(pool, s);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Free everything on the lists now, and wait for batches being freed.
 * Returns how many objects this call freed.
 */
unsigned int
free_drain(struct zs_pool *pool)
{
	unsigned int i, done = 0;

	if (pool->free_shards == NULL)
		return 0;
	for (i = 0; i <= pool->free_shard_mask; i++) {
		struct free_shard *s = &pool->free_shards[i];

		pthread_mutex_lock(&s->lock);
		done += shard_run(pool, s);
		pthread_mutex_unlock(&s->lock);
	}
	return done;
}

/*
 * Frees waiting on the lists, for zs_pool_stats(): read without their
 * locks, so a list being filled or freed meanwhile may be counted before
 * or after.
 */
uint64_t
free_pending_count(struct zs_pool *pool)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; pool->free_shards != NULL && i <= pool->free_shard_mask;
	    i++)
		n += UNLOCKED_GET(pool->free_shards[i].n);
	return n;
}

void
zs_pool_flush(struct zs_pool *pool)
{
	free_drain(pool);
	pthread_mutex_lock(&pool->free_lock);
	while (pool->nr_queued > 0)
		pthread_cond_wait(&pool->free_idle, &pool->free_lock);
	pthread_mutex_unlock(&pool->free_lock);
}
