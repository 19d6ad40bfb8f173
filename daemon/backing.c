/*
 * backing.c - the backing file that idle pages are written back to.
 *
 * A regular file or a block device, cut in 4 KiB blocks.  A block holds
 * one page raw, or the compressed objects of several pages packed one
 * after the other (idle.c packs them); live[b] counts the pages a block
 * still holds, and the block is free again when that count drops to 0.
 * Nothing else is kept: which page lives where is in the store's slots,
 * and a successor that recovers them counts the blocks again
 * (backing_get).  A freed block is not punched out of the file: the
 * pages that free blocks are discarded by the I/O threads, which must not
 * wait on the file system, and the block is taken again by the next
 * writeback anyway.
 *
 * Block 0 is the file's header: BACKING_MAGIC and a 64-bit id that the
 * store that writes pages to it also keeps (backing_claim, when it has
 * none there yet), so that a store recovered with pages in a backing
 * file can tell the file it is given is that one (backing_id): another
 * file, even one large enough, would hand back other bytes.
 *
 * The file is opened with O_DIRECT, so its pages do not take a second
 * copy in the page cache (where the memory they were written back to
 * save would go).  A file system that refuses O_DIRECT (tmpfs before
 * Linux 6.6) gets the file without it, and backing_direct() says so.
 *
 * Threads: the writeback job allocates (one at a time); any thread reads
 * and puts.  live[] is atomic, and the allocation cursor is the job's.
 */
#include <config.h>

#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zsd.h"

#define BACKING_MAGIC	"ZSDBACK1"	/* 8 bytes, then the id */

struct backing {
	int			 fd;
	bool			 direct;	/* opened with O_DIRECT */
	uint64_t		 nr_blocks;
	_Atomic uint32_t	*live;		/* pages in each block */
	_Atomic uint64_t	 used;		/* blocks with a page */
	uint64_t		 cursor;	/* where the next search starts */
	char			 path[PATH_MAX];
};

static void
backing_why(char *why, size_t whylen, const char *fmt, const char *path,
    int error)
{
	snprintf(why, whylen, fmt, path, strerror(error));
}

/*
 * The file, locked against another zsd (flock); a block device opened
 * O_EXCL, which the kernel refuses while it is mounted or otherwise
 * claimed.  A predecessor's lock may outlive it for a moment (its fds
 * close as it exits): a few tries.  fd, or -1 with why filled.
 */
static int
backing_open_fd(const char *path, bool *direct, char *why, size_t whylen)
{
	struct stat sb;
	int fd, flags, tries;

	flags = O_RDWR | O_CLOEXEC;
	if (stat(path, &sb) == 0 && S_ISBLK(sb.st_mode))
		flags |= O_EXCL;
	else
		flags |= O_CREAT;
	*direct = true;
	fd = open(path, flags | O_DIRECT, 0600);
	if (fd < 0 && errno == EINVAL) {
		*direct = false;
		fd = open(path, flags, 0600);
	}
	if (fd < 0) {
		backing_why(why, whylen, errno == EBUSY ? "cannot open "
		    "backing file %s: %s (mounted, or in use)" : "cannot open "
		    "backing file %s: %s", path, errno);
		return -1;
	}
	for (tries = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; tries++) {
		if (errno == EWOULDBLOCK && tries == 30) {
			snprintf(why, whylen, "backing file %s is in use by "
			    "another zsd", path);
			(void)close(fd);
			errno = EBUSY;
			return -1;
		}
		if (errno != EWOULDBLOCK) {
			backing_why(why, whylen, "cannot lock backing file "
			    "%s: %s", path, errno);
			(void)close(fd);
			return -1;
		}
		(void)usleep(100000);
	}
	return fd;
}

struct backing *
backing_open(const char *path, uint64_t size, uint64_t file_size,
    char *why, size_t whylen)
{
	struct backing *b;
	struct stat sb;
	uint64_t have = 0;
	int fd, saved;
	bool direct;

	if ((fd = backing_open_fd(path, &direct, why, whylen)) < 0)
		return NULL;
	if (fstat(fd, &sb) != 0) {
		backing_why(why, whylen, "cannot stat backing file %s: %s",
		    path, errno);
		goto fail;
	}
	if (S_ISBLK(sb.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &have) != 0) {
			backing_why(why, whylen, "cannot size backing device "
			    "%s: %s", path, errno);
			goto fail;
		}
		if (size == 0 || size > have)
			size = have;
	} else if (S_ISREG(sb.st_mode)) {
		/* A file larger than asked may hold pages there: all of it. */
		have = (uint64_t)sb.st_size;
		if (size == 0)
			size = file_size;
		if (size < have)
			size = have;
		/* Sparse: blocks take room only once written. */
		if (have < size && ftruncate(fd, (off_t)size) != 0) {
			backing_why(why, whylen, "cannot size backing file %s: "
			    "%s", path, errno);
			goto fail;
		}
	} else {
		snprintf(why, whylen, "backing file %s is neither a regular "
		    "file nor a block device", path);
		errno = EINVAL;
		goto fail;
	}
	size &= ~(uint64_t)(ZSD_PAGE_SIZE - 1);
	if (size < 2 * ZSD_PAGE_SIZE) {
		snprintf(why, whylen, "backing file %s: %s", path, size == 0 ?
		    "no size given and the file is empty (set backing_size)" :
		    "too small: it needs two blocks of 4 KiB at least");
		errno = EINVAL;
		goto fail;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->live = calloc(size / ZSD_PAGE_SIZE, sizeof(*b->live))) ==
	    NULL) {
		saved = errno;
		free(b);
		errno = saved;
		backing_why(why, whylen, "backing file %s: %s", path, errno);
		goto fail;
	}
	b->fd = fd;
	b->direct = direct;
	b->nr_blocks = size / ZSD_PAGE_SIZE;
	b->cursor = 1;		/* block 0 is the header */
	snprintf(b->path, sizeof(b->path), "%s", path);
	return b;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return NULL;
}

void
backing_close(struct backing *b)
{
	if (b == NULL)
		return;
	(void)close(b->fd);
	free(b->live);
	free(b);
}

const char *
backing_path(const struct backing *b)
{
	return b->path;
}

bool
backing_direct(const struct backing *b)
{
	return b->direct;
}

void
backing_usage(struct backing *b, uint64_t *used, uint64_t *blocks)
{
	*used = atomic_load_explicit(&b->used, memory_order_relaxed);
	*blocks = b->nr_blocks;
}

int
backing_alloc(struct backing *b, unsigned int pages, uint64_t *block)
{
	uint64_t n, k;
	uint32_t zero;

	for (n = 0; n < b->nr_blocks - 1; n++) {
		k = (b->cursor - 1 + n) % (b->nr_blocks - 1) + 1;
		zero = 0;
		if (atomic_compare_exchange_strong_explicit(&b->live[k], &zero,
		    pages, memory_order_acquire, memory_order_relaxed)) {
			b->cursor = k + 1;
			atomic_fetch_add_explicit(&b->used, 1,
			    memory_order_relaxed);
			*block = k;
			return 0;
		}
	}
	return -ENOSPC;
}

bool
backing_get(struct backing *b, uint64_t block)
{
	if (block == 0 || block >= b->nr_blocks)
		return false;
	if (atomic_fetch_add_explicit(&b->live[block], 1,
	    memory_order_relaxed) == 0)
		atomic_fetch_add_explicit(&b->used, 1, memory_order_relaxed);
	return true;
}

void
backing_put(struct backing *b, uint64_t block)
{
	if (atomic_fetch_sub_explicit(&b->live[block], 1,
	    memory_order_release) == 1)
		atomic_fetch_sub_explicit(&b->used, 1, memory_order_relaxed);
}

int
backing_write(struct backing *b, uint64_t block, const void *buf)
{
	ssize_t n;

	do
		n = pwrite(b->fd, buf, ZSD_PAGE_SIZE,
		    (off_t)(block * ZSD_PAGE_SIZE));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == ZSD_PAGE_SIZE ? 0 : -ENOSPC;
}

int
backing_read(struct backing *b, uint64_t block, void *buf)
{
	ssize_t n;

	do
		n = pread(b->fd, buf, ZSD_PAGE_SIZE,
		    (off_t)(block * ZSD_PAGE_SIZE));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == ZSD_PAGE_SIZE ? 0 : -EIO;
}

int
backing_id(struct backing *b, uint64_t *id)
{
	unsigned char *buf;
	size_t i;
	int error;

	if ((buf = aligned_alloc(ZSD_PAGE_SIZE, ZSD_PAGE_SIZE)) == NULL)
		return -ENOMEM;
	*id = 0;
	if ((error = backing_read(b, 0, buf)) == 0) {
		if (memcmp(buf, BACKING_MAGIC, 8) == 0)
			memcpy(id, buf + 8, sizeof(*id));
		else
			for (i = 0; i < ZSD_PAGE_SIZE; i++)
				if (buf[i] != 0) {
					error = -EEXIST;
					break;
				}
	}
	free(buf);
	return error;
}

int
backing_claim(struct backing *b, uint64_t id)
{
	unsigned char *buf;
	int error;

	if ((buf = aligned_alloc(ZSD_PAGE_SIZE, ZSD_PAGE_SIZE)) == NULL)
		return -ENOMEM;
	memset(buf, 0, ZSD_PAGE_SIZE);
	memcpy(buf, BACKING_MAGIC, 8);
	memcpy(buf + 8, &id, sizeof(id));
	error = backing_write(b, 0, buf);
	if (error == 0 && fdatasync(b->fd) != 0)
		error = -errno;
	free(buf);
	return error;
}
