/*
 * zsd.h - the daemon's internal interfaces, grouped by the file that
 * implements them.
 *
 * The daemon sits between the FUSE transport (fuse/fs.h), which it
 * starts and gives callbacks to, and libzs (zs.h), which it calls: the
 * transport reaches the daemon only through those callbacks, and libzs
 * knows nothing of it.
 *
 * Threads: the event loop thread (zsd.c) runs the control socket, signals,
 * timers and owns everything in struct zsd that is not marked otherwise;
 * the FUSE transport's threads (fuse/fs.c, uring.c) take FUSE requests,
 * serve small swap-ins and tell the loop of INIT and unmount by events of
 * its own, so that the data path never waits on the loop; the worker
 * threads (worker.c) compress and decompress and send FUSE replies; the
 * swap thread (swap.c) runs swapon/swapoff, which wait on I/O that the
 * FUSE threads serve meanwhile; the log thread (log.c) writes out the
 * lines the others queue.
 */
#ifndef ZSD_H
#define ZSD_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "log.h"
#include "zs.h"

#define ZSD_PAGE_SIZE	4096u
#define ZSD_PAGE_SHIFT	12

/* codec.c */
enum codec_id {
	CODEC_LZ4 = 1,
	CODEC_ZSTD = 2,
};

struct codec_ctx;

const char	*codec_name(enum codec_id id);
int		 codec_by_name(const char *name, enum codec_id *id);
/* Contexts for every codec, so a thread can read what either wrote. */
struct codec_ctx *codec_ctx_create(int zstd_level);
void		 codec_ctx_destroy(struct codec_ctx *ctx);
void		 codec_ctx_set_level(struct codec_ctx *ctx, int zstd_level);
/*
 * Room codec_compress may use in dst whatever cap is: lz4's worst case for
 * a page (LZ4_COMPRESSBOUND), with which lz4 takes its fastest path, one
 * that never checks for the end of dst.
 */
#define CODEC_DST_SIZE	(ZSD_PAGE_SIZE + ZSD_PAGE_SIZE / 255 + 16)
/* Compressed length, or 0 if it is more than cap. */
size_t		 codec_compress(struct codec_ctx *ctx, enum codec_id id,
		    const void *page, void *dst, size_t cap);
/* 0, or -EIO if src is not a valid compressed page. */
int		 codec_decompress(struct codec_ctx *ctx, enum codec_id id,
		    const void *src, size_t len, void *page);

/* config.c */
struct zsd_config {
	uint64_t	disksize;	/* bytes of the swap file, page aligned */
	enum codec_id	algorithm;
	int		zstd_level;
	int		priority;	/* swap priority, -1..32767 */
	uint64_t	mem_limit;	/* pool bytes; 0: none */
	bool		merge;		/* same-page merging */
	unsigned int	workers;	/* 0: one per core */
	int		rt_priority;	/* SCHED_FIFO priority; 0: normal */
	char		mountpoint[PATH_MAX];
	char		name[64];	/* the swap file in the mount */
	bool		swapon;		/* activate as swap */
	bool		discard;	/* swapon with discard */
	bool		foreground;
	int		verbose;
	char		control[108];	/* control socket (sun_path) */
	char		control_group[64]; /* may read statistics */
	int		control_timeout; /* seconds a client may idle */
	int		compact_threshold; /* freeable % of used; 0: off */
	int		compact_interval; /* seconds between checks */
	/* Idle pages (idle.c, control.c); times in seconds, 0: off. */
	int		recompress_level; /* zstd level */
	int		recompress_after;
	int		recompress_threshold; /* bytes */
	char		backing_file[PATH_MAX]; /* "": none */
	uint64_t	backing_size;	/* 0: disksize */
	int		writeback_after;
	uint64_t	writeback_limit; /* bytes a day; 0: none */
	int		idle_interval;	/* between automatic passes */
	int		idle_batch;	/* pages a pass, each kind */
	int		idle_cpu_pressure; /* %; 0: ignore PSI */
	int		idle_io_pressure;
	char		transport[8];	/* auto, uring or dev (fuse/uring.c) */
	int		max_background;	/* FUSE requests the kernel sends
					   before it waits (INIT) */
	char		path[PATH_MAX];	/* the config file read, or "" */
};

void	config_init(struct zsd_config *cfg);
/*
 * Set key to value (as in the config file).  0, or -1 with a message that
 * names the key in err.  live: only the keys that may change while running
 * are accepted (-1 otherwise).
 */
int	config_set(struct zsd_config *cfg, const char *key, const char *value,
	    bool live, char *err, size_t errlen);
/*
 * Read a file of "key = value" lines (# comments, blank lines).  0, or -1
 * with "path:line: message" in err.  A missing file is an error only if
 * must_exist.
 */
int	config_load(struct zsd_config *cfg, const char *path, bool must_exist,
	    bool live, char *err, size_t errlen);
void	config_print(const struct zsd_config *cfg, FILE *f);
/*
 * The keys SIGHUP cannot change whose values differ between a and b, as
 * "disksize, priority" in buf; their number.
 */
int	config_restart_only(const struct zsd_config *a,
	    const struct zsd_config *b, char *buf, size_t len);
void	config_usage_keys(FILE *f);
/* Parse "64M", "4G", "4096", "50%" (of RAM when percent_of != 0). */
int	config_parse_size(const char *s, uint64_t percent_of, uint64_t *out);

/* memfit.c */
/*
 * Would swapoff of dev fit: the pages in use on it coming back into RAM,
 * system-wide and in each memory cgroup with a limit?  1 yes; 0 no, with
 * the reason in why; -ENOENT if dev is not in <proc>/swaps, or another
 * -errno if it cannot tell.  proc and cgroup: "/proc", "/sys/fs/cgroup".
 */
int	memfit_swapoff(const char *dev, const char *proc, const char *cgroup,
	    char *why, size_t whylen);
/*
 * Bytes in use on swap device dev, from <proc>/swaps: 0; -ENOENT if dev
 * is not swap, another -errno if that cannot be told.
 */
int	memfit_swap_used(const char *proc, const char *dev, uint64_t *used);

/* merge.c: the content index of a store (see merge.c) */
struct merge_index;

/* An object of the index, as the store keeps it in a slot. */
struct merge_obj {
	zs_handle_t	handle;
	uint16_t	len;		/* object bytes */
	uint8_t		codec;		/* enum codec_id; 0: the page raw */
	uint32_t	node;		/* its node + 1; 0: not indexed */
	uint32_t	refs;		/* slots holding it, with this */
	unsigned int	collisions;	/* keys equal, bytes not: counted up */
};

/*
 * Whether the object handle (codec as in merge_obj) holds page: 1 yes,
 * with its length in *len; 0 no; -errno if it could not be read.
 */
typedef int	merge_same_fn(void *arg, zs_handle_t handle, unsigned int codec,
		    const void *page, size_t *len);

/* The key of a 4 KiB page: equal pages, equal keys. */
uint32_t	 merge_page_hash(const void *page);
/* For a store of nr_pages; -EFBIG: too many pages to index. */
/* nodes: merge_nodes_size(nr_pages) zeroed bytes of the caller's, or NULL. */
struct merge_index *merge_create(uint64_t nr_pages, void *nodes,
		    int *errorp);
size_t		 merge_nodes_size(uint64_t nr_pages);
int		 merge_recover_begin(struct merge_index *idx);
bool		 merge_recover_ref(struct merge_index *idx, uint32_t node,
		    zs_handle_t handle, unsigned int codec);
void		 merge_recover_end(struct merge_index *idx);
uint32_t	 merge_node_refs(struct merge_index *idx, uint32_t node);
void		 merge_destroy(struct merge_index *idx);
/*
 * Find an object same() says holds page among those of key; 1 if found,
 * with a reference taken and *obj describing it; 0 if not.
 */
int		 merge_find(struct merge_index *idx, uint32_t key,
		    const void *page, merge_same_fn *same, void *arg,
		    struct merge_obj *obj);
/*
 * Index the new object *obj (handle, len, codec) holding page, unless an
 * equal one was indexed meanwhile: then 1, with a reference to that one
 * taken and described in *obj (the caller frees its own).  0 otherwise,
 * obj->node 0 if no node was free (the object is not indexed).
 */
int		 merge_insert(struct merge_index *idx, uint32_t key,
		    const void *page, merge_same_fn *same, void *arg,
		    struct merge_obj *obj);
/* The references node has now (its shard locked to read them). */
uint32_t	 merge_refs(struct merge_index *idx, uint32_t node);
/* Drop a reference to node; the references left (0: free the object). */
uint32_t	 merge_put(struct merge_index *idx, uint32_t node);
/* Nodes in use and the references they hold (tests). */
void		 merge_counts(struct merge_index *idx, uint64_t *nodes,
		    uint64_t *refs);
/* 0, or -EUCLEAN with the first problem in why (tests, debug). */
int		 merge_validate(struct merge_index *idx, char *why,
		    size_t whylen);

/* backing.c: the file idle pages are written back to (see backing.c) */
struct backing;

/*
 * Open path, locked against another zsd: a regular file (created if
 * absent) grown sparse to size, or file_size if size is 0; a block
 * device, not mounted or otherwise in use, whole or up to size.  NULL
 * with errno, and why filled, on failure.
 */
struct backing	*backing_open(const char *path, uint64_t size,
		    uint64_t file_size, char *why, size_t whylen);
void		 backing_close(struct backing *b);
const char	*backing_path(const struct backing *b);
bool		 backing_direct(const struct backing *b);
void		 backing_usage(struct backing *b, uint64_t *used,
		    uint64_t *blocks);
/* A free block for pages pages, its count set: 0, or -ENOSPC. */
int		 backing_alloc(struct backing *b, unsigned int pages,
		    uint64_t *block);
/* One more page in block (recovery); false if there is no such block. */
bool		 backing_get(struct backing *b, uint64_t block);
/* One page less in block: the last one frees it. */
void		 backing_put(struct backing *b, uint64_t block);
/* A block of 4 KiB, from or to a buffer aligned to 4 KiB: 0 or -errno. */
int		 backing_write(struct backing *b, uint64_t block,
		    const void *buf);
int		 backing_read(struct backing *b, uint64_t block, void *buf);
/*
 * The id in the file's header (0: none, block 0 all zeros): 0, -EEXIST
 * if block 0 holds something else (not a file zsd made), or -errno.
 */
int		 backing_id(struct backing *b, uint64_t *id);
/* Write the header with id, the file's from now on: 0 or -errno. */
int		 backing_claim(struct backing *b, uint64_t id);

/* store.c */
struct store_options {
	enum codec_id	codec;		/* for new writes */
	int		zstd_level;
	uint64_t	mem_limit;	/* pool bytes; 0: none */
	bool		merge;		/* same-page merging of new writes */
	int		recompress_level; /* zstd level of recompression */
	/*
	 * The backing file, or NULL; taken by store_open only (the caller
	 * keeps it open until store_destroy), ignored by store_set_options.
	 */
	struct backing	*backing;
};

struct store_stats {
	uint64_t	orig_data_size;	/* bytes of pages stored */
	uint64_t	compr_data_size; /* bytes of their objects, each
					    shared one once */
	uint64_t	mem_used_total;	/* pool pages in use, bytes */
	uint64_t	mem_limit;
	uint64_t	mem_used_max;
	uint64_t	same_pages;	/* zero- or same-filled, no object */
	uint64_t	huge_pages;	/* stored raw */
	uint64_t	pages_compacted;
	uint64_t	pages_stored;	/* slots holding data */
	uint64_t	failed_reads;
	uint64_t	failed_writes;
	uint64_t	reads;		/* pages */
	uint64_t	writes;
	uint64_t	discards;
	uint64_t	limit_refusals;	/* writes refused by mem_limit */
	uint64_t	invalid_io;	/* reads, writes past the end */
	uint64_t	pages_merged;	/* pages that took no new object */
	uint64_t	merge_objects;	/* objects shared by 2 pages or more */
	uint64_t	merge_saved;	/* bytes of objects not stored */
	uint64_t	merge_collisions; /* hash hits with other bytes */
	uint64_t	merge_skipped;	/* writes not hashed (no merges
					   lately) */
	/* Idle pages (idle.c); zram's names where it has them. */
	uint64_t	idle_pages;	/* marked idle, not accessed since */
	uint64_t	recompressed;	/* pages, since start */
	uint64_t	recompress_saved; /* bytes, since start */
	uint64_t	bd_count;	/* pages in the backing file */
	uint64_t	bd_bytes;	/* their bytes there */
	uint64_t	bd_reads;	/* pages read from it */
	uint64_t	bd_writes;	/* pages written to it */
	uint64_t	bd_blocks_used;	/* blocks of it holding pages */
	uint64_t	bd_blocks;	/* blocks it has; 0: no file */
};

struct store;
struct store_ctx;

/* A store of nr_pages slots whose objects live in pool. */
struct store	*store_create(struct zs_pool *pool, uint64_t nr_pages,
		    const struct store_options *opt, int *errorp);
/*
 * The same in an arena pool (zs_arena_create, zs_arena_attach) too: the
 * slots, their journal, the counters and the index's nodes are kept in
 * the arena's root (store_root_size(nr_pages) bytes at least).  A pool
 * being recovered holds a dead process's store: it is recovered with it
 * (its page count wins over nr_pages), and store_recovered says what was
 * found.  -EPROTO (why filled) for a root of another layout, which is
 * left as it is; -EUCLEAN (why filled) if the pool cannot be recovered.
 * store_destroy leaves an
 * arena's slots and objects alone: they are the next process's.
 */
struct store	*store_open(struct zs_pool *pool, uint64_t nr_pages,
		    const struct store_options *opt, char *why, size_t whylen,
		    int *errorp);
size_t		 store_root_size(uint64_t nr_pages);
struct store_recovery {
	uint64_t		pages;		/* slots holding a page */
	uint64_t		objects;	/* distinct objects they hold */
	uint64_t		merged;		/* pages sharing another's */
	uint64_t		journal_replayed; /* slots written again */
	uint64_t		pages_lost;	/* slots naming no object */
	uint64_t		backed;		/* pages in the backing file */
	struct zs_recovery	pool;
};
void		 store_recovered(const struct store *st,
		    struct store_recovery *out);
void		 store_destroy(struct store *st);
uint64_t	 store_nr_pages(const struct store *st);
/*
 * Why the backing file given to store_open is not used (its first block
 * holds other data, or its header cannot be read or written), or NULL:
 * the store then has none, and the caller may close it.
 */
const char	*store_backing_problem(const struct store *st);
/* Per thread: codec contexts and a page of scratch. */
struct store_ctx *store_ctx_create(struct store *st);
void		 store_ctx_destroy(struct store_ctx *ctx);
/* Live changes: codec for new writes, zstd level, memory limit, merge. */
void		 store_set_options(struct store *st,
		    const struct store_options *opt);

/*
 * Byte-addressed I/O; any offset and length (partial pages are read,
 * patched and written back under the slot's lock).
 *   store_write: 0, -EFBIG past the end, -ENOSPC if the pool is at the
 *   memory limit and a page would need a new object or a larger one than
 *   its slot holds (see store.c), -ENOMEM if the pool cannot grow; on
 *   error the slots not yet written keep their old data (a page is
 *   replaced whole or not at all).
 *   store_read: bytes read (short at the end), or -errno.
 *   Reads and writes that reach past the end are counted in invalid_io.
 *   store_discard: whole pages freed, partial ones zeroed; 0, or -ENOMEM
 *   if rewriting a partial page needs memory the pool cannot get (never
 *   -ENOSPC: the memory limit does not apply to discards).
 */
/*
 * Whether [off, off + len) lies within the file; if not, counted in
 * invalid_io (for callers that answer such a request themselves).
 */
bool		 store_io_valid(struct store *st, struct store_ctx *ctx,
		    uint64_t off, uint64_t len);
int		 store_write(struct store *st, struct store_ctx *ctx,
		    uint64_t off, const void *buf, size_t len);
long		 store_read(struct store *st, struct store_ctx *ctx,
		    uint64_t off, void *buf, size_t len);
int		 store_discard(struct store *st, struct store_ctx *ctx,
		    uint64_t off, uint64_t len);
/* Takes no lock, in the store or the pool. */
void		 store_stats(struct store *st, struct store_stats *out);
/*
 * Two figures of store_stats for FUSE's getattr and statfs, which the I/O
 * threads answer: the store's own counters summed, the pool not asked.
 */
uint64_t	 store_pages_stored(struct store *st);
uint64_t	 store_compr_size(struct store *st);	/* compr_data_size */
void		 store_reset_max(struct store *st);

/*
 * idle.c: idle pages, recompressed or written back, on a thread of the
 * caller's at normal priority (never an I/O thread); readers and writers
 * go on meanwhile.  Which pages a pass takes:
 */
enum store_pick {
	PICK_IDLE = 1,		/* marked idle, or min_age seconds unused */
	PICK_HUGE = 2,		/* stored raw */
	PICK_INCOMPRESSIBLE = 4, /* stored raw, recompression failed too */
};

struct store_pass {
	unsigned int	 pick;		/* enum store_pick bits: all of them */
	uint32_t	 min_age;	/* PICK_IDLE: seconds; 0: the mark only */
	size_t		 threshold;	/* recompress: objects of this many
					   bytes or more */
	uint64_t	 max_pages;	/* 0: no limit */
	uint64_t	 max_bytes;	/* writeback: bytes of file; 0: none */
	const _Atomic bool *cancel;	/* stop when set; or NULL */
};

struct store_pass_result {
	uint64_t	scanned;	/* slots looked at */
	uint64_t	pages;		/* recompressed, or written back */
	uint64_t	bytes_saved;	/* recompress: object bytes less */
	uint64_t	bytes_written;	/* writeback: file bytes written */
	uint64_t	failed;		/* could not be, kept as they were */
	int		error;		/* why the pass ended early, or 0 */
};

/* Mark idle the pages unused for min_age seconds (0: all); how many. */
uint64_t	 store_mark_idle(struct store *st, uint32_t min_age);
/* Recompress with zstd at the recompression level what pass picks. */
void		 store_recompress(struct store *st, struct store_ctx *ctx,
		    const struct store_pass *pass,
		    struct store_pass_result *res);
/*
 * Write back to the backing file what pass picks: -ENXIO in res->error
 * without one.  A page that cannot be written stays in memory.
 */
void		 store_writeback(struct store *st, struct store_ctx *ctx,
		    const struct store_pass *pass,
		    struct store_pass_result *res);
/* Tests: make the store's clock run seconds ahead. */
void		 store_clock_advance(struct store *st, uint32_t seconds);

/* policy.c: automatic idle passes, the day's writeback budget */
struct policy_run {
	/* Set by the loop from the configuration. */
	int		 recompress_after;	/* seconds; 0: off */
	int		 writeback_after;
	int		 threshold;
	uint64_t	 batch;
	int		 cpu_max, io_max;	/* percent; 0: ignore */
	bool		 backing;
	uint64_t	 wb_left;		/* bytes; UINT64_MAX: no limit */
	const char	*psi_cpu, *psi_io;	/* /proc/pressure/{cpu,io} */
	/* What the pass did. */
	struct store_pass_result recompress, writeback;
	bool		 cpu_pressed, io_pressed; /* skipped for it */
	double		 cpu_seen, io_seen;
};

struct policy_budget {
	int64_t		 start;		/* of the window, CLOCK_BOOTTIME */
	uint64_t	 used;		/* bytes written back in it */
	uint64_t	 total;		/* since start */
};

int		 policy_psi(const char *path, const char *kind,
		    double *avg10);
void		 policy_run(struct store *st, struct store_ctx *ctx,
		    struct policy_run *r, const _Atomic bool *cancel);
/* Bytes left today of limit (0: none, UINT64_MAX left); spend some. */
uint64_t	 policy_budget_left(struct policy_budget *b, uint64_t limit);
void		 policy_budget_spend(struct policy_budget *b, uint64_t bytes);

/*
 * worker.c: the threads that run the transport's works (struct fs_work,
 * fuse/fs.h), each with a store context of its own as the work's ctx.
 */
struct workers;
struct fs_work;

/* n threads; capacity: the most works outstanding at once. */
struct workers	*workers_start(struct store *st, unsigned int n,
		    unsigned int capacity, int *errorp);
void		 workers_stop(struct workers *ws);
unsigned int	 workers_count(const struct workers *ws);
/* Queue works (never allocates: room is made at start). */
void		 workers_queue(struct workers *ws, struct fs_work **w,
		    unsigned int n);

struct zsd;
struct fs;

/* swap.c */
int		 swap_start(struct zsd *z);	/* spawn the swapon thread */
int		 swap_stop(struct zsd *z);	/* spawn the swapoff thread */
void		 swap_write_header(struct store *st, struct store_ctx *ctx,
		    uint64_t nr_pages, int *errorp);

/*
 * control.c.  What a client may have the daemon do beyond the store is
 * done by zsd.c, through ops given at start.
 */
struct control_ops {
	/* zsctl stop */
	void	(*stop)(struct zsd *z, int status);
	/* zsctl restart: 0, or -errno (-EBUSY: not now) */
	int	(*restart)(struct zsd *z, bool handover);
};

int		 control_start(struct zsd *z,	/* listen; 0 or -1 */
		    const struct control_ops *ops);
void		 control_stop(struct zsd *z);	/* close, join the job */
void		 control_reload(struct zsd *z);	/* compact_* changed */

/* stale.c */
/*
 * If mountpoint holds the dead mount of a zsd that is gone: swapoff and
 * detach its loop devices, unmount it (lazily), logging what was lost.
 * 1 if it cleaned up, 0 if there was nothing to do, -errno on failure.
 */
int		 stale_cleanup(const char *mountpoint);

/* memfile.c */
/*
 * n new, empty files of shared memory (the arena, the state) in fds: all
 * on one private noswap tmpfs (*noswap true), else memfds named names
 * (false; why says what failed).  0, or -1 with errno and none open.
 */
int		 memfile_open(const char *const *names, int *fds,
		    unsigned int n, bool *noswap, char *why, size_t whylen);

/* notify.c */
void		 notify(const char *state);	/* sd_notify, if asked for */
int		 notify_fds(const char *state, const int *fds,
		    unsigned int nr);
struct sockaddr_un;
ssize_t		 send_fds(int sock, const struct sockaddr_un *to,
		    socklen_t tolen, const void *buf, size_t len,
		    const int *fds, unsigned int nr);

/* zsd.c: the daemon's state, owned by the loop thread. */
enum swap_state {
	SWAP_OFF,		/* not swap (yet) */
	SWAP_STARTING,		/* the swap thread attaches and swapons */
	SWAP_ON,
	SWAP_STOPPING,		/* the swap thread swapoffs */
};

struct zsd {
	struct zsd_config	 cfg;
	const char		*config_path;	/* re-read on SIGHUP, or NULL */
	bool			 config_explicit;
	struct event_base	*base;
	struct zs_pool		*pool;
	struct store		*store;
	struct backing		*backing;	/* or NULL */
	char			 backing_error[512]; /* why not, or "" */
	struct workers		*workers;
	struct fs		*fs;		/* the mount (fuse/fs.h) */
	struct control		*control;

	/* Swap: set by the swap thread, read after swap_done fires. */
	enum swap_state		 swap;
	char			 loop_dev[32];	/* /dev/loopN */
	int			 loop_fd;
	int			 swap_error;	/* of the last swap thread;
						   -EAGAIN: memfit refused */
	struct event		*swap_done;	/* the swap thread finished */
	struct event		*stop_retry;	/* a refused stop, again */
	bool			 stopping;	/* SIGTERM: stop once swap is off */
	bool			 force_stop;	/* swapoff even if it will not fit */
	char			 stop_why[512];	/* swap thread: why not stopped */
	/* Loop: stops refused (memfit) or failed, the last one's reason. */
	uint64_t		 stops_failed;
	char			 stop_failed[512];
	int			 exit_status;
	bool			 recovered;	/* the pool is a dead server's */

	/* keeper.c: set at start, before the loop runs. */
	struct zsd_state	*state;		/* shared with the keeper; NULL
						   without one */
	int			 keeper_fd;	/* channel to the keeper, or -1 */
	struct event		*keeper_ev;	/* it is readable: keeper gone */
	int			 arena_fd;	/* the keeper's arena, or -1 */
	int			 fuse_fd;	/* a predecessor's /dev/fuse fd,
						   or -1: mount anew */
	bool			 restarting;	/* zsctl restart: exit, leave
						   swap and the mount on */
	bool			 took_over;	/* started on a live mount */
};

/* Seconds between tries of a stop refused because pages would not fit. */
#define ZSD_STOP_RETRY	10

void		 sched_background(void);	/* this thread: normal */
void		 store_options_of(const struct zsd_config *cfg,
		    struct store_options *opt);

/*
 * persist.c: z->pool and z->store, in the arena file arena_fd (empty:
 * formatted; else recovered, z->recovered set), or in private memory
 * (arena_fd -1).  0, or -errno with why filled.
 */
int		 zsd_pool_open(struct zsd *z, int arena_fd, char *why,
		    size_t whylen);

/*
 * keeper.c: the keeper process and the server's side of its channel.
 * struct zsd_state lives in the state file the keeper holds (memfile.c),
 * mapped shared by the keeper and the server; it is what a server leaves
 * its successor.  Fields are written by one side each (noted), and only
 * read by the other side once the writer is gone or before it starts.
 */
struct zsd_state {
	uint32_t	magic;		/* keeper, at start */
	uint32_t	version;
	int32_t		keeper_pid;	/* keeper */
	uint32_t	restarts;	/* keeper: servers started after the
					   first */
	int32_t		last_pid;	/* keeper: the server that ended last */
	int32_t		last_status;	/* keeper: its wait status */
	uint32_t	last_asked;	/* keeper: it asked to be replaced */
	uint32_t	swap_on;	/* server: loop_dev is swap */
	char		loop_dev[32];	/* server */
	uint32_t	init_len;	/* server: bytes of init, 0: none yet */
	unsigned char	init[496];	/* server: FUSE INIT as read */
	/*
	 * server: the connection was set up for FUSE over io_uring; a
	 * successor must serve the ring too (fuse/uring.c).  Carved out of
	 * what was init[512], which never held more than 104 bytes: the
	 * layout and older servers' reading of it are unchanged.
	 */
	uint32_t	uring;		/* 1: io_uring was negotiated */
	uint32_t	uring_payload;	/* bytes of each entry's payload */
	uint64_t	uring_spare;
	uint32_t	served;		/* server: ready; keeper: cleared
					   before it starts one */
	uint64_t	keeper_start;	/* keeper: its start time */
	int32_t		server_pid;	/* server: its pid and start time */
	uint64_t	server_start;	/* (/proc/PID/stat), at start */
	uint32_t	fdstore;	/* keeper: the service manager holds
					   the arena, the state and /dev/fuse
					   (FDSTORE=1) */
	uint32_t	noswap;		/* keeper: the arena and the state are
					   on a noswap tmpfs (memfile.c); in
					   what was tail padding, so older
					   states read 0: memfds */
};

/* zsd as started: run servers until one stops cleanly; exit status. */
int		 keeper_run(char **argv);
bool		 keeper_started_us(void);	/* server: have a keeper? */
bool		 keeper_listen_fds(void);	/* fds from a service manager */
int		 keeper_attach(struct zsd *z);	/* take the fds, the state */
/*
 * Loop is set up: watch the channel.  restart: zsd.c's, called to hand
 * over when the keeper goes and the service manager keeps the fds.
 */
void		 keeper_watch(struct zsd *z,
		    int (*restart)(struct zsd *z, bool handover));
void		 keeper_give_fuse(struct zsd *z, int fd);
void		 keeper_stopped(struct zsd *z);
int		 keeper_restart(struct zsd *z);
int		 keeper_handover(struct zsd *z);
bool		 keeper_gone(struct zsd *z);	/* server: channel hung up */
void		 keeper_save_swap(struct zsd *z);
void		 keeper_save_init(struct zsd *z, const void *buf,
		    size_t len);
void		 keeper_save_ring(struct zsd *z, size_t payload);

#endif /* ZSD_H */
