/*
 * work-swap.c - the swap workload: worker processes in a memory cgroup.
 *
 * Each worker maps its share of the working set (--size / --jobs) of
 * anonymous memory, several times what the cgroup's limit lets stay in
 * memory, so that most of it lives in swap.  It fills every page, then,
 * until the time is up, picks runs of pages at random and reads them
 * (checking every byte), rewrites them (their next pass), or frees them
 * (MADV_DONTNEED: they must read back as zeros), with now and then a
 * longer sequential check.  At the end it checks every page once more.
 *
 * Its model, the pass of each page, is an array in the worker itself
 * (4 bytes a page).  The operations are drawn from the seed and the
 * worker's number alone, so a seed gives each worker the same sequence.
 * A wrong page is described into the shared failure record, and the
 * worker exits 1.
 */
#include <config.h>

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zsd-stress.h"

#define FREED		0x80000000u	/* in a page's model: freed */
#define MAX_RUN		64		/* pages in one operation */
#define SWEEP_RUN	2048		/* pages in a sequential check */

#define EXIT_WORKER_WRONG	1	/* a wrong page, described */
#define EXIT_WORKER_SETUP	3	/* could not start, described */

struct swap_worker {
	struct shared		*sh;
	struct worker_counters	*wc;
	unsigned int		 id;
	uint32_t		 stream;	/* id, and restarts << 16 */
	uint64_t		 nr_pages;
	uint8_t			*mem;
	uint32_t		*model;		/* pass, | FREED */
	uint64_t		 rng;
	uint8_t			 want[PAGE];
	uint8_t			 found[PAGE];
};

static uint32_t
expected_pass(const struct swap_worker *w, uint64_t p)
{
	return (w->model[p] & FREED) ? 0 : w->model[p];
}

/* Check page p; false (and the failure described) if it is wrong. */
static bool
check_page(struct swap_worker *w, uint64_t p)
{
	const uint8_t *mem = w->mem + p * PAGE;
	uint32_t pass = expected_pass(w, p);
	char why[600];

	page_fill(w->want, w->stream, p, pass);
	atomic_fetch_add_explicit(&w->wc->pages_verified, 1,
	    memory_order_relaxed);
	if (memcmp(mem, w->want, PAGE) == 0)
		return true;
	/* A copy: reading it again could fault it in again. */
	memcpy(w->found, mem, PAGE);
	page_explain(w->found, w->stream, p, pass, why, sizeof(why));
	atomic_fetch_add(&w->sh->wrong_pages, 1);
	shared_fail(w->sh, "wrong page: worker %u page %" PRIu64 " (of %"
	    PRIu64 ", at %p): %s", w->id, p, w->nr_pages, (const void *)mem,
	    why);
	return false;
}

static void
write_page(struct swap_worker *w, uint64_t p)
{
	enum page_kind k;
	uint32_t pass = (w->model[p] & ~FREED) + 1;

	k = page_fill(w->mem + p * PAGE, w->stream, p, pass);
	w->model[p] = pass;
	atomic_fetch_add_explicit(&w->wc->pages_written, 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&w->wc->kind_written[k], 1,
	    memory_order_relaxed);
}

static void
free_run(struct swap_worker *w, uint64_t p, uint64_t n)
{
	uint64_t i;

	(void)madvise(w->mem + p * PAGE, n * PAGE, MADV_DONTNEED);
	for (i = p; i < p + n; i++)
		w->model[i] |= FREED;
	atomic_fetch_add_explicit(&w->wc->pages_freed, n,
	    memory_order_relaxed);
}

static int
stop_state(const struct swap_worker *w)
{
	return atomic_load_explicit(&w->sh->stop, memory_order_relaxed);
}

static int
swap_worker_run(struct swap_worker *w)
{
	uint64_t p, n, i, r;
	unsigned int op;

	/* Fill: pass 1 of every page. */
	for (p = 0; p < w->nr_pages; p++) {
		if ((p & 255) == 0 && stop_state(w) != STOP_NONE)
			break;
		write_page(w, p);
	}
	while (stop_state(w) == STOP_NONE) {
		r = rand_next(&w->rng);
		op = (unsigned int)(r % 100);
		p = (r >> 8) % w->nr_pages;
		n = 1 + (r >> 40) % MAX_RUN;
		if (op >= 95)
			n = SWEEP_RUN;
		if (n > w->nr_pages - p)
			n = w->nr_pages - p;
		if (op < 40 || op >= 95) {
			/* Read and check. */
			for (i = p; i < p + n; i++)
				if (!check_page(w, i))
					return EXIT_WORKER_WRONG;
		} else if (op < 75) {
			/* Rewrite. */
			for (i = p; i < p + n; i++)
				write_page(w, i);
		} else if (op < 85) {
			free_run(w, p, n);
		} else {
			/* Check, then rewrite. */
			for (i = p; i < p + n; i++) {
				if (!check_page(w, i))
					return EXIT_WORKER_WRONG;
				write_page(w, i);
			}
		}
	}
	if (stop_state(w) != STOP_FINISH)
		return 0;
	/* The final check: every page once more. */
	for (p = 0; p < w->nr_pages; p++) {
		if ((p & 255) == 0 && stop_state(w) == STOP_NOW)
			return 0;
		if (!check_page(w, p))
			return EXIT_WORKER_WRONG;
	}
	return 0;
}

static void __attribute__((noreturn))
swap_worker_main(struct run *r, unsigned int id, uint64_t nr_pages)
{
	unsigned int start = r->incarnation[id];
	struct swap_worker *w;
	int error, status;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	if ((error = cgroup_enter(&r->cg)) != 0) {
		shared_fail(r->sh, "worker %u: cannot enter the cgroup %s: %s",
		    id, r->cg.path, strerror(-error));
		_exit(EXIT_WORKER_SETUP);
	}
	/* Everything from here on is charged to the cgroup. */
	w = calloc(1, sizeof(*w));
	if (w != NULL)
		w->model = calloc(nr_pages, sizeof(*w->model));
	if (w == NULL || w->model == NULL) {
		shared_fail(r->sh, "worker %u: out of memory", id);
		_exit(EXIT_WORKER_SETUP);
	}
	w->mem = mmap(NULL, nr_pages * PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (w->mem == MAP_FAILED) {
		shared_fail(r->sh, "worker %u: mmap of %" PRIu64 " MiB: %s", id,
		    nr_pages * PAGE >> 20, strerror(errno));
		_exit(EXIT_WORKER_SETUP);
	}
	/* Base pages, so that each one goes to swap on its own. */
	(void)madvise(w->mem, nr_pages * PAGE, MADV_NOHUGEPAGE);
	w->sh = r->sh;
	w->wc = &r->sh->w[id];
	w->id = id;
	w->stream = id | start << 16;
	w->nr_pages = nr_pages;
	w->rng = hash64(r->opt.seed ^ hash64(0x5357415000000000ull +
	    w->stream)) | 1;
	status = swap_worker_run(w);
	atomic_store(&w->wc->done, 1);
	_exit(status);
}

static pid_t
swap_worker_fork(struct run *r, unsigned int i)
{
	uint64_t total = r->opt.size / PAGE;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0)
		swap_worker_main(r, i, total / r->opt.jobs + (i < total %
		    r->opt.jobs));
	return pid;
}

int
swap_workers_start(struct run *r, char *err, size_t errlen)
{
	unsigned int i;

	for (i = 0; i < r->opt.jobs; i++)
		r->pids[i] = -1;
	r->oom_seen = cgroup_oom_kills(&r->cg);
	for (i = 0; i < r->opt.jobs; i++) {
		if ((r->pids[i] = swap_worker_fork(r, i)) < 0) {
			snprintf(err, errlen, "fork: %s", strerror(errno));
			swap_workers_kill(r);
			return EXIT_CANNOT;
		}
	}
	return 0;
}

/*
 * The kernel's OOM killer took worker i: the memory cgroup could not
 * reclaim fast enough (on v1 it gives up on pages that are all recently
 * used).  That says nothing about the pages zsd kept: the worker starts
 * over, with a new stream, while time is left; it is said in the summary.
 */
static bool
swap_worker_oom(struct run *r, unsigned int i)
{
	uint64_t kills = cgroup_oom_kills(&r->cg);

	if (kills <= r->oom_seen)
		return false;
	r->oom_seen++;
	r->oom_kills++;
	if (r->oom_kills > 4ull * r->opt.jobs + 4) {
		shared_fail(r->sh, "the OOM killer killed workers %" PRIu64
		    " times: the memory cgroup cannot keep up with the load; "
		    "try a larger --limit or fewer --jobs", r->oom_kills);
		return true;
	}
	if (atomic_load(&r->sh->stop) != STOP_NONE) {
		report_event(r, "the kernel's OOM killer killed worker %u "
		    "(memory cgroup at its limit) in its final check", i);
		return true;
	}
	r->incarnation[i]++;
	atomic_store(&r->sh->w[i].done, 0);
	r->pids[i] = swap_worker_fork(r, i);
	report_event(r, "the kernel's OOM killer killed worker %u (memory "
	    "cgroup at its limit); it starts over%s", i, r->pids[i] < 0 ?
	    ": fork failed" : "");
	if (r->pids[i] < 0)
		shared_fail(r->sh, "restarting worker %u: fork: %s", i,
		    strerror(errno));
	return true;
}

static void
describe_death(struct run *r, unsigned int i, int status)
{
	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) ==
		    EXIT_WORKER_WRONG || WEXITSTATUS(status) ==
		    EXIT_WORKER_SETUP)
			return;	/* fine, or described already */
		shared_fail(r->sh, "worker %u exited with status %d", i,
		    WEXITSTATUS(status));
		return;
	}
	if (atomic_load(&r->sh->stop) == STOP_NOW)
		return;		/* we stopped it, or after a failure */
	if (WTERMSIG(status) == SIGBUS)
		shared_fail(r->sh, "worker %u was killed by SIGBUS: a page "
		    "could not be read back from swap (is zsd alive?)", i);
	else
		shared_fail(r->sh, "worker %u was killed by signal %d (%s)", i,
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
}

bool
swap_workers_reap(struct run *r)
{
	unsigned int i, left = 0;
	int status;

	for (i = 0; i < r->opt.jobs; i++) {
		if (r->pids[i] <= 0)
			continue;
		if (waitpid(r->pids[i], &status, WNOHANG) != r->pids[i]) {
			left++;
			continue;
		}
		r->pids[i] = -1;
		r->worker_status[i] = status;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
		    swap_worker_oom(r, i)) {
			left += r->pids[i] > 0;
			continue;
		}
		describe_death(r, i, status);
	}
	return left == 0;
}

void
swap_workers_kill(struct run *r)
{
	unsigned int i;
	int status;

	for (i = 0; i < r->opt.jobs; i++)
		if (r->pids[i] > 0)
			kill(r->pids[i], SIGKILL);
	for (i = 0; i < r->opt.jobs; i++) {
		if (r->pids[i] <= 0)
			continue;
		if (waitpid(r->pids[i], &status, 0) == r->pids[i])
			r->worker_status[i] = status;
		r->pids[i] = -1;
	}
}
