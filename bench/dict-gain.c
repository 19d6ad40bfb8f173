/*
 * dict-gain.c - what a zstd dictionary trained on the pool's own pages
 * would save when idle pages are recompressed, on a corpus of 4 KiB pages
 * (bench/make-corpus, or bench/heap-pages for the machine's own memory).
 *
 *	dict-gain -f FILE [-l level]... [-d KiB] [-n pages]
 *
 * The pages that are neither zero nor one repeated word (zsd keeps those
 * without compressing them) are split in two: the even ones train a
 * dictionary of -d KiB (64) with ZDICT_trainFromBuffer, as a pass over
 * the pool could; the odd ones, which the dictionary never saw, are
 * compressed with lz4 (what zsd stores first), with zstd at each -l (9 by
 * default, zsd's recompress_level) without and with the dictionary.  The
 * table gives their bytes against the pages', the dictionary's gain over
 * plain zstd, and pages per second of each, one thread.  -n caps the
 * pages read.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zdict.h>
#include <zstd.h>

#define PAGE		4096u
#define MAX_LEVELS	8

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("dict-gain: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whether the page is one 64-bit word repeated (zero included). */
static int
same_filled(const unsigned char *p)
{
	uint64_t first, w;
	size_t i;

	memcpy(&first, p, sizeof(first));
	for (i = sizeof(w); i < PAGE; i += sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		if (w != first)
			return 0;
	}
	return 1;
}

/* The data pages of path, at most max of them; their number in *n. */
static unsigned char *
read_pages(const char *path, size_t max, size_t *n)
{
	unsigned char page[PAGE], *pages = NULL, *more;
	size_t have = 0, cap = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		die("%s: %s", path, strerror(errno));
	while (have < max && (r = read(fd, page, PAGE)) == (ssize_t)PAGE) {
		if (same_filled(page))
			continue;
		if (have == cap) {
			cap = cap ? cap * 2 : 4096;
			if ((more = realloc(pages, cap * PAGE)) == NULL)
				die("out of memory");
			pages = more;
		}
		memcpy(pages + have++ * PAGE, page, PAGE);
	}
	close(fd);
	*n = have;
	return pages;
}

struct result {
	const char	*name;
	int		 level;		/* 0: lz4 */
	int		 dict;
	size_t		 bytes;
	double		 seconds;
};

/* Compress the odd pages one by one; their bytes and the time taken. */
static void
run(struct result *res, const unsigned char *pages, size_t n,
    ZSTD_CCtx *cctx, const ZSTD_CDict *cdict)
{
	static unsigned char dst[PAGE * 2];
	size_t i, len;
	double t0 = now();

	res->bytes = 0;
	for (i = 1; i < n; i += 2) {
		const unsigned char *p = pages + i * PAGE;

		if (res->level == 0)
			len = (size_t)LZ4_compress_default((const char *)p,
			    (char *)dst, PAGE, (int)sizeof(dst));
		else if (cdict != NULL)
			len = ZSTD_compress_usingCDict(cctx, dst, sizeof(dst),
			    p, PAGE, cdict);
		else
			len = ZSTD_compressCCtx(cctx, dst, sizeof(dst), p,
			    PAGE, res->level);
		if (ZSTD_isError(len) || len == 0)
			die("compression failed");
		/* zsd keeps what does not shrink as the page itself. */
		res->bytes += len < PAGE ? len : PAGE;
	}
	res->seconds = now() - t0;
}

int
main(int argc, char **argv)
{
	struct result res[1 + 2 * MAX_LEVELS];
	int levels[MAX_LEVELS], nlevels = 0, c, k;
	size_t n, i, dict_kib = 64, dict_len, max = SIZE_MAX, *sizes;
	size_t tested, nres = 0;
	unsigned char *pages, *samples, *dict;
	const char *path = NULL;
	ZSTD_CCtx *cctx;
	ZSTD_CDict *cdict;
	double t0, train_s;

	while ((c = getopt(argc, argv, "f:l:d:n:")) != -1) {
		switch (c) {
		case 'f': path = optarg; break;
		case 'l':
			if (nlevels == MAX_LEVELS)
				die("at most %d levels", MAX_LEVELS);
			levels[nlevels++] = atoi(optarg);
			if (levels[nlevels - 1] < 1 ||
			    levels[nlevels - 1] > 19)
				die("-l %s: a level from 1 to 19", optarg);
			break;
		case 'd': dict_kib = strtoul(optarg, NULL, 10); break;
		case 'n': max = strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: dict-gain -f FILE [-l level]... "
			    "[-d KiB] [-n pages]\n");
			return 2;
		}
	}
	if (path == NULL || dict_kib == 0 || max < 4)
		die("usage: dict-gain -f FILE [-l level]... [-d KiB] "
		    "[-n pages]");
	if (nlevels == 0)
		levels[nlevels++] = 9;
	pages = read_pages(path, max, &n);
	if (n < 20)
		die("%s: %zu data pages: too few to train on", path, n);
	tested = n / 2;

	/* The even pages, one sample each. */
	if ((samples = malloc((n + 1) / 2 * PAGE)) == NULL ||
	    (sizes = calloc((n + 1) / 2, sizeof(*sizes))) == NULL ||
	    (dict = malloc(dict_kib * 1024)) == NULL)
		die("out of memory");
	for (i = 0; i < (n + 1) / 2; i++) {
		memcpy(samples + i * PAGE, pages + 2 * i * PAGE, PAGE);
		sizes[i] = PAGE;
	}
	t0 = now();
	dict_len = ZDICT_trainFromBuffer(dict, dict_kib * 1024, samples,
	    sizes, (unsigned)((n + 1) / 2));
	train_s = now() - t0;
	if (ZDICT_isError(dict_len))
		die("training: %s", ZDICT_getErrorName(dict_len));
	if ((cctx = ZSTD_createCCtx()) == NULL)
		die("out of memory");

	res[nres++] = (struct result){ "lz4", 0, 0, 0, 0 };
	run(&res[0], pages, n, cctx, NULL);
	for (k = 0; k < nlevels; k++) {
		res[nres] = (struct result){ "zstd", levels[k], 0, 0, 0 };
		run(&res[nres++], pages, n, cctx, NULL);
		if ((cdict = ZSTD_createCDict(dict, dict_len, levels[k])) ==
		    NULL)
			die("ZSTD_createCDict failed");
		res[nres] = (struct result){ "zstd+dict", levels[k], 1, 0, 0 };
		run(&res[nres++], pages, n, cctx, cdict);
		ZSTD_freeCDict(cdict);
	}

	printf("# %s: %zu data pages; a %zu-byte dictionary trained on %zu "
	    "of them in %.2f s, tested on the other %zu\n", path, n, dict_len,
	    (n + 1) / 2, train_s, tested);
	printf("%-10s %5s %12s %8s %10s %10s\n", "codec", "level", "bytes",
	    "of page", "vs plain", "pages/s");
	for (i = 0; i < nres; i++) {
		const struct result *r = &res[i];

		printf("%-10s %5d %12zu %8.3f", r->name, r->level, r->bytes,
		    (double)r->bytes / (double)(tested * PAGE));
		if (r->dict)
			printf(" %10.3f", (double)r->bytes /
			    (double)res[i - 1].bytes);
		else
			printf(" %10s", "");
		printf(" %10.0f\n", (double)tested / r->seconds);
	}
	ZSTD_freeCCtx(cctx);
	free(dict);
	free(sizes);
	free(samples);
	free(pages);
	return 0;
}
