/*
 * chaos.c - zsd's control requests and reloads at seeded random times.
 *
 * A thread of its own, while the workers run: it waits a random while
 * (1 to 5 s, 1 to 3 with --quick), then does one of compact, shrink
 * (1 to 64 MiB), limit (mem_limit up to twice what the pool uses, then
 * down just below it, then back to what it was), reset-max and, for a
 * zsd zsd-stress spawned, a reload (the configuration rewritten with the
 * other codec, SIGHUP, and zsctl status must show the new codec).  Where
 * zsd has a keeper (zsctl status shows keeper_pid), also zsctl restart
 * and kill -9 of the serving process: a new server must answer within
 * REPLACE_WAIT_MS, with a new pid, and no page may come back wrong.  Both
 * the times and the actions come from the seed.
 *
 * An action zsd refuses as busy (a compaction of its own runs) is
 * counted and skipped; any other error makes zsd unhealthy.  The limit
 * is always put back before the thread goes on or ends.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zsd-stress.h"

const char *const chaos_names[NR_CHAOS] = {
	"compact", "shrink", "limit", "reset-max", "reload", "restart",
	"kill",
};

struct chaos {
	pthread_t	 thread;
	struct run	*r;
	uint64_t	 rng;
};

static bool
stopping(const struct run *r)
{
	return atomic_load(&r->sh->stop) != STOP_NONE;
}

/* Sleep ms, or less if the run stops: false then. */
static bool
nap(const struct run *r, long ms)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	for (; ms > 0; ms -= 100) {
		if (stopping(r))
			return false;
		nanosleep(&ts, NULL);
	}
	return !stopping(r);
}

/* One request; false if zsd failed it (busy is no failure). */
static bool
chaos_ask(struct run *r, int action, const char *cmd, const char *arg,
    char *out, size_t len)
{
	int error;

	error = ctl_command(r->socket, cmd, arg, out, len);
	if (error == 0)
		return true;
	if (error == -EBUSY) {
		atomic_fetch_add(&r->chaos_busy, 1);
		report_event(r, "chaos: %s%s%s: busy (%s)", cmd, arg ? " " :
		    "", arg ? arg : "", out);
		return true;
	}
	atomic_fetch_add(&r->chaos_failed, 1);
	run_mark_unhealthy(r, "chaos: zsctl %s%s%s failed: %s", cmd,
	    arg ? " " : "", arg ? arg : "", out);
	(void)action;
	return false;
}

static void
limit_arg(uint64_t bytes, char *buf, size_t len)
{
	if (bytes == 0)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%" PRIu64, bytes);
}

static void
chaos_limit(struct chaos *c)
{
	struct run *r = c->r;
	struct zsd_stat st;
	char why[256], arg[32], out[512], orig[32];
	uint64_t used, up, down;

	if (ctl_stat(r->socket, &st, why, sizeof(why)) != 0) {
		atomic_fetch_add(&r->chaos_failed, 1);
		run_mark_unhealthy(r, "chaos: zsctl stat failed: %s", why);
		return;
	}
	limit_arg(st.mem_limit, orig, sizeof(orig));
	used = st.mem_used_total;
	up = 2 * used + (16u << 20);
	down = used - used / 16;
	if (down < (1u << 20))
		down = 1u << 20;
	limit_arg(up, arg, sizeof(arg));
	if (!chaos_ask(r, CHAOS_LIMIT, "limit", arg, out, sizeof(out)))
		return;
	report_event(r, "chaos: limit %" PRIu64 " MiB (pool uses %" PRIu64
	    " MiB)", up >> 20, used >> 20);
	nap(r, 500 + (long)(rand_next(&c->rng) % 1500));
	limit_arg(down, arg, sizeof(arg));
	if (chaos_ask(r, CHAOS_LIMIT, "limit", arg, out, sizeof(out))) {
		report_event(r, "chaos: limit %" PRIu64 " MiB, just under what "
		    "the pool uses", down >> 20);
		nap(r, 500 + (long)(rand_next(&c->rng) % 1000));
	}
	/* Back as it was, stopping or not. */
	if (chaos_ask(r, CHAOS_LIMIT, "limit", orig, out, sizeof(out)))
		report_event(r, "chaos: limit %s again", orig);
	atomic_fetch_add(&r->chaos_done[CHAOS_LIMIT], 1);
}

static void
chaos_reload(struct chaos *c)
{
	struct run *r = c->r;
	struct zsd_status s;
	const char *next;
	char why[256];
	int error, tries;

	next = strcmp(r->zsd.algorithm, "lz4") == 0 ? "zstd" : "lz4";
	if ((error = spawn_reload(&r->zsd, next)) != 0) {
		atomic_fetch_add(&r->chaos_failed, 1);
		run_mark_unhealthy(r, "chaos: reload to %s: %s", next,
		    strerror(-error));
		return;
	}
	for (tries = 0; tries < 30; tries++) {
		if (!nap(r, 100))
			return;
		if (ctl_status(r->socket, &s, why, sizeof(why)) != 0)
			continue;
		if (strcmp(s.algorithm, next) == 0) {
			report_event(r, "chaos: reload (SIGHUP): algorithm %s",
			    next);
			atomic_fetch_add(&r->chaos_done[CHAOS_RELOAD], 1);
			return;
		}
	}
	atomic_fetch_add(&r->chaos_failed, 1);
	run_mark_unhealthy(r, "chaos: zsd did not switch to %s within 3 s of "
	    "SIGHUP", next);
}

#define REPLACE_WAIT_MS	10000

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Replace the serving process: zsctl restart, or kill -9 of it.  Then wait
 * for a server with another pid to answer; the health checks let zsd be
 * silent meanwhile.
 */
static void
chaos_replace(struct chaos *c, int action)
{
	struct run *r = c->r;
	struct zsd_status st;
	char why[256], out[512];
	uint64_t t0, ms;
	long old;

	if (ctl_status(r->socket, &st, why, sizeof(why)) != 0 ||
	    st.pid <= 0) {
		atomic_fetch_add(&r->chaos_failed, 1);
		run_mark_unhealthy(r, "chaos: zsctl status: %s", why);
		return;
	}
	old = st.pid;
	atomic_store(&r->chaos_replacing, true);
	t0 = now_ms();
	if (action == CHAOS_KILL) {
		if (kill((pid_t)old, SIGKILL) != 0) {
			atomic_store(&r->chaos_replacing, false);
			atomic_fetch_add(&r->chaos_failed, 1);
			run_mark_unhealthy(r, "chaos: kill -9 %ld: %s", old,
			    strerror(errno));
			return;
		}
	} else if (!chaos_ask(r, action, "restart", NULL, out, sizeof(out))) {
		atomic_store(&r->chaos_replacing, false);
		return;
	}
	for (;;) {
		if (ctl_status(r->socket, &st, why, sizeof(why)) == 0 &&
		    st.pid > 0 && st.pid != old)
			break;
		if (now_ms() - t0 > REPLACE_WAIT_MS) {
			atomic_store(&r->chaos_replacing, false);
			atomic_fetch_add(&r->chaos_failed, 1);
			run_mark_unhealthy(r, "chaos: %s of pid %ld: no new "
			    "server after %d s", chaos_names[action], old,
			    REPLACE_WAIT_MS / 1000);
			return;
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	ms = now_ms() - t0;
	atomic_store(&r->chaos_replacing, false);
	if (ms > atomic_load(&r->replace_max_ms))
		atomic_store(&r->replace_max_ms, ms);
	report_event(r, "chaos: %s: pid %ld replaced by %ld in %" PRIu64
	    " ms (restarts %" PRIu64 ")", chaos_names[action], old, st.pid,
	    ms, st.restarts);
	atomic_fetch_add(&r->chaos_done[action], 1);
}

static void
chaos_one(struct chaos *c, int action)
{
	struct run *r = c->r;
	char out[512], arg[32];

	switch (action) {
	case CHAOS_COMPACT:
		if (chaos_ask(r, action, "compact", NULL, out, sizeof(out)) &&
		    strstr(out, "pages_freed") != NULL) {
			report_event(r, "chaos: compact: %s", out);
			atomic_fetch_add(&r->chaos_done[action], 1);
		}
		break;
	case CHAOS_SHRINK:
		snprintf(arg, sizeof(arg), "%uM",
		    1 + (unsigned int)(rand_next(&c->rng) % 64));
		if (chaos_ask(r, action, "shrink", arg, out, sizeof(out)) &&
		    strstr(out, "bytes_unmapped") != NULL) {
			report_event(r, "chaos: shrink %s: %s", arg, out);
			atomic_fetch_add(&r->chaos_done[action], 1);
		}
		break;
	case CHAOS_LIMIT:
		chaos_limit(c);
		break;
	case CHAOS_RESET_MAX:
		if (chaos_ask(r, action, "reset-max", NULL, out, sizeof(out))) {
			report_event(r, "chaos: reset-max: %s", out);
			atomic_fetch_add(&r->chaos_done[action], 1);
		}
		break;
	case CHAOS_RELOAD:
		chaos_reload(c);
		break;
	case CHAOS_RESTART:
	case CHAOS_KILL:
		chaos_replace(c, action);
		break;
	}
}

static void *
chaos_main(void *arg)
{
	struct chaos *c = arg;
	struct run *r = c->r;
	int actions[NR_CHAOS], nr_actions = 0, k;
	long wait_ms;

	for (k = 0; k < NR_CHAOS; k++)
		if (chaos_enabled(r, k))
			actions[nr_actions++] = k;
	for (;;) {
		wait_ms = 1000 + (long)(rand_next(&c->rng) %
		    (r->opt.quick ? 2000 : 4000));
		if (!nap(r, wait_ms))
			break;
		chaos_one(c, actions[rand_next(&c->rng) % (uint64_t)nr_actions]);
	}
	return NULL;
}

/* Whether action is for this zsd: reload if spawned, replacing if kept. */
bool
chaos_enabled(const struct run *r, int action)
{
	if (action == CHAOS_RELOAD)
		return r->spawned;
	if (action == CHAOS_RESTART || action == CHAOS_KILL)
		return r->can_restart;
	return true;
}

int
chaos_start(struct run *r)
{
	struct zsd_status st;
	char why[256];
	struct chaos *c;
	int error;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->r = r;
	r->can_restart = ctl_status(r->socket, &st, why, sizeof(why)) == 0 &&
	    st.keeper_pid > 0;
	c->rng = hash64(r->opt.seed ^ 0x4348414f53000000ull) | 1;
	if ((error = pthread_create(&c->thread, NULL, chaos_main, c)) != 0) {
		free(c);
		return -error;
	}
	r->chaos_ctx = c;
	return 0;
}

void
chaos_stop(struct run *r)
{
	struct chaos *c = r->chaos_ctx;

	if (c == NULL)
		return;
	pthread_join(c->thread, NULL);
	free(c);
	r->chaos_ctx = NULL;
}
