/*
 * uring.c - FUSE over io_uring: the kernel queues each request on the
 * CPU that made it, and a thread pinned to that CPU takes it, serves it
 * and answers it with the next fetch in one io_uring command.  A swap-in
 * is served where the task that faulted runs, without the wakeup across
 * CPUs that reading /dev/fuse from one thread costs.
 *
 * Setting it up, in the order the kernel (Linux 6.14 or later, with
 * /sys/module/fuse/parameters/enable_uring on) requires:
 *
 *  1. fs_uring_prepare, before mounting: the parameter is on (zsd turns
 *     it on if it may), io_uring takes 128-byte SQEs and knows
 *     IORING_OP_URING_CMD.  Anything missing: /dev/fuse only, and why.
 *  2. INIT comes by /dev/fuse as always and libfuse answers it.  libfuse
 *     3.14 knows nothing of io_uring: fs.c's writev hook hands the reply
 *     to fs_uring_offer, which adds FUSE_OVER_IO_URING if the kernel
 *     offered it.  From then on the kernel holds every new request until
 *     each CPU's queue has an entry, or until a registration fails.
 *  3. fs_uring_start, on fs.c's FUSE thread (whose scheduling the ring
 *     threads inherit): one thread per queue (queue N is CPU N's), pinned
 *     to its CPU, each with its own ring; every entry (a header and a
 *     payload buffer, preallocated and locked) is registered.  When every
 *     queue has one, requests come by the ring.  If a thread could not
 *     set up and none of its registrations reached the kernel, a
 *     registration made to fail on purpose tells the kernel to give up
 *     the ring: requests come by /dev/fuse again (the "poison").
 *
 * What the ring does not carry (interrupts, forgets; notifications go
 * the other way) still comes by /dev/fuse, which fs.c's FUSE thread keeps
 * reading.
 *
 * Serving: a read, write or discard of the swap file is served on the
 * ring's thread, the daemon's callbacks (fs.h) called directly on the
 * entry's buffers.  Any other request (lookup, getattr, open, mm_stat,
 * ...) is rebuilt as /dev/fuse would have brought it and given to
 * libfuse, whose reply fs.c's writev hook hands back here
 * (fs_uring_capture): one set of ops for both transports.
 *
 * A server that dies with ring requests in hand cannot have them resent:
 * FUSE_NOTIFY_RESEND (fs.c) requeues what was read from /dev/fuse, not
 * what the ring queues hold (Linux 6.18).  Those requests hang until the
 * connection ends.  That is why transport = auto means /dev/fuse, and
 * transport = uring is asked for knowingly (zsd.conf(5)).  A successor
 * of a server that served the ring registers new entries (the kernel
 * keeps the connection on the ring) and serves what comes next.
 */
#include <config.h>

#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "fs-int.h"

#ifdef HAVE_LIBURING
#include <liburing.h>

/*
 * The FUSE-over-io_uring ABI, include/uapi/linux/fuse.h of Linux 6.14
 * (FUSE 7.42).  Debian 12's headers (Linux 6.1) lack it; the INIT flag
 * is in fs-int.h.
 */
#define FS_URING_REGISTER	1	/* register an entry, fetch */
#define FS_URING_COMMIT_FETCH	2	/* answer, fetch the next */

struct fs_uring_ent_in_out {
	uint64_t	flags;
	uint64_t	commit_id;	/* kernel: to name in the answer */
	uint32_t	payload_sz;	/* bytes of payload, either way */
	uint32_t	padding;
	uint64_t	reserved;
};

struct fs_uring_header {
	char		in_out[128];	/* fuse_in_header / fuse_out_header */
	char		op_in[128];	/* the opcode's own header */
	struct fs_uring_ent_in_out ent;
};

/* In the SQE's command area (IORING_SETUP_SQE128). */
struct fs_uring_cmd {
	uint64_t	flags;
	uint64_t	commit_id;
	uint16_t	qid;
	uint8_t		padding[6];
};

#define FS_URING_DEPTH	8	/* entries a queue */
#define FS_URING_COLD	8192	/* a request for libfuse, rebuilt */
#define FS_URING_MIN_PAYLOAD	8192	/* the kernel's FUSE_MIN_READ_BUFFER */

struct fs_uring_thread;

struct fs_uring_ent {
	struct fs_uring_thread	*t;
	struct fs_uring_header	*hdr;
	char			*payload;
	struct iovec		 iov[2];	/* hdr, payload: registered */
	uint16_t		 qid;
	bool			 live;		/* registered, not ended */
	bool			 captured;	/* libfuse answered it */
};

struct fs_uring_thread {
	struct fs_uring		*u;
	pthread_t		 tid;
	bool			 running;
	unsigned int		 index;
	int			 cpu;		/* pinned there; -1: not */
	struct io_uring		 ring;
	bool			 ring_ok;
	struct fs_uring_ent	*ents;
	unsigned int		 nr_ents;
	unsigned int		 live;
	void			*ctx;		/* the daemon's, for I/O */
	char			*cold;		/* FS_URING_COLD */
	atomic_ulong		 served;	/* requests answered */
};

struct fs_uring {
	struct fs		*fs;
	int			 fd;		/* /dev/fuse */
	int			 stop_fd;	/* eventfd: threads, stop */
	struct io_uring		 probe;		/* the poison's ring */
	bool			 probe_ok;
	bool			 offered;	/* INIT's reply said yes */
	bool			 taken_over;	/* the predecessor's ring */
	unsigned int		 nr_queues;	/* possible CPUs */
	unsigned int		 nr_threads;
	size_t			 payload;	/* bytes, each entry */
	void			*mem;		/* headers and payloads */
	size_t			 mem_len;
	struct fs_uring_thread	*threads;
	const char		*fault;		/* debug: ZSD_FAULT_URING */

	pthread_mutex_t		 lock;		/* the setup's report */
	pthread_cond_t		 cond;
	unsigned int		 reported;	/* threads set up (or not) */
	int			 error;		/* the first -errno */
	const char		*error_at;	/* and where */
	bool			 any_failed_register; /* the kernel saw one */
};

/* This thread is answering a ring request through libfuse. */
static __thread struct fs_uring_ent *fs_uring_capturing;

static const char fs_uring_param[] = "/sys/module/fuse/parameters/enable_uring";

/* The kernel makes a queue for every possible CPU: highest + 1. */
static unsigned int
fs_uring_possible_cpus(void)
{
	char buf[256], *p;
	unsigned long hi = 0;
	FILE *f;

	if ((f = fopen("/sys/devices/system/cpu/possible", "re")) != NULL) {
		if (fgets(buf, sizeof(buf), f) != NULL) {
			/* "0-3", "0", "0-3,8-11": the last number */
			for (p = buf; *p != '\0'; p++)
				if (*p >= '0' && *p <= '9') {
					hi = strtoul(p, &p, 10);
					p--;
				}
			fclose(f);
			return (unsigned int)hi + 1;
		}
		fclose(f);
	}
	return (unsigned int)get_nprocs_conf();
}

static int
fs_uring_param_on(struct fs *fs)
{
	char c = 0;
	int fd;

	if ((fd = open(fs_uring_param, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(fs->transport_why, sizeof(fs->transport_why),
		    "this kernel has no FUSE over io_uring (Linux 6.14 or "
		    "later, CONFIG_FUSE_IO_URING)");
		return -1;
	}
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	if (c == 'Y')
		return 0;
	if ((fd = open(fs_uring_param, O_WRONLY | O_CLOEXEC)) < 0 ||
	    write(fd, "Y", 1) != 1) {
		snprintf(fs->transport_why, sizeof(fs->transport_why),
		    "%s is off and cannot be turned on: %s", fs_uring_param,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	log_info("turned on %s", fs_uring_param);
	return 0;
}

/* Loop, in fs_start, before mounting. */
int
fs_uring_prepare(struct fs *fs)
{
	struct fs_uring *u;
	struct io_uring_probe *probe;
	int error;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(fs->transport_why, sizeof(fs->transport_why),
		    "out of memory");
		return -1;
	}
	u->fs = fs;
	u->stop_fd = -1;
	u->fd = -1;
#ifdef ZS_DEBUG
	u->fault = getenv("ZSD_FAULT_URING");
#endif
	if (u->fault != NULL && strcmp(u->fault, "prepare") == 0) {
		snprintf(fs->transport_why, sizeof(fs->transport_why),
		    "ZSD_FAULT_URING=prepare");
		goto fail;
	}
	if (fs_uring_param_on(fs) != 0)
		goto fail;
	error = io_uring_queue_init(4, &u->probe, IORING_SETUP_SQE128);
	if (error < 0) {
		snprintf(fs->transport_why, sizeof(fs->transport_why),
		    "io_uring with 128-byte entries: %s", strerror(-error));
		goto fail;
	}
	u->probe_ok = true;
	probe = io_uring_get_probe_ring(&u->probe);
	if (probe == NULL || !io_uring_opcode_supported(probe,
	    IORING_OP_URING_CMD)) {
		snprintf(fs->transport_why, sizeof(fs->transport_why),
		    "io_uring without IORING_OP_URING_CMD");
		if (probe != NULL)
			io_uring_free_probe(probe);
		goto fail;
	}
	io_uring_free_probe(probe);
	u->nr_queues = fs_uring_possible_cpus();
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	fs->uring = u;
	return 0;
fail:
	if (u->probe_ok)
		io_uring_queue_exit(&u->probe);
	free(u);
	return -1;
}

/* FUSE thread, in the writev of INIT's reply: say yes if the kernel asked. */
void
fs_uring_offer(struct fs *fs, struct fuse_init_out *out, size_t len)
{
	struct fs_uring *u = fs->uring;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), pages;

	if (u == NULL || u->offered)
		return;
	if ((fs->init_flags & FS_OVER_IO_URING) == 0 ||
	    len < offsetof(struct fuse_init_out, flags2) + sizeof(out->flags2)) {
		snprintf(fs->transport_why, sizeof(fs->transport_why),
		    "the kernel did not offer io_uring in FUSE INIT");
		return;
	}
	out->flags |= FUSE_INIT_EXT;
	out->flags2 |= (uint32_t)(FS_OVER_IO_URING >> 32);
	/* The kernel refuses entries smaller than its largest request. */
	pages = (out->flags & FUSE_MAX_PAGES) ? out->max_pages : 32;
	u->payload = FS_URING_MIN_PAYLOAD;
	if (u->payload < out->max_write)
		u->payload = out->max_write;
	if (u->payload < pages * page)
		u->payload = pages * page;
	u->offered = true;
}

/* Any thread, from libfuse's writev: see fs-int.h. */
ssize_t
fs_uring_capture(const struct iovec *iov, int count)
{
	struct fs_uring_ent *e = fs_uring_capturing;
	size_t total = 0, room, n;
	int i;

	if (e == NULL)
		return -1;
	if (count < 1 || iov[0].iov_len != sizeof(struct fuse_out_header))
		return -EINVAL;
	memcpy(e->hdr->in_out, iov[0].iov_base, iov[0].iov_len);
	room = e->t->u->payload;
	for (i = 1; i < count; i++) {
		n = iov[i].iov_len;
		if (n > room - total)
			return -EINVAL;
		memcpy(e->payload + total, iov[i].iov_base, n);
		total += n;
	}
	e->hdr->ent.payload_sz = (uint32_t)total;
	e->captured = true;
	return (ssize_t)(total + iov[0].iov_len);
}

/*
 * Bytes of the opcode's own header, which the ring puts in op_in and
 * /dev/fuse puts first: what libfuse needs to rebuild a request.  -1:
 * an opcode zsd does not serve (ENOSYS, without libfuse).
 */
static ssize_t
fs_uring_op_size(uint32_t opcode)
{
	switch (opcode) {
	case FUSE_LOOKUP:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_STATFS:
		return 0;
	case FUSE_GETATTR:
		return sizeof(struct fuse_getattr_in);
	case FUSE_SETATTR:
		return sizeof(struct fuse_setattr_in);
	case FUSE_OPEN:
	case FUSE_OPENDIR:
		return sizeof(struct fuse_open_in);
	case FUSE_READ:
	case FUSE_READDIR:
		return sizeof(struct fuse_read_in);
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
		return sizeof(struct fuse_release_in);
	case FUSE_FLUSH:
		return sizeof(struct fuse_flush_in);
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
		return sizeof(struct fuse_fsync_in);
	case FUSE_MKNOD:
		return sizeof(struct fuse_mknod_in);
	case FUSE_MKDIR:
		return sizeof(struct fuse_mkdir_in);
	case FUSE_RENAME:
		return sizeof(struct fuse_rename_in);
	case FUSE_RENAME2:
		return sizeof(struct fuse_rename2_in);
	case FUSE_CREATE:
		return sizeof(struct fuse_create_in);
	default:
		return -1;
	}
}

/* Ring thread: a request that is not the swap file's I/O, by libfuse. */
static int
fs_uring_cold(struct fs_uring_thread *t, struct fs_uring_ent *e)
{
	struct fuse_in_header *in = (struct fuse_in_header *)e->hdr->in_out;
	size_t got = e->hdr->ent.payload_sz, total;
	ssize_t op = fs_uring_op_size(in->opcode);

	if (op < 0)
		return -ENOSYS;
	total = sizeof(*in) + (size_t)op + got;
	if (got > t->u->payload || total > FS_URING_COLD)
		return -EINVAL;
	memcpy(t->cold, in, sizeof(*in));
	((struct fuse_in_header *)t->cold)->len = (uint32_t)total;
	memcpy(t->cold + sizeof(*in), e->hdr->op_in, (size_t)op);
	memcpy(t->cold + sizeof(*in) + op, e->payload, got);
	e->captured = false;
	fs_uring_capturing = e;
	fs_process(t->u->fs, t->cold, total);
	fs_uring_capturing = NULL;
	return e->captured ? 0 : -EIO;
}

/* Ring thread: serve the request in e and write its answer into e. */
static void
fs_uring_serve(struct fs_uring_thread *t, struct fs_uring_ent *e)
{
	struct fs *fs = t->u->fs;
	struct fuse_in_header *in = (struct fuse_in_header *)e->hdr->in_out;
	struct fuse_out_header out = { .unique = in->unique };
	size_t reply = 0, got = e->hdr->ent.payload_sz, len;
	long n = 0;

	if (in->nodeid != INO_SWAP || (in->opcode != FUSE_READ &&
	    in->opcode != FUSE_WRITE && in->opcode != FUSE_FALLOCATE)) {
		if (in->opcode == FUSE_WRITE || in->opcode == FUSE_FALLOCATE)
			n = -EBADF;	/* as fs.c answers: not the swap file */
		else if ((n = fs_uring_cold(t, e)) == 0)
			goto done;	/* libfuse wrote the answer */
	} else if (in->opcode == FUSE_READ) {
		const struct fuse_read_in *r = (const void *)e->hdr->op_in;

		len = r->size < t->u->payload ? r->size : t->u->payload;
		if ((int64_t)r->offset < 0)
			n = -EINVAL;
		else if ((len = fs_swap_read_len(fs, t->ctx, r->offset,
		    len)) > 0 &&
		    (n = fs->ops.read(fs->arg, t->ctx, r->offset, e->payload,
		    len)) >= 0)
			reply = (size_t)n;
	} else if (in->opcode == FUSE_WRITE) {
		const struct fuse_write_in *w = (const void *)e->hdr->op_in;
		struct fuse_write_out wo = { .size = w->size };

		if ((int64_t)w->offset < 0 || w->size != got)
			n = -EINVAL;
		else if (w->size > 0 && (n = fs_swap_write_ok(fs, t->ctx,
		    w->offset, w->size)) == 0)
			n = fs->ops.write(fs->arg, t->ctx, w->offset,
			    e->payload, w->size);
		if (n >= 0) {
			memcpy(e->payload, &wo, sizeof(wo));
			reply = sizeof(wo);
		}
	} else {
		const struct fuse_fallocate_in *f = (const void *)e->hdr->op_in;
		int64_t bytes = fs_swap_discard_len(fs, (int)f->mode,
		    (int64_t)f->offset, (int64_t)f->length);

		if (bytes < 0)
			n = bytes;
		else if (bytes > 0)
			n = fs->ops.discard(fs->arg, t->ctx, f->offset,
			    (uint64_t)bytes);
	}
	if (n < 0) {
		out.error = (int32_t)n;
		reply = 0;
	}
	out.len = (uint32_t)(sizeof(out) + reply);
	memcpy(e->hdr->in_out, &out, sizeof(out));
	e->hdr->ent.payload_sz = (uint32_t)reply;
done:
	atomic_fetch_add_explicit(&t->served, 1, memory_order_relaxed);
}

static void
fs_uring_prep(struct io_uring_sqe *sqe, struct fs_uring_ent *e, int fd,
    uint32_t op, uint64_t commit_id)
{
	struct fs_uring_cmd *cmd = (struct fs_uring_cmd *)sqe->cmd;

	memset(sqe, 0, 128);		/* an SQE128 ring's entry */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	if (op == FS_URING_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	cmd->qid = e->qid;
	cmd->commit_id = commit_id;
	io_uring_sqe_set_data(sqe, e);
}

static struct io_uring_sqe *
fs_uring_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe;

	while ((sqe = io_uring_get_sqe(ring)) == NULL)
		(void)io_uring_submit(ring);
	return sqe;
}

/* Ring thread: tell fs_uring_start how setting up went. */
static void
fs_uring_report(struct fs_uring *u, int error, const char *at,
    bool failed_register)
{
	pthread_mutex_lock(&u->lock);
	if (error != 0 && u->error == 0) {
		u->error = error;
		u->error_at = at;
	}
	if (failed_register)
		u->any_failed_register = true;
	u->reported++;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* Ring thread: its own ring, its entries registered.  0, or -errno. */
static int
fs_uring_setup(struct fs_uring_thread *t)
{
	struct fs_uring *u = t->u;
	struct io_uring_params p;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	unsigned int i, head, failed = 0, entries = 1;
	int error;

	while (entries < t->nr_ents + 1)
		entries <<= 1;
	if (u->fault != NULL && strcmp(u->fault, "ring") == 0 &&
	    t->index == u->nr_threads - 1) {
		fs_uring_report(u, -ENOMEM, "ZSD_FAULT_URING=ring", false);
		return -ENOMEM;
	}
	/*
	 * One thread submits (SINGLE_ISSUER), and completions need not
	 * interrupt it (COOP_TASKRUN): it is in io_uring_enter whenever it
	 * has nothing else to do.  Kernels before 6.0 take neither.
	 */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN |
	    IORING_SETUP_SINGLE_ISSUER;
	if ((error = io_uring_queue_init_params(entries, &t->ring, &p)) ==
	    -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SQE128;
		error = io_uring_queue_init_params(entries, &t->ring, &p);
	}
	if (error < 0) {
		fs_uring_report(u, error, "io_uring_queue_init", false);
		return error;
	}
	t->ring_ok = true;
	if ((t->ctx = u->fs->ops.ctx_create(u->fs->arg)) == NULL ||
	    (t->cold = malloc(FS_URING_COLD)) == NULL) {
		fs_uring_report(u, -ENOMEM, "a ring thread's buffers", false);
		return -ENOMEM;
	}
	/* The stop: a poll on the eventfd, which stays readable. */
	sqe = fs_uring_sqe(&t->ring);
	io_uring_prep_poll_add(sqe, u->stop_fd, POLLIN);
	io_uring_sqe_set_data(sqe, NULL);
	for (i = 0; i < t->nr_ents; i++) {
		sqe = fs_uring_sqe(&t->ring);
		fs_uring_prep(sqe, &t->ents[i], u->fd, FS_URING_REGISTER, 0);
		if (u->fault != NULL && strcmp(u->fault, "register") == 0 &&
		    t->index == 0)
			sqe->len = 1;	/* the kernel refuses them */
		t->ents[i].live = true;
	}
	t->live = t->nr_ents;
	if ((error = io_uring_submit(&t->ring)) < 0) {
		fs_uring_report(u, error, "io_uring_submit", false);
		return error;
	}
	/*
	 * A refused registration completes at once, and nothing else can
	 * have completed yet but requests: count the refusals, leave every
	 * completion for the loop.
	 */
	error = 0;
	io_uring_for_each_cqe(&t->ring, head, cqe) {
		if (cqe->res < 0 && io_uring_cqe_get_data(cqe) != NULL) {
			failed++;
			if (error == 0)
				error = cqe->res;
		}
	}
	fs_uring_report(u, failed == t->nr_ents ? error : 0,
	    "FUSE_IO_URING_CMD_REGISTER", failed > 0);
	if (failed > 0 && failed < t->nr_ents)
		log_warnx("%u of %u ring entries refused on thread %u: %s",
		    failed, t->nr_ents, t->index, strerror(-error));
	return 0;
}

static void *
fs_uring_thread(void *arg)
{
	struct fs_uring_thread *t = arg;
	struct fs_uring *u = t->u;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct fs_uring_ent *e;
	unsigned int head, seen;
	bool stop = false;
	char name[16];
	cpu_set_t set;
	int error;

	snprintf(name, sizeof(name), "zsd-ring/%u", t->index);
	pthread_setname_np(pthread_self(), name);
	if (t->cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(t->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set),
		    &set) != 0)
			t->cpu = -1;	/* offline: served from anywhere */
	}
	if (fs_uring_setup(t) != 0)
		return NULL;
	while (!stop && t->live > 0) {
		error = io_uring_submit_and_wait(&t->ring, 1);
		if (error < 0 && error != -EINTR && error != -EAGAIN &&
		    error != -EBUSY) {
			errno = -error;
			log_warn("ring thread %u: io_uring_enter", t->index);
			break;
		}
		seen = 0;
		io_uring_for_each_cqe(&t->ring, head, cqe) {
			seen++;
			if ((e = io_uring_cqe_get_data(cqe)) == NULL) {
				stop = true;
				continue;
			}
			if (cqe->res < 0) {
				/*
				 * The connection ended (unmounted, aborted)
				 * or the entry was refused: it is done.
				 */
				if (cqe->res != -ENOTCONN &&
				    cqe->res != -ECANCELED)
					log_warnx("ring thread %u: entry of "
					    "queue %u ended: %s", t->index,
					    e->qid, strerror(-cqe->res));
				e->live = false;
				t->live--;
				continue;
			}
			fs_uring_serve(t, e);
			sqe = fs_uring_sqe(&t->ring);
			fs_uring_prep(sqe, e, u->fd, FS_URING_COMMIT_FETCH,
			    e->hdr->ent.commit_id);
		}
		io_uring_cq_advance(&t->ring, seen);
	}
	/* Answers given in the last round go out before the ring closes. */
	(void)io_uring_submit(&t->ring);
	return NULL;
}

static void
fs_uring_free(struct fs_uring *u)
{
	unsigned int i;

	for (i = 0; u->threads != NULL && i < u->nr_threads; i++) {
		struct fs_uring_thread *t = &u->threads[i];

		if (t->ring_ok)
			io_uring_queue_exit(&t->ring);
		if (t->ctx != NULL)
			u->fs->ops.ctx_destroy(u->fs->arg, t->ctx);
		free(t->cold);
		free(t->ents);
	}
	free(u->threads);
	if (u->mem != NULL)
		munmap(u->mem, u->mem_len);
	if (u->stop_fd >= 0)
		close(u->stop_fd);
	if (u->probe_ok)
		io_uring_queue_exit(&u->probe);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u);
}

/*
 * FUSE thread, or the loop once that has ended: end every ring thread
 * (they answer what they hold first), free.
 */
static void
fs_uring_end(struct fs_uring *u)
{
	uint64_t one = 1;
	unsigned int i;

	if (u->stop_fd >= 0 && write(u->stop_fd, &one, sizeof(one)) < 0)
		log_warn("stopping the ring threads");
	for (i = 0; u->threads != NULL && i < u->nr_threads; i++)
		if (u->threads[i].running)
			pthread_join(u->threads[i].tid, NULL);
	fs_uring_free(u);
}

/*
 * FUSE thread, with the ring's setup refused in part: make a registration
 * fail on purpose, so that the kernel gives up waiting for the ring and
 * sends requests by /dev/fuse.
 */
static void
fs_uring_poison(struct fs_uring *u)
{
	struct fs_uring_ent e = { .qid = 0 };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;

	if (!u->probe_ok || (sqe = io_uring_get_sqe(&u->probe)) == NULL) {
		log_warnx("FUSE requests wait for a ring that cannot be set up "
		    "and cannot be told to come by /dev/fuse");
		return;
	}
	fs_uring_prep(sqe, &e, u->fd, FS_URING_REGISTER, 0);
	sqe->len = 1;			/* refused: not header and payload */
	if (io_uring_submit_and_wait(&u->probe, 1) >= 0 &&
	    io_uring_peek_cqe(&u->probe, &cqe) == 0)
		io_uring_cqe_seen(&u->probe, cqe);
}

/* FUSE thread: see fs-int.h. */
int
fs_uring_start(struct fs *fs)
{
	struct fs_uring *u = fs->uring;
	size_t hdr = sizeof(struct fs_uring_header), each;
	unsigned int i, q, nr_online, n;
	char *at;
	int error = 0;

	if (u == NULL)
		return -EINVAL;
	u->fd = fuse_session_fd(fs->se);
	nr_online = (unsigned int)get_nprocs();
	u->nr_threads = u->nr_queues < nr_online ? u->nr_queues : nr_online;
	if (u->nr_threads == 0)
		u->nr_threads = 1;
	hdr = (hdr + 63) & ~(size_t)63;
	each = hdr + u->payload;
	each = (each + 4095) & ~(size_t)4095;
	u->mem_len = each * FS_URING_DEPTH * u->nr_queues;
	u->mem = mmap(NULL, u->mem_len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (u->mem == MAP_FAILED) {
		u->mem = NULL;
		error = -errno;
		goto refused;
	}
	if ((u->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0 ||
	    (u->threads = calloc(u->nr_threads, sizeof(*u->threads))) ==
	    NULL) {
		error = -errno;
		goto refused;
	}
	/* Queue q is served by thread q % nr_threads, pinned to CPU q. */
	at = u->mem;
	for (i = 0; i < u->nr_threads; i++) {
		struct fs_uring_thread *t = &u->threads[i];

		t->u = u;
		t->index = i;
		t->cpu = (int)i;
		for (q = i, n = 0; q < u->nr_queues; q += u->nr_threads)
			n += FS_URING_DEPTH;
		if ((t->ents = calloc(n, sizeof(*t->ents))) == NULL) {
			error = -ENOMEM;
			goto refused;
		}
		t->nr_ents = n;
		for (q = i, n = 0; q < u->nr_queues; q += u->nr_threads) {
			unsigned int d;

			for (d = 0; d < FS_URING_DEPTH; d++, n++) {
				struct fs_uring_ent *e = &t->ents[n];

				e->t = t;
				e->qid = (uint16_t)q;
				e->hdr = (struct fs_uring_header *)at;
				e->payload = at + hdr;
				e->iov[0] = (struct iovec){ e->hdr,
				    sizeof(*e->hdr) };
				e->iov[1] = (struct iovec){ e->payload,
				    u->payload };
				at += each;
			}
		}
	}
	for (i = 0; i < u->nr_threads; i++) {
		if ((error = -pthread_create(&u->threads[i].tid, NULL,
		    fs_uring_thread, &u->threads[i])) != 0) {
			fs_uring_report(u, error, "pthread_create", false);
			continue;
		}
		u->threads[i].running = true;
	}
	pthread_mutex_lock(&u->lock);
	while (u->reported < u->nr_threads)
		pthread_cond_wait(&u->cond, &u->lock);
	error = u->error;
	pthread_mutex_unlock(&u->lock);
	if (error == 0) {
		fs->transport = "uring";
		log_info("FUSE over io_uring: %u queues of %u entries, %zu KiB "
		    "each, served by %u pinned threads%s", u->nr_queues,
		    FS_URING_DEPTH, u->payload >> 10, u->nr_threads,
		    u->taken_over ? " (taken over)" : "");
		fs->ops.save_ring(fs->arg, u->payload);
		if (u->probe_ok) {
			io_uring_queue_exit(&u->probe);
			u->probe_ok = false;
		}
		return 0;
	}
	snprintf(fs->transport_why, sizeof(fs->transport_why),
	    "setting up the ring: %s: %s", u->error_at, strerror(-error));
	goto out;
refused:
	snprintf(fs->transport_why, sizeof(fs->transport_why),
	    "setting up the ring: %s", strerror(-error));
out:
	/*
	 * A queue without an entry keeps the ring from being used.  If the
	 * kernel saw no refusal, it still waits for the ring: show it one.
	 */
	pthread_mutex_lock(&u->lock);
	if (!u->any_failed_register)
		fs_uring_poison(u);
	pthread_mutex_unlock(&u->lock);
	fs->uring = NULL;
	fs->transport = "dev";
	fs_uring_end(u);
	return error;
}

void
fs_uring_stop(struct fs *fs)
{
	if (fs->uring == NULL)
		return;
	fs_uring_end(fs->uring);
	fs->uring = NULL;
}

unsigned long
fs_uring_served(const struct fs *fs)
{
	struct fs_uring *u = fs->uring;
	unsigned long n = 0;
	unsigned int i;

	for (i = 0; u != NULL && u->threads != NULL && i < u->nr_threads; i++)
		n += atomic_load_explicit(&u->threads[i].served,
		    memory_order_relaxed);
	return n;
}

/* Successor: serve the ring the predecessor had set up. */
void
fs_uring_take_over(struct fs *fs, size_t payload)
{
	if (fs->uring == NULL)
		return;
	fs->uring->payload = payload;
	fs->uring->offered = true;
	fs->uring->taken_over = true;
}

bool
fs_uring_offered(struct fs *fs)
{
	return fs->uring != NULL && fs->uring->offered;
}

#else /* !HAVE_LIBURING */

int
fs_uring_prepare(struct fs *fs)
{
	snprintf(fs->transport_why, sizeof(fs->transport_why),
	    "zsd was built without liburing");
	return -1;
}

void
fs_uring_offer(struct fs *fs, struct fuse_init_out *out, size_t len)
{
}

int
fs_uring_start(struct fs *fs)
{
	return -ENOTSUP;
}

void
fs_uring_stop(struct fs *fs)
{
}

ssize_t
fs_uring_capture(const struct iovec *iov, int count)
{
	return -1;
}

unsigned long
fs_uring_served(const struct fs *fs)
{
	return 0;
}

void
fs_uring_take_over(struct fs *fs, size_t payload)
{
}

bool
fs_uring_offered(struct fs *fs)
{
	return false;
}

#endif /* HAVE_LIBURING */
