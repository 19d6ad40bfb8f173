/*
 * worker.c - the threads that compress and decompress.
 *
 * A fixed set of threads takes works (the transport's, fuse/fs.h) from
 * one queue.  Each thread has its own store context (codec state, scratch
 * page), made at start and given to every work it runs, so a work never
 * allocates.  The queue is a ring of pointers sized at start for
 * every work that can be outstanding at once (the caller says how many),
 * so queueing never fails and, sized right, never waits.
 *
 * Lock: ws->lock guards the ring and stopping; works run unlocked.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "fs.h"
#include "zsd.h"

struct worker {
	pthread_t		 thread;
	struct workers		*ws;
	struct store_ctx	*ctx;
};

struct workers {
	pthread_mutex_t		 lock;
	pthread_cond_t		 wake;		/* work queued, or stopping */
	pthread_cond_t		 room;		/* the ring has room */
	struct fs_work		**ring;		/* capacity cap */
	unsigned int		 cap, head, count;
	bool			 stopping;
	unsigned int		 nr;		/* threads started */
	unsigned int		 nr_ctx;	/* contexts made */
	struct worker		*w;
};

static void *
worker_run(void *arg)
{
	struct worker *me = arg;
	struct workers *ws = me->ws;
	struct fs_work *w;

	/* (Named for ps -L and top -H; inherits the I/O priority.) */
	(void)pthread_setname_np(pthread_self(), "zsd-worker");
	pthread_mutex_lock(&ws->lock);
	for (;;) {
		while (ws->count == 0 && !ws->stopping)
			pthread_cond_wait(&ws->wake, &ws->lock);
		if (ws->count == 0)
			break;
		w = ws->ring[ws->head];
		ws->head = (ws->head + 1) % ws->cap;
		if (ws->count-- == ws->cap)
			pthread_cond_broadcast(&ws->room);
		pthread_mutex_unlock(&ws->lock);
		w->fn(w, me->ctx);
		pthread_mutex_lock(&ws->lock);
	}
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

struct workers *
workers_start(struct store *st, unsigned int n, unsigned int capacity,
    int *errorp)
{
	struct workers *ws;
	sigset_t all, old;
	unsigned int i;
	int error = 0;

	if (n == 0)
		n = 1;
	if ((ws = calloc(1, sizeof(*ws))) == NULL) {
		*errorp = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&ws->lock, NULL);
	pthread_cond_init(&ws->wake, NULL);
	pthread_cond_init(&ws->room, NULL);
	ws->cap = capacity > 0 ? capacity : 1;
	ws->ring = calloc(ws->cap, sizeof(*ws->ring));
	ws->w = calloc(n, sizeof(*ws->w));
	if (ws->ring == NULL || ws->w == NULL) {
		error = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		ws->w[i].ws = ws;
		if ((ws->w[i].ctx = store_ctx_create(st)) == NULL) {
			error = -ENOMEM;
			goto fail;
		}
		ws->nr_ctx++;
	}
	/* Signals are the loop thread's; workers block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < n; i++) {
		if ((error = -pthread_create(&ws->w[i].thread, NULL,
		    worker_run, &ws->w[i])) != 0)
			break;
		ws->nr++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0)
		goto fail;
	return ws;
fail:
	workers_stop(ws);
	*errorp = error;
	return NULL;
}

/* Runs what is queued, then joins the threads.  Accepts a half-built ws. */
void
workers_stop(struct workers *ws)
{
	unsigned int i;

	if (ws == NULL)
		return;
	pthread_mutex_lock(&ws->lock);
	ws->stopping = true;
	pthread_cond_broadcast(&ws->wake);
	pthread_mutex_unlock(&ws->lock);
	if (ws->w != NULL) {
		for (i = 0; i < ws->nr; i++)
			pthread_join(ws->w[i].thread, NULL);
		for (i = 0; i < ws->nr_ctx; i++)
			store_ctx_destroy(ws->w[i].ctx);
	}
	pthread_cond_destroy(&ws->wake);
	pthread_cond_destroy(&ws->room);
	pthread_mutex_destroy(&ws->lock);
	free(ws->ring);
	free(ws->w);
	free(ws);
}

unsigned int
workers_count(const struct workers *ws)
{
	return ws->nr;
}

/*
 * Queue n works.  The caller keeps no more outstanding than the capacity it
 * gave, so this does not wait; if it ever did, the workers make room.
 */
void
workers_queue(struct workers *ws, struct fs_work **w, unsigned int n)
{
	unsigned int i;

	pthread_mutex_lock(&ws->lock);
	for (i = 0; i < n; i++) {
		while (ws->count == ws->cap)
			pthread_cond_wait(&ws->room, &ws->lock);
		ws->ring[(ws->head + ws->count) % ws->cap] = w[i];
		ws->count++;
		pthread_cond_signal(&ws->wake);
	}
	pthread_mutex_unlock(&ws->lock);
}
