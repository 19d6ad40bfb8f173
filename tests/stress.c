/*
 * stress.c - many threads using one pool at once, every byte checked.
 *
 * Worker threads each own a table of object slots and run a deterministic
 * sequence of operations (from the seed and their number): allocate and
 * write, rewrite, verify through zs_obj_copy or a pinned zero-copy read,
 * free, and migrate their own objects' pages.  Meanwhile a compactor
 * thread runs zs_compact and reads the statistics, and a mobility thread
 * moves sections out of the way (zs_section_migrate), takes them
 * offline, shrinks the pool and reports free pages.  The interleaving varies from run to run; the
 * operations each worker asks for do not.
 *
 * After each phase the threads stop, and the main thread checks the pool
 * with zs_pool_validate(), compares the statistics with its own count and
 * reads every live object back.  Output is TAP, one line per phase.
 *
 *   stress [-s seed] [-t threads] [-n ops] [-p phases] [-o objects]
 *          [-S section_kib] [-M] [-P] [-B free_batch]
 *
 * -n is operations per worker per phase, -o the slots per worker, -M turns
 * the mobility thread off, -P makes the pool's mutexes priority-inheriting
 * (as zsd's are at real-time priority), -B sets the pool's free_batch
 * (default libzs's).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zs.h"
#include "tap.h"

struct obj {
	zs_handle_t	handle;		/* 0: slot empty */
	uint32_t	size;
	uint64_t	key;		/* the contents are fill(key, size) */
};

struct worker {
	pthread_t	 thread;
	unsigned int	 id;
	uint64_t	 rng;
	struct obj	*objs;
	uint64_t	 failures;	/* mismatches and unexpected errors */
	uint64_t	 ops[8];
	char		 why[160];	/* first failure */
};

enum { OP_ALLOC, OP_FREE, OP_WRITE, OP_COPY, OP_READ, OP_MIGRATE, OP_NOMEM,
	OP_AGAIN };

static struct zs_pool	*pool;
static unsigned int	 nr_threads = 4, nr_objs = 2000, nr_phases = 3;
static unsigned long	 nr_ops = 40000;
static bool		 mobility = true;
static atomic_bool	 stop_background;
static atomic_uint_fast64_t bg_compacted, bg_migrated, bg_offlined,
			 bg_reported, bg_busy;

static uint64_t
next_rand(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void
fill(uint8_t *buf, uint64_t key, size_t size)
{
	uint64_t s = key | 1, r = 0;
	size_t i;

	for (i = 0; i < size; i++) {
		if ((i & 7) == 0)
			r = next_rand(&s);
		buf[i] = (uint8_t)r;
		r >>= 8;
	}
}

/* Sizes shaped like compressed pages, with the edges well covered. */
static uint32_t
pick_size(uint64_t *rng)
{
	uint64_t r = next_rand(rng), pct = r % 100;

	r >>= 8;
	if (pct < 10)
		return 1 + r % 256;
	if (pct < 70)
		return 256 + r % 2800;
	if (pct < 90)
		return 3000 + r % 1089;
	return 4089 + r % 8;		/* the huge class */
}

static void
fail(struct worker *w, unsigned int slot, const char *what, long value)
{
	if (w->failures++ == 0)
		snprintf(w->why, sizeof(w->why), "thread %u slot %u: %s %ld",
		    w->id, slot, what, value);
}

static void
check_bytes(struct worker *w, unsigned int slot, const uint8_t *got,
    uint8_t *want)
{
	struct obj *o = &w->objs[slot];

	fill(want, o->key, o->size);
	if (memcmp(got, want, o->size) != 0)
		fail(w, slot, "contents differ, size", (long)o->size);
}

static void
do_alloc(struct worker *w, unsigned int slot, uint8_t *buf)
{
	struct obj *o = &w->objs[slot];
	uint32_t size = pick_size(&w->rng);
	zs_handle_t h;
	uint64_t key;
	int error;

	key = next_rand(&w->rng);
	fill(buf, key, size);
	/* Half through zs_malloc_write, whose handle is born pinned. */
	if (key & 1)
		h = zs_malloc_write(pool, buf, size);
	else
		h = zs_malloc(pool, size);
	if (h == 0) {
		if (errno != ENOMEM)
			fail(w, slot, "zs_malloc errno", errno);
		w->ops[OP_NOMEM]++;
		return;
	}
	o->handle = h;
	o->size = size;
	o->key = key;
	if (!(key & 1) && (error = zs_obj_write(pool, h, buf, size)) != 0)
		fail(w, slot, "zs_obj_write", error);
	w->ops[OP_ALLOC]++;
}

static void
do_verify(struct worker *w, unsigned int slot, bool zero_copy, uint8_t *buf,
    uint8_t *want, const struct timespec *hold)
{
	struct obj *o = &w->objs[slot];
	const void *p;
	size_t size;
	int error;

	if (!zero_copy) {
		if ((error = zs_obj_copy(pool, o->handle, buf, o->size)) != 0)
			fail(w, slot, "zs_obj_copy", error);
		else
			check_bytes(w, slot, buf, want);
		w->ops[OP_COPY]++;
		return;
	}
	p = zs_obj_read_begin(pool, o->handle, buf, &size);
	if (p == NULL) {
		fail(w, slot, "zs_obj_read_begin errno", errno);
		return;
	}
	if (size != o->size)
		fail(w, slot, "size", (long)size);
	else
		check_bytes(w, slot, p, want);
	/* Now and then keep the pin a while, so movers meet it. */
	if (hold != NULL)
		nanosleep(hold, NULL);
	zs_obj_read_end(pool, o->handle);
	w->ops[OP_READ]++;
}

static void *
worker_run(void *arg)
{
	static const struct timespec hold = { 0, 20000 };
	struct worker *w = arg;
	uint8_t *buf = malloc(ZS_MAX_ALLOC_SIZE), *want =
	    malloc(ZS_MAX_ALLOC_SIZE);
	unsigned long i;
	int error;

	if (buf == NULL || want == NULL) {
		fail(w, 0, "out of memory", 0);
		goto out;
	}
	for (i = 0; i < nr_ops && w->failures == 0; i++) {
		uint64_t r = next_rand(&w->rng);
		unsigned int slot = (unsigned int)(r % nr_objs), op = (r >> 32)
		    % 100;
		struct obj *o = &w->objs[slot];

		if (o->handle == 0) {
			do_alloc(w, slot, buf);
			continue;
		}
		if (op < 25) {
			if ((error = zs_free(pool, o->handle)) != 0)
				fail(w, slot, "zs_free", error);
			o->handle = 0;
			w->ops[OP_FREE]++;
		} else if (op < 40) {
			o->key = next_rand(&w->rng);
			fill(buf, o->key, o->size);
			if ((error = zs_obj_write(pool, o->handle, buf,
			    o->size)) != 0)
				fail(w, slot, "rewrite", error);
			w->ops[OP_WRITE]++;
		} else if (op < 60) {
			do_verify(w, slot, false, buf, want, NULL);
		} else if (op < 95) {
			do_verify(w, slot, true, buf, want,
			    op == 94 ? &hold : NULL);
		} else {
			error = zs_obj_migrate(pool, o->handle);
			if (error == -EAGAIN || error == -ENOMEM)
				w->ops[OP_AGAIN]++;
			else if (error != 0)
				fail(w, slot, "zs_obj_migrate", error);
			else
				w->ops[OP_MIGRATE]++;
		}
	}
out:
	free(buf);
	free(want);
	return NULL;
}

/*
 * Compaction, and the statistics read beside everything else as zsd's
 * control thread and mm_stat readers do (they take no lock: run under
 * TSan, this shows their counters are read without a race).
 */
static void *
compactor_run(void *arg)
{
	struct zs_compact_result res;
	struct zs_class_stats cs;
	struct zs_pool_stats st;
	unsigned int i, n = zs_class_count(pool);

	(void)arg;
	for (i = 0; !atomic_load(&stop_background); i++) {
		zs_compact(pool, &res);
		atomic_fetch_add(&bg_compacted, res.pages_freed);
		zs_pool_stats(pool, &st);
		(void)zs_class_stats(pool, i % n, &cs);
		usleep(2000);
	}
	return NULL;
}

static void *
mobility_run(void *arg)
{
	uint64_t rng = *(uint64_t *)arg;

	while (!atomic_load(&stop_background)) {
		unsigned int n = zs_section_count(pool), what;
		long r = 0;

		what = (unsigned int)(next_rand(&rng) % 8);
		if (n == 0) {
			usleep(1000);
			continue;
		}
		if (what < 4) {
			r = zs_section_migrate(pool,
			    (unsigned int)(next_rand(&rng) % n));
			if (r > 0)
				atomic_fetch_add(&bg_migrated, (uint64_t)r);
		} else if (what < 6) {
			r = zs_section_offline(pool,
			    (unsigned int)(next_rand(&rng) % n));
			if (r >= 0)
				atomic_fetch_add(&bg_offlined, 1);
		} else if (what == 6) {
			r = zs_pool_report(pool);
			atomic_fetch_add(&bg_reported, (uint64_t)r);
		} else {
			if (zs_pool_shrink(pool, 1) > 0)
				atomic_fetch_add(&bg_offlined, 1);
		}
		if (r == -EAGAIN || r == -ENOMEM || r == -EBUSY)
			atomic_fetch_add(&bg_busy, 1);
		usleep(500);
	}
	return NULL;
}

/* Quiescent: check the pool against what the workers think it holds. */
static int
check_pool(struct worker *ws, char *why, size_t whylen)
{
	uint8_t *buf = malloc(ZS_MAX_ALLOC_SIZE), *want =
	    malloc(ZS_MAX_ALLOC_SIZE);
	uint64_t objects = 0, bytes = 0;
	struct zs_pool_stats st;
	unsigned int t, i;
	int error = 0;

	if (buf == NULL || want == NULL) {
		snprintf(why, whylen, "out of memory");
		error = -ENOMEM;
		goto out;
	}
	zs_pool_flush(pool);
	if ((error = zs_pool_validate(pool, why, whylen)) != 0)
		goto out;
	for (t = 0; t < nr_threads; t++)
		for (i = 0; i < nr_objs; i++) {
			struct obj *o = &ws[t].objs[i];

			if (o->handle == 0)
				continue;
			objects++;
			bytes += o->size;
			if (zs_obj_size(pool, o->handle) != o->size ||
			    zs_obj_copy(pool, o->handle, buf, o->size) != 0) {
				snprintf(why, whylen, "thread %u slot %u: "
				    "handle lost", t, i);
				error = -EUCLEAN;
				goto out;
			}
			fill(want, o->key, o->size);
			if (memcmp(buf, want, o->size) != 0) {
				snprintf(why, whylen, "thread %u slot %u: "
				    "contents differ", t, i);
				error = -EUCLEAN;
				goto out;
			}
		}
	zs_pool_stats(pool, &st);
	if (st.objects != objects || st.bytes_requested != bytes ||
	    st.isolated_zspages != 0 || st.zspages_pending_free != 0) {
		snprintf(why, whylen, "stats: %" PRIu64 " objects, %" PRIu64
		    " bytes, %" PRIu64 " isolated, %" PRIu64 " pending; "
		    "expected %" PRIu64 " objects, %" PRIu64 " bytes",
		    st.objects, st.bytes_requested, st.isolated_zspages,
		    st.zspages_pending_free, objects, bytes);
		error = -EUCLEAN;
	}
out:
	free(buf);
	free(want);
	return error;
}

static void
usage(void)
{
	fprintf(stderr, "usage: stress [-s seed] [-t threads] [-n ops] "
	    "[-p phases] [-o objects] [-S section_kib] [-M] [-P] "
	    "[-B free_batch]\n");
	exit(2);
}

static unsigned long
number(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max) {
		fprintf(stderr, "stress: bad number '%s' (%lu..%lu)\n", s, min,
		    max);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	struct zs_pool_config cfg;
	struct zs_pool_stats st;
	struct worker *ws;
	pthread_t compactor, mover;
	uint64_t seed = 1, mover_seed;
	unsigned int t, p, i, test = 0;
	char why[256];
	int c, failed = 0;

	zs_pool_config_init(&cfg);
	cfg.section_size = 256 << 10;	/* many sections to move around */
	cfg.report_delay_ms = 5;
	while ((c = getopt(argc, argv, "s:t:n:p:o:S:MPB:")) != -1) {
		switch (c) {
		case 's': seed = number(optarg, 0, ULONG_MAX); break;
		case 't': nr_threads = number(optarg, 1, 64); break;
		case 'n': nr_ops = number(optarg, 1, ULONG_MAX); break;
		case 'p': nr_phases = number(optarg, 1, 1000); break;
		case 'o': nr_objs = number(optarg, 1, 1u << 24); break;
		case 'S': cfg.section_size = number(optarg, 256, 1 << 20) << 10;
			break;
		case 'M': mobility = false; break;
		case 'P': cfg.priority_inherit = 1; break;
		case 'B': cfg.free_batch = (unsigned int)number(optarg, 0,
			    ZS_MAX_FREE_BATCH);
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	printf("1..%u\n", nr_phases + 1);
	printf("# seed %" PRIu64 ", %u threads, %lu ops each per phase, "
	    "%u phases, %u slots each, %zu KiB sections, mobility %s, "
	    "free_batch %u\n", seed, nr_threads, nr_ops, nr_phases, nr_objs,
	    cfg.section_size >> 10, mobility ? "on" : "off", cfg.free_batch);
	if ((pool = zs_create_pool(&cfg)) == NULL) {
		printf("Bail out! zs_create_pool: %s\n", strerror(errno));
		return 1;
	}
	ws = calloc(nr_threads, sizeof(*ws));
	if (ws == NULL) {
		printf("Bail out! out of memory\n");
		return 1;
	}
	for (t = 0; t < nr_threads; t++) {
		ws[t].id = t;
		ws[t].rng = seed * 0x9e3779b97f4a7c15ull + t + 1;
		next_rand(&ws[t].rng);
		ws[t].objs = calloc(nr_objs, sizeof(struct obj));
		if (ws[t].objs == NULL) {
			printf("Bail out! out of memory\n");
			return 1;
		}
	}
	mover_seed = seed ^ 0xabcdef12345ull;

	for (p = 0; p < nr_phases; p++) {
		/* Far beyond a phase's time even under TSan or valgrind. */
		tap_watchdog(600);
		atomic_store(&stop_background, false);
		for (t = 0; t < nr_threads; t++)
			pthread_create(&ws[t].thread, NULL, worker_run, &ws[t]);
		pthread_create(&compactor, NULL, compactor_run, NULL);
		if (mobility)
			pthread_create(&mover, NULL, mobility_run, &mover_seed);
		for (t = 0; t < nr_threads; t++)
			pthread_join(ws[t].thread, NULL);
		atomic_store(&stop_background, true);
		pthread_join(compactor, NULL);
		if (mobility)
			pthread_join(mover, NULL);

		why[0] = '\0';
		for (t = 0; t < nr_threads; t++)
			if (ws[t].failures != 0) {
				snprintf(why, sizeof(why), "%s", ws[t].why);
				break;
			}
		if (why[0] == '\0')
			check_pool(ws, why, sizeof(why));
		zs_pool_stats(pool, &st);
		printf("%s %u - phase %u: %" PRIu64 " objects in %" PRIu64
		    " pages, %" PRIu64 " sections%s%s\n", why[0] ? "not ok" :
		    "ok", ++test, p + 1, st.objects, st.pages_used,
		    st.sections, why[0] ? ": " : "", why);
		failed |= why[0] != '\0';
		if (why[0] != '\0')
			break;
	}
	for (t = 0; t < nr_threads; t++)
		printf("# thread %u: %" PRIu64 " alloc, %" PRIu64 " free, %"
		    PRIu64 " write, %" PRIu64 " copy, %" PRIu64 " read, %"
		    PRIu64 " migrate (%" PRIu64 " busy), %" PRIu64 " ENOMEM\n",
		    t, ws[t].ops[OP_ALLOC], ws[t].ops[OP_FREE],
		    ws[t].ops[OP_WRITE], ws[t].ops[OP_COPY], ws[t].ops[OP_READ],
		    ws[t].ops[OP_MIGRATE], ws[t].ops[OP_AGAIN],
		    ws[t].ops[OP_NOMEM]);
	zs_pool_stats(pool, &st);
	printf("# background: %" PRIu64 " pages compacted, %" PRIu64
	    " pages migrated by section, %" PRIu64 " sections offlined, %"
	    PRIu64 " pages reported, %" PRIu64 " busy\n",
	    (uint64_t)atomic_load(&bg_compacted),
	    (uint64_t)atomic_load(&bg_migrated),
	    (uint64_t)atomic_load(&bg_offlined),
	    (uint64_t)atomic_load(&bg_reported),
	    (uint64_t)atomic_load(&bg_busy));
	printf("# pool: %" PRIu64 " pages migrated, %" PRIu64
	    " sections offlined, %" PRIu64 " pages compacted\n",
	    st.pages_migrated, st.sections_offlined, st.pages_compacted);

	/* Last: free everything; the pool must end empty and shrink away. */
	tap_watchdog(600);
	if (!failed) {
		why[0] = '\0';
		for (t = 0; t < nr_threads; t++)
			for (i = 0; i < nr_objs; i++)
				if (ws[t].objs[i].handle != 0 &&
				    zs_free(pool, ws[t].objs[i].handle) != 0)
					snprintf(why, sizeof(why), "zs_free "
					    "failed (thread %u slot %u)", t, i);
		zs_pool_flush(pool);
		zs_pool_shrink(pool, UINT64_MAX);
		zs_pool_stats(pool, &st);
		if (why[0] == '\0' &&
		    zs_pool_validate(pool, why, sizeof(why)) == 0 &&
		    (st.objects != 0 || st.pages_used != 0 ||
		    st.zspages != 0 || st.sections != 0))
			snprintf(why, sizeof(why), "not empty after freeing "
			    "all: %" PRIu64 " objects, %" PRIu64 " pages, %"
			    PRIu64 " zspages, %" PRIu64 " sections",
			    st.objects, st.pages_used, st.zspages,
			    st.sections);
		printf("%s %u - free all, pool empty%s%s\n", why[0] ?
		    "not ok" : "ok", ++test, why[0] ? ": " : "", why);
		failed |= why[0] != '\0';
	}
	zs_destroy_pool(pool);
	for (t = 0; t < nr_threads; t++)
		free(ws[t].objs);
	free(ws);
	return failed;
}
