/*
 * swap-fill.c - the working set of the swap benchmark.
 *
 *   swap-fill -c CORPUS -m MiB [-p]
 *
 * Meant to run in a memory cgroup smaller than MiB.  Maps MiB of
 * anonymous memory and fills it page by page from the corpus file (page
 * i takes corpus page i modulo the corpus's pages), so that the kernel
 * swaps most of it out while it fills; then reads every page back in
 * order and compares it with the corpus.  The corpus is read with pread
 * from the page cache, which the caller fills beforehand outside the
 * cgroup, so the cgroup's memory is the working set alone.
 *
 * Prints "fill SECONDS" after the fill and "read SECONDS BAD" after the
 * read-back, one line each on stdout.  With -p it waits for a line on
 * stdin between the two, so the caller can measure the backend while the
 * working set is swapped out.  Exit status 0 only if every page came back
 * right; 1 on a bad page, 2 on bad usage, 3 on a system error.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096u
#define CHUNK_PAGES	256u		/* corpus read 1 MiB at a time */

static const char	*corpus_path;
static int		 corpus_fd = -1;
static uint64_t		 corpus_pages;

static void
usage(void)
{
	fprintf(stderr, "usage: swap-fill -c CORPUS -m MiB [-p]\n");
	exit(2);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "swap-fill: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(3);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Up to n corpus pages from page index idx (wrapping at the corpus's
 * end) into dst; returns how many were read, at least 1.
 */
static uint64_t
corpus_read(uint8_t *dst, uint64_t idx, uint64_t n)
{
	uint64_t first = idx % corpus_pages;
	size_t len;
	ssize_t got;

	if (n > corpus_pages - first)
		n = corpus_pages - first;
	len = (size_t)n * PAGE;
	got = pread(corpus_fd, dst, len, (off_t)(first * PAGE));
	if (got < 0)
		die("%s: %s", corpus_path, strerror(errno));
	if ((size_t)got < PAGE)
		die("%s: short read at page %" PRIu64, corpus_path, first);
	return (uint64_t)got / PAGE;
}

int
main(int argc, char *argv[])
{
	uint64_t mib = 0, nr_pages, idx, n, i, bad = 0;
	uint8_t *mem, *want;
	bool pause = false;
	struct stat st;
	char *end, line[64];
	double t0;
	int ch;

	while ((ch = getopt(argc, argv, "c:m:p")) != -1) {
		switch (ch) {
		case 'c':
			corpus_path = optarg;
			break;
		case 'm':
			errno = 0;
			mib = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || mib == 0 ||
			    mib > (1ull << 30))
				usage();
			break;
		case 'p':
			pause = true;
			break;
		default:
			usage();
		}
	}
	if (corpus_path == NULL || mib == 0 || optind != argc)
		usage();
	if ((corpus_fd = open(corpus_path, O_RDONLY)) < 0)
		die("%s: %s", corpus_path, strerror(errno));
	if (fstat(corpus_fd, &st) != 0)
		die("%s: %s", corpus_path, strerror(errno));
	corpus_pages = (uint64_t)st.st_size / PAGE;
	if (corpus_pages == 0)
		die("%s: not even one page", corpus_path);

	nr_pages = mib * 1024 * 1024 / PAGE;
	mem = mmap(NULL, nr_pages * PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap %" PRIu64 " MiB: %s", mib, strerror(errno));
	/* Base pages, so each one is swapped on its own. */
	(void)madvise(mem, nr_pages * PAGE, MADV_NOHUGEPAGE);
	if ((want = malloc(CHUNK_PAGES * PAGE)) == NULL)
		die("malloc: %s", strerror(errno));

	t0 = now();
	for (idx = 0; idx < nr_pages; idx += n) {
		n = nr_pages - idx < CHUNK_PAGES ? nr_pages - idx : CHUNK_PAGES;
		n = corpus_read(mem + idx * PAGE, idx, n);
	}
	printf("fill %.3f\n", now() - t0);
	fflush(stdout);

	if (pause && fgets(line, sizeof(line), stdin) == NULL)
		die("stdin closed while paused");

	t0 = now();
	for (idx = 0; idx < nr_pages; idx += n) {
		n = nr_pages - idx < CHUNK_PAGES ? nr_pages - idx : CHUNK_PAGES;
		n = corpus_read(want, idx, n);
		for (i = 0; i < n; i++) {
			if (memcmp(mem + (idx + i) * PAGE, want + i * PAGE,
			    PAGE) == 0)
				continue;
			if (bad++ == 0)
				fprintf(stderr, "swap-fill: page %" PRIu64
				    " differs from corpus page %" PRIu64 "\n",
				    idx + i, (idx + i) % corpus_pages);
		}
	}
	printf("read %.3f %" PRIu64 "\n", now() - t0, bad);
	fflush(stdout);
	if (bad != 0)
		fprintf(stderr, "swap-fill: %" PRIu64 " of %" PRIu64
		    " pages wrong\n", bad, nr_pages);
	free(want);
	munmap(mem, nr_pages * PAGE);
	close(corpus_fd);
	return bad == 0 ? 0 : 1;
}
