/*
 * test-arena.c - pools in a memfd: create, attach, recover; and crash
 * consistency, by killing a process that works on the pool at seeded
 * random moments and recovering what it left.
 *
 * The model: the root holds one 64-bit entry per object number i, the
 * handle of its current version v in the low 48 bits and v in the top 16
 * (0: no object).  A version's size and bytes are a function of (i, v), so
 * any object can be checked against its entry.  The worker replaces an
 * object as a store would: allocate and write the new version, publish
 * the entry with one store, free the old handle; or drops it: publish 0,
 * free.  It _exits on purpose between allocation and publish, and between
 * publish and free; it migrates objects now and then, and two more
 * threads compact, migrate sections and shrink the pool all the while, so that a SIGKILL from the
 * parent lands in the middle of those too.  After each death the next
 * worker attaches, marks every published handle, recovers, validates the
 * pool and checks every object, then goes on; the parent does the same
 * at the end.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "zs.h"

#define NOBJ		20000u
#define SECTION		(256u << 10)
#define ROUNDS		(getenv("TEST_ARENA_ROUNDS") ? atoi(getenv("TEST_ARENA_ROUNDS")) : 40)
#define ENTRY_HANDLE(e)	((e) & ((1ull << 48) - 1))
#define ENTRY_VER(e)	((uint32_t)((e) >> 48))

static struct zs_pool_config cfg;

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* Sizes across the classes, huge included. */
static size_t
size_of(uint32_t i, uint32_t v)
{
	uint64_t h = mix((uint64_t)i << 16 | v);

	switch (h % 8) {
	case 0:
		return 4096;
	case 1:
		return 3500 + h % 596;
	default:
		return 20 + (h >> 8) % 2500;
	}
}

static void
fill(unsigned char *buf, uint32_t i, uint32_t v, size_t n)
{
	uint64_t x = mix((uint64_t)i << 16 | v | 1ull << 60);
	size_t k;

	for (k = 0; k < n; k++) {
		if (k % 8 == 0)
			x = mix(x + k);
		buf[k] = (unsigned char)(x >> (k % 8 * 8));
	}
}

/* Whether object i holds version v; why says what is wrong. */
static bool
check_obj(struct zs_pool *pool, uint32_t i, uint64_t e, char *why, size_t wl)
{
	static unsigned char want[4096], local[4096];
	uint32_t v = ENTRY_VER(e);
	const unsigned char *got;
	size_t size, n = size_of(i, v);

	got = zs_obj_read_begin(pool, ENTRY_HANDLE(e), local, &size);
	if (got == NULL) {
		snprintf(why, wl, "object %u v%u: handle %#llx not readable",
		    i, v, (unsigned long long)ENTRY_HANDLE(e));
		return false;
	}
	fill(want, i, v, n);
	if (size != n || memcmp(got, want, n) != 0) {
		snprintf(why, wl, "object %u v%u: size %zu (want %zu) or bytes "
		    "differ", i, v, size, n);
		zs_obj_read_end(pool, ENTRY_HANDLE(e));
		return false;
	}
	zs_obj_read_end(pool, ENTRY_HANDLE(e));
	return true;
}

/*
 * Attach to fd, mark every published handle, recover, validate, check
 * every object.  NULL and why on failure.
 */
static struct zs_pool *
recover(int fd, struct zs_recovery *res, char *why, size_t wl)
{
	_Atomic uint64_t *root;
	struct zs_pool *pool;
	uint32_t i;
	int error;

	if ((pool = zs_arena_attach(&cfg, fd)) == NULL) {
		snprintf(why, wl, "attach: %s", strerror(errno));
		return NULL;
	}
	root = zs_arena_root(pool, NULL);
	for (i = 0; i < NOBJ; i++) {
		uint64_t e = atomic_load(&root[i]);

		if (e != 0 && zs_arena_mark(pool, ENTRY_HANDLE(e)) != 0) {
			snprintf(why, wl, "object %u: published handle %#llx "
			    "refused by mark", i,
			    (unsigned long long)ENTRY_HANDLE(e));
			goto fail;
		}
	}
	if ((error = zs_arena_recover(pool, res, why, wl)) != 0)
		goto fail;
	if (zs_pool_validate(pool, why, wl) != 0)
		goto fail;
	for (i = 0; i < NOBJ; i++) {
		uint64_t e = atomic_load(&root[i]);

		if (e != 0 && !check_obj(pool, i, e, why, wl))
			goto fail;
	}
	return pool;
fail:
	zs_destroy_pool(pool);
	return NULL;
}

/* The worker's movers: until killed. */
static void *
mover(void *arg)
{
	struct zs_pool *pool = arg;
	uint64_t x = (uint64_t)pthread_self();
	unsigned int n;

	for (;;) {
		x = mix(x + 0x9e3779b97f4a7c15ull);
		switch (x % 3) {
		case 0:
			(void)zs_compact(pool, NULL);
			break;
		case 1:
			n = zs_section_count(pool);
			if (n > 0)
				(void)zs_section_migrate(pool,
				    (unsigned int)(x >> 8) % n);
			break;
		default:
			(void)zs_pool_shrink(pool, SECTION);
			break;
		}
	}
	return NULL;
}

/*
 * One worker's life: recover (or create), say so on ready, then replace
 * and drop objects until killed, or until it _exits at die_at (the kind
 * of crash die_kind says).  Exit 1 with a message if recovery failed.
 */
static void
worker(int fd, bool create, uint64_t seed, int ready, long die_at,
    int die_kind)
{
	static unsigned char buf[4096];
	struct zs_recovery res;
	_Atomic uint64_t *root;
	struct zs_pool *pool;
	pthread_t t[2];
	char why[256];
	uint64_t x = seed;
	long op;

	if (create) {
		pool = zs_arena_create(&cfg, fd, NOBJ * sizeof(uint64_t));
		if (pool == NULL) {
			fprintf(stderr, "create: %s\n", strerror(errno));
			_exit(1);
		}
	} else if ((pool = recover(fd, &res, why, sizeof(why))) == NULL) {
		fprintf(stderr, "recovery: %s\n", why);
		_exit(1);
	}
	root = zs_arena_root(pool, NULL);
	if (pthread_create(&t[0], NULL, mover, pool) != 0 ||
	    pthread_create(&t[1], NULL, mover, pool) != 0)
		_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	for (op = 0;; op++) {
		uint32_t i, v;
		uint64_t old, e;
		zs_handle_t h;
		size_t n;

		x = mix(x + 0x9e3779b97f4a7c15ull);
		i = (uint32_t)(x % NOBJ);
		old = atomic_load(&root[i]);
		/* Objects move under the movers' feet, and under ours. */
		if ((x >> 32) % 16 == 1) {
			if (old != 0)
				(void)zs_obj_migrate(pool, ENTRY_HANDLE(old));
			continue;
		}
		if ((x >> 32) % 8 == 0) {
			if (old == 0)
				continue;
			atomic_store(&root[i], 0);
			(void)zs_free(pool, ENTRY_HANDLE(old));
			continue;
		}
		v = old != 0 ? ENTRY_VER(old) % 0xfffe + 1 : 1;
		n = size_of(i, v);
		fill(buf, i, v, n);
		if ((h = zs_malloc_write(pool, buf, n)) == 0)
			continue;	/* full: the next op frees */
		if (die_at >= 0 && op >= die_at && die_kind == 0)
			_exit(0);	/* allocated, not published */
		e = (uint64_t)v << 48 | h;
		atomic_store(&root[i], e);
		if (die_at >= 0 && op >= die_at && die_kind == 1)
			_exit(0);	/* published, old not freed */
		if (old != 0)
			(void)zs_free(pool, ENTRY_HANDLE(old));
	}
}

int
main(void)
{
	struct zs_recovery res;
	struct zs_pool *pool;
	int fd, round, pfd[2], status;
	uint64_t seed = 0x5eed0000, objects_freed = 0;
	char why[256] = "", c;
	pid_t pid;
	bool ok_all = true;

	tap_watchdog(600);
	zs_pool_config_init(&cfg);
	cfg.section_size = SECTION;
	cfg.report_delay_ms = 10;
	cfg.max_size = 64u << 20;
	if (getenv("TEST_ARENA_SEED") != NULL)
		seed = strtoull(getenv("TEST_ARENA_SEED"), NULL, 0);
	diag("seed %#llx (TEST_ARENA_SEED to repeat)",
	    (unsigned long long)seed);

	/* Basics: an arena needs an empty regular file. */
	fd = memfd_create("zs-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		skip_all("memfd_create: %s", strerror(errno));
	ok(zs_arena_attach(&cfg, fd) == NULL && errno == EINVAL,
	    "an empty memfd cannot be attached (EINVAL)");
	ok(zs_arena_create(&cfg, -1, 0) == NULL && errno == EINVAL,
	    "no fd: EINVAL");
	{
		int nf = memfd_create("zs-arena-bad", MFD_CLOEXEC);

		ok(nf >= 0 && write(nf, "not an arena, no", 16) == 16 &&
		    zs_arena_attach(&cfg, nf) == NULL && errno == EINVAL,
		    "a short file is refused");
		ok(ftruncate(nf, 1 << 20) == 0 &&
		    zs_arena_attach(&cfg, nf) == NULL && errno == EPROTO,
		    "a file of another format is refused (EPROTO)");
		ok(zs_arena_create(&cfg, nf, 0) == NULL && errno == EINVAL,
		    "create refuses a file that is not empty");
		close(nf);
	}

	/*
	 * A pool attached in this process while another mapping of it
	 * exists: its address is taken.
	 */
	pool = zs_arena_create(&cfg, fd, NOBJ * sizeof(uint64_t));
	ok(pool != NULL && zs_pool_is_arena(pool), "create an arena pool");
	if (pool == NULL)
		bail("create: %s", strerror(errno));
	ok(zs_arena_attach(&cfg, fd) == NULL && errno == EADDRINUSE,
	    "attach while mapped here: EADDRINUSE");
	ok(zs_arena_mark(pool, 1) == -EINVAL,
	    "mark on a pool not in recovery: -EINVAL");
	zs_destroy_pool(pool);

	/* Rounds of work, each killed or crashing, each recovered. */
	for (round = 0; round < ROUNDS; round++) {
		long die_at = -1;
		int kind = round % 3;	/* 2: killed by the parent */

		if (kind < 2)
			die_at = (long)(mix(seed + round) % 50000);
		if (pipe(pfd) != 0)
			bail("pipe");
		if ((pid = fork()) < 0)
			bail("fork");
		if (pid == 0) {
			close(pfd[0]);
			worker(fd, false, mix(seed ^ (uint64_t)round),
			    pfd[1], die_at, kind);
		}
		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1) {
			waitpid(pid, &status, 0);
			ok(0, "round %d: the worker recovered (exit %d)", round,
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			ok_all = false;
			close(pfd[0]);
			break;
		}
		close(pfd[0]);
		if (kind == 2) {
			struct timespec ts = { 0, (long)(mix(seed + round) %
			    80 + 5) * 1000000 };

			nanosleep(&ts, NULL);
			kill(pid, SIGKILL);
		}
		waitpid(pid, &status, 0);
		if (kind == 2 ? !WIFSIGNALED(status) ||
		    WTERMSIG(status) != SIGKILL : !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			ok(0, "round %d: the worker died as planned (status "
			    "%#x)", round, status);
			ok_all = false;
			break;
		}
	}
	ok(ok_all, "%d rounds of work killed or crashed mid-way, each "
	    "recovered and checked by the next", round);

	pool = recover(fd, &res, why, sizeof(why));
	ok(pool != NULL, "the last round's pool recovers: every published "
	    "object reads back as published%s%s", pool ? "" : ": ",
	    pool ? "" : why);
	if (pool != NULL) {
		_Atomic uint64_t *root = zs_arena_root(pool, NULL);
		struct zs_pool_stats st;
		uint64_t live = 0;
		uint32_t i;

		objects_freed = res.objects_freed;
		for (i = 0; i < NOBJ; i++)
			live += atomic_load(&root[i]) != 0;
		zs_pool_stats(pool, &st);
		ok(st.objects == live, "the pool holds the %llu published "
		    "objects and no other (%llu; %llu orphans freed)",
		    (unsigned long long)live,
		    (unsigned long long)st.objects,
		    (unsigned long long)objects_freed);
		diag("recovery: %llu handles, %llu zspages freed, %llu pages "
		    "kept, %llu sections kept, %llu freed",
		    (unsigned long long)res.handles_marked,
		    (unsigned long long)res.zspages_freed,
		    (unsigned long long)res.pages_kept,
		    (unsigned long long)res.sections_kept,
		    (unsigned long long)res.sections_freed);
		/* The recovered pool works: churn, compact, validate. */
		for (i = 0; i < NOBJ; i += 3) {
			uint64_t e = atomic_load(&root[i]);

			if (e != 0) {
				atomic_store(&root[i], 0);
				zs_free(pool, ENTRY_HANDLE(e));
			}
		}
		zs_compact(pool, NULL);
		zs_pool_flush(pool);
		ok(zs_pool_validate(pool, why, sizeof(why)) == 0,
		    "after frees and compaction the recovered pool is valid%s%s",
		    *why ? ": " : "", why);
		zs_destroy_pool(pool);
	}
	close(fd);
	return done_testing();
}
