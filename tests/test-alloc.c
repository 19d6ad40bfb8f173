/*
 * test-alloc.c - allocate, write, read back and free at every object size,
 * statistics that add up, batched frees, bad input refused without
 * harm, and where stale handle detection ends.
 */
#include <config.h>

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "objs.h"

#define PER_SIZE	9	/* objects per size: enough to straddle pages */

#define BATCH		16	/* libzs's default free_batch */

static struct zs_pool *
new_pool(int async_free, unsigned int free_batch)
{
	struct zs_pool_config cfg;

	zs_pool_config_init(&cfg);
	cfg.async_free = async_free;
	cfg.free_batch = free_batch;
	return zs_create_pool(&cfg);
}

/* Read through zs_obj_read_begin, mapped or copied; 1 if right. */
static int
read_ok(struct zs_pool *pool, const struct tobj *o)
{
	uint8_t copy[ZS_MAX_ALLOC_SIZE], want[ZS_MAX_ALLOC_SIZE];
	const void *p;
	size_t size;
	int good;

	p = zs_obj_read_begin(pool, o->handle, copy, &size);
	if (p == NULL)
		return 0;
	tobj_pattern(want, o->key, o->size);
	good = size == o->size && memcmp(p, want, size) == 0;
	zs_obj_read_end(pool, o->handle);
	return good;
}

static void
round_trips(int async_free, unsigned int free_batch)
{
	struct zs_pool *pool = new_pool(async_free, free_batch);
	struct tobj *objs = calloc(ZS_MAX_ALLOC_SIZE * PER_SIZE,
	    sizeof(*objs));
	struct zs_pool_stats st;
	uint64_t bytes = 0;
	unsigned int size, i, n = 0, bad_put = 0, bad_copy = 0, bad_read = 0,
	    bad_size = 0, bad_after = 0;

	for (size = 1; size <= ZS_MAX_ALLOC_SIZE; size++)
		for (i = 0; i < PER_SIZE; i++, n++) {
			if (tobj_put(pool, &objs[n], n, size) != 0)
				bad_put++;
			bytes += size;
		}
	ok(bad_put == 0, "async_free %d, free_batch %u: %u objects of every "
	    "size 1..4096 allocated and written (half with zs_malloc_write)",
	    async_free, free_batch, n);
	for (i = 0; i < n; i++) {
		bad_copy += !tobj_intact(pool, &objs[i]);
		bad_read += !read_ok(pool, &objs[i]);
		bad_size += zs_obj_size(pool, objs[i].handle) != objs[i].size;
	}
	ok(bad_copy == 0, "zs_obj_copy reads every object back");
	ok(bad_read == 0, "zs_obj_read_begin reads every object back, "
	    "straddling ones included");
	ok(bad_size == 0, "zs_obj_size gives each object's size");

	zs_pool_stats(pool, &st);
	ok(st.objects == n && st.bytes_requested == bytes &&
	    st.bytes_held >= bytes && st.huge_objects == 8 * PER_SIZE,
	    "stats: %llu objects (%u), %llu bytes requested (%llu), %llu held, "
	    "%llu huge", (unsigned long long)st.objects, n,
	    (unsigned long long)st.bytes_requested,
	    (unsigned long long)bytes, (unsigned long long)st.bytes_held,
	    (unsigned long long)st.huge_objects);
	ok(st.pages_used * ZS_PAGE_SIZE >= st.bytes_held &&
	    st.pages_used * ZS_PAGE_SIZE < st.bytes_held + st.bytes_held / 20,
	    "pages used (%llu) hold the slots with under 5%% to spare",
	    (unsigned long long)st.pages_used);
	ok(pool_valid(pool), "pool valid when full");

	/* Free every other object, rewrite the rest, check again. */
	for (i = 0; i < n; i += 2)
		tobj_drop(pool, &objs[i]);
	for (i = 1; i < n; i += 2) {
		uint8_t buf[ZS_MAX_ALLOC_SIZE];

		objs[i].key += 7777777;
		tobj_pattern(buf, objs[i].key, objs[i].size);
		if (zs_obj_write(pool, objs[i].handle, buf, objs[i].size) != 0)
			bad_after++;
	}
	bad_after += tobj_count_bad(pool, objs, n);
	ok(bad_after == 0, "after freeing half and rewriting the rest, all "
	    "intact");
	/* Reuse the freed slots. */
	for (i = 0, bad_put = 0; i < n; i += 2)
		if (tobj_put(pool, &objs[i], 3 * n + i, objs[i].size) != 0)
			bad_put++;
	ok(bad_put == 0 && tobj_count_bad(pool, objs, n) == 0,
	    "freed slots reused, everything intact");
	ok(pool_valid(pool), "pool valid");

	for (i = 0; i < n; i++)
		tobj_drop(pool, &objs[i]);
	zs_pool_flush(pool);
	zs_pool_stats(pool, &st);
	ok(st.objects == 0 && st.bytes_requested == 0 && st.pages_used == 0 &&
	    st.zspages == 0, "empty after freeing all (%llu pages, %llu "
	    "zspages)", (unsigned long long)st.pages_used,
	    (unsigned long long)st.zspages);
	ok(pool_valid(pool), "pool valid when empty");
	zs_destroy_pool(pool);
	free(objs);
}

static void
partial_access(void)
{
	struct zs_pool *pool = new_pool(1, BATCH);
	uint8_t buf[ZS_MAX_ALLOC_SIZE + 1], want[ZS_MAX_ALLOC_SIZE];
	struct tobj o;

	tobj_put(pool, &o, 5, 1000);
	tobj_pattern(want, 5, 1000);
	ok(zs_obj_copy(pool, o.handle, buf, 10) == 0 &&
	    memcmp(buf, want, 10) == 0, "a shorter copy reads the start");
	ok(zs_obj_copy(pool, o.handle, buf, 1001) == -EINVAL,
	    "a copy longer than the object: -EINVAL");
	ok(zs_obj_write(pool, o.handle, buf, 1001) == -EINVAL &&
	    tobj_intact(pool, &o), "a write longer than the object: -EINVAL, "
	    "object unchanged");
	memset(buf, 0xa5, 16);
	memset(want, 0xa5, 16);
	ok(zs_obj_write(pool, o.handle, buf, 16) == 0 &&
	    zs_obj_copy(pool, o.handle, buf, 1000) == 0 &&
	    memcmp(buf, want, 1000) == 0,
	    "a shorter write changes only the start");
	zs_destroy_pool(pool);
}

static void
bad_sizes(void)
{
	static const uint8_t buf[ZS_MAX_ALLOC_SIZE + 1];
	struct zs_pool *pool = new_pool(1, BATCH);
	struct zs_pool_stats st;

	errno = 0;
	ok(zs_malloc(pool, 0) == 0 && errno == EINVAL, "zs_malloc(0): EINVAL");
	errno = 0;
	ok(zs_malloc(pool, ZS_MAX_ALLOC_SIZE + 1) == 0 && errno == EINVAL,
	    "zs_malloc(4097): EINVAL");
	errno = 0;
	ok(zs_malloc(pool, (size_t)-1) == 0 && errno == EINVAL,
	    "zs_malloc(SIZE_MAX): EINVAL");
	errno = 0;
	ok(zs_malloc_write(pool, buf, 0) == 0 && errno == EINVAL,
	    "zs_malloc_write of 0 bytes: EINVAL");
	errno = 0;
	ok(zs_malloc_write(pool, buf, ZS_MAX_ALLOC_SIZE + 1) == 0 &&
	    errno == EINVAL, "zs_malloc_write of 4097 bytes: EINVAL");
	errno = 0;
	ok(zs_malloc_write(pool, NULL, 100) == 0 && errno == EINVAL,
	    "zs_malloc_write from NULL: EINVAL");
	zs_pool_stats(pool, &st);
	ok(st.objects == 0 && st.pages_used == 0, "nothing allocated");
	zs_destroy_pool(pool);
}

/* The class objects of size bytes go to. */
static int
class_of(struct zs_pool *pool, size_t size, struct zs_class_stats *cs)
{
	unsigned int i;

	for (i = 0; zs_class_stats(pool, i, cs) == 0; i++)
		if (cs->size >= size + 8)	/* the slot header */
			return 0;
	return -1;
}

/*
 * Frees gathered per CPU: the handle dies at once, the slot comes back
 * with the batch's last free or when something needs it.  Statistics do
 * not carry the frees out: they count them as not done, and apart.  The
 * thread stays on one CPU so that its frees share one list.
 */
static void
batched_frees(void)
{
	struct zs_pool *pool = new_pool(0, BATCH), *now = new_pool(0, 0);
	struct zs_class_stats cs;
	struct zs_pool_stats st;
	struct tobj objs[BATCH];
	cpu_set_t one;
	uint64_t held;
	unsigned int i, bad = 0;
	int found, cpu = sched_getcpu();

	CPU_ZERO(&one);
	CPU_SET(cpu < 0 ? 0 : cpu, &one);
	ok(sched_setaffinity(0, sizeof(one), &one) == 0,
	    "the test thread stays on CPU %d", cpu);
	found = class_of(pool, 100, &cs);
	ok(found == 0 && cs.objs_per_zspage >= BATCH, "class of 100-byte "
	    "objects: %u per zspage of %u pages", cs.objs_per_zspage,
	    cs.pages_per_zspage);

	/* They share one zspage, of held pages (those its slots reach). */
	for (i = 0; i < BATCH; i++)
		bad += tobj_put(pool, &objs[i], i, 100) != 0;
	zs_pool_stats(pool, &st);
	held = st.pages_used;
	ok(bad == 0 && st.zspages == 1 && held > 0 &&
	    st.objs_pending_free == 0, "%u objects in one zspage of %llu "
	    "pages", BATCH, (unsigned long long)held);
	for (i = 0; i < 5; i++)
		tobj_drop(pool, &objs[i]);
	zs_pool_stats(pool, &st);
	ok(st.objects == BATCH && st.bytes_requested == BATCH * 100 &&
	    st.objs_pending_free == 5, "pool stats count frees waiting in a "
	    "batch as not done, and apart: %llu objects, %llu bytes, %llu "
	    "pending", (unsigned long long)st.objects,
	    (unsigned long long)st.bytes_requested,
	    (unsigned long long)st.objs_pending_free);
	for (; i < 10; i++)
		tobj_drop(pool, &objs[i]);
	found = class_of(pool, 100, &cs);
	zs_pool_stats(pool, &st);
	ok(found == 0 && cs.objs_used == BATCH && st.objs_pending_free == 10,
	    "class stats do not carry them out either: %llu objects, %llu "
	    "pending", (unsigned long long)cs.objs_used,
	    (unsigned long long)st.objs_pending_free);
	zs_pool_flush(pool);
	zs_pool_stats(pool, &st);
	found = class_of(pool, 100, &cs);
	ok(st.objects == BATCH - 10 && st.bytes_requested == (BATCH - 10) *
	    100 && st.objs_pending_free == 0 && cs.objs_used == BATCH - 10,
	    "zs_pool_flush carries them out: %llu objects, %llu bytes",
	    (unsigned long long)st.objects,
	    (unsigned long long)st.bytes_requested);

	/* The list is empty again; the last frees wait. */
	for (; i < BATCH; i++)
		tobj_drop(pool, &objs[i]);
	ok(zs_pool_pages_used(pool) == held,
	    "after the last %u frees the zspage is still held", BATCH - 10);
	zs_pool_flush(pool);
	ok(zs_pool_pages_used(pool) == 0, "zs_pool_flush frees it");

	/* The free that fills the list frees the batch. */
	for (i = 0, bad = 0; i < BATCH; i++)
		bad += tobj_put(pool, &objs[i], i, 100) != 0;
	for (i = 0; i < BATCH - 1; i++)
		tobj_drop(pool, &objs[i]);
	ok(bad == 0 && zs_pool_pages_used(pool) == held,
	    "%u objects, %u of them freed: the zspage is held", BATCH,
	    BATCH - 1);
	tobj_drop(pool, &objs[BATCH - 1]);
	ok(zs_pool_pages_used(pool) == 0, "free number %u gives it back",
	    BATCH);
	for (i = 0, bad = 0; i < 3; i++)
		bad += tobj_put(pool, &objs[i], i, 100) != 0;
	for (i = 0; i < 3; i++)
		tobj_drop(pool, &objs[i]);
	ok(bad == 0 && zs_pool_report(pool) > 0 &&
	    zs_pool_pages_used(pool) == 0,
	    "zs_pool_report frees what waits and gives the pages back");
	ok(pool_valid(pool), "pool valid");

	/* free_batch 0: each free is done before it returns. */
	for (i = 0, bad = 0; i < 3; i++)
		bad += tobj_put(now, &objs[i], i, 100) != 0;
	for (i = 0; i < 3; i++)
		tobj_drop(now, &objs[i]);
	ok(bad == 0 && zs_pool_pages_used(now) == 0,
	    "free_batch 0: the zspage goes with the last free");
	zs_destroy_pool(now);
	zs_destroy_pool(pool);
}

/*
 * A pool at its max_size whose free slots all wait in a batch: zs_malloc
 * carries the batch out rather than fail.
 */
static void
batch_holds_memory(void)
{
	struct zs_pool_config cfg;
	struct zs_pool_stats st;
	struct zs_pool *pool;
	struct tobj *objs = calloc(8192, sizeof(*objs)), extra;
	unsigned int n = 0;
	int error = 0;

	zs_pool_config_init(&cfg);
	cfg.section_size = 256 << 10;
	cfg.max_size = 256 << 10;
	pool = zs_create_pool(&cfg);
	while (n < 8192 && (error = tobj_put(pool, &objs[n], n, 100)) == 0)
		n++;
	ok(n > 0 && error == -ENOMEM, "a one-section pool is full after %u "
	    "objects (%s)", n, strerror(-error));
	tobj_drop(pool, &objs[0]);
	tobj_drop(pool, &objs[1]);
	ok(tobj_put(pool, &extra, 99999, 100) == 0,
	    "zs_malloc finds the slots of frees waiting in a batch");
	zs_pool_stats(pool, &st);
	ok(st.malloc_failures == 1, "malloc_failures counts only the real "
	    "failure (%llu)", (unsigned long long)st.malloc_failures);
	ok(tobj_count_bad(pool, objs, n) == 0 && tobj_intact(pool, &extra),
	    "every object intact");
	ok(pool_valid(pool), "pool valid");
	zs_destroy_pool(pool);
	free(objs);
}

/* Bad handles: each is tried in a child; the parent's pool is checked. */
static const char *const bad_ops[] = {
	"free of a freed handle",
	"free of a never-issued handle",
	"copy from a freed handle",
	"write to a freed handle, slot reused",
	"free of handle 0",
	"free of a handle whose free waits in a batch",
	"copy from a handle whose free waits in a batch",
	"read_end of a freed handle, index reused and pinned",
	"read_end of a live handle not pinned",
	"read_end twice",
};

/* reused: the live handle that took freed's index. */
static int
bad_handle_op(struct zs_pool *pool, unsigned int which, zs_handle_t freed,
    zs_handle_t reused, zs_handle_t live)
{
	uint8_t buf[64] = { 0 }, local[ZS_MAX_ALLOC_SIZE];
	zs_handle_t waiting;

	if (which >= 7) {
		/*
		 * zs_obj_read_end() returns nothing: a refused call sets
		 * errno.  The object read stays pinned after a refused
		 * end, and must still be unpinned by its own.
		 */
		errno = 0;
		if (which == 7) {
			if ((uint32_t)reused != (uint32_t)freed ||
			    zs_obj_read_begin(pool, reused, local, NULL) ==
			    NULL)
				return 0;
			zs_obj_read_end(pool, freed);
			if (errno != EINVAL)
				return 0;
			/* Still pinned: its own end is taken. */
			errno = 0;
			zs_obj_read_end(pool, reused);
			return errno == 0 ? -EINVAL : 0;
		}
		if (which == 8) {
			zs_obj_read_end(pool, live);
			return errno == EINVAL ? -EINVAL : 0;
		}
		if (zs_obj_read_begin(pool, live, local, NULL) == NULL)
			return 0;
		zs_obj_read_end(pool, live);
		if (errno != 0)
			return 0;
		zs_obj_read_end(pool, live);
		return errno == EINVAL ? -EINVAL : 0;
	}
	if (which >= 5) {
		/* (Beside a live object: its zspage stays.) */
		waiting = zs_malloc(pool, 500);
		if (waiting == 0 || zs_free(pool, waiting) != 0)
			return 0;
		if (which == 5)
			return zs_free(pool, waiting);
		return zs_obj_copy(pool, waiting, buf, 1);
	}
	switch (which) {
	case 0: return zs_free(pool, freed);
	case 1: return zs_free(pool, (live & 0xffffffffull) + 12345);
	case 2: return zs_obj_copy(pool, freed, buf, 1);
	case 3: return zs_obj_write(pool, freed, buf, sizeof(buf));
	default: return zs_free(pool, 0);
	}
}

static void
bad_handles(void)
{
	struct zs_pool *pool = new_pool(1, BATCH);
	struct tobj objs[64], gone;
	unsigned int i, which;

	for (i = 0; i < 64; i++)
		tobj_put(pool, &objs[i], i, 100 + i * 60);
	tobj_put(pool, &gone, 999, 500);
	zs_handle_t freed = gone.handle;

	tobj_drop(pool, &gone);
	/* The freed handle's slot and index are taken again. */
	zs_pool_flush(pool);
	tobj_put(pool, &gone, 1000, 500);
	ok((uint32_t)gone.handle == (uint32_t)freed &&
	    gone.handle != freed, "a new object on the freed handle's index");

	for (which = 0; which < sizeof(bad_ops) / sizeof(bad_ops[0]);
	    which++) {
		pid_t pid;
		int status, r;

		/* The child has no worker threads: leave them nothing to do. */
		zs_pool_flush(pool);
		fflush(stdout);
		if ((pid = fork()) == 0) {
			r = bad_handle_op(pool, which, freed, gone.handle,
			    objs[0].handle);
			/* Release: the op must fail and harm nothing. */
			_exit(r == -EINVAL && tobj_count_bad(pool, objs, 64) ==
			    0 && tobj_intact(pool, &gone) && pool_valid(pool) ?
			    0 : 1);
		}
		waitpid(pid, &status, 0);
#ifdef ZS_DEBUG
		/* Debug builds stop at once. */
		ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		    "debug build: %s aborts", bad_ops[which]);
#else
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "%s: -EINVAL, nothing harmed", bad_ops[which]);
#endif
	}
	ok(tobj_count_bad(pool, objs, 64) == 0 && tobj_intact(pool, &gone),
	    "the pool's objects are intact");
	zs_destroy_pool(pool);
}

/*
 * Handles freed by one class serve the others: each class keeps only a few
 * free handles and gives the rest back to the table, so a pool whose mix
 * of sizes changes does not grow its handle table.  (A handle's index is
 * its low 32 bits.)
 */
static void
handles_shared(void)
{
	struct zs_pool *pool = new_pool(1, BATCH);
	static zs_handle_t h[4000];
	uint32_t top = 0, top2 = 0;
	unsigned int i, bad = 0;

	for (i = 0; i < 4000; i++) {
		h[i] = zs_malloc(pool, 100);
		bad += h[i] == 0;
		if ((uint32_t)h[i] > top)
			top = (uint32_t)h[i];
	}
	for (i = 0; i < 4000; i++)
		bad += zs_free(pool, h[i]) != 0;
	for (i = 0; i < 4000; i++) {
		h[i] = zs_malloc(pool, 3000);
		bad += h[i] == 0;
		if ((uint32_t)h[i] > top2)
			top2 = (uint32_t)h[i];
	}
	ok(bad == 0 && top2 <= top + 64, "4000 handles freed from one class "
	    "serve another: highest index %u, then %u", top, top2);
	ok(pool_valid(pool), "pool valid");
	for (i = 0; i < 4000; i++)
		zs_free(pool, h[i]);
	zs_destroy_pool(pool);
}

/*
 * A handle's generation has 16 bits: after a handle is freed, its index
 * may be handed out again 65,535 times and the stale handle is still
 * refused; the 65,536th handle on that index equals it.  Allocations that
 * take the index and then fail for want of memory use none of those.
 * The stale handle is passed to the pool only where it must be refused
 * (debug builds abort on it).
 */
static void
generation_wrap(void)
{
	static struct tobj objs[64];
	uint8_t local[ZS_MAX_ALLOC_SIZE];
	struct zs_pool_config cfg;
	struct zs_pool *pool;
	zs_handle_t stale, h, small;
	unsigned int n, k, fails = 0, other = 0, equal = 0;
	struct tobj o;

	zs_pool_config_init(&cfg);
	cfg.section_size = 256 << 10;
	cfg.max_size = cfg.section_size;	/* one section */
	cfg.async_free = 0;
	cfg.free_batch = 0;
	cfg.page_cache = 0;
	cfg.free_page_reporting = 0;
	pool = zs_create_pool(&cfg);
	for (n = 0; n < 64 && tobj_put(pool, &objs[n], n, ZS_MAX_ALLOC_SIZE) ==
	    0; n++)
		;
	ok(pool != NULL && n > 0 && n < 64, "one section full of %u huge "
	    "objects", n);
	if (n == 0 || n == 64) {
		zs_destroy_pool(pool);
		return;
	}
	stale = objs[n - 1].handle;
	tobj_drop(pool, &objs[n - 1]);

	/* Its page taken by another class: a huge malloc fails. */
	small = zs_malloc(pool, 100);
	for (k = 0; k < 100; k++)
		fails += zs_malloc(pool, ZS_MAX_ALLOC_SIZE) == 0 &&
		    errno == ENOMEM;
	ok(small != 0 && fails == 100, "100 huge allocations failed after "
	    "taking the freed index (%u)", fails);
	zs_free(pool, small);

	for (k = 1; k < 65535; k++) {
		h = zs_malloc(pool, ZS_MAX_ALLOC_SIZE);
		other += (uint32_t)h != (uint32_t)stale;
		equal += h == stale;
		zs_free(pool, h);
	}
	ok(other == 0 && equal == 0, "the index handed out 65,534 times: "
	    "%u other indices, %u handles equal to the stale one", other,
	    equal);
	ok(tobj_put(pool, &o, 7, ZS_MAX_ALLOC_SIZE) == 0 &&
	    (uint32_t)o.handle == (uint32_t)stale && o.handle != stale,
	    "the 65,535th handle on the index differs from the stale one");
#ifndef ZS_DEBUG
	errno = 0;
	ok(zs_obj_size(pool, stale) == 0 && errno == EINVAL &&
	    zs_obj_read_begin(pool, stale, local, NULL) == NULL &&
	    zs_free(pool, stale) == -EINVAL && tobj_intact(pool, &o),
	    "the stale handle is refused; the live object is intact");
#endif
	tobj_drop(pool, &o);
	h = zs_malloc(pool, ZS_MAX_ALLOC_SIZE);
	ok(h == stale, "the 65,536th handle on the index equals the stale "
	    "one (%#llx, stale %#llx)", (unsigned long long)h,
	    (unsigned long long)stale);
	zs_free(pool, h);
	ok(pool_valid(pool), "pool valid");
	for (k = 0; k < n; k++)
		tobj_drop(pool, &objs[k]);
	zs_destroy_pool(pool);
}

int
main(void)
{
	tap_watchdog(600);
	round_trips(1, BATCH);
	round_trips(0, BATCH);
	round_trips(1, 0);
	batched_frees();
	batch_holds_memory();
	partial_access();
	bad_sizes();
	bad_handles();
	handles_shared();
	generation_wrap();
	return done_testing();
}
