/*
 * pageout - ask the kernel to swap out every page of a shared memory
 * file, as reclaim would while no process has them locked; for
 * tests/crash.sh.
 *
 *	pageout FILE
 *
 * Maps FILE (a /proc/PID/fd/N of the keeper's, say), maps in each page
 * the file holds (SEEK_DATA: a sparse arena of terabytes holds a few
 * hundred megabytes), so that this process is their only user, and
 * gives them to MADV_PAGEOUT (Linux 5.4).  Prints
 *
 *	pages N resident_after M
 *
 * N the pages the file held in memory, M those still in memory after:
 * equal where the kernel may not swap them.  Exit 0, or 1 on error.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21		/* Linux 5.4 */
#endif

#define PAGE		4096UL
#define CHUNK		(1UL << 24)	/* per mincore and madvise call */

static int
die(const char *what)
{
	fprintf(stderr, "pageout: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Count the pages of [p, p + len) in memory; touch them if touch. */
static size_t
resident(volatile const char *p, size_t len, int touch)
{
	static unsigned char vec[CHUNK / PAGE];
	size_t n = 0, i;

	if (mincore((void *)(uintptr_t)p, len, vec) != 0)
		return 0;
	for (i = 0; i < (len + PAGE - 1) / PAGE; i++) {
		if (!(vec[i] & 1))
			continue;
		n++;
		if (touch)
			(void)p[i * PAGE];
	}
	return n;
}

/*
 * Over each data extent of the file: pass 0 touches the pages in memory
 * and pages them out, pass 1 counts those still in memory.
 */
static size_t
each_extent(int fd, char *base, off_t size, int pass)
{
	off_t data = 0, hole, off;
	size_t n = 0, len;

	while (data < size && (data = lseek(fd, data, SEEK_DATA)) >= 0) {
		if ((hole = lseek(fd, data, SEEK_HOLE)) < 0)
			hole = size;
		for (off = data & ~(off_t)(PAGE - 1); off < hole; off += len) {
			len = hole - off < (off_t)CHUNK ? (size_t)(hole - off) :
			    CHUNK;
			if (pass == 0) {
				n += resident(base + off, len, 1);
				(void)madvise(base + off, len, MADV_PAGEOUT);
			} else
				n += resident(base + off, len, 0);
		}
		data = hole;
	}
	return n;
}

int
main(int argc, char **argv)
{
	size_t before, after;
	struct stat st;
	char *base;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: pageout FILE\n");
		return 2;
	}
	if ((fd = open(argv[1], O_RDONLY)) < 0)
		return die(argv[1]);
	if (fstat(fd, &st) != 0)
		return die("fstat");
	if (st.st_size == 0) {
		printf("pages 0 resident_after 0\n");
		return 0;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return die("mmap");
	before = each_extent(fd, base, st.st_size, 0);
	after = each_extent(fd, base, st.st_size, 1);
	printf("pages %zu resident_after %zu\n", before, after);
	return 0;
}
