/*
 * pool.c - pool configuration, creation and teardown.
 */
#include <config.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zs-internal.h"

#define SECTION_MIN	(256u << 10)
#define SECTION_MAX	(1u << 30)
#define SECTIONS_MAX	(1u << 20)

void
zs_pool_config_init(struct zs_pool_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->section_size = 4u << 20;
	cfg->max_chain = ZS_MAX_CHAIN;
	cfg->max_size = 0;
	cfg->async_free = 1;
	cfg->free_page_reporting = 1;
	cfg->report_delay_ms = 2000;
	cfg->priority_inherit = 0;
	cfg->free_batch = 16;
	cfg->prefault_ahead = 256;
	cfg->page_cache = 16;
	cfg->os_ops = NULL;
}

static bool
config_valid(const struct zs_pool_config *cfg)
{
	size_t s = cfg->section_size;

	if (s < SECTION_MIN || s > SECTION_MAX || (s & (s - 1)) != 0)
		return false;
	if (cfg->max_chain < 1 || cfg->max_chain > ZS_MAX_CHAIN)
		return false;
	if (cfg->free_batch > ZS_MAX_FREE_BATCH)
		return false;
	if (cfg->prefault_ahead > ZS_MAX_PREFAULT)
		return false;
	if (cfg->page_cache > ZS_MAX_PAGE_CACHE)
		return false;
	if (cfg->os_ops != NULL && (cfg->os_ops->map == NULL ||
	    cfg->os_ops->unmap == NULL || cfg->os_ops->advise == NULL))
		return false;
	return true;
}

/*
 * The pool's private parts: its struct, locks, classes and tables, no
 * thread and no section yet.  NULL + errno.
 */
struct zs_pool *
pool_new(const struct zs_pool_config *cfg)
{
	struct zs_pool_config defaults;
	struct zs_pool *pool;
	uint64_t nr;
	int error;

	if (cfg == NULL) {
		zs_pool_config_init(&defaults);
		cfg = &defaults;
	}
	if (!config_valid(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	/* Pages are handed back to the OS one at a time: they must be its. */
	if (sysconf(_SC_PAGESIZE) != PAGE_SIZE) {
		errno = ENOTSUP;
		return NULL;
	}
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		return NULL;
	pool->cfg = *cfg;
	pool->cfg.os_ops = NULL;
	pool->ops = cfg->os_ops != NULL ? *cfg->os_ops : os_default_ops;
	pool->sec_shift = (unsigned int)__builtin_ctzl(cfg->section_size) -
	    PAGE_SHIFT;
	nr = (1ull << 32) >> pool->sec_shift;
	pool->max_sections = (uint32_t)(nr < SECTIONS_MAX ? nr : SECTIONS_MAX);
	pool_mutex_init(pool, &pool->grow_lock);
	pool_mutex_init(pool, &pool->page_lock);
	pool_mutex_init(pool, &pool->offline_lock);
	pool_mutex_init(pool, &pool->report_lock);
	pthread_cond_init(&pool->report_wake, NULL);
	pthread_cond_init(&pool->report_idle, NULL);

	error = -ENOMEM;
	pool->sections = calloc(pool->max_sections, sizeof(*pool->sections));
	if (pool->sections == NULL)
		goto fail;
	if ((error = class_init_all(pool)) != 0 ||
	    (error = handle_table_init(pool)) != 0 ||
	    (error = zspage_table_init(pool)) != 0)
		goto fail;
	return pool;

fail:
	zs_destroy_pool(pool);
	errno = -error;
	return NULL;
}

/* Its threads and per-CPU parts: 0 or -errno. */
int
pool_start(struct zs_pool *pool)
{
	int error;

	if ((error = free_worker_start(pool)) != 0 ||
	    (error = free_batch_init(pool)) != 0 ||
	    (error = page_cache_init(pool)) != 0 ||
	    (error = report_start(pool)) != 0)
		return error;
	return 0;
}

struct zs_pool *
zs_create_pool(const struct zs_pool_config *cfg)
{
	struct zs_pool *pool;
	int error;

	if ((pool = pool_new(cfg)) == NULL)
		return NULL;
	if ((error = pool_start(pool)) != 0) {
		zs_destroy_pool(pool);
		errno = -error;
		return NULL;
	}
	return pool;
}

/* Also takes apart a pool that zs_create_pool() gave up on half way. */
void
zs_destroy_pool(struct zs_pool *pool)
{
	if (pool == NULL)
		return;
	/* (Not free_queue.next: the worker writes it, under free_lock.) */
	if (pool->free_ready)
		free_worker_stop(pool);
	/* Frees still waiting in a batch go with the rest. */
	free_batch_destroy(pool);
	page_cache_destroy(pool);
	report_stop(pool);
	section_destroy_all(pool);
	handle_table_destroy(pool);
	zspage_table_destroy(pool);
	class_destroy_all(pool);
	free(pool->sections);
	arena_unmap(pool);
	pthread_mutex_destroy(&pool->grow_lock);
	pthread_mutex_destroy(&pool->page_lock);
	pthread_mutex_destroy(&pool->offline_lock);
	pthread_mutex_destroy(&pool->report_lock);
	pthread_cond_destroy(&pool->report_wake);
	pthread_cond_destroy(&pool->report_idle);
	free(pool);
}

/*
 * Per-CPU structs: one per CPU up to 64 (more share), a power of two of
 * them, each size bytes (a multiple of 64) with a mutex at lock_off,
 * zeroed.  *maskp gets their number - 1.  NULL if out of memory.
 */
void *
pool_cpu_array_new(struct zs_pool *pool, size_t size, size_t lock_off,
    unsigned int *maskp)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	unsigned int n = 1, i;
	char *a;

	while (n < 64 && (long)n < cpus)
		n <<= 1;
	if ((a = aligned_alloc(64, n * size)) == NULL)
		return NULL;
	memset(a, 0, n * size);
	for (i = 0; i < n; i++)
		pool_mutex_init(pool, (pthread_mutex_t *)(void *)(a + i * size +
		    lock_off));
	*maskp = n - 1;
	return a;
}

void
pool_cpu_array_free(void *array, size_t size, size_t lock_off,
    unsigned int mask)
{
	char *a = array;
	unsigned int i;

	if (a == NULL)
		return;
	for (i = 0; i <= mask; i++)
		pthread_mutex_destroy((pthread_mutex_t *)(void *)(a + i * size +
		    lock_off));
	free(a);
}

/* Which of mask + 1 per-CPU lists the caller's CPU uses. */
unsigned int
pool_cpu_list(unsigned int mask)
{
	int cpu = sched_getcpu();

	return (cpu < 0 ? 0 : (unsigned int)cpu) & mask;
}

/*
 * With cfg.priority_inherit, every lock of the pool lends priority: a
 * caller at real-time priority (zsd's I/O threads) that waits for a lock
 * a normal-priority thread holds (compaction, the free worker) raises
 * that thread to its own priority until it lets go, instead of waiting
 * behind whatever else runs.  It is not free: glibc takes and releases
 * such a mutex on a slower path even when nobody waits (in alternating
 * runs of bench/zs-bench, fills and frees about 5% slower with it).
 */
void
pool_mutex_init(struct zs_pool *pool, pthread_mutex_t *m)
{
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
	if (pool->cfg.priority_inherit)
		(void)pthread_mutexattr_setprotocol(&attr,
		    PTHREAD_PRIO_INHERIT);
	/* No PI futexes here (some emulators, some filters): a plain one. */
	if (pthread_mutex_init(m, &attr) != 0)
		pthread_mutex_init(m, NULL);
	pthread_mutexattr_destroy(&attr);
}

#ifdef ZS_DEBUG
void
pool_assert_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "libzs: %s:%d: assertion failed: %s\n", file, line,
	    what);
	abort();
}
#endif
