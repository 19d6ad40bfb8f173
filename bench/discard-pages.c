/*
 * discard-pages.c - discard a random share of the 4 KiB pages of a file
 * or block device, one page at a time, as swap's discard does.
 *
 *   discard-pages [-s SEED] [-f PERCENT] -n PAGES PATH
 *
 * Chooses PERCENT (default 50) of pages 0..PAGES-1 by a seeded shuffle,
 * so the same seed picks the same pages on every backend, and discards
 * each: BLKDISCARD on a block device (zram frees the page's object),
 * fallocate(PUNCH_HOLE) on a file (zsd's FUSE file does the same).
 * Prints "discarded N" on stdout.  Exit 0 on success, 1 on an I/O
 * error, 2 on bad usage.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE	4096u

static void
usage(void)
{
	fprintf(stderr,
	    "usage: discard-pages [-s SEED] [-f PERCENT] -n PAGES PATH\n");
	exit(2);
}

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
parse_num(const char *arg, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v > max)
		usage();
	return v;
}

int
main(int argc, char *argv[])
{
	uint64_t seed = 1, percent = 50, nr_pages = 0, count, i, j, t;
	uint64_t *order, range[2];
	struct stat st;
	int ch, fd, error;

	while ((ch = getopt(argc, argv, "f:n:s:")) != -1) {
		switch (ch) {
		case 'f':
			percent = parse_num(optarg, 100);
			break;
		case 'n':
			nr_pages = parse_num(optarg, 1ull << 40);
			break;
		case 's':
			seed = parse_num(optarg, UINT64_MAX);
			break;
		default:
			usage();
		}
	}
	if (nr_pages == 0 || optind != argc - 1)
		usage();
	if ((fd = open(argv[optind], O_WRONLY)) < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "discard-pages: %s: %s\n", argv[optind],
		    strerror(errno));
		return 1;
	}
	if ((order = malloc(nr_pages * sizeof(*order))) == NULL) {
		fprintf(stderr, "discard-pages: %s\n", strerror(errno));
		return 1;
	}
	/* Fisher-Yates; xorshift must not start from 0: an odd state. */
	seed = (seed * 0x9e3779b97f4a7c15ull) | 1;
	for (i = 0; i < nr_pages; i++)
		order[i] = i;
	for (i = nr_pages - 1; i > 0; i--) {
		j = next_rand(&seed) % (i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	count = nr_pages * percent / 100;
	for (i = 0; i < count; i++) {
		range[0] = order[i] * PAGE;
		range[1] = PAGE;
		if (S_ISBLK(st.st_mode))
			error = ioctl(fd, BLKDISCARD, range);
		else
			error = fallocate(fd, FALLOC_FL_PUNCH_HOLE |
			    FALLOC_FL_KEEP_SIZE, (off_t)range[0], PAGE);
		if (error != 0) {
			fprintf(stderr, "discard-pages: %s: page %" PRIu64
			    ": %s\n", argv[optind], order[i], strerror(errno));
			return 1;
		}
	}
	printf("discarded %" PRIu64 "\n", count);
	free(order);
	close(fd);
	return 0;
}
