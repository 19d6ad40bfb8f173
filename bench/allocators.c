/*
 * allocators.c - the allocators under test, behind struct allocator.
 *
 * libzs stores through zs_malloc_write into a pool of the default
 * configuration (asynchronous free and the free page reporting worker on;
 * the worker waits 2 s after frees, longer than any phase here takes, so
 * in these runs only the explicit zs_pool_report() gives pages back).
 * glibc stores through malloc + memcpy.  jemalloc and mimalloc cannot be
 * dlopen()ed beside glibc's malloc (their initial-exec TLS: "cannot
 * allocate memory in static TLS block"), so they replace malloc in a
 * child re-executed with LD_PRELOAD, and store through malloc + memcpy
 * too; their control calls are looked up with dlsym().
 */
#include <config.h>

#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "zs.h"

/* A sanitizer runtime must come first among the libraries: no preload. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED	1
#endif
#endif
#ifdef SANITIZED
#define PRELOAD(lib)	NULL
#else
#define PRELOAD(lib)	(lib)
#endif

static struct zs_pool *pool;
static int (*je_mallctl)(const char *, void *, size_t *, void *, size_t);
static void (*mi_collect)(bool);

/* libzs */

static bool
zs_init(void)
{
	pool = zs_create_pool(NULL);
	return pool != NULL;
}

static bench_obj_t
zs_store(const void *src, size_t len)
{
	return (bench_obj_t)zs_malloc_write(pool, src, len);
}

static void
zs_drop(bench_obj_t h)
{
	zs_free(pool, h);
}

static void
zs_quiesce(void)
{
	zs_pool_flush(pool);
}

static void
zs_compact_all(void)
{
	zs_compact(pool, NULL);
	zs_pool_flush(pool);
	zs_pool_report(pool);
}

static bool
zs_check(bench_obj_t h, const void *want, size_t len)
{
	uint8_t buf[ZS_MAX_ALLOC_SIZE];

	return zs_obj_size(pool, h) == len &&
	    zs_obj_copy(pool, h, buf, len) == 0 && memcmp(buf, want, len) == 0;
}

/* Efficiency on the pool's own counts; the RSS basis is left alone. */
void
pool_basis(double eff[NR_BASES], uint64_t stored)
{
	struct zs_pool_stats st;

	zs_pool_stats(pool, &st);
	eff[BASIS_USED] = (double)stored / ((double)st.pages_used *
	    BENCH_PAGE);
	eff[BASIS_META] = (double)stored / ((double)(st.pages_used +
	    st.pages_meta) * BENCH_PAGE);
	eff[BASIS_MAPPED] = (double)stored / ((double)st.pages_mapped *
	    BENCH_PAGE);
}

/* malloc: glibc's, or whichever library was preloaded */

static bool
libc_init(void)
{
	return true;
}

static bench_obj_t
libc_store(const void *src, size_t len)
{
	void *p = malloc(len);

	if (p != NULL)
		memcpy(p, src, len);
	return (bench_obj_t)p;
}

static void
libc_drop(bench_obj_t p)
{
	free((void *)p);
}

static void
nothing(void)
{
}

static void
libc_compact(void)
{
	malloc_trim(0);
}

static bool
libc_check(bench_obj_t p, const void *want, size_t len)
{
	return memcmp((const void *)p, want, len) == 0;
}

static bool
preloaded(const char *lib)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, lib) != NULL;
}

static bool
je_init(void)
{
	*(void **)&je_mallctl = dlsym(RTLD_DEFAULT, "mallctl");
	return preloaded("libjemalloc") && je_mallctl != NULL;
}

static void
je_compact(void)
{
	/* Purge the dirty and muzzy pages of every arena. */
	je_mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
}

static bool
mi_init(void)
{
	*(void **)&mi_collect = dlsym(RTLD_DEFAULT, "mi_collect");
	return preloaded("libmimalloc") && mi_collect != NULL;
}

static void
mi_compact(void)
{
	mi_collect(true);
}

const struct allocator allocators[] = {
	{
		.name = "libzs",
		.compact_does = "zs_compact + zs_pool_flush + zs_pool_report",
		.init = zs_init, .store = zs_store, .drop = zs_drop,
		.quiesce = zs_quiesce, .compact = zs_compact_all,
		.check = zs_check, .has_pool_stats = true,
	},
	{
		.name = "glibc",
		.compact_does = "malloc_trim(0)",
		.init = libc_init, .store = libc_store, .drop = libc_drop,
		.quiesce = nothing, .compact = libc_compact,
		.check = libc_check,
	},
	{
		.name = "jemalloc",
		.preload = PRELOAD("libjemalloc.so.2"),
		.compact_does = "mallctl arena.<all>.purge",
		.init = je_init, .store = libc_store, .drop = libc_drop,
		.quiesce = nothing, .compact = je_compact,
		.check = libc_check,
	},
	{
		.name = "mimalloc",
		.preload = PRELOAD("libmimalloc.so.2"),
		.compact_does = "mi_collect(true)",
		.init = mi_init, .store = libc_store, .drop = libc_drop,
		.quiesce = nothing, .compact = mi_compact,
		.check = libc_check,
	},
};
const unsigned int nr_allocators = sizeof(allocators) / sizeof(allocators[0]);
