/*
 * zsd-stress.h - what the parts of zsd-stress share.
 *
 * zsd-stress runs a workload against zsd and checks every byte it reads
 * back: "swap" (worker processes in a memory cgroup, their pages going
 * to zsd's swap) or "file" (worker threads doing direct I/O on the file
 * of a zsd it spawned).  Optionally "chaos" (a thread sending zsd
 * control requests and reloads at seeded random times) runs beside.
 *
 * The parts:
 *	pattern.c	what a page must hold: a function of the seed, the
 *			worker (stream), the page number and its pass
 *	ctl.c		the control socket: stat, status, commands
 *	spawn.c		a zsd of our own on a private mount, and its end
 *	cgroup.c	the memory cgroup the swap workers run in
 *	work-swap.c	the swap workload
 *	work-file.c	the file workload
 *	chaos.c		the chaos thread
 *	report.c	progress lines, the summary table, JSON
 *	main.c		options, the run, clean-up, the exit status
 *
 * Workers of both workloads count into struct shared, which lives in
 * memory shared with the worker processes (MAP_SHARED): every field is
 * atomic, and the first wrong page is described once, by the worker that
 * wins failure_claimed.
 */
#ifndef ZSD_STRESS_H
#define ZSD_STRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define PAGE			4096u
#define MAX_JOBS		256

/* Exit statuses, zsd-stress(8). */
#define EXIT_PASS		0
#define EXIT_FAIL		1	/* a wrong page, or zsd unhealthy */
#define EXIT_USAGE		2
#define EXIT_CANNOT		3	/* cannot run here */

enum workload { WORKLOAD_SWAP, WORKLOAD_FILE };

/* --- pattern.c ------------------------------------------------------- */

enum page_kind {
	KIND_TEXT,		/* words: compresses well */
	KIND_BINARY,		/* records of small numbers and pointers */
	KIND_RANDOM,		/* does not compress */
	KIND_SAME,		/* one 64-bit word repeated (often zero) */
	KIND_DUP,		/* one of a few pages shared by many */
	NR_KINDS
};

/* Weights of the kinds, from --mix. */
struct mix {
	unsigned int	weight[NR_KINDS];
	unsigned int	total;
};

extern const char *const kind_names[NR_KINDS];

void		 mix_default(struct mix *m);
/* "text=40,random=10,...": 0, or -1 with err set. */
int		 mix_parse(const char *s, struct mix *m, char *err,
		    size_t errlen);
void		 mix_format(const struct mix *m, char *buf, size_t len);
void		 pattern_init(uint64_t seed, const struct mix *m);
/* The kind of (stream, page, pass); pass 0 is a page of zeros. */
enum page_kind	 page_kind_of(uint32_t stream, uint64_t page, uint32_t pass);
/* What page must hold at that pass, into buf (PAGE bytes). */
enum page_kind	 page_fill(void *buf, uint32_t stream, uint64_t page,
		    uint32_t pass);
/* A wrong page described: first difference, and what it holds instead. */
void		 page_explain(const void *found, uint32_t stream,
		    uint64_t page, uint32_t pass, char *out, size_t len);
uint64_t	 rand_next(uint64_t *state);
uint64_t	 hash64(uint64_t x);

/* --- counters shared with the workers -------------------------------- */

/* One per worker, on its own cache lines; written by that worker only. */
struct worker_counters {
	_Atomic uint64_t	pages_written;
	_Atomic uint64_t	pages_verified;
	_Atomic uint64_t	pages_freed;	/* MADV_DONTNEED, holes */
	_Atomic uint64_t	bytes_written;	/* file: by this program */
	_Atomic uint64_t	bytes_read;
	_Atomic uint64_t	writes_refused;	/* file: ENOSPC, retried */
	_Atomic uint64_t	kind_written[NR_KINDS];
	_Atomic int		done;		/* 1 once finished */
} __attribute__((aligned(64)));

#define STOP_NONE		0
#define STOP_FINISH		1	/* time is up: final check, then exit */
#define STOP_NOW		2	/* failure or interrupt: exit at once */

struct shared {
	_Atomic int		stop;
	_Atomic int		final_check;	/* workers in their final check */
	_Atomic uint64_t	wrong_pages;
	_Atomic int		failure_claimed;
	_Atomic int		failure_ready;	/* failure is written */
	char			failure[1024];	/* the first failure */
	struct worker_counters	w[MAX_JOBS];
};

/* The first failure of a worker: 1 if it was the first, and stop all. */
bool		 shared_fail(struct shared *sh, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));

/* --- options --------------------------------------------------------- */

struct options {
	enum workload	 workload;
	bool		 spawn;
	bool		 chaos;
	bool		 json;
	bool		 quick;
	uint64_t	 seed;
	double		 duration;	/* seconds */
	uint64_t	 size;		/* bytes: working set, or file size */
	uint64_t	 limit;		/* bytes: the memory cgroup's limit */
	unsigned int	 jobs;
	int		 priority;	/* spawned zsd's swap priority */
	const char	*algorithm;	/* spawned zsd's first codec */
	const char	*socket;	/* the running zsd's control socket */
	double		 interval;	/* seconds between plain lines */
	struct mix	 mix;
};

/* --- ctl.c ----------------------------------------------------------- */

/* The counters of zsctl stat that zsd-stress looks at. */
struct zsd_stat {
	uint64_t	orig_data_size;
	uint64_t	compr_data_size;
	uint64_t	mem_used_total;
	uint64_t	mem_limit;
	uint64_t	mem_used_max;
	uint64_t	same_pages;
	uint64_t	pages_compacted;
	uint64_t	huge_pages;
	uint64_t	failed_reads;
	uint64_t	failed_writes;
	uint64_t	limit_refusals;
	uint64_t	notify_free;
	uint64_t	pages_stored;
	uint64_t	reads;
	uint64_t	writes;
	uint64_t	disksize;
	uint64_t	pages_merged;	/* 0 from a zsd that does not merge */
};

/* The first record of zsctl status. */
struct zsd_status {
	char		file[256];
	char		algorithm[32];
	char		loop[64];
	bool		swap_on;
	int		priority;
	uint64_t	disksize;
	long		pid;		/* the serving process */
	long		keeper_pid;	/* 0: no keeper, no restarts */
	uint64_t	restarts;
};

/* Ask zsd; 0, or -errno with why set (-EBUSY, -EPERM, -ECONNREFUSED..). */
int		 ctl_stat(const char *socket, struct zsd_stat *st, char *why,
		    size_t len);
int		 ctl_status(const char *socket, struct zsd_status *s,
		    char *why, size_t len);
/* "compact", "shrink SIZE", "limit SIZE", "reset-max": reply in out. */
int		 ctl_command(const char *socket, const char *cmd,
		    const char *arg, char *out, size_t len);

/* --- spawn.c --------------------------------------------------------- */

struct spawned {
	pid_t		 pid;		/* -1 once reaped */
	int		 exit_status;	/* its wait status, once reaped */
	bool		 swapon;
	uint64_t	 disksize;
	int		 priority;
	char		 algorithm[8];	/* in the config file now */
	char		 dir[256];	/* private: mnt, control, conf, log */
	char		 mnt[300];
	char		 control[300];
	char		 conf[300];
	char		 log[300];
	char		 file[320];	/* the FUSE file */
};

/* Start zsd and wait until it is ready: 0, or -1 with err set. */
int		 spawn_start(struct spawned *z, const struct options *o,
		    bool swapon, uint64_t disksize, char *err, size_t errlen);
/* Rewrite the config with another codec and send SIGHUP: 0 or -errno. */
int		 spawn_reload(struct spawned *z, const char *algorithm);
/* Does it still run?  Reaps it if not. */
bool		 spawn_alive(struct spawned *z);
/* Stop it (SIGTERM, then SIGKILL), undo what it left, remove the dir. */
void		 spawn_stop(struct spawned *z, bool show_log);
void		 spawn_log_tail(const struct spawned *z, FILE *f, int lines);
/* Swap devices at priority >= prio, but dev: into buf; 0 if none. */
int		 swaps_at_or_above(int prio, const char *dev, char *buf,
		    size_t len);

/* --- cgroup.c -------------------------------------------------------- */

struct cgroup {
	int		version;	/* 1 or 2 */
	char		path[256];	/* the directory we made, or "" */
	uint64_t	limit;
};

/* Find the memory controller: 0, or -1 with why set. */
int		 cgroup_detect(struct cgroup *cg, char *why, size_t len);
int		 cgroup_create(struct cgroup *cg, uint64_t limit, char *why,
		    size_t len);
/* Move the calling process in: 0 or -errno. */
int		 cgroup_enter(const struct cgroup *cg);
/* Processes the OOM killer killed in it so far. */
uint64_t	 cgroup_oom_kills(const struct cgroup *cg);
/* Bytes of the cgroup's memory in swap now, or 0. */
uint64_t	 cgroup_swap_bytes(const struct cgroup *cg);
/* Kill what is left in it and remove it: 0, or -1 if it stays. */
int		 cgroup_remove(struct cgroup *cg);

/* --- work-swap.c and work-file.c ------------------------------------- */

struct run;

/* Start the workers: 0, or EXIT_CANNOT/EXIT_FAIL with err set. */
int		 swap_workers_start(struct run *r, char *err, size_t errlen);
/* Reap what ended; true once all have.  A worker dying is a failure. */
bool		 swap_workers_reap(struct run *r);
void		 swap_workers_kill(struct run *r);

int		 file_workers_start(struct run *r, char *err, size_t errlen);
bool		 file_workers_reap(struct run *r);
void		 file_workers_join(struct run *r);

/* --- chaos.c --------------------------------------------------------- */

#define CHAOS_COMPACT		0
#define CHAOS_SHRINK		1
#define CHAOS_LIMIT		2
#define CHAOS_RESET_MAX		3
#define CHAOS_RELOAD		4
#define CHAOS_RESTART		5	/* zsctl restart */
#define CHAOS_KILL		6	/* kill -9 of the serving process */
#define NR_CHAOS		7

extern const char *const chaos_names[NR_CHAOS];
bool		 chaos_enabled(const struct run *r, int action);

int		 chaos_start(struct run *r);
/* Stop it and put mem_limit back as it was. */
void		 chaos_stop(struct run *r);

/* --- report.c -------------------------------------------------------- */

/* A point of the timeline: one per progress interval. */
struct sample {
	double		t;		/* seconds since start */
	double		mib_out;	/* MiB/s written to zsd */
	double		mib_in;		/* MiB/s read from zsd */
	uint64_t	verified;	/* pages verified so far */
	uint64_t	pool;		/* mem_used_total */
	double		ratio;		/* orig_data_size / mem_used_total */
};

void		 report_init(struct run *r);
/* Print to the progress stream: clears the live line first. */
void		 report_event(struct run *r, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
void		 report_tick(struct run *r, bool last);
void		 report_summary(struct run *r, int status);
/* --json when the run never started: the reason. */
void		 report_cannot(struct run *r, int status, const char *why);

/* --- the run: main.c owns it ----------------------------------------- */

struct run {
	struct options		 opt;
	struct shared		*sh;		/* MAP_SHARED */
	const char		*socket;	/* the zsd we talk to */
	struct spawned		 zsd;
	bool			 spawned;
	struct cgroup		 cg;
	double			 t0;		/* monotonic start */
	double			 t_stress_end;	/* when the final check began */
	double			 t_end;

	/* Workers. */
	pid_t			 pids[MAX_JOBS];	/* swap: -1 reaped */
	int			 worker_status[MAX_JOBS];
	unsigned int		 incarnation[MAX_JOBS];	/* swap: restarts */
	uint64_t		 oom_kills;	/* workers the OOM killer took */
	uint64_t		 oom_seen;	/* the cgroup's count, known */
	void			*file_ctx;		/* work-file.c */
	bool			 abandoned;	/* workers did not stop */

	/* zsd's counters: at the start, now, the previous tick. */
	struct zsd_stat		 stat0, stat, stat_prev;
	double			 t_stat_prev;
	bool			 stat_ok;
	uint64_t		 pool_peak;
	uint64_t		 merged_peak;	/* pages_merged at most */
	uint64_t		 cg_swap_peak;
	char			 unhealthy[512];	/* why, if it is */
	char			 warning[512];
	char			 rerun[512];	/* the command to rerun */
	bool			 failure_shown;

	/* Chaos: counts per action, failures described. */
	void			*chaos_ctx;
	_Atomic uint64_t	 chaos_done[NR_CHAOS];
	_Atomic uint64_t	 chaos_busy;
	_Atomic uint64_t	 chaos_failed;
	/* A server being replaced: zsd may not answer meanwhile. */
	_Atomic bool		 chaos_replacing;
	_Atomic uint64_t	 replace_max_ms;	/* longest gap */
	bool			 can_restart;	/* zsd has a keeper */

	/* Output. */
	FILE			*out;		/* progress and events */
	bool			 tty;
	bool			 line_live;	/* a \r line is showing */
	double			 last_plain;
	struct sample		*samples;
	size_t			 nr_samples, cap_samples;
	int			 interrupted;	/* the signal, or 0 */
};

double		 now(void);
/* 0 if zsd looks healthy; else sets r->unhealthy and stops the run. */
int		 run_check_health(struct run *r);
void		 run_mark_unhealthy(struct run *r, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));

#endif /* ZSD_STRESS_H */
