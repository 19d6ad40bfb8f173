/*
 * fs.c - the FUSE front end: a low-level libfuse3 filesystem holding the
 * swap file and mm_stat, served from a thread of its own.  It moves
 * requests; the daemon, through the ops it gave (fs.h), stores and reads
 * the pages, runs the works and decides what to do when INIT is answered
 * or the mount goes.
 *
 *	/		directory, inode 1
 *	/<name>		the swap file: disksize bytes, direct I/O, inode 2
 *	/mm_stat	read-only, zram's mm_stat line (ops.stats), inode 3
 *
 * The FUSE thread, which fs_start starts and fs_stop_reading ends, reads
 * each request from the session's fd into a request slot of its own (a
 * fixed table; only libfuse's small request struct is allocated per
 * request, from a heap that is locked and reuses it) and hands it to
 * libfuse, which calls the ops below.  A write or a long read
 * of the swap file is cut into one work per worker, on page boundaries (a
 * partial page's read-modify-write stays in one work) but no more works
 * than the request has FS_CHUNKs, and queued to the daemon's workers
 * (ops.queue).  A discard is one work, queued.  A read of up to
 * FS_READ_INLINE bytes (a swap-in) is one work that the FUSE thread
 * holds: if the fd has nothing more to read, it runs it itself, which
 * costs less than waking a worker and being woken by it; otherwise
 * (another request came, no slot is free, the read failed other than with
 * ENOENT or EINTR, or the thread has served its share of requests for
 * this wakeup) the held work goes to the workers, so that many tasks
 * swapping in at once use every core.
 * Whoever finishes a request's last work sends the reply and frees the
 * slot.  When every slot is busy the FUSE thread stops reading the fd
 * until a worker frees one.
 *
 * Why a thread of its own: the daemon's loop also serves control clients,
 * timers and signals, and the swap data path must never wait on them.
 * The FUSE thread runs an event base of its own (the fd, a slot freed, the
 * retry after a failed read, the stop) and calls nothing of the daemon's
 * but the ops that are safe on any thread; what must happen on the loop
 * (INIT answered, the mount gone) is an event of the loop's that it makes
 * active.  It is started by the thread calling fs_start and inherits its
 * scheduling (zsd's I/O priority), as do the ring threads it starts.
 *
 * Lock: fs->lock guards the free list and paused; a busy slot belongs to
 * its request (FUSE thread until queued or run, then its works).
 * fs->show_lock guards what fs_transport shows (fs-int.h).
 *
 * Taking over (the daemon's keeper.c): a server started after another
 * died, or asked to be replaced, gets the live connection's /dev/fuse fd
 * instead of mounting (cfg.fuse_fd).  The kernel sent INIT once, to the
 * first server, and libfuse answers every request with EIO until it has
 * seen one: the first server has the INIT request kept as it read it
 * (ops.save_init), and a successor, given it back (cfg.init), feeds it
 * to libfuse with the session fd pointed at /dev/null for the moment, so
 * that the reply goes nowhere.  Then it asks the kernel to queue again
 * the requests its predecessor read and did not answer
 * (FUSE_NOTIFY_RESEND); they come with FUSE_UNIQUE_RESEND set in their
 * unique, which libfuse copies into the reply like any other, and are
 * served again (every operation on the file is safe to repeat).  A
 * kernel without RESEND refuses it: those requests then stay unanswered.
 */
#include <config.h>

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fs-int.h"

#define FS_REQS_PER_WORKER 4
#define FS_READ_INLINE	(64u << 10)	/* a read this small: one work */

/*
 * FUSE_NOTIFY_RESEND, notify code 7 of linux/fuse.h since Linux 6.9 (FUSE
 * 7.40); older headers (Debian 12's) lack it.  Resent requests carry
 * FUSE_UNIQUE_RESEND, bit 63 of unique.
 */
#define FS_NOTIFY_RESEND	7

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
	uint64_t pages, compr;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_atime = st->st_mtime = st->st_ctime = fs->started;
	st->st_blksize = FS_PAGE_SIZE;
	switch (ino) {
	case INO_ROOT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		break;
	case INO_SWAP:
		fs->ops.usage(fs->arg, &pages, &compr);
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = (off_t)fs->cfg.disksize;
		st->st_blocks = (blkcnt_t)(compr / 512);
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
	if (strcmp(name, fs->cfg.name) == 0)
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
	/*
	 * The loop device's direct I/O comes as asynchronous (background)
	 * requests; past max_background the kernel makes the loop's worker
	 * wait, and past congestion_threshold (3/4 of it) writeback calls
	 * the file congested.  Measured (BENCHMARKS.md, transport-fio): the
	 * kernel's 12 serve swap I/O as well as 64 or better, by /dev/fuse
	 * and by io_uring alike (the ring takes one more a queue anyway).
	 */
	conn->max_background = fs->cfg.max_background;
	conn->congestion_threshold = conn->max_background * 3 / 4;
	if (conn->congestion_threshold == 0)
		conn->congestion_threshold = 1;
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
	    FUSE_CAP_SPLICE_MOVE);
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	fs->started = time(NULL);
	fs->got_init = true;
	log_debug("FUSE protocol %u.%u, max_write %u, max_background %u",
	    conn->proto_major, conn->proto_minor, conn->max_write,
	    conn->max_background);
	/* The daemon acts on it on its loop (fs_on_ready). */
	event_active(fs->ready, 0, 0);
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
	const char *names[] = { ".", "..", fs->cfg.name, "mm_stat" };
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
	uint64_t pages, compr;
	struct statvfs sv;

	fs->ops.usage(fs->arg, &pages, &compr);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = FS_PAGE_SIZE;
	sv.f_frsize = FS_PAGE_SIZE;
	sv.f_blocks = fs->cfg.disksize / FS_PAGE_SIZE;
	sv.f_bfree = sv.f_blocks - pages;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = 3;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* mm_stat: zram's fields, in its order and format. */
static void
fs_read_stat(struct fs *fs, fuse_req_t req, size_t size, off_t off)
{
	struct fs_stats ss;
	char line[256];
	int n;

	fs->ops.stats(fs->arg, &ss);
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
fs_work(struct fs_work *w, void *ctx)
{
	struct fs_req *r = w->arg;
	struct fs *fs = r->fs;
	long n = 0;
	int error, expected;

	switch (r->op) {
	case FS_READ:
		n = fs->ops.read(fs->arg, ctx, w->off,
		    r->out + (w->off - r->off), w->len);
		break;
	case FS_WRITE:
		n = fs->ops.write(fs->arg, ctx, w->off,
		    r->data + (w->off - r->off), w->len);
		break;
	case FS_DISCARD:
		n = fs->ops.discard(fs->arg, ctx, w->off, w->len);
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
		r->works[0] = (struct fs_work){ fs_work, r, off, len };
		r->queue[n++] = &r->works[0];
	} else {
		/*
		 * One work per worker (but no more than FS_CHUNKs), each a
		 * whole number of pages: a swap-out of 32 pages (eight
		 * FS_CHUNKs) is two works with two workers, not eight.
		 */
		uint64_t first = off / FS_PAGE_SIZE;
		uint64_t pages = (end - 1) / FS_PAGE_SIZE - first + 1;
		uint64_t parts = fs->cfg.workers, per;

		if (parts > (len + FS_CHUNK - 1) / FS_CHUNK)
			parts = (len + FS_CHUNK - 1) / FS_CHUNK;
		per = (pages + parts - 1) / parts;
		while (at < end) {
			next = (first + per * (n + 1)) * FS_PAGE_SIZE;
			if (next > end)
				next = end;
			r->works[n] = (struct fs_work){ fs_work, r, at,
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
	fs->ops.queue(fs->arg, r->queue, n);
}

/*
 * FUSE thread: the held swap-in, if any, run here (nothing else is
 * waiting) or queued to the workers.  It may reply and free its slot.
 * True if there was one.
 */
static bool
fs_release_held(struct fs *fs, bool run_here)
{
	struct fs_work *w = fs->held;

	if (w == NULL)
		return false;
	fs->held = NULL;
	if (run_here)
		fs_work(w, fs->ctx);
	else
		fs->ops.queue(fs->arg, &w, 1);
	return true;
}

/* Any thread: see fs-int.h. */
size_t
fs_swap_read_len(struct fs *fs, void *ctx, uint64_t off, size_t size)
{
	uint64_t disksize = fs->cfg.disksize;

	/* Past the end: counted, then answered with what lies before it. */
	(void)fs->ops.io_valid(fs->arg, ctx, off, size);
	if (off >= disksize || size == 0)
		return 0;
	if (size > FS_MAX_IO)
		size = FS_MAX_IO;
	if (size > disksize - off)
		size = (size_t)(disksize - off);
	return size;
}

/* A fixed-size file: nothing is written past its end. */
int
fs_swap_write_ok(struct fs *fs, void *ctx, uint64_t off, size_t size)
{
	return fs->ops.io_valid(fs->arg, ctx, off, size) ? 0 : -EFBIG;
}

/*
 * Punching a hole (what the loop device does for a discard) and zeroing a
 * range both free the pages: a free page reads as zeros.  Allocating space
 * means nothing to a store that allocates on write.
 */
int64_t
fs_swap_discard_len(struct fs *fs, int mode, int64_t off, int64_t len)
{
	uint64_t disksize = fs->cfg.disksize;

	mode &= ~FALLOC_FL_KEEP_SIZE;
	if (mode != FALLOC_FL_PUNCH_HOLE && mode != FALLOC_FL_ZERO_RANGE)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if ((uint64_t)off >= disksize)
		return 0;
	if ((uint64_t)len > disksize - (uint64_t)off)
		len = (int64_t)(disksize - (uint64_t)off);
	return len;
}

static void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);

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
	if ((size = fs_swap_read_len(fs, fs->ctx, (uint64_t)off, size)) == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
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
	if (fs_swap_write_ok(fs, fs->ctx, (uint64_t)off, size) != 0) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	fs_dispatch(fs, req, FS_WRITE, (uint64_t)off, size, buf);
}

static void
fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
    off_t len, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	int64_t bytes;

	if (ino != INO_SWAP) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if ((bytes = fs_swap_discard_len(fs, mode, off, len)) <= 0) {
		fuse_reply_err(req, (int)-bytes);
		return;
	}
	fs_dispatch(fs, req, FS_DISCARD, (uint64_t)off, (size_t)bytes, NULL);
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

/*
 * libfuse's writes, through fuse_session_custom_io: an answer to a ring
 * request goes into its entry (uring.c); INIT's reply may take the
 * io_uring flag on its way to the kernel.
 */
static ssize_t
fs_io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fs *fs = userdata;
	struct fuse_init_out init;
	const struct fuse_out_header *oh;
	ssize_t n;

	if ((n = fs_uring_capture(iov, count)) != -1)
		return n;
	if (fs->init_unique != 0 && count >= 2 &&
	    iov[0].iov_len == sizeof(*oh) &&
	    (oh = iov[0].iov_base)->unique == fs->init_unique &&
	    oh->error == 0) {
		fs->init_unique = 0;
		memset(&init, 0, sizeof(init));
		memcpy(&init, iov[1].iov_base, iov[1].iov_len < sizeof(init) ?
		    iov[1].iov_len : sizeof(init));
		fs_uring_offer(fs, &init, iov[1].iov_len);
		if (iov[1].iov_len <= sizeof(init))
			iov[1].iov_base = &init;
	}
	return writev(fd, iov, count);
}

static ssize_t
fs_io_read(int fd, void *buf, size_t len, void *userdata)
{
	return read(fd, buf, len);
}

static const struct fuse_custom_io fs_io = {
	.writev = fs_io_writev,
	.read = fs_io_read,
};

/* Any thread: libfuse serves the request in buf (uring.c's cold path). */
void
fs_process(struct fs *fs, char *buf, size_t len)
{
	struct fuse_buf fb;

	memset(&fb, 0, sizeof(fb));
	fb.mem = buf;
	fb.size = len;
	fuse_session_process_buf(fs->se, &fb);
}

/*
 * FUSE thread: INIT as the kernel sent it, kept for a successor before it
 * is answered (ops.save_init is safe here, fs.h); what it offers, and its
 * unique, by which fs_io_writev knows the reply.
 */
static void
fs_saw_init(struct fs *fs, const char *in, size_t len)
{
	const struct fuse_in_header *h = (const void *)in;
	const struct fuse_init_in *arg = (const void *)(h + 1);

	fs->ops.save_init(fs->arg, in, len);
	fs->init_unique = h->unique;
	fs->init_flags = 0;
	if (len < sizeof(*h) + offsetof(struct fuse_init_in, flags2) +
	    sizeof(arg->flags2))
		return;
	fs->init_flags = arg->flags;
	if (arg->flags & FUSE_INIT_EXT)
		fs->init_flags |= (uint64_t)arg->flags2 << 32;
}

/*
 * FUSE thread (or fs_start, before it runs): the transport as it stands,
 * for fs_transport.
 */
static void
fs_show_transport(struct fs *fs)
{
	pthread_mutex_lock(&fs->show_lock);
	fs->shown = fs->transport;
	snprintf(fs->shown_why, sizeof(fs->shown_why), "%s",
	    fs->uring != NULL ? "" : fs->transport_why);
	fs->shown_ring = fs->uring != NULL &&
	    strcmp(fs->transport, "uring") == 0;
	pthread_mutex_unlock(&fs->show_lock);
}

/*
 * FUSE thread, INIT answered: serve the ring if it was agreed on.  The
 * ring threads start from here, and so inherit this thread's scheduling.
 */
static void
fs_after_init(struct fs *fs)
{
	fs->init_unique = 0;
	if (fs->uring == NULL)
		return;
	if (!fs_uring_offered(fs)) {
		fs_uring_stop(fs);
		log_info("FUSE requests by /dev/fuse: %s", fs->transport_why);
	} else if (fs_uring_start(fs) != 0)
		log_warnx("FUSE requests by /dev/fuse: %s", fs->transport_why);
	fs_show_transport(fs);
}

/* FUSE thread: a request is waiting on the session fd. */
static void
fs_readable(evutil_socket_t fd, short what, void *arg)
{
	struct fs *fs = arg;
	struct fuse_buf fb;
	struct fs_req *r;
	unsigned int rounds;
	ssize_t n;
	bool init;

	/*
	 * A few requests a wakeup, so that a stop (fs_stop_reading) gets its
	 * turn.  Every way out releases the held swap-in: its slot must come
	 * back.
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
				 * Idle: run what it held, then look again;
				 * requests come meanwhile.
				 */
				if (fs_release_held(fs, true))
					continue;
				return;
			}
			fs_release_held(fs, false);
			event_del(fs->ev);
			if (error == ENODEV) {
				/* The daemon's loop stops it (fs_on_gone). */
				log_info("%s was unmounted",
				    fs->cfg.mountpoint);
				event_active(fs->gone, 0, 0);
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
		init = ((struct fuse_in_header *)r->in)->opcode == FUSE_INIT;
		if (init)
			fs_saw_init(fs, r->in, (size_t)n);
		memset(&fb, 0, sizeof(fb));
		fb.mem = r->in;
		fb.size = (size_t)n;
		r->taken = false;
		fs->current = r;
		fuse_session_process_buf(fs->se, &fb);
		fs->current = NULL;
		if (!r->taken)
			fs_req_put(fs, r);
		if (init)
			fs_after_init(fs);
	}
	fs_release_held(fs, false);
}

/*
 * Successor, FUSE thread: feed libfuse the INIT the first server recorded,
 * its reply written to /dev/null.  0, or -errno.
 */
static int
fs_replay_init(struct fs *fs)
{
	size_t len = fs->cfg.init_len;
	const struct fuse_in_header *h;
	struct fuse_buf fb;
	struct fs_req *r;
	int fd = fuse_session_fd(fs->se), saved = -1, null = -1, error = 0;

	if (fs->cfg.init == NULL || len == 0) {
		/* Died before answering INIT: RESEND brings it back. */
		log_info("no FUSE INIT recorded; the kernel will send it again");
		return 0;
	}
	if (len < sizeof(*h) || len > FS_IN_SIZE)
		return -EPROTO;
	if ((r = fs_req_get(fs)) == NULL)
		return -EBUSY;
	memcpy(r->in, fs->cfg.init, len);
	h = (const struct fuse_in_header *)r->in;
	if (h->opcode != FUSE_INIT || h->len != len) {
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
	fb.size = len;
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

/*
 * Successor, FUSE thread: the kernel queues again what the predecessor
 * had read.
 */
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

/*
 * FUSE thread, first thing, in a successor: take the connection over,
 * then serve.  The ring threads start from here, as from fs_after_init.
 */
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
	/*
	 * The kernel keeps a connection on the ring once it has been: serve
	 * it, whatever transport says (uring.c).
	 */
	if (fs->cfg.ring) {
		if (fs->uring == NULL)
			fatalx("this connection is served by io_uring, which "
			    "this server cannot set up: %s", fs->transport_why);
		fs_uring_take_over(fs, fs->cfg.ring_payload);
		if (fs_uring_start(fs) != 0)
			fatalx("cannot serve this connection's io_uring: %s",
			    fs->transport_why);
		log_warnx("took over a connection served by io_uring: "
		    "requests the previous server had taken from the ring "
		    "cannot be resent and stay unanswered");
	} else if (fs->uring != NULL)
		fs_uring_stop(fs);
	fs_show_transport(fs);
	if (event_add(fs->ev, NULL) != 0)
		fatalx("cannot read FUSE requests");
}

/* FUSE thread: a slot came free while reading was paused. */
static void
fs_resume(evutil_socket_t fd, short what, void *arg)
{
	struct fs *fs = arg;

	event_add(fs->ev, NULL);
}

/* FUSE thread: fs_stop_reading asks it to end. */
static void
fs_on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct fs *fs = arg;

	event_base_loopbreak(fs->base);
}

/* Loop: INIT was answered (by the FUSE thread, fs_init). */
static void
fs_on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct fs *fs = arg;

	fs->ops.ready(fs->arg);
}

/* Loop: the FUSE thread read ENODEV. */
static void
fs_on_gone(evutil_socket_t fd, short what, void *arg)
{
	struct fs *fs = arg;

	fs->ops.gone(fs->arg);
}

/* The FUSE thread: serve until fs_stop_reading. */
static void *
fs_serve(void *arg)
{
	struct fs *fs = arg;

	(void)pthread_setname_np(pthread_self(), "zsd-fuse");
	/* Not on empty: reading is paused at times (fs_resume adds it). */
	if (event_base_loop(fs->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
		fatalx("serving FUSE requests: event_base_loop failed");
	return NULL;
}

static void
fs_event_free(struct event *ev)
{
	if (ev != NULL)
		event_free(ev);
}

/* Loop, the FUSE thread not running. */
static void
fs_free(struct fs *fs)
{
	unsigned int i;

	if (fs == NULL)
		return;
	fs_uring_stop(fs);
	fs_event_free(fs->ev);
	fs_event_free(fs->resume);
	fs_event_free(fs->takeover);
	fs_event_free(fs->stop);
	fs_event_free(fs->ready);
	fs_event_free(fs->gone);
	if (fs->base != NULL)
		event_base_free(fs->base);
	if (fs->se != NULL)
		fuse_session_destroy(fs->se);
	if (fs->reqs != NULL)
		for (i = 0; i < fs->nr_reqs; i++) {
			free(fs->reqs[i].in);
			free(fs->reqs[i].out);
		}
	free(fs->reqs);
	if (fs->ctx != NULL)
		fs->ops.ctx_destroy(fs->arg, fs->ctx);
	pthread_mutex_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->show_lock);
	free(fs);
}

int
fs_start(const struct fs_config *cfg, const struct fs_ops *ops, void *arg,
    struct fs **fsp)
{
	char *argv[] = { "zsd", "-o", "fsname=zsd,subtype=zsd,"
	    "default_permissions", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	char fdpath[32];
	const char *at = cfg->mountpoint;
	sigset_t all, old;
	struct fs *fs;
	unsigned int i;
	int fd, error = -ENOMEM;

	if ((fs = calloc(1, sizeof(*fs))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->show_lock, NULL);
	fs->cfg = *cfg;
	fs->ops = *ops;
	fs->arg = arg;
	fs->started = time(NULL);
#ifdef ZS_DEBUG
	fs->hold_writes = cfg->fuse_fd < 0 &&
	    getenv("ZSD_FAULT_HOLD_WRITES") != NULL;
#endif
	if ((size_t)snprintf(fs->path, sizeof(fs->path), "%s/%s",
	    cfg->mountpoint, cfg->name) >= sizeof(fs->path)) {
		free(fs);
		return -ENAMETOOLONG;
	}
	/*
	 * The transport (uring.c): auto is /dev/fuse, which a successor can
	 * take over with every request in flight.  A successor serves the
	 * ring if its predecessor did, whatever it was asked.
	 */
	fs->transport = "dev";
	if (cfg->fuse_fd >= 0 && cfg->ring)
		(void)fs_uring_prepare(fs);
	else if ((cfg->fuse_fd < 0 || cfg->init_len == 0) &&
	    strcmp(cfg->transport, "uring") == 0) {
		/* INIT is still to come: its reply can ask for the ring. */
		if (fs_uring_prepare(fs) != 0)
			log_warnx("FUSE requests by /dev/fuse: %s",
			    fs->transport_why);
	} else
		snprintf(fs->transport_why, sizeof(fs->transport_why),
		    "transport = %s", cfg->transport);
	if ((fs->ctx = ops->ctx_create(arg)) == NULL)
		goto fail;
	fs->nr_reqs = FS_REQS_PER_WORKER * cfg->workers;
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
	if (cfg->fuse_fd >= 0) {
		snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", cfg->fuse_fd);
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
	/* libfuse's writes through fs_io_writev; the fd stays the session's. */
	if (fuse_session_custom_io(fs->se, &fs_io, fd) != 0) {
		fuse_session_unmount(fs->se);
		error = -EIO;
		goto fail;
	}
	if (!fs->inherited)
		ops->save_fd(arg, fd);
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fs_show_transport(fs);
	if ((fs->base = event_base_new()) == NULL) {
		fuse_session_unmount(fs->se);
		goto fail;
	}
	fs->ev = event_new(fs->base, fd, EV_READ | EV_PERSIST, fs_readable,
	    fs);
	fs->resume = event_new(fs->base, -1, 0, fs_resume, fs);
	fs->takeover = event_new(fs->base, -1, 0, fs_takeover, fs);
	fs->stop = event_new(fs->base, -1, 0, fs_on_stop, fs);
	fs->ready = event_new(cfg->base, -1, 0, fs_on_ready, fs);
	fs->gone = event_new(cfg->base, -1, 0, fs_on_gone, fs);
	if (fs->ev == NULL || fs->resume == NULL || fs->takeover == NULL ||
	    fs->stop == NULL || fs->ready == NULL || fs->gone == NULL ||
	    (!fs->inherited && event_add(fs->ev, NULL) != 0)) {
		fuse_session_unmount(fs->se);
		goto fail;
	}
	/* The takeover is the FUSE thread's first work. */
	if (fs->inherited)
		event_active(fs->takeover, 0, 0);
	/* Signals are the loop thread's; the FUSE thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	error = -pthread_create(&fs->thread, NULL, fs_serve, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		fuse_session_unmount(fs->se);
		goto fail;
	}
	fs->running = true;
	*fsp = fs;
	return 0;
fail:
	fs_free(fs);
	return error;
}

/*
 * Loop: end the FUSE thread (between two wakeups, so it holds no
 * swap-in).  What it read and queued is the workers', who must still run;
 * what it has not read stays in the kernel, for a successor.
 */
void
fs_stop_reading(struct fs *fs)
{
	int error;

	if (fs == NULL || !fs->running)
		return;
	event_active(fs->stop, 0, 0);
	if ((error = pthread_join(fs->thread, NULL)) != 0) {
		errno = error;
		fatal("joining the FUSE thread");
	}
	fs->running = false;
}

/*
 * Loop: after fs_stop_reading and after the workers have stopped, so no
 * reply is in flight.  (If reading has not stopped yet it stops here; the
 * workers must then be running still.)
 */
void
fs_stop(struct fs *fs, bool unmount)
{
	if (fs == NULL)
		return;
	fs_stop_reading(fs);
	/*
	 * Restarting, the mount stays for the next server.  libfuse does
	 * not unmount a session on an inherited fd: zsd does, lazily, as
	 * libfuse does its own.
	 */
	if (fs->se != NULL && unmount) {
		fuse_session_unmount(fs->se);
		if (fs->inherited && umount2(fs->cfg.mountpoint,
		    MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
			log_warn("unmounting %s", fs->cfg.mountpoint);
	}
	fs_free(fs);
}

/*
 * Any thread: the transport in use, and why it is not io_uring ("" if it
 * is) copied into why.
 */
const char *
fs_transport(struct fs *fs, char *why, size_t len)
{
	const char *transport;

	if (fs == NULL) {
		snprintf(why, len, "not mounted");
		return "none";
	}
	pthread_mutex_lock(&fs->show_lock);
	transport = fs->shown;
	snprintf(why, len, "%s", fs->shown_why);
	pthread_mutex_unlock(&fs->show_lock);
	return transport;
}

/* Any thread. */
unsigned long
fs_ring_requests(struct fs *fs)
{
	unsigned long n = 0;

	if (fs == NULL)
		return 0;
	pthread_mutex_lock(&fs->show_lock);
	if (fs->shown_ring)
		n = fs_uring_served(fs);
	pthread_mutex_unlock(&fs->show_lock);
	return n;
}

const char *
fs_file_path(const struct fs *fs)
{
	return fs->path;
}

/* Worst case of works outstanding, for sizing the workers' queue. */
unsigned int
fs_max_works(unsigned int workers)
{
	return FS_REQS_PER_WORKER * workers * FS_WORKS;
}
