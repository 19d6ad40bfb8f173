/*
 * test-fs.c - the FUSE front end in process, without a mount: requests
 * the kernel would never send (negative offsets), and what requests out
 * of the file's range are answered with and counted as (invalid_io).
 *
 * libfuse takes a mountpoint of /dev/fd/N to mean "fd N is already the
 * channel".  Here N is one end of a socketpair of datagrams, so fs.c
 * runs as in zsd (its event loop, its workers, the store) while the test
 * writes raw FUSE requests to the other end and reads the replies.
 *
 * It also takes the connection over as a server started by the keeper
 * does (keeper.c): the INIT the first session read is recorded, a second
 * session on the same channel replays it without a word to "the kernel",
 * asks for FUSE_NOTIFY_RESEND, and answers a resent request (unique with
 * bit 63 set) instead of EIO.
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

#include "tap.h"
#include "zsd.h"

#define PG		ZSD_PAGE_SIZE
#define DISKSIZE	(64 * PG)
#define INO_ROOT	1	/* as in fs.c */
#define INO_SWAP	2
#define INO_STAT	3

static struct zsd	 z;
static struct zsd_state	 state;		/* as the keeper's memfd holds it */
static int		 peer = -1;	/* the test's end: "the kernel" */
static int		 chan = -1;	/* fs.c's end */
static uint64_t		 unique;
static uint64_t		 unique_bits;	/* or'ed into unique: resent */
static bool		 fs_ready;

/* What fs.c calls in zsd.c. */
void
zsd_fs_ready(struct zsd *zp)
{
	fs_ready = true;
}

void
zsd_shutdown(struct zsd *zp, int status)
{
	bail("fs.c shut the daemon down (status %d)", status);
}

/* What keeper.c calls in zsd.c, where the keeper goes. */
int
zsd_restart(struct zsd *zp, bool handover)
{
	bail("the server was asked to exit (handover %d)", handover);
}

struct reply {
	int		 error;		/* positive errno, 0 */
	size_t		 len;		/* payload bytes */
	unsigned char	 data[2 * PG];
};

/*
 * Send opcode for nodeid with arg (and payload), run the event loop until
 * the reply comes (from the loop or a worker), and return it in r.
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
		event_base_loop(z.base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 1) == 1)
			break;
	}
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
	struct store_options opt = { CODEC_LZ4, 1, 0, false };
	struct fuse_init_in init;
	struct reply r;
	int sv[2], error = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		bail("socketpair: %s", strerror(errno));
	peer = sv[1];
	chan = sv[0];
	config_init(&z.cfg);
	z.cfg.disksize = DISKSIZE;
	z.fuse_fd = z.keeper_fd = -1;
	z.state = &state;
	snprintf(z.cfg.mountpoint, sizeof(z.cfg.mountpoint), "/dev/fd/%d",
	    sv[0]);
	snprintf(z.cfg.name, sizeof(z.cfg.name), "swap0");
	evthread_use_pthreads();
	if ((z.base = event_base_new()) == NULL)
		bail("event_base_new");
	if ((z.pool = zs_create_pool(NULL)) == NULL)
		bail("zs_create_pool: %s", strerror(errno));
	if ((z.store = store_create(z.pool, DISKSIZE / PG, &opt, &error)) ==
	    NULL)
		bail("store_create: %s", strerror(-error));
	if ((z.workers = workers_start(z.store, 2, fs_max_works(2),
	    &error)) == NULL)
		bail("workers_start: %s", strerror(-error));
	if ((error = fs_start(&z)) != 0)
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
	workers_stop(z.workers);
	fs_stop(&z);
	store_destroy(z.store);
	zs_destroy_pool(z.pool);
	event_base_free(z.base);
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

	memcpy(&h, state.init, sizeof(h));
	ok(state.init_len == sizeof(h) + sizeof(struct fuse_init_in) &&
	    h.opcode == FUSE_INIT && h.len == state.init_len,
	    "the INIT request is recorded (%u bytes)", state.init_len);

	/*
	 * The first session goes as at zsctl restart, its fd left open:
	 * workers first (a worker may still be handing back the slot of a
	 * request it has answered), then the session; new ones after.
	 */
	if ((fd = dup(chan)) < 0)
		bail("dup: %s", strerror(errno));
	z.restarting = true;
	workers_stop(z.workers);
	if ((z.workers = workers_start(z.store, 2, fs_max_works(2),
	    &error)) == NULL)
		bail("workers_start: %s", strerror(-error));
	fs_stop(&z);
	z.restarting = false;
	z.fuse_fd = fd;
	fs_ready = false;
	if (fs_start(&z) != 0)
		bail("fs_start on the inherited fd");
	for (tries = 0; tries < 5000; tries++) {
		event_base_loop(z.base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 1) == 1)
			break;
	}
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
	z.restarting = true;		/* no umount of /dev/fd/N at teardown */
}

static uint64_t
invalid_io(void)
{
	struct store_stats ss;

	store_stats(z.store, &ss);
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
