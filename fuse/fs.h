/*
 * fs.h - the FUSE transport: a mount holding one swap file and mm_stat,
 * its requests taken from /dev/fuse (fs.c) or from FUSE over io_uring
 * (uring.c), and answered.
 *
 * Layering: fuse/ moves requests, daemon/ decides, libzs stores.  This
 * header is the whole of the transport for the daemon, and the whole of
 * the daemon for the transport: fuse/ includes nothing of daemon/ but its
 * log functions (log.h).  The daemon describes the file and what a
 * successor inherits in a struct fs_config, and gives callbacks in a
 * struct fs_ops: requests go up through them (the swap file's reads,
 * writes and discards, done on a context of the calling thread; the
 * statistics the mount shows; works for the daemon's threads), and so do
 * the events the daemon acts on (INIT answered, unmounted, what to keep
 * for a successor).  Replies go out from here.  Every callback gets the
 * arg given to fs_start.
 *
 * Requests are taken on threads of the transport's own (the FUSE thread
 * reading /dev/fuse; with io_uring, a thread per CPU as well), never on the
 * daemon's loop, so that nothing the loop does delays the swap file's
 * I/O.  They are started by the thread that calls fs_start and inherit
 * its scheduling; libevent must be set up for threads
 * (evthread_use_pthreads) before fs_start.
 */
#ifndef FS_H
#define FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct fs;

/*
 * A piece of a request: fn(w, ctx) runs on one of the daemon's worker
 * threads, ctx that thread's I/O context (as ctx_create makes them).
 */
struct fs_work;
typedef void	fs_work_fn(struct fs_work *w, void *ctx);
struct fs_work {
	fs_work_fn	*fn;
	void		*arg;
	uint64_t	 off;		/* the byte range it serves */
	size_t		 len;
};

/* What the mount shows: zram's mm_stat line, st_blocks, statfs. */
struct fs_stats {
	uint64_t	orig_data_size;	/* mm_stat's fields, in its order */
	uint64_t	compr_data_size;
	uint64_t	mem_used_total;
	uint64_t	mem_limit;
	uint64_t	mem_used_max;
	uint64_t	same_pages;
	uint64_t	pages_compacted;
	uint64_t	huge_pages;
	uint64_t	pages_stored;	/* pages of the file holding data */
};

/*
 * Read by fs_start; the strings and init must stay valid until fs_stop.
 */
struct fs_config {
	const char		*mountpoint;
	const char		*name;		/* the swap file in the mount */
	uint64_t		 disksize;	/* its bytes, page aligned */
	const char		*transport;	/* "auto", "uring" or "dev" */
	unsigned int		 max_background; /* INIT's */
	unsigned int		 workers;	/* threads queue() feeds */
	struct event_base	*base;		/* the loop's: ready, gone */
	/*
	 * A successor: the /dev/fuse fd of the live connection (fs_start
	 * owns it once it returns 0), or -1 to mount anew.  And what the
	 * first server recorded through save_init and save_ring: INIT as
	 * the kernel sent it (init_len 0: none), whether the connection is
	 * served by io_uring, with entries of ring_payload bytes.
	 */
	int			 fuse_fd;
	const void		*init;
	size_t			 init_len;
	bool			 ring;
	size_t			 ring_payload;
};

/*
 * The daemon's side.  "Any thread": the FUSE thread, a worker or a ring
 * thread (or the loop); "loop": the thread running base, where the
 * transport only makes events active; "FUSE thread": the transport's
 * thread that reads /dev/fuse, which must not wait on the loop.
 */
struct fs_ops {
	/* Any thread: an I/O context for it (NULL: out of memory). */
	void	*(*ctx_create)(void *arg);
	void	 (*ctx_destroy)(void *arg, void *ctx);
	/*
	 * Any thread, the swap file's I/O, byte-addressed: io_valid, whether
	 * [off, off + len) lies within the file (the daemon counts those
	 * that do not); read, the bytes read or -errno; write and discard,
	 * 0 or -errno.
	 */
	bool	 (*io_valid)(void *arg, void *ctx, uint64_t off, uint64_t len);
	long	 (*read)(void *arg, void *ctx, uint64_t off, void *buf,
		    size_t len);
	int	 (*write)(void *arg, void *ctx, uint64_t off, const void *buf,
		    size_t len);
	int	 (*discard)(void *arg, void *ctx, uint64_t off, uint64_t len);
	/* Any thread: mm_stat's figures. */
	void	 (*stats)(void *arg, struct fs_stats *out);
	/*
	 * Any thread: what getattr and statfs show, from counters alone,
	 * never the pool: a stat of the swap file must not wait on it.
	 */
	void	 (*usage)(void *arg, uint64_t *pages_stored,
		    uint64_t *compr_data_size);
	/*
	 * Any thread: run works on the daemon's workers.  Never allocates
	 * nor fails: room for fs_max_works(workers) works at once.
	 */
	void	 (*queue)(void *arg, struct fs_work **w, unsigned int n);
	/* Loop: INIT is answered, the file can be opened. */
	void	 (*ready)(void *arg);
	/* Loop: the mount is gone (unmounted from outside). */
	void	 (*gone)(void *arg);
	/*
	 * For a successor: the INIT request as read (FUSE thread, before it
	 * is answered), the ring and its entries' payload once it serves
	 * (FUSE thread), the /dev/fuse fd mounted (loop, in fs_start).
	 */
	void	 (*save_init)(void *arg, const void *buf, size_t len);
	void	 (*save_ring)(void *arg, size_t payload);
	void	 (*save_fd)(void *arg, int fd);
};

/*
 * Loop: mount (or take the connection in cfg->fuse_fd over) and serve
 * it from the FUSE thread, started here.  0 with *fsp set, or -errno.
 */
int		 fs_start(const struct fs_config *cfg, const struct fs_ops *ops,
		    void *arg, struct fs **fsp);
/*
 * Loop, before the workers stop: end the FUSE thread; nothing more is
 * read from /dev/fuse, nor queued.  (Ring threads serve on until
 * fs_stop: they queue nothing.)  fs may be NULL.
 */
void		 fs_stop_reading(struct fs *fs);
/*
 * Loop, after the workers have stopped: stop serving, unmount unless
 * the mount is left to a successor (!unmount), free.  fs may be NULL.
 */
void		 fs_stop(struct fs *fs, bool unmount);
const char	*fs_file_path(const struct fs *fs);	/* mountpoint/name */
/*
 * Any thread: "dev" or "uring", and in why (len bytes) why not uring (""
 * if it is); NULL fs: "none".
 */
const char	*fs_transport(struct fs *fs, char *why, size_t len);
unsigned long	 fs_ring_requests(struct fs *fs);	/* by io_uring */
/* Works outstanding at most, for sizing the workers' queue. */
unsigned int	 fs_max_works(unsigned int workers);

#endif /* FS_H */
