/*
 * free.c - asynchronous free of emptied zspages.
 *
 * Freeing the last object of a zspage takes the zspage off its class, but
 * giving its pages back means the page lock and the descriptor table lock:
 * with async_free set that work is queued and a worker thread does it in
 * batches, outside the hot path.  zs_pool_flush() waits for the queue.
 */
#include <config.h>

#include "zs-internal.h"

#define FREE_BATCH	64

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
	pool->nr_queued++;
	pthread_cond_signal(&pool->free_wake);
	pthread_mutex_unlock(&pool->free_lock);
}

static void *
free_worker(void *arg)
{
	struct zs_pool *pool = arg;
	struct list_head batch;
	unsigned int n;

	(void)pthread_setname_np(pthread_self(), "zs-free");
	list_init(&batch);
	pthread_mutex_lock(&pool->free_lock);
	for (;;) {
		while (list_empty(&pool->free_queue) && !pool->free_stop)
			pthread_cond_wait(&pool->free_wake, &pool->free_lock);
		if (list_empty(&pool->free_queue))
			break;	/* stopping, and nothing left */
		for (n = 0; n < FREE_BATCH && !list_empty(&pool->free_queue);
		    n++) {
			struct list_head *e = pool->free_queue.next;

			list_del(e);
			list_add_tail(e, &batch);
		}
		pthread_mutex_unlock(&pool->free_lock);
		free_zspages_now(pool, &batch);
		pthread_mutex_lock(&pool->free_lock);
		pool->nr_queued -= n;
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
	pool->nr_queued = 0;
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
	pool->nr_queued = 0;
}

void
zs_pool_flush(struct zs_pool *pool)
{
	pthread_mutex_lock(&pool->free_lock);
	while (pool->nr_queued > 0)
		pthread_cond_wait(&pool->free_idle, &pool->free_lock);
	pthread_mutex_unlock(&pool->free_lock);
}
