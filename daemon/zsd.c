/*
 * zsd.c - the daemon: options, start-up, the event loop and an orderly
 * stop.
 *
 * Start-up order matters for serving swap without deadlock: the process
 * becomes an I/O flusher (PR_SET_IO_FLUSHER) before any thread exists, so
 * that every thread inherits it, and locks its memory before the pool maps
 * anything.  Then the log's thread (after which no thread waits for the
 * log), the pool, the store, the workers, the FUSE mount and its thread;
 * that thread answers FUSE's INIT, the loop hears of it, and only then
 * does swap activation start, on a thread of its own (swap.c).
 *
 * Stop (SIGTERM, SIGINT): swapoff, detach the loop device, stop reading
 * FUSE requests, stop the workers (they answer what was read), unmount,
 * exit.  If swapoff fails zsd keeps serving.
 *
 * zsd as started is the keeper (keeper.c), which runs this same binary
 * as the server; a server started after another died, or for zsctl
 * restart, takes the live mount over: no stale cleanup, no mount check,
 * no swapon, and at exit for a restart neither swapoff nor unmount.
 *
 * This is where the parts meet, and calls go down from here: the FUSE
 * transport (fuse/fs.h) is given callbacks onto the store, the workers
 * and the keeper (fsop_*); control.c and keeper.c are given the stop and
 * restart they may ask for; the swap thread reports through an event of
 * the loop's.  None of them calls into this file but for two helpers
 * that decide nothing (sched_background, store_options_of).
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "fs.h"
#include "zsd.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER	57
#endif

#define ZSD_CONFIG_FILE		"/etc/zsd.conf"

static void	zsd_shutdown(struct zsd *, int);
static int	zsd_restart(struct zsd *, bool);

/* What zsctl stop and restart do (control.c). */
static const struct control_ops zsd_control_ops = {
	.stop = zsd_shutdown,
	.restart = zsd_restart,
};

/* -o key=value options, applied after the file, again at each reload. */
static char	**overrides;
static int	  nr_overrides;
static int	  swapon_override = -1;

static void
usage(FILE *f)
{
	fprintf(f, "usage: zsd [-f] [-c file] [-o key=value]... [-v] "
	    "[--swapon | --no-swapon]\n"
	    "       zsd -h | -V\n\n"
	    "  -f            stay in the foreground, log to stderr\n"
	    "  -c file       configuration file (default " ZSD_CONFIG_FILE
	    ")\n"
	    "  -o key=value  set a configuration key (after the file)\n"
	    "  -v            log more\n"
	    "  --swapon      enable the file as swap (the default)\n"
	    "  --no-swapon   only serve the file\n\n"
	    "configuration keys:\n");
	config_usage_keys(f);
}

/*
 * The mountpoint as the kernel shows it in mountinfo, so that a dead or a
 * live zsd on it is recognised (stale.c, is_mounted): a trailing '/'
 * dropped, the parent's symbolic links resolved.  The mountpoint itself
 * is not resolved: a dead FUSE mount cannot be.  Left as it is if the
 * parent does not exist (check_mountpoint says so) or it would not fit.
 */
static void
canonical_mountpoint(char *mp, size_t size)
{
	char parent[PATH_MAX], real[PATH_MAX], out[PATH_MAX], *slash;
	size_t len = strlen(mp);
	int n;

	while (len > 1 && mp[len - 1] == '/')
		mp[--len] = '\0';
	if ((slash = strrchr(mp, '/')) == NULL || slash[1] == '\0' ||
	    strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
		return;
	snprintf(parent, sizeof(parent), "%.*s", slash == mp ? 1 :
	    (int)(slash - mp), mp);
	if (realpath(parent, real) == NULL)
		return;
	n = snprintf(out, sizeof(out), "%s/%s", strcmp(real, "/") == 0 ? "" :
	    real, slash + 1);
	if (n > 0 && (size_t)n < size)
		memcpy(mp, out, (size_t)n + 1);
}

/* Defaults, then the file, then the command line.  -1 with err set. */
static int
load_config(struct zsd_config *cfg, const char *path, bool explicit,
    char *err, size_t errlen)
{
	char key[64];
	const char *eq;
	int i;

	config_init(cfg);
	if (config_load(cfg, path, explicit, false, err, errlen) != 0)
		return -1;
	for (i = 0; i < nr_overrides; i++) {
		eq = strchr(overrides[i], '=');
		if (eq == NULL || eq == overrides[i] ||
		    (size_t)(eq - overrides[i]) >= sizeof(key)) {
			snprintf(err, errlen, "-o %s: expected key=value",
			    overrides[i]);
			return -1;
		}
		memcpy(key, overrides[i], (size_t)(eq - overrides[i]));
		key[eq - overrides[i]] = '\0';
		if (config_set(cfg, key, eq + 1, false, err, errlen) != 0)
			return -1;
	}
	if (swapon_override >= 0)
		cfg->swapon = swapon_override;
	canonical_mountpoint(cfg->mountpoint, sizeof(cfg->mountpoint));
	return 0;
}

void
store_options_of(const struct zsd_config *cfg, struct store_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->codec = cfg->algorithm;
	opt->zstd_level = cfg->zstd_level;
	opt->mem_limit = cfg->mem_limit;
	opt->merge = cfg->merge;
	opt->recompress_level = cfg->recompress_level;
}

/* SIGHUP: apply what may change live; say what needs a restart. */
static void
reload(struct zsd *z)
{
	struct zsd_config cfg;
	struct store_options opt;
	char err[512], keys[256];
	int n;

	if (load_config(&cfg, z->config_path, z->config_explicit, err,
	    sizeof(err)) != 0) {
		log_warnx("reload: %s; nothing changed", err);
		return;
	}
	if ((n = config_restart_only(&z->cfg, &cfg, keys, sizeof(keys))) > 0)
		log_warnx("reload: %s take%s effect at restart only", keys,
		    n == 1 ? "s" : "");
	z->cfg.algorithm = cfg.algorithm;
	z->cfg.zstd_level = cfg.zstd_level;
	z->cfg.mem_limit = cfg.mem_limit;
	z->cfg.merge = cfg.merge;
	z->cfg.verbose = cfg.verbose;
	z->cfg.compact_threshold = cfg.compact_threshold;
	z->cfg.compact_interval = cfg.compact_interval;
	control_reload(z);
	log_set_verbose(cfg.verbose);
	store_options_of(&z->cfg, &opt);
	store_set_options(z->store, &opt);
	log_info("reloaded: algorithm %s, zstd_level %d, mem_limit %llu, "
	    "merge %s", codec_name(z->cfg.algorithm), z->cfg.zstd_level,
	    (unsigned long long)z->cfg.mem_limit, z->cfg.merge ? "yes" : "no");
}

static void
ready(struct zsd *z)
{
	if (z->swap == SWAP_ON)
		log_info("ready: swap on %s (%s, %llu MiB, priority %d, %s)",
		    z->loop_dev, fs_file_path(z->fs),
		    (unsigned long long)(z->cfg.disksize >> 20),
		    z->cfg.priority, codec_name(z->cfg.algorithm));
	else
		log_info("ready: serving %s (%llu MiB, %s)",
		    fs_file_path(z->fs),
		    (unsigned long long)(z->cfg.disksize >> 20),
		    codec_name(z->cfg.algorithm));
	if (z->state != NULL)
		z->state->served = 1;
	notify("READY=1");
}

/*
 * The transport's callbacks (fuse/fs.h): the swap file's I/O goes to the
 * store, works to the workers, what a successor needs to the keeper.
 */
static void *
fsop_ctx_create(void *arg)
{
	struct zsd *z = arg;

	return store_ctx_create(z->store);
}

static void
fsop_ctx_destroy(void *arg, void *ctx)
{
	store_ctx_destroy(ctx);
}

static bool
fsop_io_valid(void *arg, void *ctx, uint64_t off, uint64_t len)
{
	struct zsd *z = arg;

	return store_io_valid(z->store, ctx, off, len);
}

static long
fsop_read(void *arg, void *ctx, uint64_t off, void *buf, size_t len)
{
	struct zsd *z = arg;

	return store_read(z->store, ctx, off, buf, len);
}

static int
fsop_write(void *arg, void *ctx, uint64_t off, const void *buf, size_t len)
{
	struct zsd *z = arg;

	return store_write(z->store, ctx, off, buf, len);
}

static int
fsop_discard(void *arg, void *ctx, uint64_t off, uint64_t len)
{
	struct zsd *z = arg;

	return store_discard(z->store, ctx, off, len);
}

static void
fsop_stats(void *arg, struct fs_stats *out)
{
	struct zsd *z = arg;
	struct store_stats ss;

	store_stats(z->store, &ss);
	out->orig_data_size = ss.orig_data_size;
	out->compr_data_size = ss.compr_data_size;
	out->mem_used_total = ss.mem_used_total;
	out->mem_limit = ss.mem_limit;
	out->mem_used_max = ss.mem_used_max;
	out->same_pages = ss.same_pages;
	out->pages_compacted = ss.pages_compacted;
	out->huge_pages = ss.huge_pages;
	out->pages_stored = ss.pages_stored;
}

static void
fsop_usage(void *arg, uint64_t *pages_stored, uint64_t *compr_data_size)
{
	struct zsd *z = arg;

	*pages_stored = store_pages_stored(z->store);
	*compr_data_size = store_compr_size(z->store);
}

static void
fsop_queue(void *arg, struct fs_work **w, unsigned int n)
{
	struct zsd *z = arg;

	workers_queue(z->workers, w, n);
}

/* Loop, told by the FUSE thread: INIT is answered, the file can be opened. */
static void
fsop_ready(void *arg)
{
	struct zsd *z = arg;
	int error;

	if (z->stopping)
		return;
	if (!z->cfg.swapon || z->swap == SWAP_ON) {
		ready(z);
		return;
	}
	if ((error = swap_start(z)) != 0) {
		errno = -error;
		log_warn("starting swap activation");
		zsd_shutdown(z, 1);
	}
}

/* Loop, told by the FUSE thread: unmounted by someone else. */
static void
fsop_gone(void *arg)
{
	zsd_shutdown(arg, 0);
}

static void
fsop_save_init(void *arg, const void *buf, size_t len)
{
	keeper_save_init(arg, buf, len);
}

static void
fsop_save_ring(void *arg, size_t payload)
{
	keeper_save_ring(arg, payload);
}

static void
fsop_save_fd(void *arg, int fd)
{
	keeper_give_fuse(arg, fd);
}

static const struct fs_ops zsd_fs_ops = {
	.ctx_create = fsop_ctx_create,
	.ctx_destroy = fsop_ctx_destroy,
	.io_valid = fsop_io_valid,
	.read = fsop_read,
	.write = fsop_write,
	.discard = fsop_discard,
	.stats = fsop_stats,
	.usage = fsop_usage,
	.queue = fsop_queue,
	.ready = fsop_ready,
	.gone = fsop_gone,
	.save_init = fsop_save_init,
	.save_ring = fsop_save_ring,
	.save_fd = fsop_save_fd,
};

/*
 * Mount the swap file and serve it, or take over the connection a
 * predecessor left (z->fuse_fd) with what it recorded.  0 or -errno.
 */
static int
zsd_fs_start(struct zsd *z)
{
	const struct zsd_state *s = z->state;
	struct fs_config fc;
	int error;

	memset(&fc, 0, sizeof(fc));
	fc.mountpoint = z->cfg.mountpoint;
	fc.name = z->cfg.name;
	fc.disksize = z->cfg.disksize;
	fc.transport = z->cfg.transport;
	fc.max_background = (unsigned int)z->cfg.max_background;
	fc.workers = workers_count(z->workers);
	fc.base = z->base;
	fc.fuse_fd = z->fuse_fd;
	if (s != NULL && z->fuse_fd >= 0) {
		/* Exit, not stop: the keeper keeps the mount, tries again. */
		if (s->init_len > sizeof(s->init)) {
			errno = EPROTO;
			fatal("replaying the FUSE INIT recorded by the first "
			    "server");
		}
		fc.init = s->init;
		fc.init_len = s->init_len;
		fc.ring = s->uring != 0;
		fc.ring_payload = s->uring_payload;
	}
	if ((error = fs_start(&fc, &zsd_fs_ops, z, &z->fs)) != 0)
		return error;
	z->fuse_fd = -1;		/* the session's now */
	return 0;
}

/* Loop: the swap thread is done (it fired z->swap_done). */
static void
on_swap_done(evutil_socket_t fd, short what, void *arg)
{
	struct zsd *z = arg;

	if (z->swap == SWAP_STARTING) {
		if (z->swap_error != 0) {
			z->swap = SWAP_OFF;
			log_warnx("could not enable %s as swap",
			    fs_file_path(z->fs));
			/* A stop asked for meanwhile waited for this. */
			z->stopping = false;
			zsd_shutdown(z, 1);
			return;
		}
		z->swap = SWAP_ON;
		keeper_save_swap(z);
		if (z->stopping) {
			z->stopping = false;
			zsd_shutdown(z, z->exit_status);
			return;
		}
		ready(z);
		return;
	}
	if (z->swap == SWAP_STOPPING) {
		if (z->swap_error == -EAGAIN) {
			/* memfit refused: try again while the stop stands. */
			z->swap = SWAP_ON;
			z->stopping = false;
			z->stops_failed++;
			memcpy(z->stop_failed, z->stop_why,
			    sizeof(z->stop_failed));
			if (z->force_stop) {
				/* Forced while memfit looked: go now. */
				zsd_shutdown(z, z->exit_status);
				return;
			}
			log_warnx("%s stays swap and zsd keeps serving it; the "
			    "stop is tried again every %d s and at the next "
			    "SIGTERM",
			    z->loop_dev, ZSD_STOP_RETRY);
			notify("STATUS=not stopping: the swapped pages would "
			    "not fit in memory; retrying");
			evtimer_add(z->stop_retry, &(struct timeval){
			    .tv_sec = ZSD_STOP_RETRY });
			return;
		}
		if (z->swap_error != 0) {
			z->swap = SWAP_ON;
			z->stopping = false;
			z->stops_failed++;
			memcpy(z->stop_failed, z->stop_why,
			    sizeof(z->stop_failed));
			log_warnx("swapoff %s failed: still serving it; stop "
			    "again once memory is free", z->loop_dev);
			notify("READY=1\nSTATUS=swapoff failed, still serving");
			return;
		}
		z->swap = SWAP_OFF;
		keeper_save_swap(z);
		log_info("swap off, %s detached", z->loop_dev);
		event_base_loopexit(z->base, NULL);
	}
}

/* Loop: a stop that memfit refused, tried again. */
static void
on_stop_retry(evutil_socket_t fd, short what, void *arg)
{
	struct zsd *z = arg;

	if (z->swap == SWAP_ON && !z->stopping)
		zsd_shutdown(z, z->exit_status);
}

/*
 * Loop: stop in order.  With swap on, swapoff first (on the swap thread,
 * while the loop serves the pages it reads back); the loop exits after.
 */
static void
zsd_shutdown(struct zsd *z, int status)
{
	int error;

	if (status > z->exit_status)
		z->exit_status = status;
	if (z->stopping)
		return;
	z->stopping = true;
	evtimer_del(z->stop_retry);
	notify("STOPPING=1");
	switch (z->swap) {
	case SWAP_ON:
		log_info("stopping: swapoff %s", z->loop_dev);
		if ((error = swap_stop(z)) != 0) {
			errno = -error;
			log_warn("swapoff thread");
			z->stopping = false;
		}
		break;
	case SWAP_STARTING:
	case SWAP_STOPPING:
		break;		/* on_swap_done goes on from there */
	case SWAP_OFF:
		event_base_loopexit(z->base, NULL);
		break;
	}
}

/*
 * Loop: zsctl restart.  Exit without swapoff or unmount; the keeper starts
 * a new server, which takes the connection and the arena over.  With
 * handover (zsctl restart --handover, or the keeper gone), the keeper
 * exits too and the service manager starts the next zsd with the fds it
 * keeps.
 */
static int
zsd_restart(struct zsd *z, bool handover)
{
	int error;

	if (z->stopping || z->restarting || z->swap == SWAP_STARTING ||
	    z->swap == SWAP_STOPPING)
		return -EBUSY;
	error = handover ? keeper_handover(z) : keeper_restart(z);
	if (error != 0)
		return error;
	if (handover)
		log_info("handing over: the service manager keeps the FUSE "
		    "connection and the pool for the next zsd");
	else
		log_info("restarting: a new server takes over");
	z->restarting = true;
	z->stopping = true;
	event_base_loopexit(z->base, NULL);
	return 0;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct zsd *z = arg;

	switch (sig) {
	case SIGHUP:
		reload(z);
		break;
	default:
		/*
		 * The keeper is gone, and the service manager stops what is
		 * left of the service before starting it again: leave the
		 * pages to the next zsd, as the keeper's end does.
		 */
		if (keeper_gone(z) && z->state->fdstore &&
		    zsd_restart(z, true) == 0)
			break;
		log_info("%s: stopping", strsignal((int)sig));
		zsd_shutdown(z, 0);
		break;
	}
}

/* Is path a mount point already (another zsd, or anything else)? */
static bool
is_mounted(const char *path)
{
	char line[4096], mnt[PATH_MAX], *p, *q;
	bool found = false;
	FILE *f;

	if ((f = fopen("/proc/self/mountinfo", "r")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		/* Undo the octal escapes of spaces and the like. */
		for (p = q = mnt; *p != '\0'; q++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' &&
			    p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
			    p[3] <= '7') {
				*q = (char)((p[1] - '0') << 6 | (p[2] - '0')
				    << 3 | (p[3] - '0'));
				p += 4;
			} else
				*q = *p++;
		}
		*q = '\0';
		found = strcmp(mnt, path) == 0;
	}
	fclose(f);
	return found;
}

/* The default mountpoint is made if missing; another must exist. */
static int
check_mountpoint(const char *path)
{
	struct zsd_config def;
	struct stat st;
	char tmp[PATH_MAX], *p;

	config_init(&def);
	if (stat(path, &st) != 0 && errno == ENOENT &&
	    strcmp(path, def.mountpoint) == 0) {
		/* mkdir -p, one component at a time. */
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s", path) >=
		    sizeof(tmp)) {
			log_warnx("mountpoint %s: name too long", path);
			return -1;
		}
		for (p = strchr(tmp + 1, '/'); p != NULL;
		    p = strchr(p + 1, '/')) {
			*p = '\0';
			if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
				log_warn("mountpoint: mkdir %s", tmp);
				return -1;
			}
			*p = '/';
		}
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
			log_warn("mountpoint: mkdir %s", tmp);
			return -1;
		}
	}
	if (stat(path, &st) != 0) {
		log_warn("mountpoint %s", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_warnx("mountpoint %s: not a directory", path);
		return -1;
	}
	if (is_mounted(path)) {
		log_warnx("mountpoint %s is mounted already (is another zsd "
		    "serving it?)", path);
		return -1;
	}
	return 0;
}

/* What a swap server needs to not wait on its own swap; best effort. */
static void
harden(void)
{
	FILE *f;

	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0)
		log_warn("PR_SET_IO_FLUSHER");
	if ((f = fopen("/proc/self/oom_score_adj", "w")) == NULL ||
	    fputs("-1000\n", f) == EOF || fclose(f) == EOF) {
		log_warn("oom_score_adj");
		f = NULL;
	}
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0)
		log_warn("mlockall: zsd's memory could be swapped out");
	/*
	 * Normal priority for now, whatever zsd was started with (chrt, a
	 * unit's CPUSchedulingPolicy): the pool's threads, started next,
	 * inherit it.  sched_io() raises the loop before the workers start.
	 */
	sched_background();
}

/*
 * The I/O path at rt_priority: reclaim waits on zsd's swap I/O, and the
 * tasks that fill memory keep the CPUs busy doing it; they must not keep
 * zsd off them.  Called by the loop thread before it starts the workers
 * and the FUSE transport's threads, which inherit the policy; the pool's
 * own threads, started before at normal priority (harden()), and the
 * background threads, which call sched_background(), stay normal.  So
 * does the loop once those are started (main()): it serves the control
 * socket, timers and signals, none of them on the I/O path, and at an
 * equal real-time priority it would keep an I/O thread off its CPU for as
 * long as a control request took.
 * rt_priority 0 asks for normal scheduling, whatever zsd inherited.
 */
static void
sched_io(const struct zsd_config *cfg)
{
	struct sched_param sp = { .sched_priority = cfg->rt_priority };

	if (sched_setscheduler(0, cfg->rt_priority > 0 ? SCHED_FIFO :
	    SCHED_OTHER, &sp) != 0)
		log_warn("real-time priority %d (rt_priority); zsd runs at "
		    "normal priority", cfg->rt_priority);
}

/*
 * A thread that compacts, shrinks or turns swap on or off: normal
 * priority, so that it neither holds a CPU from the I/O threads (equal
 * real-time threads never take turns) nor from the rest of the system.
 */
void
sched_background(void)
{
	struct sched_param sp = { .sched_priority = 0 };

	/* Lowering one's own priority needs no privilege. */
	(void)sched_setscheduler(0, SCHED_OTHER, &sp);
}

/*
 * Unless restarting, the keeper is told the stop is done (unmounted, or
 * never mounted) and exits too.  A successor that failed before it served
 * leaves the mount and the arena to the next server, as a restart does.
 */
static void
zsd_free(struct zsd *z)
{
	if (z->took_over && !z->stopping)
		z->restarting = true;
	control_stop(z);
	/* Nothing more is queued; the workers answer what was. */
	fs_stop_reading(z->fs);
	workers_stop(z->workers);
	z->workers = NULL;
	fs_stop(z->fs, !z->restarting);
	z->fs = NULL;
	/* Restarting: the pages stay in the arena for the next server. */
	if (!z->restarting) {
		store_destroy(z->store);
		backing_close(z->backing);
		if (z->pool != NULL)
			zs_destroy_pool(z->pool);
	}
	if (z->swap_done != NULL)
		event_free(z->swap_done);
	if (z->stop_retry != NULL)
		event_free(z->stop_retry);
	if (z->keeper_ev != NULL)
		event_free(z->keeper_ev);
	if (!z->restarting)
		keeper_stopped(z);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "swapon", no_argument, NULL, 'S' },
		{ "no-swapon", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static struct zsd zsd;
	struct zsd *z = &zsd;
	struct event *sigs[3];
	const int signums[3] = { SIGTERM, SIGINT, SIGHUP };
	char err[512];
	long ncpu;
	unsigned int nr_workers, i;
	int c, error, verbose = 0;
	bool foreground = false;

	z->config_path = ZSD_CONFIG_FILE;
	z->loop_fd = -1;
	if ((overrides = calloc((size_t)argc, sizeof(*overrides))) == NULL)
		return 1;
	while ((c = getopt_long(argc, argv, "fc:o:vhV", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'f': foreground = true; break;
		case 'c':
			z->config_path = optarg;
			z->config_explicit = true;
			break;
		case 'o': overrides[nr_overrides++] = optarg; break;
		case 'v': verbose++; break;
		case 'S': swapon_override = 1; break;
		case 'N': swapon_override = 0; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("zsd %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (load_config(&z->cfg, z->config_path, z->config_explicit, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "zsd: %s\n", err);
		/*
		 * A keeper given the fds of a live swap by the service
		 * manager must not exit: their pages would be lost.  Its
		 * servers read the configuration again until it is right.
		 */
		if (!keeper_started_us() && keeper_listen_fds()) {
			log_init("zsd", foreground);
			log_warnx("the service manager keeps a zsd's swap: "
			    "starting servers all the same");
			return keeper_run(argv);
		}
		return 2;
	}
	/*
	 * A configuration error, found before anything is started; a
	 * lookup that failed (NSS, LDAP down) is not the file's fault.
	 */
	errno = 0;
	if (getgrnam(z->cfg.control_group) == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH &&
		    errno != EBADF && errno != EPERM) {
			fprintf(stderr, "zsd: control_group %s: cannot look it "
			    "up: %s\n", z->cfg.control_group, strerror(errno));
			if (!keeper_started_us() && keeper_listen_fds()) {
				log_init("zsd", foreground);
				return keeper_run(argv);
			}
			return 1;
		}
		fprintf(stderr, "zsd: control_group %s: no such group\n",
		    z->cfg.control_group);
		if (!keeper_started_us() && keeper_listen_fds()) {
			log_init("zsd", foreground);
			return keeper_run(argv);
		}
		return 2;
	}
	z->cfg.foreground |= foreground;
	if (verbose > z->cfg.verbose)
		z->cfg.verbose = verbose;
	log_init("zsd", z->cfg.foreground);
	log_set_verbose(z->cfg.verbose);

	/* Swap pages, the store's slots and the pool's pages are 4 KiB. */
	if (sysconf(_SC_PAGESIZE) != ZSD_PAGE_SIZE) {
		log_warnx("this kernel's pages are %ld bytes; zsd works with "
		    "%u-byte pages only", sysconf(_SC_PAGESIZE),
		    ZSD_PAGE_SIZE);
		return 1;
	}
	/* zsd as started is the keeper; what it starts serves. */
	if (!keeper_started_us())
		return keeper_run(argv);
	if ((error = keeper_attach(z)) != 0) {
		errno = -error;
		log_warn("taking over from the keeper");
		return 1;
	}
	/* A successor serves the live mount its predecessor left. */
	if (z->fuse_fd < 0 && (error = stale_cleanup(z->cfg.mountpoint)) < 0) {
		if (error != -EBUSY)
			log_warnx("cannot clean up what a zsd that is gone "
			    "left on %s; see RECOVERY in zsd(8)",
			    z->cfg.mountpoint);
		return 1;
	}
	if (z->fuse_fd < 0 && check_mountpoint(z->cfg.mountpoint) != 0)
		return 1;
	/* Before the first thread: threads inherit PR_SET_IO_FLUSHER. */
	harden();
	/* From here on no thread waits for the log (log.c). */
	if ((error = log_start()) != 0) {
		errno = -error;
		log_warn("starting the log thread");
		return 1;
	}

	evthread_use_pthreads();
	if ((z->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	z->swap_done = event_new(z->base, -1, 0, on_swap_done, z);
	z->stop_retry = evtimer_new(z->base, on_stop_retry, z);
	if (z->swap_done == NULL || z->stop_retry == NULL)
		fatalx("event_new failed");
	for (i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(z->base, signums[i], on_signal, z);
		if (sigs[i] == NULL || event_add(sigs[i], NULL) != 0)
			fatalx("cannot catch signal %d", signums[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	keeper_watch(z, zsd_restart);

	if ((error = zsd_pool_open(z, z->arena_fd, err, sizeof(err))) != 0) {
		errno = -error;
		fatal("%s", err);
	}
	sched_io(&z->cfg);
	nr_workers = z->cfg.workers;
	if (nr_workers == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nr_workers = ncpu > 0 ? (unsigned int)ncpu : 1;
	}
	z->workers = workers_start(z->store, nr_workers,
	    fs_max_works(nr_workers), &error);
	if (z->workers == NULL) {
		errno = -error;
		fatal("starting %u workers", nr_workers);
	}
	if ((error = zsd_fs_start(z)) != 0) {
		errno = -error;
		log_warn("mounting %s", z->cfg.mountpoint);
		zsd_free(z);
		return 1;
	}
	log_debug("mounted %s, %u workers", z->cfg.mountpoint, nr_workers);
	/* The I/O threads are started: the loop is not one (sched_io). */
	sched_background();
	if (control_start(z, &zsd_control_ops) != 0) {
		zsd_free(z);
		return 1;
	}

	event_base_dispatch(z->base);
	if (z->restarting) {
		/*
		 * What the workers hold is answered, the kernel resends the
		 * rest; the mount and the pages are the next server's.
		 */
		control_stop(z);
		fs_stop_reading(z->fs);
		workers_stop(z->workers);
		log_stop();
		_exit(0);
	}

	if (z->swap != SWAP_OFF && !z->restarting)
		log_warnx("exiting with %s still swap", z->loop_dev);
	zsd_free(z);
	for (i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_base_free(z->base);
	free(overrides);
	log_info("stopped");
	return z->exit_status;
}
