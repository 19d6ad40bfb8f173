/*
 * work-file.c - the file workload: direct I/O on a spawned zsd's file.
 *
 * Worker threads share one file descriptor (O_DIRECT) and split the
 * file into one region each, so that no two write the same page.  Each
 * draws operations from the seed and its number: writes of runs of
 * pages (each page's next pass), reads of runs checked against the
 * model, and holes punched (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
 * which must read back as zeros.  At the end every page is read once
 * more.  The model, the pass of every page of the file, is an array in
 * this process; pass 0 is a page never written or punched.
 *
 * A write zsd refuses for its memory limit (ENOSPC, while chaos lowers
 * it) is tried again until it goes through; any other error, a short
 * transfer or a wrong page stops the run.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zsd-stress.h"

#define FREED		0x80000000u
#define MAX_RUN		16		/* pages in a write or read */
#define MAX_PUNCH	64		/* pages in a hole */
#define CHECK_RUN	64		/* pages per read of the final check */
#define REFUSED_MAX	60		/* seconds a write may be refused */

struct file_worker {
	pthread_t		 thread;
	bool			 started;
	struct run		*r;
	struct worker_counters	*wc;
	unsigned int		 id;
	uint64_t		 first, nr_pages;	/* its region */
	uint64_t		 rng;
	uint8_t			*buf;			/* CHECK_RUN pages */
	uint8_t			 want[PAGE];
};

struct file_ctx {
	int			 fd;
	uint32_t		*model;		/* per page of the file */
	struct file_worker	 w[MAX_JOBS];
};

static int
stop_state(const struct file_worker *w)
{
	return atomic_load_explicit(&w->r->sh->stop, memory_order_relaxed);
}

static void
fail_io(struct file_worker *w, const char *what, uint64_t p, uint64_t n,
    ssize_t got, int error)
{
	if (got < 0)
		shared_fail(w->r->sh, "%s of pages %" PRIu64 "-%" PRIu64 " of "
		    "the file failed: %s", what, p, p + n - 1,
		    strerror(error));
	else
		shared_fail(w->r->sh, "%s of pages %" PRIu64 "-%" PRIu64 " of "
		    "the file moved %zd bytes of %" PRIu64, what, p, p + n - 1,
		    got, n * PAGE);
}

/* Read pages p..p+n-1 and check them; false on failure. */
static bool
read_check(struct file_worker *w, uint64_t p, uint64_t n)
{
	struct file_ctx *c = w->r->file_ctx;
	uint32_t pass;
	char why[600];
	ssize_t got;
	uint64_t i;

	got = pread(c->fd, w->buf, n * PAGE, (off_t)(p * PAGE));
	if (got != (ssize_t)(n * PAGE)) {
		fail_io(w, "a read", p, n, got, errno);
		return false;
	}
	atomic_fetch_add_explicit(&w->wc->bytes_read, n * PAGE,
	    memory_order_relaxed);
	for (i = 0; i < n; i++) {
		pass = (c->model[p + i] & FREED) ? 0 : c->model[p + i];
		page_fill(w->want, 0, p + i, pass);
		atomic_fetch_add_explicit(&w->wc->pages_verified, 1,
		    memory_order_relaxed);
		if (memcmp(w->buf + i * PAGE, w->want, PAGE) == 0)
			continue;
		page_explain(w->buf + i * PAGE, 0, p + i, pass, why,
		    sizeof(why));
		atomic_fetch_add(&w->r->sh->wrong_pages, 1);
		shared_fail(w->r->sh, "wrong page: page %" PRIu64 " of the "
		    "file (offset %" PRIu64 "), read by worker %u: %s", p + i,
		    (p + i) * PAGE, w->id, why);
		return false;
	}
	return true;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static bool
write_run(struct file_worker *w, uint64_t p, uint64_t n)
{
	struct file_ctx *c = w->r->file_ctx;
	uint32_t pass[MAX_RUN];
	enum page_kind k;
	double refused = 0;
	ssize_t got;
	uint64_t i;

	for (i = 0; i < n; i++) {
		pass[i] = (c->model[p + i] & ~FREED) + 1;
		k = page_fill(w->buf + i * PAGE, 0, p + i, pass[i]);
		atomic_fetch_add_explicit(&w->wc->kind_written[k], 1,
		    memory_order_relaxed);
	}
	for (;;) {
		got = pwrite(c->fd, w->buf, n * PAGE, (off_t)(p * PAGE));
		if (got == (ssize_t)(n * PAGE))
			break;
		if (got < 0 && errno == ENOSPC && stop_state(w) != STOP_NOW) {
			/* Over mem_limit: chaos will raise it again. */
			if (refused == 0)
				refused = now();
			if (now() - refused < REFUSED_MAX) {
				atomic_fetch_add_explicit(
				    &w->wc->writes_refused, 1,
				    memory_order_relaxed);
				sleep_ms(10);
				continue;
			}
		}
		fail_io(w, "a write", p, n, got, errno);
		return false;
	}
	for (i = 0; i < n; i++)
		c->model[p + i] = pass[i];
	atomic_fetch_add_explicit(&w->wc->pages_written, n,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&w->wc->bytes_written, n * PAGE,
	    memory_order_relaxed);
	return true;
}

static bool
punch_run(struct file_worker *w, uint64_t p, uint64_t n)
{
	struct file_ctx *c = w->r->file_ctx;
	uint64_t i;

	if (fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)(p * PAGE), (off_t)(n * PAGE)) != 0) {
		fail_io(w, "a hole punched", p, n, -1, errno);
		return false;
	}
	for (i = p; i < p + n; i++)
		c->model[i] |= FREED;
	atomic_fetch_add_explicit(&w->wc->pages_freed, n,
	    memory_order_relaxed);
	return true;
}

static bool
file_worker_loop(struct file_worker *w)
{
	uint64_t r, p, n, max;
	unsigned int op;
	bool good;

	while (stop_state(w) == STOP_NONE) {
		r = rand_next(&w->rng);
		op = (unsigned int)(r % 100);
		max = op >= 80 ? MAX_PUNCH : MAX_RUN;
		p = (r >> 8) % w->nr_pages;
		n = 1 + (r >> 40) % max;
		if (n > w->nr_pages - p)
			n = w->nr_pages - p;
		p += w->first;
		if (op < 45)
			good = write_run(w, p, n);
		else if (op < 80)
			good = read_check(w, p, n);
		else if (op < 90)
			good = punch_run(w, p, n);
		else
			good = read_check(w, p, n);
		if (!good)
			return false;
	}
	if (stop_state(w) != STOP_FINISH)
		return true;
	for (p = 0; p < w->nr_pages; p += n) {
		if (stop_state(w) == STOP_NOW)
			return true;
		n = w->nr_pages - p < CHECK_RUN ? w->nr_pages - p : CHECK_RUN;
		if (!read_check(w, w->first + p, n))
			return false;
	}
	return true;
}

static void *
file_worker_main(void *arg)
{
	struct file_worker *w = arg;

	(void)file_worker_loop(w);
	atomic_store(&w->wc->done, 1);
	return NULL;
}

int
file_workers_start(struct run *r, char *err, size_t errlen)
{
	uint64_t total = r->opt.size / PAGE, first = 0;
	struct file_ctx *c;
	struct file_worker *w;
	unsigned int i;
	int error;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->model = calloc(total, sizeof(*c->model))) == NULL) {
		snprintf(err, errlen, "out of memory for the model");
		free(c);
		return EXIT_CANNOT;
	}
	r->file_ctx = c;
	if ((c->fd = open(r->zsd.file, O_RDWR | O_DIRECT | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", r->zsd.file, strerror(errno));
		return EXIT_FAIL;
	}
	for (i = 0; i < r->opt.jobs; i++) {
		w = &c->w[i];
		w->r = r;
		w->wc = &r->sh->w[i];
		w->id = i;
		w->first = first;
		w->nr_pages = total / r->opt.jobs + (i < total % r->opt.jobs);
		first += w->nr_pages;
		w->rng = hash64(r->opt.seed ^ hash64(0x46494c4500000000ull +
		    i)) | 1;
		if (posix_memalign((void **)&w->buf, PAGE, CHECK_RUN *
		    PAGE) != 0) {
			snprintf(err, errlen, "out of memory for buffers");
			return EXIT_CANNOT;
		}
	}
	for (i = 0; i < r->opt.jobs; i++) {
		w = &c->w[i];
		if ((error = pthread_create(&w->thread, NULL,
		    file_worker_main, w)) != 0) {
			snprintf(err, errlen, "pthread_create: %s",
			    strerror(error));
			atomic_store(&r->sh->stop, STOP_NOW);
			return EXIT_CANNOT;
		}
		w->started = true;
	}
	return 0;
}

bool
file_workers_reap(struct run *r)
{
	struct file_ctx *c = r->file_ctx;
	unsigned int i;

	if (c == NULL)
		return true;
	for (i = 0; i < r->opt.jobs; i++)
		if (c->w[i].started && !atomic_load(&c->w[i].wc->done))
			return false;
	return true;
}

void
file_workers_join(struct run *r)
{
	struct file_ctx *c = r->file_ctx;
	unsigned int i;

	if (c == NULL)
		return;
	for (i = 0; i < r->opt.jobs; i++) {
		if (c->w[i].started)
			pthread_join(c->w[i].thread, NULL);
		c->w[i].started = false;
		free(c->w[i].buf);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->model);
	free(c);
	r->file_ctx = NULL;
}
