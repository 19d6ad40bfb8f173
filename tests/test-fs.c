/*
 * test-fs.c - the FUSE front end in process, without a mount: requests
 * the kernel would never send (negative offsets), and what requests out
 * of the file's range are answered with and counted as (invalid_io).
 *
 * libfuse takes a mountpoint of /dev/fd/N to mean "fd N is already the
 * channel".  Here N is one end of a socketpair of datagrams, so fs.c
 * runs as in zsd (its FUSE thread, an event loop it tells of INIT, the
 * daemon's workers, a store, behind callbacks of the test's that do what
 * zsd.c's do) while the test writes raw FUSE requests to the other end
 * and reads the replies.
 *
 * It also takes the connection over as a server started by the keeper
 * does (keeper.c): the INIT the first session read is recorded (the
 * save_init callback), a second session on the same channel is given it,
 * replays it without a word to "the kernel", asks for FUSE_NOTIFY_RESEND,
 * and answers a resent request (unique with bit 63 set) instead of EIO.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "fs.h"
#include "tap.h"
#include "zsd.h"

#define PG		ZSD_PAGE_SIZE
#define DISKSIZE	(64 * PG)
#define INO_ROOT	1	/* as in fs.c */
#define INO_SWAP	2
#define INO_STAT	3

static struct event_base *base;
static struct zs_pool	*pool;
static struct store	*store;
static struct workers	*workers;
static struct fs_config	 fc;
static struct fs	*fs;
static char		 mountpoint[32];
static unsigned char	 init_saved[512]; /* as the keeper's state holds it */
static size_t		 init_len;
static int		 peer = -1;	/* the test's end: "the kernel" */
static int		 chan = -1;	/* fs.c's end */
static uint64_t		 unique;
static uint64_t		 unique_bits;	/* or'ed into unique: resent */
static bool		 fs_ready;

/* The daemon's side (fs.h), as zsd.c does it. */
static void *
op_ctx_create(void *arg)
{
	return store_ctx_create(store);
}

static void
op_ctx_destroy(void *arg, void *ctx)
{
	store_ctx_destroy(ctx);
}

static bool
op_io_valid(void *arg, void *ctx, uint64_t off, uint64_t len)
{
	return store_io_valid(store, ctx, off, len);
}

static long
op_read(void *arg, void *ctx, uint64_t off, void *buf, size_t len)
{
	return store_read(store, ctx, off, buf, len);
}

static int
op_write(void *arg, void *ctx, uint64_t off, const void *buf, size_t len)
{
	return store_write(store, ctx, off, buf, len);
}

static int
op_discard(void *arg, void *ctx, uint64_t off, uint64_t len)
{
	return store_discard(store, ctx, off, len);
}

static void
op_stats(void *arg, struct fs_stats *out)
{
	struct store_stats ss;

	store_stats(store, &ss);
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
op_usage(void *arg, uint64_t *pages_stored, uint64_t *compr_data_size)
{
	*pages_stored = store_pages_stored(store);
	*compr_data_size = store_compr_size(store);
}

static void
op_queue(void *arg, struct fs_work **w, unsigned int n)
{
	workers_queue(workers, w, n);
}

static void
op_ready(void *arg)
{
	fs_ready = true;
}

static void
op_gone(void *arg)
{
	bail("fs.c says the mount is gone");
}

static void
op_save_init(void *arg, const void *buf, size_t len)
{
	if (len > sizeof(init_saved))
		bail("an INIT of %zu bytes", len);
	memcpy(init_saved, buf, len);
	init_len = len;
}

static void
op_save_ring(void *arg, size_t payload)
{
	bail("fs.c says it serves io_uring");
}

static void
op_save_fd(void *arg, int fd)
{
}

static const struct fs_ops ops = {
	.ctx_create = op_ctx_create,
	.ctx_destroy = op_ctx_destroy,
	.io_valid = op_io_valid,
	.read = op_read,
	.write = op_write,
	.discard = op_discard,
	.stats = op_stats,
	.usage = op_usage,
	.queue = op_queue,
	.ready = op_ready,
	.gone = op_gone,
	.save_init = op_save_init,
	.save_ring = op_save_ring,
	.save_fd = op_save_fd,
};

struct reply {
	int		 error;		/* positive errno, 0 */
	size_t		 len;		/* payload bytes */
	unsigned char	 data[2 * PG];
};

/*
 * Send opcode for nodeid with arg (and payload), run the event loop until
 * the reply comes (from the FUSE thread or a worker), and once more for
 * what the FUSE thread told it before replying (INIT), and return it in r.
 */
static void
request(uint32_t opcode, uint64_t nodeid, const void *arg, size_t arglen,
    const void *payload, size_t paylen, struct reply *r)
{
	unsigned char msg[sizeof(struct fuse_in_header) + 128 + 2 * PG];
	unsigned char in[sizeof(struct fuse_out_header) + sizeof(r->data)];
	struct fuse_in_header h;
	struct fuse_out_header oh;
	struct pollfd pfd = { .fd = peer, .events = POLLIN };
	unsigned int tries;
	ssize_t n;

	if (arglen > 128 || paylen > 2 * PG)
		bail("request too large");
	memset(&h, 0, sizeof(h));
	h.len = (uint32_t)(sizeof(h) + arglen + paylen);
	h.opcode = opcode;
	h.unique = ++unique | unique_bits;
	h.nodeid = nodeid;
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), arg, arglen);
	if (paylen > 0)
		memcpy(msg + sizeof(h) + arglen, payload, paylen);
	if (send(peer, msg, h.len, 0) != (ssize_t)h.len)
		bail("send: %s", strerror(errno));
	for (tries = 0; ; tries++) {
		if (tries == 5000)
			bail("no reply to opcode %u", opcode);
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 1) == 1)
			break;
	}
	event_base_loop(base, EVLOOP_NONBLOCK);
	if ((n = recv(peer, in, sizeof(in), 0)) < (ssize_t)sizeof(oh))
		bail("recv: %zd, %s", n, strerror(errno));
	memcpy(&oh, in, sizeof(oh));
	if (oh.unique != h.unique || oh.len != (uint32_t)n)
		bail("a reply to something else (%llu, %u bytes)",
		    (unsigned long long)oh.unique, oh.len);
	r->error = -oh.error;
	r->len = (size_t)n - sizeof(oh);
	memcpy(r->data, in + sizeof(oh), r->len);
}

static void
req_read(uint32_t opcode, uint64_t nodeid, uint64_t off, uint32_t size,
    struct reply *r)
{
	struct fuse_read_in a;

	memset(&a, 0, sizeof(a));
	a.offset = off;
	a.size = size;
	request(opcode, nodeid, &a, sizeof(a), NULL, 0, r);
}

static void
req_write(uint64_t off, const void *buf, uint32_t size, struct reply *r)
{
	struct fuse_write_in a;

	memset(&a, 0, sizeof(a));
	a.offset = off;
	a.size = size;
	request(FUSE_WRITE, INO_SWAP, &a, sizeof(a), buf, size, r);
}

static void
setup(void)
{
	struct store_options opt = { .codec = CODEC_LZ4, .zstd_level = 1 };
	struct fuse_init_in init;
	struct reply r;
	int sv[2], error = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		bail("socketpair: %s", strerror(errno));
	peer = sv[1];
	chan = sv[0];
	snprintf(mountpoint, sizeof(mountpoint), "/dev/fd/%d", sv[0]);
	evthread_use_pthreads();
	if ((base = event_base_new()) == NULL)
		bail("event_base_new");
	if ((pool = zs_create_pool(NULL)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	if ((store = store_create(pool, DISKSIZE / PG, &opt, &error)) ==
	    NULL)
		bail("store_create: %s", strerror(-error));
	if ((workers = workers_start(store, 2, fs_max_works(2),
	    &error)) == NULL)
		bail("workers_start: %s", strerror(-error));
	fc.mountpoint = mountpoint;
	fc.name = "swap0";
	fc.disksize = DISKSIZE;
	fc.transport = "auto";
	fc.workers = 2;
	fc.base = base;
	fc.fuse_fd = -1;
	if ((error = fs_start(&fc, &ops, NULL, &fs)) != 0)
		bail("fs_start: %s", strerror(-error));

	memset(&init, 0, sizeof(init));
	init.major = FUSE_KERNEL_VERSION;
	init.minor = 31;
	init.max_readahead = 128 << 10;
	request(FUSE_INIT, 0, &init, sizeof(init), NULL, 0, &r);
	if (r.error != 0 || !fs_ready)
		bail("FUSE_INIT: %s", strerror(r.error));
}

static void
teardown(void)
{
	fs_stop_reading(fs);
	workers_stop(workers);
	fs_stop(fs, false);		/* no umount of /dev/fd/N */
	store_destroy(store);
	zs_destroy_pool(pool);
	event_base_free(base);
	close(peer);
}

/*
 * A second session on the same channel, as a successor: it must replay
 * the recorded INIT (its reply goes nowhere), ask the kernel to resend,
 * and serve a resent request.
 */
static void
test_takeover(void)
{
	struct fuse_out_header oh;
	struct fuse_in_header h;
	struct pollfd pfd = { .fd = peer, .events = POLLIN };
	unsigned char buf[256];
	struct reply r;
	unsigned int tries;
	ssize_t n;
	int fd, error;

	memcpy(&h, init_saved, sizeof(h));
	ok(init_len == sizeof(h) + sizeof(struct fuse_init_in) &&
	    h.opcode == FUSE_INIT && h.len == init_len,
	    "the INIT request is recorded (%zu bytes)", init_len);

	/*
	 * The first session goes as at zsctl restart, its fd left open:
	 * its FUSE thread first (it queues to the workers), then the workers
	 * (one may still be handing back the slot of a request it has
	 * answered), then the session; new ones after.
	 */
	if ((fd = dup(chan)) < 0)
		bail("dup: %s", strerror(errno));
	fs_stop_reading(fs);
	workers_stop(workers);
	if ((workers = workers_start(store, 2, fs_max_works(2),
	    &error)) == NULL)
		bail("workers_start: %s", strerror(-error));
	fs_stop(fs, false);
	fc.fuse_fd = fd;
	fc.init = init_saved;
	fc.init_len = init_len;
	fs_ready = false;
	if (fs_start(&fc, &ops, NULL, &fs) != 0)
		bail("fs_start on the inherited fd");
	for (tries = 0; tries < 5000; tries++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 1) == 1)
			break;
	}
	event_base_loop(base, EVLOOP_NONBLOCK);	/* ready, told before */
	n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT);
	memcpy(&oh, buf, sizeof(oh));
	ok(fs_ready, "the replayed INIT reached the file system");
	ok(n == (ssize_t)sizeof(oh) && oh.len == sizeof(oh) && oh.error == 7 &&
	    oh.unique == 0, "FUSE_NOTIFY_RESEND asked for (%zd bytes, code "
	    "%d)", n, n >= (ssize_t)sizeof(oh) ? oh.error : 0);
	ok(poll(&pfd, 1, 0) == 0, "and nothing else: the INIT reply went "
	    "nowhere");

	unique_bits = 1ULL << 63;	/* FUSE_UNIQUE_RESEND */
	req_read(FUSE_READ, INO_SWAP, 0, PG, &r);
	ok(r.error == 0 && r.len == PG, "a resent read is answered, its "
	    "unique kept (error %d, %zu bytes)", r.error, r.len);
	unique_bits = 0;
	req_read(FUSE_READ, INO_SWAP, PG, PG, &r);
	ok(r.error == 0 && r.len == PG, "and the next one (error %d)",
	    r.error);
}

static uint64_t
invalid_io(void)
{
	struct store_stats ss;

	store_stats(store, &ss);
	return ss.invalid_io;
}

/*
 * Offsets past INT64_MAX reach the handlers as negative off_t.  The
 * kernel never sends them (it refuses negative positions before FUSE
 * sees them), so only a test in process can.
 */
static void
test_negative(void)
{
	struct fuse_fallocate_in fa;
	unsigned char page[PG];
	struct reply r;

	req_read(FUSE_READ, INO_STAT, (uint64_t)-100, PG, &r);
	ok(r.error == EINVAL && r.len == 0, "mm_stat, read at offset -100: "
	    "EINVAL (error %d, %zu bytes)", r.error, r.len);
	req_read(FUSE_READ, INO_STAT, (uint64_t)INT64_MIN, PG, &r);
	ok(r.error == EINVAL, "mm_stat, read at INT64_MIN: EINVAL (%d)",
	    r.error);
	req_read(FUSE_READ, INO_SWAP, (uint64_t)-(int64_t)PG, PG, &r);
	ok(r.error == EINVAL, "swap file, read at offset -4096: EINVAL (%d)",
	    r.error);
	req_read(FUSE_READDIR, INO_ROOT, (uint64_t)-1, PG, &r);
	ok(r.error == EINVAL && r.len == 0, "readdir at offset -1: EINVAL "
	    "(error %d, %zu bytes)", r.error, r.len);
	memset(page, 0x5a, PG);
	req_write((uint64_t)-(int64_t)PG, page, PG, &r);
	ok(r.error == EINVAL, "write at offset -4096: EINVAL (%d)", r.error);
	memset(&fa, 0, sizeof(fa));
	fa.offset = (uint64_t)-(int64_t)PG;
	fa.length = PG;
	fa.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	request(FUSE_FALLOCATE, INO_SWAP, &fa, sizeof(fa), NULL, 0, &r);
	ok(r.error == EINVAL, "punch at offset -4096: EINVAL (%d)", r.error);

	/* What is in range still works. */
	req_read(FUSE_READ, INO_STAT, 0, PG, &r);
	ok(r.error == 0 && r.len > 0 && r.data[r.len - 1] == '\n',
	    "mm_stat at offset 0: one line (%zu bytes)", r.len);
	req_read(FUSE_READDIR, INO_ROOT, 0, PG, &r);
	ok(r.error == 0 && r.len > 0, "readdir at offset 0: %zu bytes",
	    r.len);
}

/*
 * Reads and writes that reach past the end of the swap file are answered
 * (short reads, EFBIG) and counted in invalid_io, one each; what lies
 * within it is not counted.
 */
static void
test_out_of_range(void)
{
	unsigned char page[PG], back[PG];
	struct reply r;
	uint64_t before;

	memset(page, 0x3c, PG);
	before = invalid_io();
	req_write(DISKSIZE - PG, page, PG, &r);
	ok(r.error == 0, "write of the last page (%d)", r.error);
	req_read(FUSE_READ, INO_SWAP, DISKSIZE - PG, PG, &r);
	memset(back, 0x3c, PG);
	ok(r.error == 0 && r.len == PG && memcmp(r.data, back, PG) == 0,
	    "read of the last page");
	req_read(FUSE_READ, INO_STAT, 1000, PG, &r);
	ok(r.error == 0 && r.len == 0, "mm_stat past its line: 0 bytes");
	ok(invalid_io() == before, "none of that is invalid_io (%llu)",
	    (unsigned long long)(invalid_io() - before));

	req_write(DISKSIZE, page, PG, &r);
	ok(r.error == EFBIG && invalid_io() == before + 1,
	    "write at the end: EFBIG (%d), invalid_io +%llu", r.error,
	    (unsigned long long)(invalid_io() - before));
	req_write(DISKSIZE - 100, page, 200, &r);
	ok(r.error == EFBIG && invalid_io() == before + 2,
	    "write across the end: EFBIG (%d), invalid_io +%llu", r.error,
	    (unsigned long long)(invalid_io() - before));
	req_write(DISKSIZE + 1000 * PG, page, PG, &r);
	ok(r.error == EFBIG && invalid_io() == before + 3,
	    "write far past the end: EFBIG (%d), invalid_io +%llu", r.error,
	    (unsigned long long)(invalid_io() - before));
	req_read(FUSE_READ, INO_SWAP, DISKSIZE, PG, &r);
	ok(r.error == 0 && r.len == 0 && invalid_io() == before + 4,
	    "read at the end: 0 bytes (%zu), invalid_io +%llu", r.len,
	    (unsigned long long)(invalid_io() - before));
	req_read(FUSE_READ, INO_SWAP, DISKSIZE - 100, 200, &r);
	ok(r.error == 0 && r.len == 100 && memcmp(r.data, back, 100) == 0 &&
	    invalid_io() == before + 5,
	    "read across the end: the 100 bytes before it (%zu), "
	    "invalid_io +%llu", r.len,
	    (unsigned long long)(invalid_io() - before));
}

int
main(void)
{
	tap_watchdog(120);
	setup();
	test_negative();
	test_out_of_range();
	test_takeover();
	teardown();
	return done_testing();
}
