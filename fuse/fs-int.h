/*
 * fs-int.h - what the two transports of the FUSE front end share: fs.c
 * (requests read from /dev/fuse and served through libfuse) and uring.c
 * (requests taken and answered by io_uring, one queue per CPU).  What
 * they know of the daemon is in fs.h: its config and ops, kept in
 * struct fs.
 */
#ifndef FS_INT_H
#define FS_INT_H

#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "fs.h"
#include "log.h"

#define FS_PAGE_SIZE	4096u		/* a swap page */
#define FS_MAX_IO	(128u << 10)	/* max_write, and reads' size */
#define FS_CHUNK	(16u << 10)	/* one work */
#define FS_WORKS	(FS_MAX_IO / FS_CHUNK + 1)
#define FS_IN_SIZE	(FS_MAX_IO + 4096)	/* payload and headers */

/*
 * FUSE_OVER_IO_URING, bit 41 of INIT's flags (bit 9 of flags2), of
 * linux/fuse.h since Linux 6.14 (FUSE 7.42); Debian 12's headers lack it.
 */
#define FS_OVER_IO_URING	(1ULL << 41)

enum { INO_ROOT = 1, INO_SWAP = 2, INO_STAT = 3 };

enum fs_op { FS_READ, FS_WRITE, FS_DISCARD };

struct fs_uring;

struct fs_req {
	struct fs	*fs;
	fuse_req_t	 req;
	enum fs_op	 op;
	bool		 taken;		/* an op kept it; it frees it */
	uint64_t	 off;
	size_t		 len;
	const char	*data;		/* write payload, in in */
	atomic_uint	 pending;	/* works not finished */
	atomic_int	 error;		/* first -errno of a work */
	char		*in;		/* FS_IN_SIZE: the request as read */
	char		*out;		/* FS_MAX_IO: the read reply */
	struct fs_work	 works[FS_WORKS];
	struct fs_work	*queue[FS_WORKS];
	struct fs_req	*next;		/* on the free list */
};

/*
 * Threads: "FUSE thread" is fs.c's own, which reads /dev/fuse from a base
 * of its own (fs->base) from fs_start to fs_stop_reading; "loop" is the
 * daemon's (cfg.base), which fs.c only tells things to (ready, gone).
 * Lock order: show_lock, then nothing; lock, then nothing.
 */
struct fs {
	struct fs_config	 cfg;		/* as given to fs_start */
	struct fs_ops		 ops;
	void			*arg;		/* the ops' */
	struct fuse_session	*se;
	char			 path[PATH_MAX];
	time_t			 started;
	bool			 inherited;	/* the fd is a predecessor's */
	bool			 hold_writes;	/* debug: never answer a write */

	/* The FUSE thread and its events, all on base. */
	pthread_t		 thread;
	bool			 running;	/* loop: started, not joined */
	struct event_base	*base;
	struct event		*ev;		/* the session fd is readable */
	struct event		*resume;	/* a slot came free, or retry */
	struct event		*takeover;	/* successor: INIT, RESEND */
	struct event		*stop;		/* fs_stop_reading: end */
	/* On the loop's base, made active by the FUSE thread. */
	struct event		*ready;		/* ops.ready */
	struct event		*gone;		/* ops.gone */

	pthread_mutex_t		 lock;
	struct fs_req		*free;
	bool			 paused;	/* ev deleted: no slot free */

	struct fs_req		*reqs;
	unsigned int		 nr_reqs;
	/* The FUSE thread's alone. */
	bool			 got_init;	/* fs_init ran */
	struct fs_req		*current;	/* in fuse_session_... */
	void			*ctx;		/* works it runs, counting */
	struct fs_work		*held;		/* a swap-in not yet run */
	unsigned int		 read_errors;	/* failed reads in a row */

	/*
	 * The transport (uring.c): set by fs_start, then by the FUSE thread
	 * as INIT is answered or the connection taken over; read there and
	 * by ring threads it started.
	 */
	struct fs_uring		*uring;		/* NULL: /dev/fuse only */
	const char		*transport;	/* "dev" or "uring" */
	char			 transport_why[160]; /* why not uring */
	uint64_t		 init_unique;	/* INIT being answered */
	uint64_t		 init_flags;	/* INIT's, flags2 << 32 */

	/*
	 * What fs_transport and fs_ring_requests show any thread: a copy
	 * of the above, made under show_lock whenever it settles.
	 */
	pthread_mutex_t		 show_lock;
	const char		*shown;		/* "dev" or "uring" */
	char			 shown_why[160];
	bool			 shown_ring;	/* uring serves, threads set */
};

/*
 * fs.c, any thread: the checks both transports make on the swap file's
 * I/O.  fs_swap_read_len: bytes to read at off (cut at the end of the
 * file and at FS_MAX_IO; 0 at or past the end).  fs_swap_write_ok: 0 or
 * -EFBIG.  fs_swap_discard_len: bytes to free for fallocate(mode), 0 past
 * the end, or -errno.
 */
size_t		 fs_swap_read_len(struct fs *fs, void *ctx, uint64_t off,
		    size_t size);
int		 fs_swap_write_ok(struct fs *fs, void *ctx, uint64_t off,
		    size_t size);
int64_t		 fs_swap_discard_len(struct fs *fs, int mode, int64_t off,
		    int64_t len);

/*
 * uring.c.  fs_uring_prepare (loop, in fs_start, before mounting): can
 * this kernel and process serve FUSE over io_uring?  0, or -1 with
 * fs->transport_why set.  fs_uring_offer (FUSE thread, in INIT's reply):
 * add FUSE_OVER_IO_URING to the reply if the kernel offered it and it was
 * prepared; records what the ring needs.  fs_uring_start (FUSE thread,
 * after INIT was answered, or in a successor): register every CPU's queue
 * and serve it, from threads that inherit the FUSE thread's scheduling;
 * 0, or -errno with the transport left to /dev/fuse.  fs_uring_stop (FUSE
 * thread, or the loop once it has ended): stop serving, free.
 * fs_uring_capture (any thread, from libfuse's writev): if this
 * thread is answering a ring request through libfuse, take the reply
 * into the ring entry and return its length; else -1.
 */
int		 fs_uring_prepare(struct fs *fs);
void		 fs_uring_offer(struct fs *fs, struct fuse_init_out *out,
		    size_t len);
int		 fs_uring_start(struct fs *fs);
void		 fs_uring_stop(struct fs *fs);
ssize_t		 fs_uring_capture(const struct iovec *iov, int count);
/* Successor: serve the ring its predecessor set up, entries this big. */
void		 fs_uring_take_over(struct fs *fs, size_t payload);
bool		 fs_uring_offered(struct fs *fs);	/* INIT said yes */
/* Any thread, once the ring serves (shown_ring): the requests it served. */
unsigned long	 fs_uring_served(const struct fs *fs);
/* From uring.c's cold path: libfuse handles the request in buf. */
void		 fs_process(struct fs *fs, char *buf, size_t len);

#endif /* FS_INT_H */
