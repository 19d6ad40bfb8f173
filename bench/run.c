/*
 * run.c - one measured run of one allocator, in a child of its own.
 *
 * fill:    store every page of the stream, in stream order;
 * half:    free half of them, in an order fixed by the seed, and wait for
 *          the allocator's deferred work (libzs: zs_pool_flush);
 * compact: the allocator's way of giving memory back.
 *
 * After each phase, efficiency = bytes still stored / bytes held, where
 * held is the growth of the RSS since the baseline (taken after the
 * stream and the run's own tables are resident and the allocator is
 * initialised) and, for libzs, also the pool's page counts.  At the end,
 * every object still live is compared with the stream.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static void
measure(const struct allocator *a, struct result *r, int phase,
    uint64_t base, uint64_t stored)
{
	uint64_t rss = rss_bytes();
	double eff[NR_BASES];
	int b;

	rss = rss > base ? rss - base : 0;
	r->rss_mib[phase] = (double)rss / 1048576;
	r->eff[BASIS_RSS][phase] = rss > 0 ? (double)stored / (double)rss : 0;
	if (!a->has_pool_stats)
		return;
	pool_basis(eff, stored);
	for (b = BASIS_USED; b < NR_BASES; b++)
		r->eff[b][phase] = eff[b];
}

void
run_one(const struct allocator *a, const struct stream *s, uint64_t seed,
    struct result *r)
{
	size_t i, n = s->nr_pages, half = n / 2;
	bench_obj_t *obj = calloc(n, sizeof(*obj));
	uint32_t *order = malloc(n * sizeof(*order));
	uint64_t base, stored = 0;
	double t;

	memset(r, 0, sizeof(*r));
	r->ok = -1;
	if (obj == NULL || order == NULL)
		goto out;
	memset(obj, 0, n * sizeof(*obj));	/* resident before the baseline */
	shuffle(order, n, seed);
	if (!a->init()) {
		r->ok = 0;
		goto out;
	}
	stream_touch(s);
	base = rss_bytes();

	t = now();
	for (i = 0; i < n; i++) {
		if ((obj[i] = a->store(s->bytes + s->off[i], s->len[i])) == 0) {
			fprintf(stderr, "zs-bench: %s: store %zu failed\n",
			    a->name, i);
			goto out;
		}
		stored += s->len[i];
	}
	r->fill_ops = (double)n / (now() - t);
	measure(a, r, PHASE_FILL, base, stored);

	t = now();
	for (i = 0; i < half; i++) {
		uint32_t k = order[i];

		a->drop(obj[k]);
		obj[k] = 0;
		stored -= s->len[k];
	}
	a->quiesce();
	r->free_ops = (double)half / (now() - t);
	measure(a, r, PHASE_HALF, base, stored);

	t = now();
	a->compact();
	r->compact_s = now() - t;
	measure(a, r, PHASE_COMPACT, base, stored);

	for (i = 0; i < n; i++)
		if (obj[i] != 0 && !a->check(obj[i], s->bytes + s->off[i],
		    s->len[i])) {
			fprintf(stderr, "zs-bench: %s: page %zu of the stream "
			    "came back wrong\n", a->name, i);
			goto out;
		}
	r->ok = 1;
out:
	free(obj);
	free(order);
}

/*
 * Run allocator idx once in a child and collect its result.  A preloaded
 * allocator's child re-executes this program (run_exec_child), which maps
 * the same stream through the inherited memfd.
 */
void
run_child(unsigned int idx, const struct stream *s, uint64_t seed,
    struct result *r)
{
	const struct allocator *a = &allocators[idx];
	char arg[96];
	int fd[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->ok = -1;
	if ((pid = child_start(fd)) < 0)
		return;
	if (pid == 0) {
		if (a->preload != NULL) {
			snprintf(arg, sizeof(arg), "%u,%d,%d,%" PRIu64, idx,
			    s->fd, fd[1], seed);
			if (setenv("LD_PRELOAD", a->preload, 1) == 0)
				execl("/proc/self/exe", "zs-bench",
				    "--run-child", arg, (char *)NULL);
			_exit(127);
		}
		run_one(a, s, seed, r);
		pipe_result(fd[1], r, sizeof(*r));
	}
	if (!child_result(pid, fd[0], r, sizeof(*r)))
		r->ok = -1;
}

/* In the re-executed child: arg is "idx,stream fd,result fd,seed". */
int
run_exec_child(const char *arg)
{
	struct stream s;
	struct result r;
	unsigned int idx;
	int stream_fd, result_fd;
	uint64_t seed;

	if (sscanf(arg, "%u,%d,%d,%" SCNu64, &idx, &stream_fd, &result_fd,
	    &seed) != 4 || idx >= nr_allocators ||
	    stream_attach(&s, stream_fd) != 0)
		return 2;
	run_one(&allocators[idx], &s, seed, &r);
	pipe_result(result_fd, &r, sizeof(r));
}
