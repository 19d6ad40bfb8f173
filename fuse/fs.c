/*
 * fs.c - the FUSE front end: a low-level libfuse3 filesystem holding the
 * swap file and mm_stat, served from the event loop.
 *
 *	/		directory, inode 1
 *	/<name>		the swap file: disksize bytes, direct I/O, inode 2
 *	/mm_stat	read-only, zram's mm_stat line for the store, inode 3
 *
 * The loop thread reads each request from the session's fd into a request
 * slot of its own (a fixed table; only libfuse's small request struct is
 * allocated per request, from a heap that is locked and reuses it) and
 * hands it to libfuse, which calls the ops below.  A write or a long read
 * of the swap file is cut into one work per worker, on page boundaries (a
 * partial page's read-modify-write stays in one work) but no more works
 * than the request has FS_CHUNKs, and queued to the workers.  A discard is
 * one work, queued.  A read of up to FS_READ_INLINE bytes (a swap-in) is
 * one work that the loop holds: if the fd has nothing more to read, the
 * loop runs it itself, which costs less than waking a worker and being
 * woken by it; otherwise (another request came, no slot is free, the
 * read failed other than with ENOENT or EINTR, or the loop has served its
 * share of requests for this wakeup) the held work goes to the workers,
 * so that many tasks swapping in at once use every core.
 * Whoever finishes a request's last work sends the reply and frees the
 * slot.  When every slot is busy the loop stops reading the fd until a
 * worker frees one.
 *
 * Lock: fs->lock guards the free list and paused; a busy slot belongs to
 * its request (loop thread until queued or run, then its works).
 *
 * Taking over (keeper.c): a server started after another died, or asked
 * to be replaced, gets the live connection's /dev/fuse fd instead of
 * mounting.  The kernel sent INIT once, to the first server, and libfuse
 * answers every request with EIO until it has seen one: the first server
 * records the INIT request as it read it (struct zsd_state), and a
 * successor feeds it to libfuse with the session fd pointed at /dev/null
 * for the moment, so that the reply goes nowhere.  Then it asks the
 * kernel to queue again the requests its predecessor read and did not
 * answer (FUSE_NOTIFY_RESEND); they come with FUSE_UNIQUE_RESEND set in
 * their unique, which libfuse copies into the reply like any other, and
 * are served again (every store operation is safe to repeat).  A kernel
 * without RESEND refuses it: those requests then stay unanswered.
 */
#include <config.h>

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "zsd.h"

#define FS_MAX_IO	(128u << 10)	/* max_write, and reads' size */
#define FS_CHUNK	(16u << 10)	/* one work */
#define FS_WORKS	(FS_MAX_IO / FS_CHUNK + 1)
#define FS_IN_SIZE	(FS_MAX_IO + 4096)	/* payload and headers */
#define FS_REQS_PER_WORKER 4
#define FS_READ_INLINE	(64u << 10)	/* a read this small: one work */

/*
 * FUSE_NOTIFY_RESEND, notify code 7 of linux/fuse.h since Linux 6.9 (FUSE
 * 7.40); older headers (Debian 12's) lack it.  Resent requests carry
 * FUSE_UNIQUE_RESEND, bit 63 of unique.
 */
#define FS_NOTIFY_RESEND	7

enum { INO_ROOT = 1, INO_SWAP = 2, INO_STAT = 3 };

enum fs_op { FS_READ, FS_WRITE, FS_DISCARD };

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
	struct work	 works[FS_WORKS];
	struct work	*queue[FS_WORKS];
	struct fs_req	*next;		/* on the free list */
};

struct fs {
	struct zsd		*z;
	struct fuse_session	*se;
	struct event		*ev;		/* the session fd is readable */
	struct event		*resume;	/* a slot came free, or retry */
	struct event		*takeover;	/* successor: INIT, RESEND */
	char			 path[PATH_MAX];
	time_t			 started;
	bool			 inherited;	/* the fd is a predecessor's */
	bool			 got_init;	/* loop: fs_init ran */
	bool			 hold_writes;	/* debug: never answer a write */

	pthread_mutex_t		 lock;
	struct fs_req		*free;
	bool			 paused;	/* ev deleted: no slot free */

	struct fs_req		*reqs;
	unsigned int		 nr_reqs;
	struct fs_req		*current;	/* loop: in fuse_session_... */
	struct store_ctx	*ctx;	/* loop: works it runs, counting */
	struct work		*held;		/* loop: a swap-in not yet run */
	unsigned int		 read_errors;	/* loop: failed reads in a row */
};

/* After a failed read of /dev/fuse, read again this much later. */
static const struct timeval fs_retry = { 0, 100 * 1000 };

static struct fs_req *
fs_req_get(struct fs *fs)
{
	struct fs_req *r;

	pthread_mutex_lock(&fs->lock);
	if ((r = fs->free) != NULL)
		fs->free = r->next;
	else
		fs->paused = true;
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* Any thread. */
static void
fs_req_put(struct fs *fs, struct fs_req *r)
{
	bool wake;

	pthread_mutex_lock(&fs->lock);
	r->next = fs->free;
	fs->free = r;
	wake = fs->paused;
	fs->paused = false;
	pthread_mutex_unlock(&fs->lock);
	if (wake)
		event_active(fs->resume, 0, 0);
}

static void
fs_stat(struct fs *fs, fuse_ino_t ino, struct stat *st)
{
	struct store_stats ss;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_atime = st->st_mtime = st->st_ctime = fs->started;
	st->st_blksize = ZSD_PAGE_SIZE;
	switch (ino) {
	case INO_ROOT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		break;
	case INO_SWAP:
		store_stats(fs->z->store, &ss);
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = (off_t)fs->z->cfg.disksize;
		st->st_blocks = (blkcnt_t)(ss.compr_data_size / 512);
		break;
	case INO_STAT:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = 0;	/* read with direct I/O, any length */
		break;
	}
}

static fuse_ino_t
fs_ino_of(struct fs *fs, const char *name)
{
	if (strcmp(name, fs->z->cfg.name) == 0)
		return INO_SWAP;
	if (strcmp(name, "mm_stat") == 0)
		return INO_STAT;
	return 0;
}

static void
fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	conn->max_write = FS_MAX_IO;
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
	    FUSE_CAP_SPLICE_MOVE);
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	fs->started = time(NULL);
	fs->got_init = true;
	log_debug("FUSE protocol %u.%u, max_write %u", conn->proto_major,
	    conn->proto_minor, conn->max_write);
	zsd_fs_ready(fs->z);
}

static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	fuse_ino_t ino;

	if (parent != INO_ROOT || (ino = fs_ino_of(fs, name)) == 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	fs_stat(fs, ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void
fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct stat st;

	if (ino < INO_ROOT || ino > INO_STAT) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fs_stat(fs, ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

/* Times may be set (and are ignored); the size, owner and mode are fixed. */
static void
fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct stat st;

	fs_stat(fs, ino, &st);
	if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
	    FUSE_SET_ATTR_GID)) != 0 || ((to_set & FUSE_SET_ATTR_SIZE) &&
	    attr->st_size != st.st_size)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_attr(req, &st, 1.0);
}

static void
fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == INO_ROOT) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ino == INO_STAT && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if ((fi->flags & O_TRUNC) && ino == INO_SWAP) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* No page cache: every read and write comes to us, page aligned. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	/*
	 * No FLUSH on close: a zsd that dies holding the file open (the swap
	 * thread does, briefly) would wait at exit for a FLUSH only it could
	 * answer.
	 */
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void
fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != INO_ROOT)
		fuse_reply_err(req, ENOTDIR);
	else
		fuse_reply_open(req, fi);
}

static void
fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	const char *names[] = { ".", "..", fs->z->cfg.name, "mm_stat" };
	const fuse_ino_t inos[] = { INO_ROOT, INO_ROOT, INO_SWAP, INO_STAT };
	char buf[1024];
	size_t used = 0, n;
	struct stat st;
	off_t i;

	/* off indexes names. */
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (size > sizeof(buf))
		size = sizeof(buf);
	for (i = off; i < 4; i++) {
		memset(&st, 0, sizeof(st));
		st.st_ino = inos[i];
		st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
		n = fuse_add_direntry(req, buf + used, size - used, names[i],
		    &st, i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void
fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct store_stats ss;
	struct statvfs sv;

	store_stats(fs->z->store, &ss);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = ZSD_PAGE_SIZE;
	sv.f_frsize = ZSD_PAGE_SIZE;
	sv.f_blocks = fs->z->cfg.disksize / ZSD_PAGE_SIZE;
	sv.f_bfree = sv.f_blocks - ss.pages_stored;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = 3;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* mm_stat: zram's fields, in its order and format. */
static void
fs_read_stat(struct fs *fs, fuse_req_t req, size_t size, off_t off)
{
	struct store_stats ss;
	char line[256];
	int n;

	store_stats(fs->z->store, &ss);
	n = snprintf(line, sizeof(line),
	    "%8llu %8llu %8llu %8llu %8llu %8llu %8llu %8llu\n",
	    (unsigned long long)ss.orig_data_size,
	    (unsigned long long)ss.compr_data_size,
	    (unsigned long long)ss.mem_used_total,
	    (unsigned long long)ss.mem_limit,
	    (unsigned long long)ss.mem_used_max,
	    (unsigned long long)ss.same_pages,
	    (unsigned long long)ss.pages_compacted,
	    (unsigned long long)ss.huge_pages);
	if (off >= n)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, line + off, (size_t)n - (size_t)off < size ?
		    (size_t)n - (size_t)off : size);
}

/* Worker: one work of a request; the last one replies. */
static void
fs_work(struct work *w, struct store_ctx *ctx)
{
	struct fs_req *r = w->arg;
	struct store *st = r->fs->z->store;
	long n = 0;
	int error, expected;

	switch (r->op) {
	case FS_READ:
		n = store_read(st, ctx, w->off, r->out + (w->off - r->off),
		    w->len);
		break;
	case FS_WRITE:
		n = store_write(st, ctx, w->off, r->data + (w->off - r->off),
		    w->len);
		break;
	case FS_DISCARD:
		n = store_discard(st, ctx, w->off, w->len);
		break;
	}
	if (n < 0) {
		expected = 0;
		atomic_compare_exchange_strong(&r->error, &expected, (int)n);
	}
	if (atomic_fetch_sub(&r->pending, 1) != 1)
		return;
#ifdef ZS_DEBUG
	/*
	 * For tests (debug builds only): a write read and never answered,
	 * as by a server that dies now; its successor has it resent.
	 */
	if (r->fs->hold_writes && r->op == FS_WRITE) {
		log_info("ZSD_FAULT_HOLD_WRITES: not answering a write at %llu",
		    (unsigned long long)r->off);
		for (;;)
			pause();
	}
#endif

	if ((error = atomic_load(&r->error)) != 0)
		fuse_reply_err(r->req, -error);
	else if (r->op == FS_READ)
		fuse_reply_buf(r->req, r->out, r->len);
	else if (r->op == FS_WRITE)
		fuse_reply_write(r->req, r->len);
	else
		fuse_reply_err(r->req, 0);
	fs_req_put(r->fs, r);
}

/* Cut the current request's range into works on chunk boundaries. */
static void
fs_dispatch(struct fs *fs, fuse_req_t req, enum fs_op op, uint64_t off,
    size_t len, const char *data)
{
	struct fs_req *r = fs->current;
	uint64_t at = off, end = off + len, next;
	unsigned int n = 0;

	r->req = req;
	r->op = op;
	r->off = off;
	r->len = len;
	r->data = data;
	atomic_store(&r->error, 0);
	if (op == FS_DISCARD || (op == FS_READ && len <= FS_READ_INLINE)) {
		/*
		 * A discard has no payload to spread; one work frees the
		 * whole range.  A swap-in cluster decompresses in less time
		 * than a worker takes to wake up.
		 */
		r->works[0] = (struct work){ fs_work, r, off, len };
		r->queue[n++] = &r->works[0];
	} else {
		/*
		 * One work per worker (but no more than FS_CHUNKs), each a
		 * whole number of pages: a swap-out of 32 pages (eight
		 * FS_CHUNKs) is two works with two workers, not eight.
		 */
		uint64_t first = off / ZSD_PAGE_SIZE;
		uint64_t pages = (end - 1) / ZSD_PAGE_SIZE - first + 1;
		uint64_t parts = workers_count(fs->z->workers), per;

		if (parts > (len + FS_CHUNK - 1) / FS_CHUNK)
			parts = (len + FS_CHUNK - 1) / FS_CHUNK;
		per = (pages + parts - 1) / parts;
		while (at < end) {
			next = (first + per * (n + 1)) * ZSD_PAGE_SIZE;
			if (next > end)
				next = end;
			r->works[n] = (struct work){ fs_work, r, at,
			    (size_t)(next - at) };
			r->queue[n] = &r->works[n];
			n++;
			at = next;
		}
	}
	atomic_store(&r->pending, n);
	r->taken = true;
	if (op == FS_READ && len <= FS_READ_INLINE) {
		/* fs_readable runs it or queues it before it returns. */
		fs->held = r->queue[0];
		return;
	}
	workers_queue(fs->z->workers, r->queue, n);
}

/*
 * Loop: the held swap-in, if any, run here (nothing else is waiting) or
 * queued to the workers.  It may reply and free its slot.  True if there
 * was one.
 */
static bool
fs_release_held(struct fs *fs, bool run_here)
{
	struct work *w = fs->held;

	if (w == NULL)
		return false;
	fs->held = NULL;
	if (run_here)
		fs_work(w, fs->ctx);
	else
		workers_queue(fs->z->workers, &w, 1);
	return true;
}

static void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	uint64_t disksize = fs->z->cfg.disksize;

	/* Before anything uses off: mm_stat indexes its line with it. */
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (ino == INO_STAT) {
		fs_read_stat(fs, req, size, off);
		return;
	}
	if (ino != INO_SWAP) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* Past the end: counted, then answered with what lies before it. */
	(void)store_io_valid(fs->z->store, fs->ctx, (uint64_t)off, size);
	if ((uint64_t)off >= disksize || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > FS_MAX_IO)
		size = FS_MAX_IO;
	if (size > disksize - (uint64_t)off)
		size = (size_t)(disksize - (uint64_t)off);
	fs_dispatch(fs, req, FS_READ, (uint64_t)off, size, NULL);
}

static void
fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);

	if (ino != INO_SWAP) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (size == 0) {
		fuse_reply_write(req, 0);
		return;
	}
	/* A fixed-size file: nothing is written past its end. */
	if (!store_io_valid(fs->z->store, fs->ctx, (uint64_t)off, size)) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	fs_dispatch(fs, req, FS_WRITE, (uint64_t)off, size, buf);
}

/*
 * Punching a hole (what the loop device does for a discard) and zeroing a
 * range both free the pages: a free page reads as zeros.  Allocating space
 * means nothing to a store that allocates on write.
 */
static void
fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
    off_t len, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	uint64_t disksize = fs->z->cfg.disksize;

	if (ino != INO_SWAP) {
		fuse_reply_err(req, EBADF);
		return;
	}
	mode &= ~FALLOC_FL_KEEP_SIZE;
	if (mode != FALLOC_FL_PUNCH_HOLE && mode != FALLOC_FL_ZERO_RANGE) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= disksize) {
		fuse_reply_err(req, 0);
		return;
	}
	if ((uint64_t)len > disksize - (uint64_t)off)
		len = (off_t)(disksize - (uint64_t)off);
	fs_dispatch(fs, req, FS_DISCARD, (uint64_t)off, (size_t)len, NULL);
}

/* Writes are done when they are answered: nothing to flush. */
static void
fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void
fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void
fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

/* The tree is fixed. */
static void
fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev)
{
	fuse_reply_err(req, EPERM);
}

static void
fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EPERM);
}

static void
fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM);
}

static void
fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EPERM);
}

static void
fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	fuse_reply_err(req, EPERM);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.open = fs_open,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.statfs = fs_statfs,
	.read = fs_read,
	.write = fs_write,
	.fallocate = fs_fallocate,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_unlink,
	.rename = fs_rename,
	.create = fs_create,
};

/* Loop: a request is waiting on the session fd. */
static void
fs_readable(evutil_socket_t fd, short what, void *arg)
{
	struct fs *fs = arg;
	struct fuse_buf fb;
	struct fs_req *r;
	unsigned int rounds;
	ssize_t n;

	/*
	 * A few requests a wakeup, so signals and timers get their turn.
	 * Every way out releases the held swap-in: its slot must come back.
	 */
	for (rounds = 0; rounds < 16; rounds++) {
		if ((r = fs_req_get(fs)) == NULL) {
			fs_release_held(fs, false);
			event_del(fs->ev);
			return;
		}
		n = read(fd, r->in, FS_IN_SIZE);
		if (n < 0) {
			int error = errno;

			fs_req_put(fs, r);
			if (error == ENOENT || error == EINTR)
				continue;	/* interrupted: next one */
			if (error == EAGAIN) {
				/*
				 * Idle: run what the loop held, then look
				 * again; requests come meanwhile.
				 */
				if (fs_release_held(fs, true))
					continue;
				return;
			}
			fs_release_held(fs, false);
			event_del(fs->ev);
			if (error == ENODEV) {
				log_info("%s was unmounted", fs->z->cfg.mountpoint);
				zsd_shutdown(fs->z, 0);
				return;
			}
			/*
			 * Not a reason to stop serving: swap still lives here,
			 * and swapoff itself needs us to read.  Try again a
			 * little later rather than spin on the error.
			 */
			if (fs->read_errors++ % 100 == 0) {
				errno = error;
				log_warn("reading FUSE requests (failure %u in "
				    "a row); retrying", fs->read_errors);
			}
			if (event_add(fs->resume, &fs_retry) != 0 &&
			    event_add(fs->ev, NULL) != 0)
				fatalx("cannot go on reading FUSE requests");
			return;
		}
		fs->read_errors = 0;
		/* Another request: the held one goes to a worker. */
		fs_release_held(fs, false);
		if ((size_t)n < sizeof(struct fuse_in_header)) {
			/* The kernel never does this; do not parse junk. */
			fs_req_put(fs, r);
			log_warnx("short FUSE request (%zd bytes)", n);
			continue;
		}
		/* What a successor will replay (see the top). */
		if (((struct fuse_in_header *)r->in)->opcode == FUSE_INIT)
			keeper_save_init(fs->z, r->in, (size_t)n);
		memset(&fb, 0, sizeof(fb));
		fb.mem = r->in;
		fb.size = (size_t)n;
		r->taken = false;
		fs->current = r;
		fuse_session_process_buf(fs->se, &fb);
		fs->current = NULL;
		if (!r->taken)
			fs_req_put(fs, r);
	}
	fs_release_held(fs, false);
}

/*
 * Successor: feed libfuse the INIT the first server recorded, its reply
 * written to /dev/null.  0, or -errno.
 */
static int
fs_replay_init(struct fs *fs)
{
	const struct zsd_state *s = fs->z->state;
	const struct fuse_in_header *h;
	struct fuse_buf fb;
	struct fs_req *r;
	int fd = fuse_session_fd(fs->se), saved = -1, null = -1, error = 0;

	if (s == NULL || s->init_len == 0) {
		/* Died before answering INIT: RESEND brings it back. */
		log_info("no FUSE INIT recorded; the kernel will send it again");
		return 0;
	}
	if (s->init_len < sizeof(*h) || s->init_len > sizeof(s->init))
		return -EPROTO;
	if ((r = fs_req_get(fs)) == NULL)
		return -EBUSY;
	memcpy(r->in, s->init, s->init_len);
	h = (const struct fuse_in_header *)r->in;
	if (h->opcode != FUSE_INIT || h->len != s->init_len) {
		error = -EPROTO;
		goto out;
	}
	if ((saved = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0 ||
	    (null = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0 ||
	    dup3(null, fd, O_CLOEXEC) < 0) {
		error = -errno;
		goto out;
	}
	memset(&fb, 0, sizeof(fb));
	fb.mem = r->in;
	fb.size = s->init_len;
	fuse_session_process_buf(fs->se, &fb);
	/* Without the session's fd back, nothing can be served. */
	if (dup3(saved, fd, O_CLOEXEC) < 0)
		fatal("restoring the FUSE fd after replaying INIT");
	if (!fs->got_init)
		error = -EPROTO;
out:
	if (saved >= 0)
		close(saved);
	if (null >= 0)
		close(null);
	fs_req_put(fs, r);
	return error;
}

/* Successor: the kernel queues again what the predecessor had read. */
static void
fs_resend(struct fs *fs)
{
	struct fuse_out_header oh = {
		.len = sizeof(oh), .error = FS_NOTIFY_RESEND, .unique = 0,
	};
	ssize_t n;

	n = write(fuse_session_fd(fs->se), &oh, sizeof(oh));
	if (n == (ssize_t)sizeof(oh)) {
		log_debug("asked the kernel to resend unanswered requests");
		return;
	}
	log_warn("this kernel refuses FUSE_NOTIFY_RESEND (Linux 6.9 or later "
	    "has it): requests the previous server had read and not "
	    "answered stay unanswered; those swap-ins and swap-outs hang");
}

/* Loop, once, in a successor: take the connection over, then serve. */
static void
fs_takeover(evutil_socket_t unused, short what, void *arg)
{
	struct fs *fs = arg;
	int error;

	/* Exit, not stop: the keeper keeps the mount and tries again. */
	if ((error = fs_replay_init(fs)) != 0) {
		errno = -error;
		fatal("replaying the FUSE INIT recorded by the first server");
	}
	fs_resend(fs);
	if (event_add(fs->ev, NULL) != 0)
		fatalx("cannot read FUSE requests");
}

/* Loop: a slot came free while reading was paused. */
static void
fs_resume(evutil_socket_t fd, short what, void *arg)
{
	struct fs *fs = arg;

	event_add(fs->ev, NULL);
}

static void
fs_free(struct fs *fs)
{
	unsigned int i;

	if (fs == NULL)
		return;
	if (fs->ev != NULL)
		event_free(fs->ev);
	if (fs->resume != NULL)
		event_free(fs->resume);
	if (fs->takeover != NULL)
		event_free(fs->takeover);
	if (fs->se != NULL)
		fuse_session_destroy(fs->se);
	if (fs->reqs != NULL)
		for (i = 0; i < fs->nr_reqs; i++) {
			free(fs->reqs[i].in);
			free(fs->reqs[i].out);
		}
	free(fs->reqs);
	store_ctx_destroy(fs->ctx);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

int
fs_start(struct zsd *z)
{
	char *argv[] = { "zsd", "-o", "fsname=zsd,subtype=zsd,"
	    "default_permissions", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	char fdpath[32];
	const char *at = z->cfg.mountpoint;
	struct fs *fs;
	unsigned int i;
	int fd, error = -ENOMEM;

	if ((fs = calloc(1, sizeof(*fs))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
	fs->z = z;
	fs->started = time(NULL);
#ifdef ZS_DEBUG
	fs->hold_writes = !z->took_over &&
	    getenv("ZSD_FAULT_HOLD_WRITES") != NULL;
#endif
	if ((size_t)snprintf(fs->path, sizeof(fs->path), "%s/%s",
	    z->cfg.mountpoint, z->cfg.name) >= sizeof(fs->path)) {
		free(fs);
		return -ENAMETOOLONG;
	}
	if ((fs->ctx = store_ctx_create(z->store)) == NULL)
		goto fail;
	fs->nr_reqs = FS_REQS_PER_WORKER * workers_count(z->workers);
	if ((fs->reqs = calloc(fs->nr_reqs, sizeof(*fs->reqs))) == NULL)
		goto fail;
	for (i = 0; i < fs->nr_reqs; i++) {
		struct fs_req *r = &fs->reqs[i];

		r->fs = fs;
		r->in = malloc(FS_IN_SIZE);
		r->out = malloc(FS_MAX_IO);
		if (r->in == NULL || r->out == NULL)
			goto fail;
		r->next = fs->free;
		fs->free = r;
	}

	fs->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), fs);
	fuse_opt_free_args(&args);	/* libfuse may have added to them */
	if (fs->se == NULL) {
		error = -EINVAL;
		goto fail;
	}
	/* A successor's session: libfuse takes "/dev/fd/N" as is. */
	if (z->fuse_fd >= 0) {
		snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", z->fuse_fd);
		at = fdpath;
		fs->inherited = true;
	}
	if (fuse_session_mount(fs->se, at) != 0) {
		fuse_session_destroy(fs->se);
		fs->se = NULL;
		error = -EIO;
		goto fail;
	}
	fd = fuse_session_fd(fs->se);
	z->fuse_fd = -1;		/* the session's now */
	if (!fs->inherited)
		keeper_give_fuse(z, fd);
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fs->ev = event_new(z->base, fd, EV_READ | EV_PERSIST, fs_readable,
	    fs);
	fs->resume = event_new(z->base, -1, 0, fs_resume, fs);
	fs->takeover = event_new(z->base, -1, 0, fs_takeover, fs);
	if (fs->ev == NULL || fs->resume == NULL || fs->takeover == NULL ||
	    (!fs->inherited && event_add(fs->ev, NULL) != 0)) {
		fuse_session_unmount(fs->se);
		goto fail;
	}
	if (fs->inherited)
		event_active(fs->takeover, 0, 0);
	z->fs = fs;
	return 0;
fail:
	fs_free(fs);
	return error;
}

/* Loop: after the workers have stopped, so no reply is in flight. */
void
fs_stop(struct zsd *z)
{
	struct fs *fs = z->fs;

	if (fs == NULL)
		return;
	if (fs->ev != NULL)
		event_del(fs->ev);
	/*
	 * Restarting, the mount stays for the next server.  libfuse does
	 * not unmount a session on an inherited fd: zsd does, lazily, as
	 * libfuse does its own.
	 */
	if (fs->se != NULL && !z->restarting) {
		fuse_session_unmount(fs->se);
		if (fs->inherited && umount2(z->cfg.mountpoint, MNT_DETACH) != 0 &&
		    errno != EINVAL && errno != ENOENT)
			log_warn("unmounting %s", z->cfg.mountpoint);
	}
	fs_free(fs);
	z->fs = NULL;
}

const char *
fs_file_path(struct zsd *z)
{
	return z->fs->path;
}

/* Worst case of works outstanding, for sizing the workers' queue. */
unsigned int
fs_max_works(unsigned int nr_workers)
{
	return FS_REQS_PER_WORKER * nr_workers * FS_WORKS;
}
