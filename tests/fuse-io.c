/*
 * fuse-io.c - random I/O against one file, every byte checked against a
 * copy kept in memory.
 *
 *   fuse-io [-d] [-p] [-s seed] [-t threads] [-n ops] [-S bytes] FILE
 *
 * The file is split into one region per thread.  Each thread runs a
 * deterministic sequence of operations (from the seed and its number) on
 * its own region: writes of text-like, zero, same-filled and random data
 * at aligned and unaligned offsets (odd lengths that cross 4 KiB pages),
 * reads of random ranges compared with the reference, and hole punches
 * (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) whose range must read back
 * as zeros with the neighbouring bytes unchanged.  At the end the whole
 * file is read again and compared.
 *
 * -d opens with O_DIRECT: then every offset and length is a multiple of
 * 4 KiB and buffers are page aligned.  -p does only the end-of-file
 * checks: a read at the end returns 0, a read across it is short, and a
 * write at or across it fails with EFBIG or ENOSPC and does not grow the
 * file.  -S sets the size of a regular file first (to try the program on
 * tmpfs or ext4); the zsd file has its size already.
 *
 * Output is TAP; a mismatch is reported with its file offset.
 */
#include <config.h>

#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* fallocate, O_DIRECT */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

#define PAGE		4096u
#define MAX_IO		(16 * PAGE)	/* longest write or read */
#define MAX_PUNCH	(256 * PAGE)	/* longest hole punched */
#define CHUNK		(256 * PAGE)	/* reads of the final check */

enum kind { K_TEXT, K_ZERO, K_SAME, K_RANDOM };

struct worker {
	pthread_t	 thread;
	unsigned int	 id;
	uint64_t	 rng;
	uint64_t	 start, end;	/* the region this thread owns */
	uint8_t		*buf;		/* MAX_PUNCH + 2 pages, aligned */
	unsigned long	 writes, reads, punches, unaligned;
	unsigned long	 write_errors, read_errors, punch_errors;
	char		 why[200];	/* the first failure */
};

static int		 fd = -1;
static bool		 direct;
static uint8_t		*ref;		/* what the file must hold */
static uint64_t		 file_size;
static unsigned long	 nr_ops = 5000;

static const char *const words[] = {
	"page", "swap", "the", "of", "compressed", "memory", "zsd", "and",
	"kernel", "a", "to", "fuse", "loop", "device", "in", "data",
	"allocator", "is", "slot", "write", "read", "punch", "hole", "zero",
	"{", "}", "int", "return", "if", "for", "0x", "\n", "\t", ";",
};

static uint64_t
next_rand(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static uint64_t
rand_below(uint64_t *s, uint64_t n)
{
	return n == 0 ? 0 : next_rand(s) % n;
}

/* Text of words, compressible like source code or logs. */
static void
fill_text(uint8_t *p, size_t len, uint64_t *s)
{
	const size_t nwords = sizeof(words) / sizeof(words[0]);
	size_t i = 0, n;
	const char *w;

	while (i < len) {
		w = words[rand_below(s, nwords)];
		n = strlen(w);
		if (n > len - i)
			n = len - i;
		memcpy(p + i, w, n);
		i += n;
		if (i < len)
			p[i++] = ' ';
	}
}

/*
 * Fill len bytes that will land at file offset off: the kind of data is
 * chosen anew for each piece between page boundaries, so that a write
 * across pages mixes kinds the way the store sees them, page by page.
 */
static void
fill(uint8_t *p, uint64_t off, size_t len, uint64_t *s)
{
	size_t n, i;
	uint64_t r, v;

	while (len > 0) {
		n = PAGE - off % PAGE;
		if (n > len)
			n = len;
		r = rand_below(s, 10);
		if (r < 6)
			fill_text(p, n, s);
		else if (r < 8)
			memset(p, 0, n);
		else if (r < 9) {
			/* An 8-byte word repeated, what zram calls same. */
			v = next_rand(s);
			for (i = 0; i < n; i++)
				p[i] = (uint8_t)(v >> (8 * ((off + i) % 8)));
		} else {
			for (i = 0; i < n; i++)
				p[i] = (uint8_t)next_rand(s);
		}
		p += n;
		off += n;
		len -= n;
	}
}

/* pread or pwrite all of len, retrying short transfers: -errno or 0. */
static int
io_full(bool write, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		if (write)
			n = pwrite(fd, p, len, (off_t)off);
		else
			n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;	/* end of file too soon */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static void
fail(struct worker *w, unsigned long *count, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct worker *w, unsigned long *count, const char *fmt, ...)
{
	va_list ap;

	if ((*count)++ == 0 && w->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(w->why, sizeof(w->why), fmt, ap);
		va_end(ap);
	}
}

/* Offset of the first byte where a and b differ; len if none. */
static size_t
first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (a[i] != b[i])
			break;
	return i;
}

/* Read [off, off + len) and compare with the reference. */
static void
check_range(struct worker *w, uint64_t off, size_t len, unsigned long *count,
    const char *what)
{
	size_t n, d;
	int error;

	while (len > 0) {
		n = len < MAX_PUNCH ? len : MAX_PUNCH;
		if ((error = io_full(false, w->buf, n, off)) != 0) {
			fail(w, count, "%s: read %zu at %" PRIu64 ": %s", what,
			    n, off, strerror(-error));
			return;
		}
		if ((d = first_diff(w->buf, ref + off, n)) < n) {
			fail(w, count, "%s: mismatch at offset %" PRIu64
			    " (0x%" PRIx64 "): read 0x%02x, wrote 0x%02x",
			    what, off + d, off + d, w->buf[d], ref[off + d]);
			return;
		}
		off += n;
		len -= n;
	}
}

/*
 * A range inside the worker's region: page aligned and of whole pages
 * under O_DIRECT or half the time otherwise, any bytes the rest of the
 * time (those nearly always cross a page boundary).
 */
static void
pick_range(struct worker *w, size_t max, uint64_t *offp, size_t *lenp)
{
	uint64_t region = w->end - w->start, off;
	size_t len;

	if (direct || rand_below(&w->rng, 2) == 0) {
		len = PAGE * (1 + rand_below(&w->rng, max / PAGE));
		if (len > region)
			len = region;
		off = PAGE * rand_below(&w->rng, (region - len) / PAGE + 1);
	} else {
		len = 1 + rand_below(&w->rng, max);
		if (len > region)
			len = region;
		off = rand_below(&w->rng, region - len + 1);
		w->unaligned++;
	}
	*offp = w->start + off;
	*lenp = len;
}

static void
do_write(struct worker *w)
{
	uint64_t off;
	size_t len;
	int error;

	pick_range(w, MAX_IO, &off, &len);
	fill(w->buf, off, len, &w->rng);
	if ((error = io_full(true, w->buf, len, off)) != 0) {
		fail(w, &w->write_errors, "write %zu at %" PRIu64 ": %s", len,
		    off, strerror(-error));
		/* Unknown what landed: take it from the file. */
		if (io_full(false, w->buf, len, off) == 0)
			memcpy(ref + off, w->buf, len);
		return;
	}
	memcpy(ref + off, w->buf, len);
	w->writes++;
}

static void
do_read(struct worker *w)
{
	uint64_t off;
	size_t len;

	pick_range(w, MAX_IO, &off, &len);
	check_range(w, off, len, &w->read_errors, "read");
	w->reads++;
}

/*
 * Punch, then read back the hole and a page on either side of it (within
 * our region): the hole must be zeros and the neighbours as they were.
 */
static void
do_punch(struct worker *w)
{
	uint64_t off, lo, hi;
	size_t len;

	/* Mostly small holes, now and then a big one. */
	pick_range(w, rand_below(&w->rng, 8) == 0 ? MAX_PUNCH : 4 * PAGE,
	    &off, &len);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)off, (off_t)len) == -1) {
		fail(w, &w->punch_errors, "punch %zu at %" PRIu64 ": %s", len,
		    off, strerror(errno));
		return;
	}
	memset(ref + off, 0, len);
	w->punches++;

	lo = off >= w->start + PAGE ? off - PAGE : w->start;
	hi = off + len + PAGE <= w->end ? off + len + PAGE : w->end;
	if (!direct) {
		/* Unaligned neighbours too, to catch partial pages. */
		lo = off - (off - lo) / 2 - (off > lo ? 1 : 0);
		hi = off + len + (hi - off - len) / 2;
	}
	check_range(w, lo, (size_t)(hi - lo), &w->punch_errors, "punch");
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	unsigned long i;
	uint64_t r;

	for (i = 0; i < nr_ops; i++) {
		r = rand_below(&w->rng, 100);
		if (r < 50)
			do_write(w);
		else if (r < 85)
			do_read(w);
		else
			do_punch(w);
		/* One failure tends to cause many: stop at the first. */
		if (w->write_errors + w->read_errors + w->punch_errors > 0)
			break;
	}
	return NULL;
}

static void *
alloc_aligned(size_t len)
{
	void *p;

	if (posix_memalign(&p, PAGE, len) != 0)
		bail("out of memory for %zu bytes", len);
	return p;
}

/* Read the whole file; compare with the reference if compare. */
static int
read_all(bool compare)
{
	uint8_t *buf = alloc_aligned(CHUNK);
	uint64_t off;
	size_t n, d;
	int error, good = 1;

	for (off = 0; off < file_size && good; off += n) {
		n = file_size - off < CHUNK ? file_size - off : CHUNK;
		if ((error = io_full(false, buf, n, off)) != 0) {
			diag("read %zu at %" PRIu64 ": %s", n, off,
			    strerror(-error));
			good = 0;
		} else if (!compare)
			memcpy(ref + off, buf, n);
		else if ((d = first_diff(buf, ref + off, n)) < n) {
			diag("first mismatch at offset %" PRIu64 " (0x%" PRIx64
			    "): read 0x%02x, expected 0x%02x", off + d,
			    off + d, buf[d], ref[off + d]);
			good = 0;
		}
	}
	free(buf);
	return good;
}

/*
 * The end of the file: reads stop there, writes do not move it.  A file
 * that grew would hide later swap data past what the kernel thinks is
 * the device, so the size is checked after each write attempt.
 */
static void
eof_checks(const char *path)
{
	uint8_t *buf = alloc_aligned(2 * PAGE);
	struct stat st;
	ssize_t n;
	int err;

	memset(buf, 0x5a, 2 * PAGE);
	n = pread(fd, buf, PAGE, (off_t)file_size);
	ok(n == 0, "read at the end returns 0 (got %zd%s%s)", n,
	    n < 0 ? ", " : "", n < 0 ? strerror(errno) : "");
	n = pread(fd, buf, PAGE, (off_t)(file_size + 16 * PAGE));
	ok(n == 0, "read past the end returns 0 (got %zd)", n);
	if (!direct) {
		n = pread(fd, buf, 100, (off_t)(file_size - 10));
		ok(n == 10, "read across the end is short: 10 bytes (got %zd)",
		    n);
	}

	n = pwrite(fd, buf, PAGE, (off_t)file_size);
	err = n < 0 ? errno : 0;
	ok(n < 0 && (err == EFBIG || err == ENOSPC),
	    "write at the end fails with EFBIG or ENOSPC (got %zd, %s)", n,
	    strerror(err));
	n = pwrite(fd, buf, PAGE, (off_t)(file_size + 256 * PAGE));
	err = n < 0 ? errno : 0;
	ok(n < 0 && (err == EFBIG || err == ENOSPC),
	    "write past the end fails with EFBIG or ENOSPC (got %zd, %s)", n,
	    strerror(err));
	if (!direct) {
		/* Across the end: nothing past it may stick. */
		n = pwrite(fd, buf, 100, (off_t)(file_size - 10));
		err = n < 0 ? errno : 0;
		ok(n == 10 || (n < 0 && (err == EFBIG || err == ENOSPC)),
		    "write across the end is short or fails (got %zd, %s)", n,
		    strerror(err));
	}
	if (fsync(fd) == -1)
		diag("fsync: %s", strerror(errno));
	if (fstat(fd, &st) == -1)
		bail("fstat %s: %s", path, strerror(errno));
	ok((uint64_t)st.st_size == file_size,
	    "size unchanged: %" PRIu64 " (now %jd)", file_size,
	    (intmax_t)st.st_size);
	free(buf);
}

static void
usage(void)
{
	fprintf(stderr, "usage: fuse-io [-dp] [-s seed] [-t threads] "
	    "[-n ops] [-S bytes] file\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct worker *workers;
	struct stat st;
	uint64_t seed = 1, region, set_size = 0;
	unsigned int nr_threads = 1, i;
	bool eof_only = false, good;
	char *end;
	int ch, flags;

	while ((ch = getopt(argc, argv, "dn:pS:s:t:")) != -1) {
		switch (ch) {
		case 'd':
			direct = true;
			break;
		case 'n':
			nr_ops = strtoul(optarg, &end, 0);
			if (*end != '\0')
				usage();
			break;
		case 'p':
			eof_only = true;
			break;
		case 'S':
			set_size = strtoull(optarg, &end, 0);
			if (*end != '\0' || set_size % PAGE != 0)
				usage();
			break;
		case 's':
			seed = strtoull(optarg, &end, 0);
			if (*end != '\0')
				usage();
			break;
		case 't':
			nr_threads = (unsigned int)strtoul(optarg, &end, 0);
			if (*end != '\0' || nr_threads < 1 || nr_threads > 64)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	tap_watchdog(600);

	flags = O_RDWR | (direct ? O_DIRECT : 0);
	if ((fd = open(argv[optind], flags)) == -1)
		bail("open %s: %s", argv[optind], strerror(errno));
	if (set_size != 0 && ftruncate(fd, (off_t)set_size) == -1)
		bail("ftruncate %s: %s", argv[optind], strerror(errno));
	if (fstat(fd, &st) == -1)
		bail("fstat %s: %s", argv[optind], strerror(errno));
	file_size = (uint64_t)st.st_size;
	if (file_size < PAGE * nr_threads || file_size % PAGE != 0)
		bail("%s: size %" PRIu64 " is not a multiple of 4 KiB with a "
		    "page per thread (-S sets it)", argv[optind], file_size);
	diag("%s: %" PRIu64 " bytes, seed %" PRIu64 ", %u thread(s), %lu "
	    "ops each%s", argv[optind], file_size, seed, nr_threads, nr_ops,
	    direct ? ", O_DIRECT" : "");

	if (eof_only) {
		eof_checks(argv[optind]);
		close(fd);
		return done_testing();
	}

	/* Start from what the file holds: a rerun need not begin empty. */
	if ((ref = malloc(file_size)) == NULL)
		bail("out of memory for the reference copy");
	if (!ok(read_all(false), "read the whole file first"))
		return done_testing();

	if ((workers = calloc(nr_threads, sizeof(*workers))) == NULL)
		bail("out of memory");
	region = file_size / nr_threads / PAGE * PAGE;
	for (i = 0; i < nr_threads; i++) {
		struct worker *w = &workers[i];

		w->id = i;
		w->rng = (seed + 1) * 0x9e3779b97f4a7c15ull + i * 0xbf58476dull;
		w->rng |= 1;
		w->start = i * region;
		w->end = i + 1 == nr_threads ? file_size : (i + 1) * region;
		w->buf = alloc_aligned(MAX_PUNCH + 2 * PAGE);
		if (pthread_create(&w->thread, NULL, worker_run, w) != 0)
			bail("pthread_create failed");
	}
	for (i = 0; i < nr_threads; i++) {
		struct worker *w = &workers[i];

		pthread_join(w->thread, NULL);
		if (w->why[0] != '\0')
			diag("thread %u: %s", i, w->why);
		ok(w->write_errors == 0 && w->read_errors == 0,
		    "thread %u: %lu writes, %lu reads checked (%lu ranges "
		    "unaligned)", i, w->writes, w->reads, w->unaligned);
		ok(w->punch_errors == 0, "thread %u: %lu holes punched read "
		    "back as zeros, neighbours unchanged", i, w->punches);
		free(w->buf);
	}
	good = read_all(true);
	ok(good, "whole file (%" PRIu64 " bytes) matches the reference",
	    file_size);
	free(workers);
	free(ref);
	close(fd);
	return done_testing();
}
