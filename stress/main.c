/*
 * main.c - zsd-stress: options, the run, its end, the exit status.
 *
 * The run: check what the workload needs, start zsd (--spawn) or find
 * the running one, make the cgroup (swap), start the workers and the
 * chaos thread, then watch once a second (zsd alive and healthy, the
 * progress line) until the time is up; then the workers check every page
 * once more and exit.  The end undoes everything in order whatever
 * happened: chaos (mem_limit put back), workers, cgroup, zsd.
 *
 * SIGINT, SIGTERM and SIGHUP stop the run the same way; the workers
 * ignore SIGINT and SIGHUP, and a spawned zsd is in a process group of
 * its own, so that Ctrl-C reaches zsd-stress alone.
 */
#include <config.h>

#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zsd-stress.h"

#define DEFAULT_SOCKET		"/run/zsd/control"
#define DEFAULT_DURATION	60
#define QUICK_DURATION		20
#define DEFAULT_LIMIT		(128ull << 20)
#define QUICK_LIMIT		(32ull << 20)
#define DEFAULT_FILE_SIZE	(256ull << 20)
#define QUICK_FILE_SIZE		(64ull << 20)
#define SWAP_FACTOR		4	/* working set: 4 times the limit */
#define MIN_LIMIT		(16ull << 20)
#define STAT_FAILURES_MAX	3	/* unanswered stats: zsd is stuck */
#define STOP_GRACE		60	/* seconds for workers to stop */

static volatile sig_atomic_t	got_signal;
static pthread_mutex_t		health_lock = PTHREAD_MUTEX_INITIALIZER;

double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool
shared_fail(struct shared *sh, const char *fmt, ...)
{
	int expected = 0;
	va_list ap;

	if (!atomic_compare_exchange_strong(&sh->failure_claimed, &expected,
	    1)) {
		atomic_store(&sh->stop, STOP_NOW);
		return false;
	}
	va_start(ap, fmt);
	vsnprintf(sh->failure, sizeof(sh->failure), fmt, ap);
	va_end(ap);
	atomic_store(&sh->failure_ready, 1);
	atomic_store(&sh->stop, STOP_NOW);
	return true;
}

void
run_mark_unhealthy(struct run *r, const char *fmt, ...)
{
	va_list ap;
	bool first;

	pthread_mutex_lock(&health_lock);
	first = r->unhealthy[0] == '\0';
	if (first) {
		va_start(ap, fmt);
		vsnprintf(r->unhealthy, sizeof(r->unhealthy), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&health_lock);
	atomic_store(&r->sh->stop, STOP_NOW);
	if (first)
		report_event(r, "zsd unhealthy: %s", r->unhealthy);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("zsd-stress: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(zsd-stress --help shows the options)\n", stderr);
	exit(EXIT_USAGE);
}

static void __attribute__((noreturn))
usage(FILE *f, int status)
{
	fprintf(f,
	    "usage: zsd-stress [swap|file] [options]\n"
	    "\n"
	    "  swap            worker processes in a memory cgroup, their pages\n"
	    "                  swapped to zsd (the default; root)\n"
	    "  file            direct I/O on the file of a zsd it spawns\n"
	    "\n"
	    "  --spawn         start a zsd of its own on a private mount\n"
	    "                  (always for file)\n"
	    "  -s, --socket P  the running zsd's control socket (default\n"
	    "                  " DEFAULT_SOCKET ")\n"
	    "  -c, --chaos     compact, shrink, limit, reset-max and reload\n"
	    "                  zsd at random times meanwhile (root)\n"
	    "  -d, --duration T  seconds of stress (or 5m, 1h; default %d)\n"
	    "  -S, --size SIZE working set (swap; default 4 x --limit) or\n"
	    "                  file size (file; default 256M)\n"
	    "  -l, --limit SIZE  the memory cgroup's limit (swap; default\n"
	    "                  128M)\n"
	    "  -j, --jobs N    workers (default: the CPUs, at least 2)\n"
	    "  --seed N        the seed (default: from the clock; printed)\n"
	    "  --mix KIND=W,...  page kinds: text, binary, random, same, dup\n"
	    "                  (default text=40,binary=20,random=10,same=20,\n"
	    "                  dup=10)\n"
	    "  --priority N    a spawned zsd's swap priority (default 32000)\n"
	    "  --algorithm A   a spawned zsd's codec: lz4 or zstd\n"
	    "  --quick         a short run, under a minute\n"
	    "  --interval T    seconds between progress lines when not on a\n"
	    "                  terminal (default 10)\n"
	    "  --json          one JSON object on stdout at the end\n"
	    "  -h, --help, -V, --version\n",
	    DEFAULT_DURATION);
	exit(status);
}

/* 4096, 64K, 512M, 2G (powers of 1024). */
static int
parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -1;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B' && shift != 0)
		end++;
	if (*end != '\0' || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* 90, 2.5, 5m, 1h. */
static int
parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if ((*s < '0' || *s > '9') && *s != '.')
		return -1;
	v = strtod(s, &end);
	if (*end == 's')
		end++;
	else if (*end == 'm') {
		v *= 60;
		end++;
	} else if (*end == 'h') {
		v *= 3600;
		end++;
	}
	if (*end != '\0' || !(v > 0) || v > 30 * 86400.0)
		return -1;
	*out = v;
	return 0;
}

static long
parse_int(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		usage_error("%s %s: expected a number from %ld to %ld", opt, s,
		    min, max);
	return v;
}

/* MemAvailable in bytes, or 0. */
static uint64_t
mem_available(void)
{
	unsigned long long kib = 0;
	char line[256];
	FILE *f;

	if ((f = fopen("/proc/meminfo", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return (uint64_t)kib << 10;
}

/* Free swap over all devices, in bytes. */
static uint64_t
swap_free(void)
{
	unsigned long long size, used, total = 0;
	char line[512];
	FILE *f;

	if ((f = fopen("/proc/swaps", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%*s %*s %llu %llu", &size, &used) == 2 &&
		    size > used)
			total += size - used;
	fclose(f);
	return (uint64_t)total << 10;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_SPAWN = 256, OPT_SEED, OPT_MIX, OPT_PRIORITY,
		OPT_ALGORITHM, OPT_QUICK, OPT_INTERVAL, OPT_JSON,
	};
	static const struct option longopts[] = {
		{ "spawn", no_argument, NULL, OPT_SPAWN },
		{ "socket", required_argument, NULL, 's' },
		{ "chaos", no_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'l' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "mix", required_argument, NULL, OPT_MIX },
		{ "priority", required_argument, NULL, OPT_PRIORITY },
		{ "algorithm", required_argument, NULL, OPT_ALGORITHM },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	bool have_seed = false, have_priority = false, have_algorithm = false;
	bool have_socket = false;
	char err[256], *end;
	long ncpu;
	int c;

	memset(o, 0, sizeof(*o));
	o->workload = WORKLOAD_SWAP;
	o->priority = 32000;
	o->algorithm = "lz4";
	o->socket = DEFAULT_SOCKET;
	mix_default(&o->mix);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:cd:S:l:j:hV", longopts,
	    NULL)) != -1) {
		switch (c) {
		case OPT_SPAWN: o->spawn = true; break;
		case 's': o->socket = optarg; have_socket = true; break;
		case 'c': o->chaos = true; break;
		case 'd':
			if (parse_seconds(optarg, &o->duration) != 0)
				usage_error("--duration %s: expected seconds "
				    "(90, 2.5), or minutes or hours (5m, 1h)",
				    optarg);
			break;
		case 'S':
			if (parse_size(optarg, &o->size) != 0)
				usage_error("--size %s: expected a size such "
				    "as 512M or 2G", optarg);
			break;
		case 'l':
			if (parse_size(optarg, &o->limit) != 0)
				usage_error("--limit %s: expected a size such "
				    "as 128M", optarg);
			break;
		case 'j':
			o->jobs = (unsigned int)parse_int("--jobs", optarg, 1,
			    MAX_JOBS);
			break;
		case OPT_SEED:
			errno = 0;
			o->seed = strtoull(optarg, &end, 0);
			if (*optarg == '\0' || *optarg == '-' || *end != '\0'
			    || errno != 0)
				usage_error("--seed %s: expected a number "
				    "(decimal, or hex with 0x)", optarg);
			have_seed = true;
			break;
		case OPT_MIX:
			if (mix_parse(optarg, &o->mix, err, sizeof(err)) != 0)
				usage_error("%s", err);
			break;
		case OPT_PRIORITY:
			o->priority = (int)parse_int("--priority", optarg, -1,
			    32767);
			have_priority = true;
			break;
		case OPT_ALGORITHM:
			if (strcmp(optarg, "lz4") != 0 &&
			    strcmp(optarg, "zstd") != 0)
				usage_error("--algorithm %s: expected lz4 or "
				    "zstd", optarg);
			o->algorithm = optarg;
			have_algorithm = true;
			break;
		case OPT_QUICK: o->quick = true; break;
		case OPT_INTERVAL:
			if (parse_seconds(optarg, &o->interval) != 0)
				usage_error("--interval %s: expected seconds",
				    optarg);
			break;
		case OPT_JSON: o->json = true; break;
		case 'h': usage(stdout, EXIT_PASS);
		case 'V': printf("zsd-stress %s\n", PACKAGE_VERSION); exit(0);
		case ':':
			usage_error("%s needs a value", argv[optind - 1]);
		default:
			if (optopt != 0 && optopt < 256)
				usage_error("unknown option -%c", optopt);
			usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (strcmp(argv[optind], "swap") == 0)
			o->workload = WORKLOAD_SWAP;
		else if (strcmp(argv[optind], "file") == 0)
			o->workload = WORKLOAD_FILE;
		else
			usage_error("unknown workload '%s': swap or file",
			    argv[optind]);
		if (++optind < argc)
			usage_error("one workload at a time: '%s' is too "
			    "many", argv[optind]);
	}

	/* What goes with what. */
	if (o->workload == WORKLOAD_FILE) {
		o->spawn = true;
		if (o->limit != 0)
			usage_error("--limit is the memory cgroup's limit, for "
			    "the swap workload only");
	}
	if (o->spawn && have_socket)
		usage_error("--socket is for a running zsd; with --spawn "
		    "zsd-stress uses its own");
	if (!o->spawn && (have_priority || have_algorithm))
		usage_error("--priority and --algorithm are for a zsd "
		    "zsd-stress spawns (add --spawn)");

	/* Defaults, smaller with --quick. */
	if (o->duration == 0)
		o->duration = o->quick ? QUICK_DURATION : DEFAULT_DURATION;
	if (o->interval == 0)
		o->interval = o->quick ? 5 : 10;
	if (o->jobs == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		o->jobs = o->quick ? 2 : ncpu > 2 ? (unsigned int)(ncpu >
		    MAX_JOBS ? MAX_JOBS : ncpu) : 2;
	}
	if (o->workload == WORKLOAD_SWAP) {
		if (o->limit == 0)
			o->limit = o->size != 0 ? o->size / SWAP_FACTOR :
			    o->quick ? QUICK_LIMIT : DEFAULT_LIMIT;
		if (o->size == 0)
			o->size = SWAP_FACTOR * o->limit;
		if (o->limit < MIN_LIMIT)
			usage_error("--limit %" PRIu64 "M: at least %lluM (the "
			    "workers' own memory must fit)", o->limit >> 20,
			    MIN_LIMIT >> 20);
		if (o->size <= o->limit)
			usage_error("--size %" PRIu64 "M must be larger than "
			    "--limit %" PRIu64 "M, or nothing would go to swap"
			    " (several times larger is best)", o->size >> 20,
			    o->limit >> 20);
	} else if (o->size == 0)
		o->size = o->quick ? QUICK_FILE_SIZE : DEFAULT_FILE_SIZE;
	o->size &= ~(uint64_t)(PAGE - 1);
	if (o->size / PAGE < 256ull * o->jobs)
		usage_error("--size %" PRIu64 "K is too small for %u jobs: at "
		    "least 1M each", o->size >> 10, o->jobs);
	if (!have_seed)
		o->seed = hash64((uint64_t)time(NULL) ^ (uint64_t)getpid() <<
		    32 ^ (uint64_t)(now() * 1e9));
}

static void
on_signal(int sig)
{
	got_signal = sig;
}

static void
catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* What the run needs that this machine may lack: EXIT_CANNOT if so. */
static int
check_requirements(struct run *r, char *err, size_t len)
{
	const struct options *o = &r->opt;
	uint64_t avail = mem_available(), need;
	char others[512];

	if (o->workload == WORKLOAD_SWAP) {
		if (geteuid() != 0) {
			snprintf(err, len, "the swap workload needs root (a "
			    "memory cgroup%s)", o->spawn ? ", a loop device "
			    "and swapon" : "");
			return EXIT_CANNOT;
		}
		if (cgroup_detect(&r->cg, err, len) != 0)
			return EXIT_CANNOT;
	}
	if (o->chaos && geteuid() != 0) {
		snprintf(err, len, "--chaos needs root: only root may compact, "
		    "shrink, limit and reset-max");
		return EXIT_CANNOT;
	}
	if (o->spawn && access("/dev/fuse", R_OK | W_OK) != 0) {
		snprintf(err, len, "--spawn needs /dev/fuse: %s",
		    strerror(errno));
		return EXIT_CANNOT;
	}
	/* zsd keeps what it is given in memory: it must fit. */
	need = o->size + o->size / 8;
	if (avail != 0 && need > avail - avail / 5) {
		snprintf(err, len, "not enough memory: --size %" PRIu64 " MiB "
		    "needs about %" PRIu64 " MiB (the workers' memory and zsd's "
		    "pool), and %" PRIu64 " MiB are available", o->size >> 20,
		    need >> 20, avail >> 20);
		return EXIT_CANNOT;
	}
	if (o->workload == WORKLOAD_SWAP && o->spawn && swaps_at_or_above(
	    o->priority, NULL, others, sizeof(others)) > 0) {
		snprintf(err, len, "another swap at priority %d or more would "
		    "take the pages meant for zsd: %s (use --priority, or "
		    "swapoff it)", o->priority, others);
		return EXIT_CANNOT;
	}
	return 0;
}

/* Start our zsd, or find the running one: 0 or EXIT_CANNOT. */
static int
connect_zsd(struct run *r, char *err, size_t len)
{
	const struct options *o = &r->opt;
	struct zsd_status s;
	char why[256], others[400];
	uint64_t disksize;

	if (o->spawn) {
		/* Room for the whole working set, whatever the limit. */
		disksize = o->workload == WORKLOAD_SWAP ? ((o->size + (64u <<
		    20)) & ~((1ull << 20) - 1)) : o->size;
		if (spawn_start(&r->zsd, o, o->workload == WORKLOAD_SWAP,
		    disksize, err, len) != 0)
			return EXIT_CANNOT;
		r->spawned = true;
		r->socket = r->zsd.control;
		if (ctl_status(r->socket, &s, why, sizeof(why)) != 0) {
			snprintf(err, len, "the zsd started does not answer: "
			    "%s", why);
			return EXIT_CANNOT;
		}
		if (s.swap_on)
			report_event(r, "zsd: spawned, pid %ld, %s as swap on "
			    "%s (priority %d), %s, %" PRIu64 " MiB, in %s",
			    (long)r->zsd.pid, s.file, s.loop, s.priority,
			    s.algorithm, s.disksize >> 20, r->zsd.dir);
		else
			report_event(r, "zsd: spawned, pid %ld, %s, %s, %"
			    PRIu64 " MiB, in %s", (long)r->zsd.pid, s.file,
			    s.algorithm, s.disksize >> 20, r->zsd.dir);
		return 0;
	}
	r->socket = o->socket;
	if (ctl_status(r->socket, &s, why, sizeof(why)) != 0) {
		snprintf(err, len, "%s (or use --spawn)", why);
		return EXIT_CANNOT;
	}
	if (!s.swap_on) {
		snprintf(err, len, "the zsd at %s serves %s but not as swap",
		    r->socket, s.file);
		return EXIT_CANNOT;
	}
	report_event(r, "zsd: running, %s as swap on %s (%s, priority %d), "
	    "%" PRIu64 " MiB", s.file, s.loop, s.algorithm, s.priority,
	    s.disksize >> 20);
	if (swaps_at_or_above(s.priority, s.loop, others, sizeof(others)) >
	    0) {
		snprintf(r->warning, sizeof(r->warning), "other swap at zsd's "
		    "priority or above takes pages too: %s", others);
		report_event(r, "warning: %s", r->warning);
	}
	if (swap_free() < o->size - o->limit) {
		snprintf(err, len, "only %" PRIu64 " MiB of swap are free; the "
		    "working set needs %" PRIu64 " MiB (use a smaller --size)",
		    swap_free() >> 20, (o->size - o->limit) >> 20);
		return EXIT_CANNOT;
	}
	return 0;
}

int
run_check_health(struct run *r)
{
	static int failures;
	char why[256];
	int status;

	if (r->spawned && !spawn_alive(&r->zsd)) {
		status = r->zsd.exit_status;
		run_mark_unhealthy(r, "zsd %s %d during the run",
		    WIFEXITED(status) ? "exited with status" :
		    "was killed by signal", WIFEXITED(status) ?
		    WEXITSTATUS(status) : WTERMSIG(status));
		return -1;
	}
	r->stat_prev = r->stat;
	if (ctl_stat(r->socket, &r->stat, why, sizeof(why)) != 0) {
		r->stat = r->stat_prev;
		/* The chaos thread waits for a new server, and judges it. */
		if (atomic_load(&r->chaos_replacing))
			return 0;
		if (++failures >= STAT_FAILURES_MAX) {
			run_mark_unhealthy(r, "zsd does not answer: %s", why);
			return -1;
		}
		return 0;
	}
	failures = 0;
	if (r->stat.failed_reads > r->stat0.failed_reads) {
		run_mark_unhealthy(r, "zsd failed %" PRIu64 " reads "
		    "(failed_reads)", r->stat.failed_reads -
		    r->stat0.failed_reads);
		return -1;
	}
	if (r->stat.failed_writes - r->stat.limit_refusals >
	    r->stat0.failed_writes - r->stat0.limit_refusals) {
		run_mark_unhealthy(r, "zsd failed %" PRIu64 " writes for "
		    "another reason than mem_limit (failed_writes)",
		    (r->stat.failed_writes - r->stat.limit_refusals) -
		    (r->stat0.failed_writes - r->stat0.limit_refusals));
		return -1;
	}
	return 0;
}

static bool
workers_reap(struct run *r)
{
	return r->opt.workload == WORKLOAD_SWAP ? swap_workers_reap(r) :
	    file_workers_reap(r);
}

static void
show_failure(struct run *r)
{
	if (!r->failure_shown && atomic_load(&r->sh->failure_ready)) {
		r->failure_shown = true;
		report_event(r, "FAILED (seed 0x%" PRIx64 "): %s", r->opt.seed,
		    r->sh->failure);
	}
}

/* Watch until the workers are done. */
static void
watch(struct run *r)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	double t_next = r->t0 + 1, t_stop = 0, t;

	for (;;) {
		nanosleep(&ts, NULL);
		t = now();
		if (got_signal && !r->interrupted) {
			r->interrupted = got_signal;
			atomic_store(&r->sh->stop, STOP_NOW);
			report_event(r, "%s: stopping", strsignal(got_signal));
		}
		show_failure(r);
		if (workers_reap(r))
			break;
		if (atomic_load(&r->sh->stop) == STOP_NONE &&
		    t - r->t0 >= r->opt.duration) {
			r->t_stress_end = t;
			atomic_store(&r->sh->final_check, 1);
			atomic_store(&r->sh->stop, STOP_FINISH);
		}
		if (atomic_load(&r->sh->stop) == STOP_NOW) {
			if (t_stop == 0)
				t_stop = t;
			if (t - t_stop > STOP_GRACE) {
				shared_fail(r->sh, "workers still running %d "
				    "s after the stop", STOP_GRACE);
				show_failure(r);
				if (r->opt.workload == WORKLOAD_SWAP)
					swap_workers_kill(r);
				else
					r->abandoned = true;
				break;
			}
		}
		if (t >= t_next) {
			run_check_health(r);
			report_tick(r, false);
			r->t_stat_prev = t;
			t_next += 1;
			if (t_next < t)
				t_next = t + 1;
		}
	}
	show_failure(r);
}

static void
make_rerun(struct run *r)
{
	const struct options *o = &r->opt;
	char mixs[128];
	int n;

	mix_format(&o->mix, mixs, sizeof(mixs));
	n = snprintf(r->rerun, sizeof(r->rerun), "zsd-stress %s%s%s --seed "
	    "0x%" PRIx64 " --size %" PRIu64 "K --jobs %u --mix %s",
	    o->workload == WORKLOAD_SWAP ? "swap" : "file",
	    o->spawn && o->workload == WORKLOAD_SWAP ? " --spawn" : "",
	    o->chaos ? " --chaos" : "", o->seed, o->size >> 10, o->jobs, mixs);
	if (o->workload == WORKLOAD_SWAP && n > 0 && (size_t)n <
	    sizeof(r->rerun))
		snprintf(r->rerun + n, sizeof(r->rerun) - (size_t)n,
		    " --limit %" PRIu64 "K", o->limit >> 10);
}

int
main(int argc, char **argv)
{
	static struct run run;
	struct run *r = &run;
	char err[1024] = "", mixs[128];
	int status = 0, error;

	parse_options(argc, argv, &r->opt);
	r->sh = mmap(NULL, sizeof(*r->sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->sh == MAP_FAILED) {
		fprintf(stderr, "zsd-stress: mmap: %s\n", strerror(errno));
		return EXIT_CANNOT;
	}
	memset(r->sh, 0, sizeof(*r->sh));
	r->zsd.pid = -1;
	pattern_init(r->opt.seed, &r->opt.mix);
	make_rerun(r);
	report_init(r);
	catch_signals();
	r->t0 = now();

	mix_format(&r->opt.mix, mixs, sizeof(mixs));
	if (r->opt.workload == WORKLOAD_SWAP)
		report_event(r, "zsd-stress swap: seed 0x%" PRIx64 "; %u "
		    "processes, %" PRIu64 " MiB in a %" PRIu64 " MiB memory "
		    "cgroup; %.0f s%s; mix %s", r->opt.seed, r->opt.jobs,
		    r->opt.size >> 20, r->opt.limit >> 20, r->opt.duration,
		    r->opt.chaos ? ", chaos" : "", mixs);
	else
		report_event(r, "zsd-stress file: seed 0x%" PRIx64 "; %u "
		    "threads, a %" PRIu64 " MiB file; %.0f s%s; mix %s",
		    r->opt.seed, r->opt.jobs, r->opt.size >> 20,
		    r->opt.duration, r->opt.chaos ? ", chaos" : "", mixs);

	if ((status = check_requirements(r, err, sizeof(err))) != 0 ||
	    (status = connect_zsd(r, err, sizeof(err))) != 0)
		goto out;
	if (ctl_stat(r->socket, &r->stat0, err, sizeof(err)) != 0) {
		status = EXIT_CANNOT;
		goto out;
	}
	r->stat = r->stat_prev = r->stat0;
	r->stat_ok = true;
	if (r->opt.workload == WORKLOAD_SWAP &&
	    cgroup_create(&r->cg, r->opt.limit, err, sizeof(err)) != 0) {
		status = EXIT_CANNOT;
		goto out;
	}
	if (got_signal)
		goto out;
	r->t0 = r->t_stat_prev = now();
	status = r->opt.workload == WORKLOAD_SWAP ? swap_workers_start(r, err,
	    sizeof(err)) : file_workers_start(r, err, sizeof(err));
	if (status != 0) {
		atomic_store(&r->sh->stop, STOP_NOW);
		goto out;
	}
	if (r->opt.chaos && (error = chaos_start(r)) != 0) {
		snprintf(err, sizeof(err), "starting chaos: %s",
		    strerror(-error));
		atomic_store(&r->sh->stop, STOP_NOW);
		status = EXIT_CANNOT;
	}
	watch(r);
out:
	/* Undo everything, in order, whatever happened. */
	if (atomic_load(&r->sh->stop) == STOP_NONE)
		atomic_store(&r->sh->stop, STOP_NOW);
	chaos_stop(r);
	if (r->opt.workload == WORKLOAD_SWAP)
		swap_workers_kill(r);
	else if (!r->abandoned)
		file_workers_join(r);
	if (r->stat_ok) {
		run_check_health(r);
		r->t_end = now();
		report_tick(r, true);
	}
	r->t_end = now();
	if (cgroup_remove(&r->cg) != 0 && status == 0)
		status = EXIT_FAIL;

	if (status == 0 && (atomic_load(&r->sh->wrong_pages) > 0 ||
	    r->sh->failure[0] != '\0' || r->unhealthy[0] != '\0'))
		status = EXIT_FAIL;
	if (status == 0 && !r->interrupted && r->opt.workload ==
	    WORKLOAD_SWAP && r->stat.writes == r->stat0.writes) {
		snprintf(r->unhealthy, sizeof(r->unhealthy), "no page went "
		    "to zsd: nothing was tested (is its swap the one in "
		    "use?)");
		status = EXIT_FAIL;
	}
	if (r->spawned)
		spawn_stop(&r->zsd, status == EXIT_FAIL && r->unhealthy[0]);
	else if (r->zsd.dir[0] != '\0')
		spawn_stop(&r->zsd, false);
	if (err[0] != '\0')
		fprintf(stderr, "zsd-stress: %s\n", err);
	if (r->stat_ok)
		report_summary(r, status);
	else if (r->opt.json)
		report_cannot(r, status, err);
	if (status == EXIT_FAIL && !r->opt.json)
		fprintf(r->out, "  %-18s %s\n", "rerun", r->rerun);
	if (status == 0 && r->interrupted)
		status = 128 + r->interrupted;
	return status;
}
