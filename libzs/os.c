/*
 * os.c - every request libzs makes to the OS for memory.
 *
 * The pool calls these wrappers only; they go through the pool's ops table,
 * which tests replace to make the Nth call fail.
 */
#include <config.h>

#include <sys/mman.h>

#include "zs-internal.h"

static void *
default_map(void *ctx, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int
default_unmap(void *ctx, void *addr, size_t len)
{
	return munmap(addr, len);
}

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED	24	/* Linux 5.18 */
#endif

/*
 * A program that runs under mlockall() (zsd does, so that the pool is never
 * swapped) cannot MADV_DONTNEED its locked pages; MADV_DONTNEED_LOCKED gives
 * them back all the same, and with MCL_ONFAULT they are locked again when
 * next touched.
 */
static int
default_advise(void *ctx, void *addr, size_t len, int advice)
{
	if (madvise(addr, len, advice) == 0)
		return 0;
	if (advice == MADV_DONTNEED && errno == EINVAL)
		return madvise(addr, len, MADV_DONTNEED_LOCKED);
	return -1;
}

const struct zs_os_ops os_default_ops = {
	.map = default_map,
	.unmap = default_unmap,
	.advise = default_advise,
	.ctx = NULL,
};

/* NULL + errno (ENOMEM if the ops did not say). */
void *
os_map(struct zs_pool *pool, size_t len)
{
	void *p;

	errno = 0;
	p = pool->ops.map(pool->ops.ctx, len);
	if (p == NULL && errno == 0)
		errno = ENOMEM;
	return p;
}

/* An unmap that fails leaves the mapping; there is nothing better to do. */
void
os_unmap(struct zs_pool *pool, void *addr, size_t len)
{
	if (addr != NULL)
		(void)pool->ops.unmap(pool->ops.ctx, addr, len);
}

int
os_advise(struct zs_pool *pool, void *addr, size_t len, int advice)
{
	/* Faulting in may wait for reclaim: not where a reader waits. */
	if (advice == MADV_POPULATE_WRITE)
		hold_none();
	/* Pages of a file are only given back by punching them out. */
	if (pool->arena != NULL && advice == MADV_DONTNEED)
		return arena_release(pool, addr, len);
	if (pool->ops.advise(pool->ops.ctx, addr, len, advice) != 0)
		return errno ? -errno : -ENOMEM;
	return 0;
}

/*
 * Fault in the pages of [addr, addr + len), writable, so that whoever
 * writes them next under a class lock or a pin takes no fault there.
 * Where MADV_POPULATE_WRITE fails (before Linux 5.14, or an ops table
 * that fails it) an atomic OR of zero into each page does it, a fault at
 * a time: it changes nothing, even in a page others use (the handle
 * table's words are only accessed atomically).  If the memory cannot be
 * had, that fault fails as the later write would have, only here.
 */
void
os_populate(struct zs_pool *pool, void *addr, size_t len)
{
	uintptr_t lo = (uintptr_t)addr & ~(uintptr_t)PAGE_MASK;
	uintptr_t hi = ((uintptr_t)addr + len + PAGE_MASK) &
	    ~(uintptr_t)PAGE_MASK;

	if (len == 0 || os_advise(pool, (void *)lo, hi - lo,
	    MADV_POPULATE_WRITE) == 0)
		return;
	for (; lo < hi; lo += PAGE_SIZE)
		(void)__atomic_fetch_or((unsigned char *)lo, 0,
		    __ATOMIC_RELAXED);
}

#ifdef ZS_DEBUG
_Thread_local unsigned int os_holds;

/*
 * Memory written while this thread holds a class lock, a cache lock or a
 * pin must be resident already: mincore() says whether it is.  (Only a
 * check: memory of the pool that the OS took back meanwhile would fail
 * it, but zsd locks its memory.)
 */
void
os_assert_resident(const void *addr, size_t len)
{
	uintptr_t lo = (uintptr_t)addr & ~(uintptr_t)PAGE_MASK;
	uintptr_t hi = ((uintptr_t)addr + len + PAGE_MASK) &
	    ~(uintptr_t)PAGE_MASK;
	unsigned char vec[ZS_MAX_CHAIN];
	size_t i, n;

	if (os_holds == 0)
		return;
	for (; lo < hi; lo += n << PAGE_SHIFT) {
		n = (hi - lo) >> PAGE_SHIFT;
		if (n > sizeof(vec))
			n = sizeof(vec);
		if (mincore((void *)lo, n << PAGE_SHIFT, vec) != 0)
			continue;	/* cannot tell */
		for (i = 0; i < n; i++)
			zs_assert(vec[i] & 1);
	}
}
#endif
