/*
 * mobility.c - how fast libzs gives memory back after most of it is freed.
 *
 * Fill a pool with the stream (round and round) until bytes are stored,
 * free 75% of the objects in an order fixed by the seed, then time
 * zs_compact (+ zs_pool_flush), zs_pool_shrink(pool, UINT64_MAX) and
 * zs_pool_report, and poll the RSS every 10 ms until it has not changed
 * for 200 ms (giving up after 10 s).  The pool's reporting worker is
 * off, so everything given back is given back by those calls, inside the
 * timed span.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "zs.h"

#define POLL_US		10000
#define SETTLED_S	0.2
#define SETTLE_LIMIT_S	10.0	/* give up: RSS still changing */
#define MIB		1048576.0

static double
mapped_mib(struct zs_pool *pool)
{
	struct zs_pool_stats st;

	zs_pool_stats(pool, &st);
	return (double)st.pages_mapped * BENCH_PAGE / MIB;
}

static void
mobility_one(const struct stream *s, uint64_t bytes, uint64_t seed,
    struct mobility *m)
{
	struct zs_pool_config cfg;
	struct zs_compact_result res;
	struct zs_pool *pool = NULL;
	zs_handle_t *h = NULL;
	uint32_t *order = NULL;
	uint64_t base, stored = 0, live = 0, rss, last;
	size_t n = 0, i;
	double t0, t, changed;

	memset(m, 0, sizeof(*m));
	m->ok = -1;
	while (stored < bytes)
		stored += s->len[n++ % s->nr_pages];
	if ((h = calloc(n, sizeof(*h))) == NULL ||
	    (order = malloc(n * sizeof(*order))) == NULL)
		goto out;
	memset(h, 0, n * sizeof(*h));
	shuffle(order, n, seed);
	zs_pool_config_init(&cfg);
	cfg.free_page_reporting = 0;
	if ((pool = zs_create_pool(&cfg)) == NULL)
		goto out;
	stream_touch(s);
	base = rss_bytes();

	for (i = 0; i < n; i++) {
		size_t k = i % s->nr_pages;

		h[i] = zs_malloc(pool, s->len[k]);
		if (h[i] == 0 || zs_obj_write(pool, h[i], s->bytes + s->off[k],
		    s->len[k]) != 0) {
			fprintf(stderr, "zs-bench: mobility: store %zu failed\n",
			    i);
			goto out;
		}
	}
	m->fill_gib = (double)stored / (MIB * 1024);
	for (i = 0; i < n - n / 4; i++) {
		zs_free(pool, h[order[i]]);
		h[order[i]] = 0;
	}
	zs_pool_flush(pool);
	for (i = 0; i < n; i++)
		if (h[i] != 0)
			live += s->len[i % s->nr_pages];
	m->live_mib = (double)live / MIB;
	m->rss_before_mib = (double)(rss_bytes() - base) / MIB;
	m->mapped_before_mib = mapped_mib(pool);

	t0 = now();
	zs_compact(pool, &res);
	zs_pool_flush(pool);
	t = now();
	m->compact_s = t - t0;
	m->moved_mib = (double)res.bytes_moved / MIB;
	m->moved_mib_s = m->compact_s > 0 ? m->moved_mib / m->compact_s : 0;
	m->shrunk_mib = (double)zs_pool_shrink(pool, UINT64_MAX) / MIB;
	m->shrink_s = now() - t;
	t = now();
	m->reported_mib = (double)zs_pool_report(pool) * BENCH_PAGE / MIB;
	m->report_s = now() - t;

	last = rss_bytes();
	changed = now();
	while (now() - changed < SETTLED_S) {
		if (now() - t0 > SETTLE_LIMIT_S) {
			m->unsettled = 1;
			break;
		}
		usleep(POLL_US);
		if ((rss = rss_bytes()) != last) {
			last = rss;
			changed = now();
		}
	}
	m->settled_s = changed - t0;
	m->rss_after_mib = (double)(last - base) / MIB;
	m->mapped_after_mib = mapped_mib(pool);

	for (i = 0; i < n; i++) {
		size_t k = i % s->nr_pages;
		uint8_t buf[ZS_MAX_ALLOC_SIZE];

		if (h[i] != 0 && (zs_obj_copy(pool, h[i], buf, s->len[k]) !=
		    0 || memcmp(buf, s->bytes + s->off[k], s->len[k]) != 0)) {
			fprintf(stderr, "zs-bench: mobility: object %zu came "
			    "back wrong\n", i);
			goto out;
		}
	}
	m->ok = 1;
out:
	zs_destroy_pool(pool);
	free(h);
	free(order);
}

/* One mobility run in a child of its own. */
void
mobility_child(const struct stream *s, uint64_t bytes, uint64_t seed,
    struct mobility *m)
{
	int fd[2];
	pid_t pid;

	memset(m, 0, sizeof(*m));
	m->ok = -1;
	if ((pid = child_start(fd)) < 0)
		return;
	if (pid == 0) {
		mobility_one(s, bytes, seed, m);
		pipe_result(fd[1], m, sizeof(*m));
	}
	if (!child_result(pid, fd[0], m, sizeof(*m)))
		m->ok = -1;
}
