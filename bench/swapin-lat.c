/*
 * swapin-lat.c - the latency of each swap-in, one page at a time.
 *
 *   swapin-lat [-c CORPUS] [-m MiB] [-s SEED] [-R FILE]
 *
 * Maps MiB (256) of anonymous memory, fills it from the corpus (page i
 * takes corpus page i modulo the corpus's pages) or, without -c, with a
 * compressible pattern (8-byte words drawn from 64, about 2.2:1 with
 * lz4; the page's index first, so no two pages are alike), and pushes
 * it all to swap with madvise(MADV_PAGEOUT), checking VmSwap.  Then
 * reads one byte of each page in a seeded random order, each read timed
 * with CLOCK_MONOTONIC, and checks the byte.
 *
 * Meant to run with /proc/sys/vm/page-cluster at 0, so that each read
 * is one swap-in and nothing is read ahead.  What would not be a swap-in
 * of the device is not timed, but counted: all-zero pages (the kernel
 * keeps them itself and never writes them) and pages still in memory
 * when their turn comes (mincore: mapped, or in the swap cache).  A
 * swap device whose writes complete later (a loop device) leaves the
 * pages paged out in the swap cache until reclaim takes them: -R names
 * the memory cgroup file that makes it reclaim (v1 memory.force_empty,
 * v2 memory.reclaim) of the cgroup this runs in, written until mincore
 * finds no page left in memory.  The program's own pages are locked
 * first, so that reclaim leaves them, and the timed loop, alone.
 *
 * Prints one line on stdout, latencies in microseconds:
 *   pages N swapped_kib K zero Z resident R count C p50 ... p90 ...
 *   p99 ... p99.9 ... mean ... max ...
 * Exit 0; 1 if a byte read back was wrong; 2 on bad usage; 3 on a
 * system error.
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
#define PAGEOUT_TRIES	10
#define RECLAIM_TRIES	50

static void
usage(void)
{
	fprintf(stderr,
	    "usage: swapin-lat [-c CORPUS] [-m MiB] [-s SEED] [-R FILE]\n");
	exit(2);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "swapin-lat: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(3);
}

static uint64_t
parse_num(const char *arg, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max)
		usage();
	return v;
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
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* VmSwap of this process, in KiB. */
static uint64_t
vm_swap_kib(void)
{
	char line[256];
	uint64_t kib = 0;
	FILE *f;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		die("/proc/self/status: %s", strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmSwap: %" SCNu64, &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Pages of [base, base + pages) in memory: mapped or in the swap cache. */
static uint64_t
count_resident(uint8_t *base, uint64_t pages, unsigned char *vec)
{
	uint64_t i, n = 0;

	if (mincore(base, pages * PAGE, vec) != 0)
		die("mincore: %s", strerror(errno));
	for (i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

static void
fill_corpus(uint8_t *base, uint64_t pages, const char *path)
{
	struct stat st;
	uint64_t corpus_pages, i, first, n;
	ssize_t got;
	int fd;

	if ((fd = open(path, O_RDONLY)) < 0)
		die("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0)
		die("%s: %s", path, strerror(errno));
	corpus_pages = (uint64_t)st.st_size / PAGE;
	if (corpus_pages == 0)
		die("%s: not one page", path);
	for (i = 0; i < pages; i += n) {
		first = i % corpus_pages;
		n = pages - i < CHUNK_PAGES ? pages - i : CHUNK_PAGES;
		if (n > corpus_pages - first)
			n = corpus_pages - first;
		got = pread(fd, base + i * PAGE, n * PAGE, (off_t)(first * PAGE));
		if (got < 0)
			die("%s: %s", path, strerror(errno));
		if ((uint64_t)got != n * PAGE)
			die("%s: short read at page %" PRIu64, path, first);
	}
	close(fd);
}

static void
fill_pattern(uint8_t *base, uint64_t pages, uint64_t seed)
{
	uint64_t words[64], s = seed | 1, i, w;
	uint64_t *p;

	for (i = 0; i < 64; i++)
		words[i] = next_rand(&s);
	for (i = 0; i < pages; i++) {
		p = (uint64_t *)(base + i * PAGE);
		p[0] = i + 1;
		for (w = 1; w < PAGE / 8; w++)
			p[w] = words[next_rand(&s) & 63];
	}
}

static bool
page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	unsigned int i;

	for (i = 0; i < PAGE / 8; i++)
		if (w[i] != 0)
			return false;
	return true;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p% at or below it. */
static double
percentile_us(const uint64_t *sorted, uint64_t n, double p)
{
	uint64_t rank = (uint64_t)((p / 100.0) * (double)n + 0.999999);

	if (rank == 0)
		rank = 1;
	return (double)sorted[rank - 1] / 1000.0;
}

int
main(int argc, char *argv[])
{
	const char *corpus = NULL, *reclaim = NULL;
	uint64_t mib = 256, seed = 1, pages, i, j, t, swapped, resident;
	uint64_t count = 0, zero = 0, cached = 0, bad = 0, sum = 0, t0, t1;
	uint64_t *lat;
	uint32_t *order, o;
	uint8_t *base, *expect;
	unsigned char *vec;
	bool *is_zero;
	volatile uint8_t *vp;
	uint8_t v;
	char buf[32];
	int ch, fd, k, len;

	while ((ch = getopt(argc, argv, "c:m:s:R:")) != -1) {
		switch (ch) {
		case 'c':
			corpus = optarg;
			break;
		case 'm':
			mib = parse_num(optarg, 1, 1u << 20);
			break;
		case 's':
			seed = parse_num(optarg, 0, UINT64_MAX);
			break;
		case 'R':
			reclaim = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	pages = mib * 256;
	if (pages > UINT32_MAX)
		usage();

	/* All of ours but the region, allocated and touched, then locked. */
	lat = calloc(pages, sizeof(*lat));
	order = calloc(pages, sizeof(*order));
	expect = calloc(pages, 1);
	is_zero = calloc(pages, sizeof(*is_zero));
	vec = calloc(pages, 1);
	if (lat == NULL || order == NULL || expect == NULL ||
	    is_zero == NULL || vec == NULL)
		die("out of memory");
	if (mlockall(MCL_CURRENT) != 0)
		die("mlockall: %s", strerror(errno));

	base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		die("mmap %" PRIu64 " MiB: %s", mib, strerror(errno));
	/* Whole 4 KiB pages: one fault, one swap-in. */
	if (madvise(base, pages * PAGE, MADV_NOHUGEPAGE) != 0)
		die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	if (corpus != NULL)
		fill_corpus(base, pages, corpus);
	else
		fill_pattern(base, pages, seed);
	for (i = 0; i < pages; i++) {
		is_zero[i] = page_is_zero(base + i * PAGE);
		expect[i] = base[i * PAGE + (i % PAGE)];
	}

	/*
	 * Pages the kernel could not take at once (isolated, under
	 * writeback) get another try.
	 */
	for (k = 0; k < PAGEOUT_TRIES; k++) {
		if (madvise(base, pages * PAGE, MADV_PAGEOUT) != 0)
			die("madvise(MADV_PAGEOUT): %s", strerror(errno));
		if (vm_swap_kib() >= pages * (PAGE / 1024))
			break;
		usleep(100000);
	}
	swapped = vm_swap_kib();

	resident = count_resident(base, pages, vec);
	for (k = 0; reclaim != NULL && resident > 0 && k < RECLAIM_TRIES;
	    k++) {
		if ((fd = open(reclaim, O_WRONLY)) < 0)
			die("%s: %s", reclaim, strerror(errno));
		len = snprintf(buf, sizeof(buf), "%" PRIu64, resident * PAGE);
		/* Partial reclaim fails with EAGAIN (v2): try again. */
		if (write(fd, buf, (size_t)len) < 0 && errno != EAGAIN &&
		    errno != EBUSY)
			die("%s: %s", reclaim, strerror(errno));
		close(fd);
		resident = count_resident(base, pages, vec);
		if (resident > 0)
			usleep(100000);
	}
	fprintf(stderr, "swapin-lat: %" PRIu64 " of %" PRIu64 " KiB swapped"
	    " (VmSwap), %" PRIu64 " pages in memory before the reads\n",
	    swapped, pages * (PAGE / 1024), resident);

	/* Fisher-Yates, seeded: the same order on every backend. */
	for (i = 0; i < pages; i++)
		order[i] = (uint32_t)i;
	t = seed ^ 0x9e3779b97f4a7c15ull;
	for (i = pages - 1; i > 0; i--) {
		j = next_rand(&t) % (i + 1);
		o = order[i];
		order[i] = order[j];
		order[j] = o;
	}

	for (i = 0; i < pages; i++) {
		j = order[i];
		vp = base + j * PAGE + (j % PAGE);
		if (is_zero[j]) {
			zero++;
			v = *vp;
		} else {
			if (mincore(base + j * PAGE, PAGE, vec) != 0)
				die("mincore: %s", strerror(errno));
			if (vec[0] & 1) {
				cached++;
				v = *vp;
			} else {
				t0 = now_ns();
				v = *vp;
				t1 = now_ns();
				lat[count++] = t1 - t0;
				sum += t1 - t0;
			}
		}
		if (v != expect[j])
			bad++;
	}
	if (bad > 0)
		fprintf(stderr, "swapin-lat: %" PRIu64 " wrong bytes\n", bad);
	if (count == 0)
		die("no page was read from swap");

	qsort(lat, count, sizeof(*lat), cmp_u64);
	printf("pages %" PRIu64 " swapped_kib %" PRIu64 " zero %" PRIu64
	    " resident %" PRIu64 " count %" PRIu64 " p50 %.1f p90 %.1f"
	    " p99 %.1f p99.9 %.1f mean %.1f max %.1f\n",
	    pages, swapped, zero, cached, count,
	    percentile_us(lat, count, 50), percentile_us(lat, count, 90),
	    percentile_us(lat, count, 99), percentile_us(lat, count, 99.9),
	    (double)sum / (double)count / 1000.0,
	    (double)lat[count - 1] / 1000.0);
	return bad > 0 ? 1 : 0;
}
