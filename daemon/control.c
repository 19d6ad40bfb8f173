/*
 * control.c - the control socket: zsctl's requests, served by the loop.
 *
 * A Unix stream socket, made under a umask so that it is born 0660 and
 * given to control_group.  Before binding, a live socket at the path
 * means another zsd: we refuse to start; a dead one (ECONNREFUSED) is
 * stale and replaced.  Clients are bufferevents with idle timeouts; at
 * most CONTROL_MAX_CLIENTS at once, the others get a "busy" reply and are
 * closed.  CONTROL_ROOT_SLOTS of them are kept for root, the only one who
 * may change anything, and when even those are taken a root client still
 * gets in: the non-root client idle the longest is dropped to make room.
 * So no client that may merely read can lock root out.  When accept runs
 * out of descriptors (EMFILE) the listener is paused for a moment instead
 * of spinning on a socket it cannot empty.
 *
 * Anyone who can connect may read; only uid 0 (SO_PEERCRED) may change
 * anything.  Compaction, shrinking and the idle-page commands (idle,
 * recompress, writeback) take time, so they run on a job thread of their
 * own, one at a time, while the loop goes on serving clients (FUSE is
 * served on threads of its own, fuse/fs.h, whatever the loop does); the
 * job's end
 * wakes the loop (job.done), which joins the thread and answers the
 * client, if it is still there.  The same job runs compaction
 * automatically when compact_threshold percent of the pool's used pages
 * are freeable, checked every compact_interval seconds, and the idle
 * policy (policy.c) every idle_interval seconds.
 *
 * Everything here but the job thread's body runs on the loop thread.
 * The job thread reads only what control_job_start set in j and writes
 * only the results, all before job.done fires; the loop does not touch
 * them while j->running.  j->cancel is the one exception: control_stop
 * sets it to end a long pass early, and so does a client's job that
 * comes while an automatic one runs.
 */
#include <config.h>

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "fs.h"
#include "zsd.h"
#include "proto.h"

#define CONTROL_MAX_CLIENTS	32
#define CONTROL_ROOT_SLOTS	4	/* of those, never given to non-root */
#define CONTROL_BACKLOG		16
#define CONTROL_PAUSE_MS	500	/* accept paused after EMFILE */
#define CONTROL_OUTPUT_MAX	(256 * 1024)	/* unread replies, then stop */

struct control;

struct control_client {
	TAILQ_ENTRY(control_client) entry;
	struct control		*c;
	struct bufferevent	*bev;
	uid_t			 uid;		/* SO_PEERCRED */
	pid_t			 pid;
	bool			 waiting;	/* for the job, reading off */
	bool			 closing;	/* free once the reply is out */
	bool			 stop_after;	/* ops.stop once it is out */
	bool			 restart_after;	/* ops.restart once it is out */
	bool			 handover;	/* ... handing over */
	bool			 throttled;	/* reading off: output too full */
};

enum job_kind {
	JOB_COMPACT,
	JOB_SHRINK,
	JOB_IDLE,		/* mark pages idle */
	JOB_RECOMPRESS,
	JOB_WRITEBACK,
	JOB_POLICY,		/* the automatic idle pass */
};

/* What a job is asked to do. */
struct job_args {
	enum job_kind		 kind;
	uint64_t		 bytes;		/* shrink: asked for */
	uint32_t		 age;		/* idle: seconds; 0: all */
	struct store_pass	 pass;		/* recompress, writeback */
	struct policy_run	 policy;	/* the automatic pass */
};

struct control_job {
	bool			 running;	/* the thread exists */
	struct job_args		 a;
	bool			 automatic;
	struct control_client	*client;	/* to answer; NULL: none */
	pthread_t		 thread;
	struct event		*done;
	struct store_ctx	*ctx;		/* the thread's, made once */
	_Atomic bool		 cancel;	/* zsd is stopping, or a
						   client's job waits */
	/* Results, from the thread. */
	struct zs_compact_result res;
	uint64_t		 unmapped;	/* shrink */
	uint64_t		 marked;	/* idle */
	struct store_pass_result pres;	/* recompress, writeback */
	double			 seconds;
};

struct control {
	struct zsd		*z;
	struct control_ops	 ops;		/* zsd.c's */
	int			 fd;
	dev_t			 dev;		/* of the socket we bound */
	ino_t			 ino;
	struct event		*listen;
	struct event		*resume;	/* accept again after EMFILE */
	struct event		*tick;		/* automatic compaction */
	struct event		*idle_tick;	/* automatic idle passes */
	TAILQ_HEAD(, control_client) clients;	/* least recently active first */
	unsigned int		 nr_clients;
	bool			 starved;	/* EMFILE logged */
	struct control_job	 job;
	/*
	 * A client's job that came while an automatic one ran: it starts
	 * when that one is done, rather than be refused as busy.
	 */
	struct job_args		 pending;
	struct control_client	*pending_client; /* NULL: none */
	uint64_t		 compactions;	/* on request */
	uint64_t		 compactions_auto;
	/* The idle passes' own (the store counts pages and bytes). */
	uint64_t		 idle_passes;	/* automatic ones run */
	uint64_t		 recompress_paused; /* for CPU pressure */
	uint64_t		 writeback_paused; /* for I/O pressure */
	uint64_t		 writeback_errors; /* passes a write ended */
	struct policy_budget	 budget;	/* writeback_limit's day */
	struct proto_buf	 reply;		/* one at a time */
	unsigned int		 slow_status;	/* debug: seconds, see there */
};

static void	control_job_start(struct control *, const struct job_args *,
		    struct control_client *);

static void
control_client_free(struct control_client *cl)
{
	struct control *c = cl->c;
	bool stop = cl->stop_after, restart = cl->restart_after;
	bool handover = cl->handover;

	if (c->job.client == cl)
		c->job.client = NULL;
	if (c->pending_client == cl)
		c->pending_client = NULL;
	TAILQ_REMOVE(&c->clients, cl, entry);
	c->nr_clients--;
	bufferevent_free(cl->bev);
	free(cl);
	/* Gone before its reply was out: the stop stands all the same. */
	if (stop)
		c->ops.stop(c->z, 0);
	if (restart)
		(void)c->ops.restart(c->z, handover);
}

/* Send c->reply, finished. */
static void
control_send(struct control_client *cl)
{
	struct proto_buf *b = &cl->c->reply;

	if (proto_finish(b) != PROTO_OK)
		proto_error(b, PROTO_ERR_FAILED, "reply too large");
	if (bufferevent_write(cl->bev, b->data, b->len) != 0) {
		log_warnx("control: cannot queue a reply to pid %ld",
		    (long)cl->pid);
		cl->closing = true;
	}
}

/* Send an error reply now; close after it if the stream is lost. */
static void
control_fail(struct control_client *cl, bool hangup, int code,
    const char *why)
{
	proto_error(&cl->c->reply, code, "%s", why);
	if (bufferevent_write(cl->bev, cl->c->reply.data,
	    cl->c->reply.len) != 0 || hangup) {
		cl->closing = true;
		bufferevent_disable(cl->bev, EV_READ);
	}
}

static void
control_status(struct control_client *cl)
{
	struct zsd *z = cl->c->z;
	struct proto_buf *b = &cl->c->reply;
	struct store_stats ss;
	const char *transport;
	char why[160];
	static const char *const states[] = {
		[SWAP_OFF] = "off", [SWAP_STARTING] = "starting",
		[SWAP_ON] = "on", [SWAP_STOPPING] = "stopping",
	};

#ifdef ZS_DEBUG
	/*
	 * For tests (debug builds only): a control request that keeps the
	 * loop busy, during which swap I/O must still be served.
	 */
	if (cl->c->slow_status > 0) {
		log_info("ZSD_FAULT_SLOW_STATUS: the loop sleeps %u s",
		    cl->c->slow_status);
		sleep(cl->c->slow_status);
	}
#endif
	store_stats(z->store, &ss);
	proto_begin(b, PROTO_REPLY);
	proto_add(b, "name", "%s", z->cfg.name);
	proto_add(b, "file", "%s", fs_file_path(z->fs));
	proto_add(b, "algorithm", "%s", codec_name(z->cfg.algorithm));
	proto_add_u64(b, "disksize", z->cfg.disksize);
	proto_add_u64(b, "data", ss.orig_data_size);
	proto_add_u64(b, "compr", ss.compr_data_size);
	proto_add_u64(b, "total", ss.mem_used_total);
	proto_add_u64(b, "mem_limit", ss.mem_limit);
	proto_add_u64(b, "same_pages", ss.same_pages);
	proto_add_u64(b, "huge_pages", ss.huge_pages);
	proto_add(b, "mountpoint", "%s", z->cfg.mountpoint);
	transport = fs_transport(z->fs, why, sizeof(why));
	proto_add(b, "transport", "%s", transport);
	proto_add(b, "transport_reason", "%s", why);
	proto_add_u64(b, "ring_requests", fs_ring_requests(z->fs));
	proto_add(b, "swap", "%s", states[z->swap]);
	/* The swap thread writes loop_dev while it starts swap. */
	proto_add(b, "loop", "%s", z->swap == SWAP_ON ||
	    z->swap == SWAP_STOPPING ? z->loop_dev : "");
	proto_add(b, "priority", "%d", z->cfg.priority);
	proto_add(b, "pid", "%ld", (long)getpid());
	if (z->state != NULL) {
		proto_add(b, "keeper_pid", "%ld", (long)z->state->keeper_pid);
		proto_add_u64(b, "restarts", z->state->restarts);
		proto_add(b, "pool_memory", "%s", z->state->noswap ?
		    "noswap" : "memfd");
	}
	proto_add(b, "backing_file", "%s", z->backing != NULL ?
	    backing_path(z->backing) : "");
	proto_add(b, "backing_error", "%s", z->backing_error);
	proto_add(b, "stopping", "%s", z->stopping ? "yes" : "no");
	proto_add_u64(b, "stops_failed", z->stops_failed);
	proto_add(b, "stop_failed", "%s", z->stop_failed);
	proto_end_record(b);
	control_send(cl);
}

static void
control_stat(struct control_client *cl)
{
	struct control *c = cl->c;
	struct zsd *z = c->z;
	struct proto_buf *b = &c->reply;
	struct store_stats ss;
	struct zs_pool_stats ps;

	store_stats(z->store, &ss);
	zs_pool_stats(z->pool, &ps);
	proto_begin(b, PROTO_REPLY);
	/* zram's mm_stat, in its order. */
	proto_add_u64(b, "orig_data_size", ss.orig_data_size);
	proto_add_u64(b, "compr_data_size", ss.compr_data_size);
	proto_add_u64(b, "mem_used_total", ss.mem_used_total);
	proto_add_u64(b, "mem_limit", ss.mem_limit);
	proto_add_u64(b, "mem_used_max", ss.mem_used_max);
	proto_add_u64(b, "same_pages", ss.same_pages);
	proto_add_u64(b, "pages_compacted", ss.pages_compacted);
	proto_add_u64(b, "huge_pages", ss.huge_pages);
	/* zram's io_stat. */
	proto_add_u64(b, "failed_reads", ss.failed_reads);
	proto_add_u64(b, "failed_writes", ss.failed_writes);
	proto_add_u64(b, "invalid_io", ss.invalid_io);
	proto_add_u64(b, "notify_free", ss.discards);
	/* The store's own. */
	proto_add_u64(b, "disksize", z->cfg.disksize);
	proto_add_u64(b, "pages_stored", ss.pages_stored);
	proto_add_u64(b, "reads", ss.reads);
	proto_add_u64(b, "writes", ss.writes);
	proto_add_u64(b, "limit_refusals", ss.limit_refusals);
	proto_add_u64(b, "pages_merged", ss.pages_merged);
	proto_add_u64(b, "merge_objects", ss.merge_objects);
	proto_add_u64(b, "merge_saved_size", ss.merge_saved);
	proto_add_u64(b, "merge_collisions", ss.merge_collisions);
	proto_add_u64(b, "merge_skipped", ss.merge_skipped);
	/* Idle pages; zram's bd_stat in its order, in pages. */
	proto_add_u64(b, "idle_pages", ss.idle_pages);
	proto_add_u64(b, "pages_recompressed", ss.recompressed);
	proto_add_u64(b, "recompress_saved_size", ss.recompress_saved);
	proto_add_u64(b, "bd_count", ss.bd_count);
	proto_add_u64(b, "bd_reads", ss.bd_reads);
	proto_add_u64(b, "bd_writes", ss.bd_writes);
	proto_add_u64(b, "bd_compr_size", ss.bd_bytes);
	proto_add_u64(b, "backing_size", ss.bd_blocks * ZSD_PAGE_SIZE);
	proto_add_u64(b, "backing_used_size",
	    ss.bd_blocks_used * ZSD_PAGE_SIZE);
	proto_add_u64(b, "writeback_limit", z->cfg.writeback_limit);
	/* (Which ends a day that is over.) */
	(void)policy_budget_left(&c->budget, z->cfg.writeback_limit);
	proto_add_u64(b, "writeback_today_size", c->budget.used);
	proto_add_u64(b, "writeback_total_size", c->budget.total);
	proto_add_u64(b, "idle_passes", c->idle_passes);
	proto_add_u64(b, "recompress_paused", c->recompress_paused);
	proto_add_u64(b, "writeback_paused", c->writeback_paused);
	proto_add_u64(b, "writeback_errors", c->writeback_errors);
	/* The pool's. */
	proto_add_u64(b, "pool_pages_used", ps.pages_used);
	proto_add_u64(b, "pool_pages_free", ps.pages_free);
	proto_add_u64(b, "pool_pages_reported", ps.pages_reported);
	proto_add_u64(b, "pool_pages_meta", ps.pages_meta);
	proto_add_u64(b, "pool_pages_mapped", ps.pages_mapped);
	proto_add_u64(b, "pool_pages_freeable", ps.pages_freeable);
	proto_add_u64(b, "pool_sections", ps.sections);
	proto_add_u64(b, "pool_sections_offlined", ps.sections_offlined);
	proto_add_u64(b, "pool_zspages", ps.zspages);
	proto_add_u64(b, "pool_zspages_pending_free",
	    ps.zspages_pending_free);
	proto_add_u64(b, "pool_isolated_zspages", ps.isolated_zspages);
	proto_add_u64(b, "pool_objects", ps.objects);
	proto_add_u64(b, "pool_objects_pending_free", ps.objs_pending_free);
	proto_add_u64(b, "pool_huge_objects", ps.huge_objects);
	proto_add_u64(b, "pool_bytes_requested", ps.bytes_requested);
	proto_add_u64(b, "pool_bytes_held", ps.bytes_held);
	proto_add_u64(b, "pool_objs_compacted", ps.objs_compacted);
	proto_add_u64(b, "pool_pages_migrated", ps.pages_migrated);
	proto_add_u64(b, "pool_malloc_failures", ps.malloc_failures);
	/* The control socket's. */
	proto_add_u64(b, "compactions", c->compactions);
	proto_add_u64(b, "compactions_auto", c->compactions_auto);
	proto_add_u64(b, "control_clients", c->nr_clients);
	/* The daemon's. */
	proto_add_u64(b, "log_lines_dropped", log_dropped());
	control_send(cl);
}

static void
control_classes(struct control_client *cl)
{
	struct proto_buf *b = &cl->c->reply;
	struct zs_class_stats cs;
	char row[512];
	unsigned int i, g;
	int n;

	proto_begin(b, PROTO_REPLY);
	proto_add(b, "fields", "index size pages_per_zspage objs_per_zspage "
	    "huge zspages objs_allocated objs_used pages_used freeable_pages "
	    "fullness...");
	for (i = 0; zs_class_stats(cl->c->z->pool, i, &cs) == 0; i++) {
		n = snprintf(row, sizeof(row), "%u %u %u %u %d %llu %llu %llu "
		    "%llu %llu", cs.index, cs.size, cs.pages_per_zspage,
		    cs.objs_per_zspage, cs.huge,
		    (unsigned long long)cs.zspages,
		    (unsigned long long)cs.objs_allocated,
		    (unsigned long long)cs.objs_used,
		    (unsigned long long)cs.pages_used,
		    (unsigned long long)cs.freeable_pages);
		for (g = 0; g < ZS_FULLNESS_GROUPS && n > 0 &&
		    (size_t)n < sizeof(row); g++)
			n += snprintf(row + n, sizeof(row) - (size_t)n, " %llu",
			    (unsigned long long)cs.fullness[g]);
		proto_add(b, "class", "%s", row);
	}
	control_send(cl);
}

static void
control_limit(struct control_client *cl, const struct proto_msg *m)
{
	struct zsd *z = cl->c->z;
	struct proto_buf *b = &cl->c->reply;
	struct zsd_config tmp = z->cfg;
	struct store_options opt;
	char value[PROTO_VALUE_MAX + 1], err[PROTO_VALUE_MAX + 256];
	uint64_t old = z->cfg.mem_limit;

	snprintf(err, sizeof(err), "no size");
	if (proto_get(m, "size", value, sizeof(value)) == NULL ||
	    config_set(&tmp, "mem_limit", value, true, err, sizeof(err)) != 0) {
		control_fail(cl, false, PROTO_ERR_ARGS, err);
		return;
	}
	z->cfg.mem_limit = tmp.mem_limit;
	store_options_of(&z->cfg, &opt);
	store_set_options(z->store, &opt);
	log_info("control: mem_limit %llu (was %llu), by pid %ld",
	    (unsigned long long)z->cfg.mem_limit, (unsigned long long)old,
	    (long)cl->pid);
	proto_begin(b, PROTO_REPLY);
	proto_add_u64(b, "mem_limit", z->cfg.mem_limit);
	proto_add_u64(b, "old_mem_limit", old);
	control_send(cl);
}

static void
control_shrink(struct control_client *cl, const struct proto_msg *m)
{
	char value[PROTO_VALUE_MAX + 1], err[PROTO_VALUE_MAX + 64];
	uint64_t bytes;

	value[0] = '\0';
	if (proto_get(m, "size", value, sizeof(value)) == NULL ||
	    config_parse_size(value, 0, &bytes) != 0) {
		snprintf(err, sizeof(err), "bad size '%s': expected a size "
		    "like 64M", value);
		control_fail(cl, false, PROTO_ERR_ARGS, err);
		return;
	}
	control_job_start(cl->c, &(struct job_args){ .kind = JOB_SHRINK,
	    .bytes = bytes }, cl);
}

/* A count of an idle request, parsed (proto_check_request checked it). */
static uint64_t
control_count(const struct proto_msg *m, const char *key, uint64_t def)
{
	char value[32];

	if (proto_get(m, key, value, sizeof(value)) == NULL)
		return def;
	return strtoull(value, NULL, 10);
}

/* The pages a type= picks; idle if none is given. */
static unsigned int
control_pick(const struct proto_msg *m)
{
	char value[32];

	if (proto_get(m, "type", value, sizeof(value)) == NULL ||
	    strcmp(value, "idle") == 0)
		return PICK_IDLE;
	if (strcmp(value, "huge") == 0)
		return PICK_HUGE;
	if (strcmp(value, "huge_idle") == 0)
		return PICK_HUGE | PICK_IDLE;
	return PICK_INCOMPRESSIBLE;
}

static void
control_idle(struct control_client *cl, const struct proto_msg *m)
{
	struct job_args a = { .kind = JOB_IDLE };
	char value[32];
	uint64_t age = 0;

	if (proto_get(m, "age", value, sizeof(value)) != NULL &&
	    strcmp(value, "all") != 0)
		age = strtoull(value, NULL, 10);
	/* Older than zsd itself is older than any page. */
	a.age = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
	control_job_start(cl->c, &a, cl);
}

static void
control_recompress(struct control_client *cl, const struct proto_msg *m)
{
	struct job_args a = { .kind = JOB_RECOMPRESS };

	a.pass = (struct store_pass){ .pick = control_pick(m),
	    .threshold = (size_t)control_count(m, "threshold",
	    (uint64_t)cl->c->z->cfg.recompress_threshold),
	    .max_pages = control_count(m, "max_pages", 0) };
	control_job_start(cl->c, &a, cl);
}

/*
 * Whether a writeback may start now: there is a file and the day's
 * limit is not spent (else the client is answered); its byte budget.
 */
static bool
control_writeback_ok(struct control_client *cl, uint64_t *max_bytes)
{
	struct control *c = cl->c;
	struct zsd *z = c->z;
	char why[PROTO_VALUE_MAX];
	uint64_t left;

	if (z->backing == NULL) {
		snprintf(why, sizeof(why), "no backing file%s%s",
		    z->backing_error[0] != '\0' ? ": " : " (set backing_file "
		    "in zsd.conf)", z->backing_error);
		control_fail(cl, false, PROTO_ERR_FAILED, why);
		return false;
	}
	if ((left = policy_budget_left(&c->budget,
	    z->cfg.writeback_limit)) == 0) {
		snprintf(why, sizeof(why), "writeback_limit reached: %llu "
		    "bytes written back in the last day",
		    (unsigned long long)c->budget.used);
		control_fail(cl, false, PROTO_ERR_FAILED, why);
		return false;
	}
	*max_bytes = left == UINT64_MAX ? 0 : left;
	return true;
}

static void
control_writeback(struct control_client *cl, const struct proto_msg *m)
{
	struct job_args a = { .kind = JOB_WRITEBACK };

	a.pass = (struct store_pass){ .pick = control_pick(m),
	    .max_pages = control_count(m, "max_pages", 0) };
	control_job_start(cl->c, &a, cl);
}

static void
control_reset_max(struct control_client *cl)
{
	struct proto_buf *b = &cl->c->reply;
	struct store_stats ss;

	store_reset_max(cl->c->z->store);
	store_stats(cl->c->z->store, &ss);
	proto_begin(b, PROTO_REPLY);
	proto_add_u64(b, "mem_used_max", ss.mem_used_max);
	control_send(cl);
}

/*
 * Stop zsd as SIGTERM does; with force=yes, swapoff even if memfit says
 * the pages will not fit.  The stop starts once the reply is out (see
 * control_write): the reply names the pid and the stops refused so far,
 * so that zsctl can tell whether this one is refused too.
 */
static void
control_stop_zsd(struct control_client *cl, const struct proto_msg *m)
{
	struct zsd *z = cl->c->z;
	struct proto_buf *b = &cl->c->reply;
	char value[8];
	bool force;

	force = proto_get(m, "force", value, sizeof(value)) != NULL &&
	    strcmp(value, "yes") == 0;
	if (force)
		z->force_stop = true;
	log_info("control: stop%s, by pid %ld", force ? " --force" : "",
	    (long)cl->pid);
	proto_begin(b, PROTO_REPLY);
	proto_add(b, "pid", "%ld", (long)getpid());
	proto_add_u64(b, "stops_failed", z->stops_failed);
	proto_add(b, "force", "%s", z->force_stop ? "yes" : "no");
	cl->stop_after = true;
	control_send(cl);
}

/*
 * A new server takes over (keeper.c): this one finishes what its workers
 * hold once the reply is out (see control_write) and exits, swap and the
 * mount left on; the kernel resends what it had read and not answered.
 * With handover=yes the keeper exits too, and the service manager starts
 * the next zsd with the fds it keeps (replacing the keeper too).
 */
static void
control_restart(struct control_client *cl, const struct proto_msg *m)
{
	struct zsd *z = cl->c->z;
	struct proto_buf *b = &cl->c->reply;
	char value[8];
	bool handover;

	handover = proto_get(m, "handover", value, sizeof(value)) != NULL &&
	    strcmp(value, "yes") == 0;
	if (z->keeper_fd < 0) {
		control_fail(cl, false, PROTO_ERR_FAILED, "no keeper: this zsd "
		    "cannot be replaced without losing its swap");
		return;
	}
	if (handover && !z->state->fdstore) {
		control_fail(cl, false, PROTO_ERR_FAILED, "no service manager "
		    "keeps zsd's fds (FDSTORE): only zsctl restart without "
		    "--handover can replace it");
		return;
	}
	if (z->stopping || z->swap == SWAP_STARTING ||
	    z->swap == SWAP_STOPPING) {
		control_fail(cl, false, PROTO_ERR_BUSY, "zsd is turning swap "
		    "on or off, or stopping: try again later");
		return;
	}
	log_info("control: restart%s, by pid %ld", handover ? " --handover" :
	    "", (long)cl->pid);
	proto_begin(b, PROTO_REPLY);
	proto_add(b, "pid", "%ld", (long)getpid());
	proto_add(b, "keeper_pid", "%ld", (long)z->state->keeper_pid);
	proto_add_u64(b, "restarts", z->state->restarts);
	cl->restart_after = true;
	cl->handover = handover;
	control_send(cl);
}

static void
control_dispatch(struct control_client *cl, const struct proto_msg *m)
{
	char why[128];

	switch (m->type) {
	case PROTO_COMPACT:
	case PROTO_LIMIT:
	case PROTO_SHRINK:
	case PROTO_RESET_MAX:
	case PROTO_STOP:
	case PROTO_RESTART:
	case PROTO_IDLE:
	case PROTO_RECOMPRESS:
	case PROTO_WRITEBACK:
		if (cl->uid != 0) {
			snprintf(why, sizeof(why), "permission denied: only "
			    "root may %s", proto_type_name(m->type));
			control_fail(cl, false, PROTO_ERR_PERM, why);
			return;
		}
		break;
	}
	switch (m->type) {
	case PROTO_STATUS:
		control_status(cl);
		break;
	case PROTO_STAT:
		control_stat(cl);
		break;
	case PROTO_CLASSES:
		control_classes(cl);
		break;
	case PROTO_STOP:
		control_stop_zsd(cl, m);
		break;
	case PROTO_RESTART:
		control_restart(cl, m);
		break;
	case PROTO_COMPACT:
		control_job_start(cl->c, &(struct job_args){
		    .kind = JOB_COMPACT }, cl);
		break;
	case PROTO_LIMIT:
		control_limit(cl, m);
		break;
	case PROTO_SHRINK:
		control_shrink(cl, m);
		break;
	case PROTO_RESET_MAX:
		control_reset_max(cl);
		break;
	case PROTO_IDLE:
		control_idle(cl, m);
		break;
	case PROTO_RECOMPRESS:
		control_recompress(cl, m);
		break;
	case PROTO_WRITEBACK:
		control_writeback(cl, m);
		break;
	}
}

/* Every whole message in the input, in order. */
static void
control_read(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct proto_msg m;
	unsigned char *buf;
	size_t len, used;
	char why[128];
	int r;

	while (!cl->closing && !cl->waiting &&
	    (len = evbuffer_get_length(in)) > 0) {
		/*
		 * A client that sends requests and never reads the replies
		 * would have them pile up here, in locked memory: read on
		 * once it has taken them (control_write).
		 */
		if (evbuffer_get_length(bufferevent_get_output(bev)) >
		    CONTROL_OUTPUT_MAX) {
			cl->throttled = true;
			bufferevent_disable(bev, EV_READ);
			return;
		}
		if (len > PROTO_MAX_MSG)
			len = PROTO_MAX_MSG;
		if ((buf = evbuffer_pullup(in, (ssize_t)len)) == NULL) {
			cl->closing = true;
			break;
		}
		r = proto_parse(buf, len, &m, &used);
		if (r == PROTO_ETRUNC)
			return;
		if (used == 0) {
			/* The framing is lost: say why, and hang up. */
			log_debug("control: pid %ld: %s", (long)cl->pid,
			    proto_strerror(r));
			control_fail(cl, true, PROTO_ERR_PROTOCOL,
			    proto_strerror(r));
			break;
		}
		if (r == PROTO_OK)
			r = proto_check_request(&m);
		if (r == PROTO_ETYPE) {
			snprintf(why, sizeof(why), "unknown command %d",
			    m.type);
			control_fail(cl, false, PROTO_ERR_UNKNOWN, why);
		} else if (r == PROTO_EARGS) {
			snprintf(why, sizeof(why), "bad arguments for %s",
			    proto_type_name(m.type));
			control_fail(cl, false, PROTO_ERR_ARGS, why);
		} else if (r != PROTO_OK)
			control_fail(cl, false, PROTO_ERR_PROTOCOL,
			    proto_strerror(r));
		else
			control_dispatch(cl, &m);
		evbuffer_drain(in, used);
		/* Active now: last in line to be dropped for root. */
		TAILQ_REMOVE(&cl->c->clients, cl, entry);
		TAILQ_INSERT_TAIL(&cl->c->clients, cl, entry);
	}
	if (cl->closing && evbuffer_get_length(
	    bufferevent_get_output(bev)) == 0)
		control_client_free(cl);
}

/* The output is flushed. */
static void
control_write(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;

	if (cl->stop_after) {
		cl->stop_after = false;
		cl->c->ops.stop(cl->c->z, 0);
	}
	if (cl->restart_after) {
		cl->restart_after = false;
		(void)cl->c->ops.restart(cl->c->z, cl->handover);
	}
	if (cl->closing && !cl->waiting) {
		control_client_free(cl);
		return;
	}
	if (cl->throttled && !cl->waiting) {
		cl->throttled = false;
		bufferevent_enable(bev, EV_READ);
		/* What it sent meanwhile waits in the input. */
		control_read(bev, cl);
	}
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	struct control_client *cl = arg;

	if (what & BEV_EVENT_TIMEOUT)
		log_debug("control: pid %ld idle too long, dropped",
		    (long)cl->pid);
	/* A client that half-closes still gets its answer. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_WRITING) &&
	    (cl->waiting || evbuffer_get_length(
	    bufferevent_get_output(bev)) > 0)) {
		cl->closing = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	control_client_free(cl);
}

static void
control_client_new(struct control *c, int fd, const struct ucred *cred)
{
	struct control_client *cl;
	struct timeval tv = { .tv_sec = c->z->cfg.control_timeout };

	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		log_warn("control: client");
		close(fd);
		return;
	}
	cl->c = c;
	cl->uid = cred->uid;
	cl->pid = cred->pid;
	cl->bev = bufferevent_socket_new(c->z->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (cl->bev == NULL) {
		log_warnx("control: bufferevent_socket_new failed");
		close(fd);
		free(cl);
		return;
	}
	bufferevent_setcb(cl->bev, control_read, control_write,
	    control_event, cl);
	bufferevent_setwatermark(cl->bev, EV_READ, 0, PROTO_MAX_MSG);
	bufferevent_set_timeouts(cl->bev, &tv, &tv);
	bufferevent_enable(cl->bev, EV_READ);
	TAILQ_INSERT_TAIL(&c->clients, cl, entry);
	c->nr_clients++;
	log_debug("control: client pid %ld uid %ld", (long)cl->pid,
	    (long)cl->uid);
}

/*
 * Whether a client of this uid may have a slot, making one for root if
 * need be: non-root clients leave CONTROL_ROOT_SLOTS free; root takes any
 * slot, and when all are taken the non-root client idle the longest (not
 * waiting for a compaction or shrink it asked for) is dropped.
 */
static bool
control_make_room(struct control *c, uid_t uid)
{
	struct control_client *cl;

	if (uid != 0)
		return c->nr_clients < CONTROL_MAX_CLIENTS - CONTROL_ROOT_SLOTS;
	if (c->nr_clients < CONTROL_MAX_CLIENTS)
		return true;
	TAILQ_FOREACH(cl, &c->clients, entry) {
		if (cl->uid == 0 || cl->waiting)
			continue;
		log_info("control: %u clients; dropping pid %ld (uid %ld), "
		    "idle the longest, to let root in", c->nr_clients,
		    (long)cl->pid, (long)cl->uid);
		control_client_free(cl);
		return true;
	}
	return false;
}

/* Over the cap: say so, without waiting, and hang up. */
static void
control_refuse(struct control *c, int fd)
{
	proto_error(&c->reply, PROTO_ERR_BUSY, "too many clients (%u)",
	    c->nr_clients);
	/* A new socket's buffer is empty: this cannot block or be short. */
	if (write(fd, c->reply.data, c->reply.len) < 0)
		log_debug("control: refusing a client: %s", strerror(errno));
	close(fd);
}

static void
control_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct control *c = arg;
	struct timeval tv = { 0, CONTROL_PAUSE_MS * 1000 };
	struct ucred cred;
	socklen_t len;
	int fd;

	for (;;) {
		len = sizeof(cred);
		fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
				continue;
			case EAGAIN:
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* The socket stays readable: do not spin. */
				if (!c->starved)
					log_warn("control: accept, pausing %d "
					    "ms", CONTROL_PAUSE_MS);
				c->starved = true;
				event_del(c->listen);
				evtimer_add(c->resume, &tv);
				return;
			default:
				log_warn("control: accept");
				return;
			}
		}
		c->starved = false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
		    &len) != 0) {
			log_warn("control: SO_PEERCRED");
			close(fd);
		} else if (!control_make_room(c, cred.uid))
			control_refuse(c, fd);
		else
			control_client_new(c, fd, &cred);
	}
}

static void
control_resume(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;

	event_add(c->listen, NULL);
}

/* The job thread: the only code here that is not on the loop. */
static void *
control_job_run(void *arg)
{
	struct control *c = arg;
	struct control_job *j = &c->job;
	struct store *st = c->z->store;
	struct timespec t0, t1;

	(void)pthread_setname_np(pthread_self(), "zsd-job");
	sched_background();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&j->pres, 0, sizeof(j->pres));
	if (j->ctx == NULL && j->a.kind >= JOB_RECOMPRESS &&
	    (j->ctx = store_ctx_create(st)) == NULL) {
		j->pres.error = -ENOMEM;
		goto out;
	}
	switch (j->a.kind) {
	case JOB_COMPACT:
		memset(&j->res, 0, sizeof(j->res));
		(void)zs_compact(c->z->pool, &j->res);
		/* The zspages emptied are free only once flushed. */
		zs_pool_flush(c->z->pool);
		break;
	case JOB_SHRINK:
		j->unmapped = zs_pool_shrink(c->z->pool, j->a.bytes);
		break;
	case JOB_IDLE:
		j->marked = store_mark_idle(st, j->a.age);
		break;
	case JOB_RECOMPRESS:
		store_recompress(st, j->ctx, &j->a.pass, &j->pres);
		break;
	case JOB_WRITEBACK:
		store_writeback(st, j->ctx, &j->a.pass, &j->pres);
		break;
	case JOB_POLICY:
		policy_run(st, j->ctx, &j->a.policy, &j->cancel);
		break;
	}
	/* Objects freed by the passes: their zspages too. */
	if (j->a.kind >= JOB_RECOMPRESS)
		zs_pool_flush(c->z->pool);
out:
	clock_gettime(CLOCK_MONOTONIC, &t1);
	j->seconds = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	event_active(j->done, 0, 0);
	return NULL;
}

/*
 * A client that waited for a job to start is answered without one: it
 * reads again, and what it sent meanwhile is served.  (One that was not
 * waiting is being served by control_read already.)
 */
static void
control_job_resume(struct control_client *cl)
{
	if (!cl->waiting)
		return;
	cl->waiting = false;
	if (cl->closing)
		return;
	bufferevent_enable(cl->bev, EV_READ);
	control_read(cl->bev, cl);
}

/*
 * Start the job a asks for, for client cl (NULL: an automatic one).  A
 * client's job waits for an automatic one to end; two clients' jobs do
 * not wait for each other: the second is told to try again.
 */
static void
control_job_start(struct control *c, const struct job_args *a,
    struct control_client *cl)
{
	struct control_job *j = &c->job;
	int error;

	if (j->running || (cl != NULL && c->pending_client != NULL &&
	    c->pending_client != cl)) {
		if (cl == NULL)
			return;
		if (j->automatic && c->pending_client == NULL) {
			/* The automatic pass ends early, for this one. */
			atomic_store(&j->cancel, true);
			c->pending = *a;
			c->pending_client = cl;
			cl->waiting = true;
			bufferevent_disable(cl->bev, EV_READ);
			return;
		}
		control_fail(cl, false, PROTO_ERR_BUSY, "another job "
		    "(compaction, shrink, idle, recompression or writeback) "
		    "is running; try again");
		return;
	}
	if (c->pending_client == cl)
		c->pending_client = NULL;
	j->a = *a;
	/* Checked when it starts: the day's budget may have changed. */
	if (a->kind == JOB_WRITEBACK &&
	    !control_writeback_ok(cl, &j->a.pass.max_bytes)) {
		control_job_resume(cl);
		return;
	}
	atomic_store(&j->cancel, false);
	j->a.pass.cancel = &j->cancel;
	j->client = cl;
	j->automatic = cl == NULL;
	if ((error = pthread_create(&j->thread, NULL, control_job_run,
	    c)) != 0) {
		errno = error;
		log_warn("control: job thread");
		if (cl != NULL) {
			control_fail(cl, false, PROTO_ERR_FAILED,
			    "cannot start a thread");
			control_job_resume(cl);
		}
		return;
	}
	j->running = true;
	if (cl != NULL) {
		/* Replies go out in order: read nothing more until then. */
		cl->waiting = true;
		bufferevent_disable(cl->bev, EV_READ);
	}
}

/* What a writeback's error means to the operator. */
static const char *
control_wb_error(int error, char *buf, size_t len)
{
	if (error == 0)
		return "";
	if (error == -ENOSPC)
		return "the backing file is full";
	snprintf(buf, len, "writing the backing file: %s", strerror(-error));
	return buf;
}

/* The end of an idle job: log it, count it, answer its client. */
static void
control_idle_done(struct control *c, struct control_client *cl)
{
	struct control_job *j = &c->job;
	struct store_pass_result *r = &j->pres;
	struct policy_run *p = &j->a.policy;
	struct proto_buf *b = &c->reply;
	struct store_stats ss;
	uint64_t left;
	char err[256];

	switch (j->a.kind) {
	case JOB_IDLE:
		log_info("control: idle: %llu pages marked, %.3f s",
		    (unsigned long long)j->marked, j->seconds);
		break;
	case JOB_RECOMPRESS:
		log_info("control: recompressed %llu of %llu pages, %llu "
		    "bytes saved, %.3f s", (unsigned long long)r->pages,
		    (unsigned long long)r->scanned,
		    (unsigned long long)r->bytes_saved, j->seconds);
		if (r->error != 0)
			log_warnx("control: recompression stopped: %s",
			    strerror(-r->error));
		break;
	case JOB_WRITEBACK:
		policy_budget_spend(&c->budget, r->bytes_written);
		log_info("control: wrote back %llu pages in %llu bytes, "
		    "%.3f s", (unsigned long long)r->pages,
		    (unsigned long long)r->bytes_written, j->seconds);
		if (r->error != 0) {
			c->writeback_errors++;
			log_warnx("control: writeback stopped: %s; the pages "
			    "not written stay in memory",
			    control_wb_error(r->error, err, sizeof(err)));
		}
		break;
	default:
		c->idle_passes++;
		c->recompress_paused += p->cpu_pressed;
		c->writeback_paused += p->io_pressed;
		policy_budget_spend(&c->budget, p->writeback.bytes_written);
		if (p->writeback.error != 0) {
			c->writeback_errors++;
			log_warnx("idle: writeback stopped: %s",
			    control_wb_error(p->writeback.error, err,
			    sizeof(err)));
		}
		if (p->recompress.pages != 0 || p->writeback.pages != 0)
			log_info("idle: %llu pages recompressed (%llu bytes "
			    "saved), %llu written back, %.3f s",
			    (unsigned long long)p->recompress.pages,
			    (unsigned long long)p->recompress.bytes_saved,
			    (unsigned long long)p->writeback.pages,
			    j->seconds);
		if (p->cpu_pressed || p->io_pressed)
			log_debug("idle: paused: CPU pressure %.1f%%, I/O "
			    "pressure %.1f%%", p->cpu_seen, p->io_seen);
		return;
	}
	if (cl == NULL)
		return;
	cl->waiting = false;
	proto_begin(b, PROTO_REPLY);
	switch (j->a.kind) {
	case JOB_IDLE:
		store_stats(c->z->store, &ss);
		proto_add_u64(b, "marked", j->marked);
		proto_add_u64(b, "idle_pages", ss.idle_pages);
		break;
	case JOB_RECOMPRESS:
		proto_add_u64(b, "pages_scanned", r->scanned);
		proto_add_u64(b, "pages_recompressed", r->pages);
		proto_add_u64(b, "bytes_saved", r->bytes_saved);
		proto_add_u64(b, "pages_failed", r->failed);
		proto_add(b, "error", "%s", r->error != 0 ?
		    strerror(-r->error) : "");
		break;
	default:
		proto_add_u64(b, "pages_scanned", r->scanned);
		proto_add_u64(b, "pages_written", r->pages);
		proto_add_u64(b, "bytes_written", r->bytes_written);
		proto_add_u64(b, "pages_failed", r->failed);
		proto_add(b, "error", "%s", control_wb_error(r->error, err,
		    sizeof(err)));
		left = policy_budget_left(&c->budget,
		    c->z->cfg.writeback_limit);
		if (left == UINT64_MAX)
			proto_add(b, "limit_left", "none");
		else
			proto_add_u64(b, "limit_left", left);
		break;
	}
	proto_add(b, "seconds", "%.6f", j->seconds);
	control_send(cl);
	if (!cl->closing) {
		bufferevent_enable(cl->bev, EV_READ);
		control_read(cl->bev, cl);
	}
}

static void	control_job_end(struct control *c,
		    struct control_client *cl);
static void	control_compact_check(struct control *c);

/* Whether the job that ended replaced objects (so left holes). */
static bool
control_job_freed(const struct control_job *j)
{
	switch (j->a.kind) {
	case JOB_RECOMPRESS:
	case JOB_WRITEBACK:
		return j->pres.pages != 0;
	case JOB_POLICY:
		return j->a.policy.recompress.pages != 0 ||
		    j->a.policy.writeback.pages != 0;
	default:
		return false;
	}
}

/* The job is over: report it, then start one that waited for it. */
static void
control_job_done(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;
	struct control_client *cl = c->job.client;
	bool freed;

	pthread_join(c->job.thread, NULL);
	c->job.running = false;
	c->job.client = NULL;
	/* (Before the client's next request may start another job.) */
	freed = control_job_freed(&c->job);
	control_job_end(c, cl);
	if (c->pending_client != NULL)
		control_job_start(c, &c->pending, c->pending_client);
	/*
	 * Recompression and writeback free objects all over the pool,
	 * while the new ones fill zspages of their own: compacting now,
	 * not at the next tick, gives that memory back at once.
	 */
	if (freed)
		control_compact_check(c);
}

static void
control_job_end(struct control *c, struct control_client *cl)
{
	struct control_job *j = &c->job;
	struct proto_buf *b = &c->reply;

	if (j->a.kind >= JOB_IDLE) {
		control_idle_done(c, cl);
		return;
	}
	if (j->a.kind == JOB_COMPACT) {
		if (j->automatic)
			c->compactions_auto++;
		else
			c->compactions++;
		log_info("control: %scompacted: %llu pages freed, %llu "
		    "bytes moved, %.3f s", j->automatic ? "auto" : "",
		    (unsigned long long)j->res.pages_freed,
		    (unsigned long long)j->res.bytes_moved, j->seconds);
	} else
		log_info("control: shrink: %llu of %llu bytes unmapped, "
		    "%.3f s", (unsigned long long)j->unmapped,
		    (unsigned long long)j->a.bytes, j->seconds);
	if (cl == NULL)
		return;
	cl->waiting = false;
	proto_begin(b, PROTO_REPLY);
	if (j->a.kind == JOB_COMPACT) {
		proto_add_u64(b, "pages_freed", j->res.pages_freed);
		proto_add_u64(b, "objs_moved", j->res.objs_moved);
		proto_add_u64(b, "bytes_moved", j->res.bytes_moved);
	} else {
		proto_add_u64(b, "bytes_asked", j->a.bytes);
		proto_add_u64(b, "bytes_unmapped", j->unmapped);
	}
	proto_add(b, "seconds", "%.6f", j->seconds);
	control_send(cl);
	if (!cl->closing) {
		bufferevent_enable(cl->bev, EV_READ);
		/* Requests that came meanwhile wait in the input. */
		control_read(cl->bev, cl);
	}
}

static void
control_arm_tick(struct control *c)
{
	struct timeval tv = { .tv_sec = c->z->cfg.compact_interval };

	evtimer_add(c->tick, &tv);
}

/* Automatic compaction: when enough of the pool could be freed. */
static void
control_tick(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;

	control_arm_tick(c);
	control_compact_check(c);
}

static void
control_compact_check(struct control *c)
{
	int threshold = c->z->cfg.compact_threshold;
	struct zs_pool_stats ps;
	uint64_t used, freeable;

	if (threshold == 0 || c->job.running || c->pending_client != NULL)
		return;
	used = zs_pool_pages_used(c->z->pool);
	if (used == 0)
		return;
	/* No class lock taken: the pool's counters, summed. */
	zs_pool_stats(c->z->pool, &ps);
	freeable = ps.pages_freeable;
	if (freeable > 0 && freeable * 100 >= (uint64_t)threshold * used) {
		log_debug("control: %llu of %llu pages freeable: compacting",
		    (unsigned long long)freeable, (unsigned long long)used);
		control_job_start(c, &(struct job_args){
		    .kind = JOB_COMPACT }, NULL);
	}
}

static void
control_arm_idle(struct control *c)
{
	struct timeval tv = { .tv_sec = c->z->cfg.idle_interval };

	evtimer_add(c->idle_tick, &tv);
}

/* The automatic idle pass (policy.c), if it has anything to do. */
static void
control_idle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;
	struct zsd_config *cfg = &c->z->cfg;
	struct job_args a = { .kind = JOB_POLICY };
	struct policy_run *p = &a.policy;

	control_arm_idle(c);
	if (c->job.running || c->pending_client != NULL || c->z->stopping ||
	    (cfg->recompress_after == 0 &&
	    (c->z->backing == NULL || cfg->writeback_after == 0)))
		return;
	p->recompress_after = cfg->recompress_after;
	p->writeback_after = cfg->writeback_after;
	p->threshold = cfg->recompress_threshold;
	p->batch = (uint64_t)cfg->idle_batch;
	p->cpu_max = cfg->idle_cpu_pressure;
	p->io_max = cfg->idle_io_pressure;
	p->backing = c->z->backing != NULL;
	p->wb_left = policy_budget_left(&c->budget, cfg->writeback_limit);
	p->psi_cpu = "/proc/pressure/cpu";
	p->psi_io = "/proc/pressure/io";
	control_job_start(c, &a, NULL);
}

void
control_reload(struct zsd *z)
{
	if (z->control != NULL) {
		control_arm_tick(z->control);
		control_arm_idle(z->control);
	}
}

/*
 * Is another zsd there?  0 if the path is free (a stale socket is
 * removed), -1 with a message if not.
 */
static int
control_probe(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, r, saved;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		log_warn("control socket %s", path);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx("control socket %s: exists and is not a socket",
		    path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("control: socket");
		return -1;
	}
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	saved = errno;
	close(fd);
	if (r == 0) {
		log_warnx("control socket %s: another zsd answers on it",
		    path);
		return -1;
	}
	if (saved != ECONNREFUSED) {
		errno = saved;
		log_warn("control socket %s", path);
		return -1;
	}
	log_info("control socket %s: stale, replaced", path);
	if (unlink(path) != 0 && errno != ENOENT) {
		log_warn("control: unlink %s", path);
		return -1;
	}
	return 0;
}

/* The socket's directory, if missing (as /run/zsd is at boot). */
static void
control_mkdir(const char *path)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(tmp, sizeof(tmp), "%s", path);
	if (mkdir(dirname(tmp), 0755) != 0 && errno != EEXIST)
		log_warn("control: mkdir %s", tmp);
}

void
control_stop(struct zsd *z)
{
	struct control *c = z->control;
	struct stat st;

	if (c == NULL)
		return;
	atomic_store(&c->job.cancel, true);
	if (c->job.running)
		pthread_join(c->job.thread, NULL);
	store_ctx_destroy(c->job.ctx);
	while (!TAILQ_EMPTY(&c->clients))
		control_client_free(TAILQ_FIRST(&c->clients));
	if (c->listen != NULL)
		event_free(c->listen);
	if (c->resume != NULL)
		event_free(c->resume);
	if (c->tick != NULL)
		event_free(c->tick);
	if (c->idle_tick != NULL)
		event_free(c->idle_tick);
	if (c->job.done != NULL)
		event_free(c->job.done);
	if (c->fd != -1) {
		close(c->fd);
		/* Only if it is still ours, not a successor's. */
		if (lstat(z->cfg.control, &st) == 0 && st.st_dev == c->dev &&
		    st.st_ino == c->ino)
			unlink(z->cfg.control);
	}
	free(c);
	z->control = NULL;
}

int
control_start(struct zsd *z, const struct control_ops *ops)
{
	const char *path = z->cfg.control;
	struct sockaddr_un sun;
	struct control *c;
	struct group *gr;
	struct stat st;
	gid_t gid;
	mode_t old;

	if ((gr = getgrnam(z->cfg.control_group)) == NULL) {
		log_warnx("control_group %s: no such group",
		    z->cfg.control_group);
		return -1;
	}
	gid = gr->gr_gid;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket %s: path too long", path);
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("control");
		return -1;
	}
	c->z = z;
	c->ops = *ops;
	c->fd = -1;
	TAILQ_INIT(&c->clients);
	z->control = c;
#ifdef ZS_DEBUG
	if (getenv("ZSD_FAULT_SLOW_STATUS") != NULL)
		c->slow_status = (unsigned int)strtoul(
		    getenv("ZSD_FAULT_SLOW_STATUS"), NULL, 10);
#endif

	control_mkdir(path);
	if (control_probe(path) != 0)
		goto fail;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (c->fd == -1) {
		log_warn("control: socket");
		goto fail;
	}
	/* Born rw-rw----: no moment when others could connect. */
	old = umask(0117);
	if (bind(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		log_warn("control: bind %s", path);
		close(c->fd);
		c->fd = -1;
		goto fail;
	}
	umask(old);
	if (lstat(path, &st) != 0) {
		log_warn("control: %s", path);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (st.st_gid != gid && chown(path, (uid_t)-1, gid) != 0) {
		log_warn("control: chown %s to group %s", path,
		    z->cfg.control_group);
		goto fail;
	}
	if (listen(c->fd, CONTROL_BACKLOG) != 0) {
		log_warn("control: listen");
		goto fail;
	}
	c->listen = event_new(z->base, c->fd, EV_READ | EV_PERSIST,
	    control_accept, c);
	c->resume = evtimer_new(z->base, control_resume, c);
	c->tick = evtimer_new(z->base, control_tick, c);
	c->idle_tick = evtimer_new(z->base, control_idle_tick, c);
	c->job.done = event_new(z->base, -1, 0, control_job_done, c);
	if (c->listen == NULL || c->resume == NULL || c->tick == NULL ||
	    c->idle_tick == NULL || c->job.done == NULL ||
	    event_add(c->listen, NULL) != 0) {
		log_warnx("control: cannot make its events");
		goto fail;
	}
	control_arm_tick(c);
	control_arm_idle(c);
	log_debug("control socket %s, group %s", path, z->cfg.control_group);
	return 0;

fail:
	control_stop(z);
	return -1;
}
