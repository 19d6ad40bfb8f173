/*
 * report.c - free page reporting: give free pages back to the OS.
 *
 * A page on a free list still costs resident memory until the OS is told
 * it may drop it.  Freeing pages requests a report (idle -> requested); a
 * worker thread waits report_delay_ms so frees can accumulate, then runs
 * (-> active): section by section, starting where the last run stopped,
 * it takes batches of free pages not yet reported off the free list,
 * gives each run of adjacent pages back with one madvise(MADV_DONTNEED)
 * outside the page lock, and puts them back at the tail of the list
 * marked PG_REPORTED, so they are neither reported again nor taken before
 * resident pages.  When nothing is left it goes idle -- or, if pages were
 * freed while it ran, runs again after the delay.  A reported page that is
 * allocated again is simply faulted back in (section.c prefaults it), and
 * free pages being faulted in that way are left alone until it is done.
 */
#include <config.h>

#include <sys/mman.h>
#include <time.h>

#include "zs-internal.h"

#define REPORT_BATCH	64

static void
sort_indices(uint32_t *v, unsigned int n)
{
	unsigned int i, j;

	for (i = 1; i < n; i++) {
		uint32_t x = v[i];

		for (j = i; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/*
 * Report one batch of a section; returns the pages reported (0: none
 * left), *again false if some could not be.
 */
static unsigned int
report_batch(struct zs_pool *pool, uint32_t slot, bool *again)
{
	uint32_t idx[REPORT_BATCH];
	struct section *sec;
	unsigned int n, i, start, done = 0;
	bool ok;

	*again = false;
	n = section_take_unreported(pool, slot, &sec, idx, REPORT_BATCH);
	if (n == 0)
		return 0;
	sort_indices(idx, n);
	for (start = 0, i = 1; i <= n; i++) {
		if (i < n && idx[i] == idx[i - 1] + 1)
			continue;
		ok = os_advise(pool, (char *)sec + ((size_t)idx[start] <<
		    PAGE_SHIFT), (size_t)(i - start) << PAGE_SHIFT,
		    MADV_DONTNEED) == 0;
		/*
		 * A run given back is reported, whatever became of the
		 * others: a free page not marked reported is taken for
		 * resident, and written under a class lock (section.c).  On
		 * failure a run is left as it was: not reported.
		 */
		section_put_reported(pool, sec, idx + start, i - start, ok);
		if (ok)
			done += i - start;
		start = i;
	}
	/* After a failure, this section is left for the next report. */
	*again = done == n;
	return done;
}

/* Report everything there is; returns the pages reported. */
static long
report_all(struct zs_pool *pool)
{
	uint32_t slots, k, slot, start;
	long total = 0;

	pthread_mutex_lock(&pool->page_lock);
	slots = pool->nr_section_slots;
	start = pool->report_cursor < slots ? pool->report_cursor : 0;
	pthread_mutex_unlock(&pool->page_lock);

	for (k = 0; k < slots; k++) {
		unsigned int n;
		bool again;

		slot = (start + k) % slots;
		pthread_mutex_lock(&pool->page_lock);
		pool->report_cursor = slot;
		pthread_mutex_unlock(&pool->page_lock);
		/* Sections may go offline between batches: by slot, not
		 * pointer. */
		do {
			n = report_batch(pool, slot, &again);
			total += n;
		} while (again);
	}
	return total;
}

long
zs_pool_report(struct zs_pool *pool)
{
	/*
	 * The CPUs' cached pages, batched and queued frees first, and the
	 * worker's prefault.
	 */
	page_cache_drain(pool);
	zs_pool_flush(pool);
	return report_all(pool);
}

/* Pages were freed: make sure a report runs after the delay. */
void
report_request(struct zs_pool *pool)
{
	if (!pool->report_running ||
	    atomic_load_explicit(&pool->report_state, memory_order_relaxed) ==
	    REPORT_REQUESTED)
		return;
	pthread_mutex_lock(&pool->report_lock);
	switch (atomic_load_explicit(&pool->report_state,
	    memory_order_relaxed)) {
	case REPORT_IDLE:
		atomic_store_explicit(&pool->report_state, REPORT_REQUESTED,
		    memory_order_relaxed);
		pthread_cond_signal(&pool->report_wake);
		break;
	case REPORT_ACTIVE:
		pool->report_again = true;
		break;
	}
	pthread_mutex_unlock(&pool->report_lock);
}

static void *
report_worker(void *arg)
{
	struct zs_pool *pool = arg;
	struct timespec until;
	uint64_t ns;

	(void)pthread_setname_np(pthread_self(), "zs-report");
	pthread_mutex_lock(&pool->report_lock);
	while (!pool->report_stop) {
		if (atomic_load_explicit(&pool->report_state,
		    memory_order_relaxed) != REPORT_REQUESTED) {
			pthread_cond_wait(&pool->report_wake,
			    &pool->report_lock);
			continue;
		}
		/* Let frees accumulate. */
		clock_gettime(CLOCK_MONOTONIC, &until);
		ns = (uint64_t)until.tv_nsec +
		    (uint64_t)pool->cfg.report_delay_ms * 1000000;
		until.tv_sec += (time_t)(ns / 1000000000);
		until.tv_nsec = (long)(ns % 1000000000);
		while (!pool->report_stop && pthread_cond_timedwait(
		    &pool->report_wake, &pool->report_lock, &until) == 0)
			;
		if (pool->report_stop)
			break;

		atomic_store_explicit(&pool->report_state, REPORT_ACTIVE,
		    memory_order_relaxed);
		pool->report_again = false;
		pthread_mutex_unlock(&pool->report_lock);
		(void)report_all(pool);
		pthread_mutex_lock(&pool->report_lock);
		atomic_store_explicit(&pool->report_state, pool->report_again ?
		    REPORT_REQUESTED : REPORT_IDLE, memory_order_relaxed);
		pthread_cond_broadcast(&pool->report_idle);
	}
	pthread_mutex_unlock(&pool->report_lock);
	return NULL;
}

int
report_start(struct zs_pool *pool)
{
	pthread_condattr_t attr;
	int error;

	atomic_init(&pool->report_state, REPORT_IDLE);
	pool->report_again = false;
	pool->report_stop = false;
	pool->report_running = false;
	if (!pool->cfg.free_page_reporting)
		return 0;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_destroy(&pool->report_wake);
	pthread_cond_init(&pool->report_wake, &attr);
	pthread_condattr_destroy(&attr);
	error = pthread_create(&pool->report_thread, NULL, report_worker,
	    pool);
	if (error != 0)
		return -error;
	pool->report_running = true;
	return 0;
}

void
report_stop(struct zs_pool *pool)
{
	if (!pool->report_running)
		return;
	pthread_mutex_lock(&pool->report_lock);
	pool->report_stop = true;
	pthread_cond_signal(&pool->report_wake);
	pthread_mutex_unlock(&pool->report_lock);
	pthread_join(pool->report_thread, NULL);
	pool->report_running = false;
}
