/*
 * store-bench.c - the page store against the bare codecs, in one process.
 *
 * The pages are the machine's own: whole 4 KiB pages of the files under
 * /usr/bin (up to half the total) and then /usr/lib, directories walked in
 * byte order of the names, symbolic links not followed, all-zero pages
 * left out (the store keeps them without an object, which would flatter
 * it).  The same machine gives the same pages.  With -f, they are the
 * pages of one file instead (a corpus of bench/make-corpus), all-zero
 * pages left out the same way.  With -m, the store merges pages with the
 * same bytes (zsd's merge = yes); without, it does not.  With -a, the
 * pool and the store live in a memfd arena, as zsd keeps them so that a
 * new server can recover them (zs_arena_create); without, in private
 * memory.
 *
 * For each codec (lz4, zstd -1, zstd -3), every run measures pages per
 * second of:
 *   - the codec alone, one thread: compress every page into a buffer of
 *     its own, then decompress every page and compare it with the source;
 *   - store_write of every page into a fresh store, then store_read of
 *     every page compared with the source, with 1 thread and with T
 *     threads.
 * Threads take the pages in chunks of CHUNK_PAGES consecutive ones, the
 * next chunk whenever they are done with one, as zsd's workers take
 * requests: a thread that drew pages that compress faster does not sit
 * idle at the end while the others finish theirs.
 * Reads on both sides include the comparison, so they do the same work.
 * The table shows the median of the runs, store / codec, and the store's
 * throughput with T threads per thread relative to the bare codec.
 *
 *	store-bench [-amqw] [-b MiB] [-t threads] [-r runs] [-f file]
 *	    [-c codec]...
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "zsd.h"

#define PG		ZSD_PAGE_SIZE
#define MAX_DEPTH	8
#define MAX_RUNS	101
#define CHUNK_PAGES	32		/* 128 KiB, a large swap request */

/* The pages under test, back to back. */
struct corpus {
	unsigned char	*pages;
	size_t		 nr, cap;	/* pages held, pages room */
	uint64_t	 zero_skipped;
	uint64_t	 files;
	size_t		 from_bin;	/* pages of /usr/bin */
};

/* The codecs compared, as the store names them. */
static const struct bench_codec {
	const char	*name;
	enum codec_id	 id;
	int		 level;
} bench_codecs[] = {
	{ "lz4",	CODEC_LZ4,	0 },
	{ "zstd-1",	CODEC_ZSTD,	1 },
	{ "zstd-3",	CODEC_ZSTD,	3 },
};
#define NR_CODECS	(sizeof(bench_codecs) / sizeof(bench_codecs[0]))

/* What the bare codec made of the corpus, to decompress it again. */
struct packed {
	unsigned char	*bytes;
	size_t		*off, *len;
};

/* The measurements of one codec: one value per run. */
enum {
	M_RAW_C, M_RAW_D,
	M_W1, M_R1, M_WT, M_RT,
	M_RAW_CT,		/* the bare codec on T threads */
	NR_MEASURES
};

struct worker {
	pthread_t		 thread;
	struct store		*st;
	struct store_ctx	*ctx;
	const struct corpus	*c;
	pthread_barrier_t	*start;
	_Atomic size_t		*next;		/* the next chunk to take */
	bool			 reading;
	const struct bench_codec *raw;	/* bare codec run, no store */
	unsigned char		 page[PG];
	unsigned char		 cbuf[2 * PG];
	size_t			 bad;		/* pages that differ */
	int			 error;
};

static bool	 warm;		/* -w: write into a warmed pool */
static bool	 merge;		/* -m: the store merges equal pages */
static bool	 arena;		/* -a: pool and store in a memfd arena */
static const char *corpus_file;	/* -f: pages from this file */
static unsigned int codec_mask = ~0u;	/* -c: the codecs to run */

static __attribute__((format(printf, 1, 2), noreturn)) void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("store-bench: ", stderr);
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

static bool
page_is_zero(const unsigned char *p)
{
	size_t i;

	for (i = 0; i < PG; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void
corpus_add_file(struct corpus *c, const char *path, size_t limit)
{
	unsigned char *p;
	size_t before = c->nr;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)) < 0)
		return;			/* unreadable: not in the corpus */
	while (c->nr < limit) {
		p = c->pages + c->nr * PG;
		if (read(fd, p, PG) != PG)
			break;		/* the last partial page is left out */
		if (page_is_zero(p))
			c->zero_skipped++;
		else
			c->nr++;
	}
	close(fd);
	if (c->nr > before)
		c->files++;
}

static void
corpus_add_tree(struct corpus *c, const char *dir, int depth, size_t limit)
{
	struct dirent **ents;
	char path[4096];
	struct stat st;
	int n, i;

	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0)
		return;
	for (i = 0; i < n; i++) {
		if (c->nr < limit && ents[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir,
		    ents[i]->d_name) < (int)sizeof(path) &&
		    lstat(path, &st) == 0) {
			if (S_ISREG(st.st_mode))
				corpus_add_file(c, path, limit);
			else if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH)
				corpus_add_tree(c, path, depth + 1, limit);
		}
		free(ents[i]);
	}
	free(ents);
}

static void
corpus_build(struct corpus *c, size_t mib)
{
	memset(c, 0, sizeof(*c));
	c->cap = mib * (1024 * 1024 / PG);
	if ((c->pages = malloc(c->cap * PG)) == NULL)
		die("no memory for %zu MiB of pages", mib);
	if (corpus_file != NULL) {
		corpus_add_file(c, corpus_file, c->cap);
		if (c->nr == 0)
			die("%s: no page that is not all zero", corpus_file);
		return;
	}
	corpus_add_tree(c, "/usr/bin", 0, c->cap / 2);
	c->from_bin = c->nr;
	corpus_add_tree(c, "/usr/lib", 0, c->cap);
	if (c->nr == 0)
		die("no pages found under /usr/bin and /usr/lib");
}

/* Pages per second of the bare codec compressing every page. */
static double
raw_compress(const struct bench_codec *bc, const struct corpus *c,
    struct packed *pk, uint64_t *bytes)
{
	size_t bound, i, n, pos = 0;
	ZSTD_CCtx *zc = NULL;
	double t0, t1;
	int r;

	bound = bc->id == CODEC_LZ4 ? (size_t)LZ4_compressBound(PG) :
	    ZSTD_compressBound(PG);
	if (bc->id == CODEC_ZSTD && (zc = ZSTD_createCCtx()) == NULL)
		die("ZSTD_createCCtx failed");
	t0 = now();
	for (i = 0; i < c->nr; i++) {
		if (bc->id == CODEC_LZ4) {
			r = LZ4_compress_default((const char *)c->pages +
			    i * PG, (char *)pk->bytes + pos, PG, (int)bound);
			n = r > 0 ? (size_t)r : 0;
		} else {
			n = ZSTD_compressCCtx(zc, pk->bytes + pos, bound,
			    c->pages + i * PG, PG, bc->level);
			if (ZSTD_isError(n))
				n = 0;
		}
		if (n == 0)
			die("%s: cannot compress page %zu", bc->name, i);
		pk->off[i] = pos;
		pk->len[i] = n;
		pos += n;
	}
	t1 = now();
	ZSTD_freeCCtx(zc);
	*bytes = pos;
	return (double)c->nr / (t1 - t0);
}

/* Pages per second of the bare codec decompressing and comparing. */
static double
raw_decompress(const struct bench_codec *bc, const struct corpus *c,
    const struct packed *pk)
{
	static unsigned char page[PG];
	ZSTD_DCtx *zd = NULL;
	double t0, t1;
	size_t i, n;

	if (bc->id == CODEC_ZSTD && (zd = ZSTD_createDCtx()) == NULL)
		die("ZSTD_createDCtx failed");
	t0 = now();
	for (i = 0; i < c->nr; i++) {
		if (bc->id == CODEC_LZ4)
			n = (size_t)LZ4_decompress_safe((const char *)
			    pk->bytes + pk->off[i], (char *)page,
			    (int)pk->len[i], PG);
		else
			n = ZSTD_decompressDCtx(zd, page, PG,
			    pk->bytes + pk->off[i], pk->len[i]);
		if (n != PG || memcmp(page, c->pages + i * PG, PG) != 0)
			die("%s: page %zu does not decompress to itself",
			    bc->name, i);
	}
	t1 = now();
	ZSTD_freeDCtx(zd);
	return (double)c->nr / (t1 - t0);
}

/* The next chunk of pages for w, [*first, *end); false when none is left. */
static bool
worker_take(struct worker *w, size_t *first, size_t *end)
{
	size_t k = atomic_fetch_add_explicit(w->next, 1, memory_order_relaxed);

	if (k >= (w->c->nr + CHUNK_PAGES - 1) / CHUNK_PAGES)
		return false;
	*first = k * CHUNK_PAGES;
	*end = *first + CHUNK_PAGES < w->c->nr ? *first + CHUNK_PAGES :
	    w->c->nr;
	return true;
}

/* The bare codec: compress page i into the worker's buffer. */
static void
worker_compress(struct worker *w, ZSTD_CCtx *zc, size_t i)
{
	const void *src = w->c->pages + i * PG;
	size_t clen;

	if (w->raw->id == CODEC_LZ4)
		clen = (size_t)LZ4_compress_default(src, (char *)w->cbuf, PG,
		    (int)sizeof(w->cbuf));
	else
		clen = ZSTD_compressCCtx(zc, w->cbuf, sizeof(w->cbuf), src, PG,
		    w->raw->level);
	if (clen == 0 || ZSTD_isError(clen))
		w->error = -EIO;
}

/* Write page i into the store, or read it back and compare. */
static void
worker_store(struct worker *w, size_t i)
{
	long n;

	if (!w->reading) {
		w->error = store_write(w->st, w->ctx, (uint64_t)i * PG,
		    w->c->pages + i * PG, PG);
		return;
	}
	n = store_read(w->st, w->ctx, (uint64_t)i * PG, w->page, PG);
	if (n != PG)
		w->error = n < 0 ? (int)n : -EIO;
	else if (memcmp(w->page, w->c->pages + i * PG, PG) != 0)
		w->bad++;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	ZSTD_CCtx *zc = NULL;
	size_t first, end, i;

	if (w->raw != NULL && (zc = ZSTD_createCCtx()) == NULL)
		die("ZSTD_createCCtx failed");
	pthread_barrier_wait(w->start);
	while (w->error == 0 && worker_take(w, &first, &end))
		for (i = first; i < end && w->error == 0; i++) {
			if (w->raw != NULL)
				worker_compress(w, zc, i);
			else
				worker_store(w, i);
		}
	ZSTD_freeCCtx(zc);
	return NULL;
}

/*
 * Pages per second of nthreads writing (or reading) the whole corpus into
 * st, or (st NULL) compressing it with the bare codec raw.
 */
static double
threads_pass(struct store *st, const struct bench_codec *raw,
    struct worker *ws, unsigned int nthreads, const struct corpus *c,
    bool reading)
{
	_Atomic size_t next = 0;
	pthread_barrier_t start;
	double t0, t1;
	unsigned int i;

	pthread_barrier_init(&start, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		ws[i].st = st;
		ws[i].c = c;
		ws[i].start = &start;
		ws[i].next = &next;
		ws[i].reading = reading;
		ws[i].raw = raw;
		ws[i].bad = 0;
		ws[i].error = 0;
		if (pthread_create(&ws[i].thread, NULL, worker_run, &ws[i]))
			die("pthread_create failed");
	}
	/* Before the barrier: the workers may run before this thread wakes. */
	t0 = now();
	pthread_barrier_wait(&start);
	for (i = 0; i < nthreads; i++)
		pthread_join(ws[i].thread, NULL);
	t1 = now();
	pthread_barrier_destroy(&start);
	for (i = 0; i < nthreads; i++) {
		if (ws[i].error != 0)
			die("%s: %s", raw != NULL ? raw->name : reading ?
			    "store_read" : "store_write",
			    strerror(-ws[i].error));
		if (ws[i].bad != 0)
			die("store_read: %zu pages read back differ",
			    ws[i].bad);
	}
	return (double)c->nr / (t1 - t0);
}

static double
store_pass(struct store *st, struct worker *ws, unsigned int nthreads,
    const struct corpus *c, bool reading)
{
	return threads_pass(st, NULL, ws, nthreads, c, reading);
}

/* Pages per second of the bare codec compressing on nthreads threads. */
static double
raw_compress_threads(const struct bench_codec *bc, struct worker *ws,
    unsigned int nthreads, const struct corpus *c)
{
	return threads_pass(NULL, bc, ws, nthreads, c, false);
}

/*
 * Write the corpus into a fresh pool and store with nthreads, read it
 * back, and throw it all away.  *ss gets the store's statistics.
 */
static void
store_run(const struct bench_codec *bc, const struct corpus *c,
    struct worker *ws, unsigned int nthreads, double *wps, double *rps,
    struct store_stats *ss)
{
	struct store_options opt = { bc->id, bc->level, 0, merge };
	struct zs_pool_config pcfg;
	struct zs_pool *pool;
	struct store *st;
	unsigned int i;
	int error = 0, fd = -1;

	/* The pool as zsd makes it at its default rt_priority. */
	zs_pool_config_init(&pcfg);
	pcfg.priority_inherit = 1;
	if (arena) {
		if ((fd = memfd_create("store-bench", MFD_CLOEXEC |
		    MFD_ALLOW_SEALING)) < 0)
			die("memfd_create: %s", strerror(errno));
		pool = zs_arena_create(&pcfg, fd, store_root_size(c->nr));
	} else {
		pool = zs_create_pool(&pcfg);
	}
	if (pool == NULL)
		die("creating the pool: %s", strerror(errno));
	if ((st = store_open(pool, c->nr, &opt, NULL, 0, &error)) == NULL)
		die("store_open: %s", strerror(-error));
	for (i = 0; i < nthreads; i++)
		if ((ws[i].ctx = store_ctx_create(st)) == NULL)
			die("store_ctx_create: %s", strerror(errno));
	if (warm) {
		/*
		 * A store in use: write everything once and discard it, so
		 * the timed pass takes resident pages off the pool's free
		 * lists (reporting gives them back only 2 s after frees)
		 * instead of faulting fresh ones in.
		 */
		(void)store_pass(st, ws, nthreads, c, false);
		if ((error = store_discard(st, ws[0].ctx, 0,
		    (uint64_t)c->nr * PG)) != 0)
			die("store_discard: %s", strerror(-error));
		zs_pool_flush(pool);
	}
	*wps = store_pass(st, ws, nthreads, c, false);
	*rps = store_pass(st, ws, nthreads, c, true);
	store_stats(st, ss);
	for (i = 0; i < nthreads; i++)
		store_ctx_destroy(ws[i].ctx);
	store_destroy(st);
	zs_destroy_pool(pool);
	if (fd >= 0)
		close(fd);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
usage(void)
{
	fprintf(stderr, "usage: store-bench [-amqw] [-b MiB] [-t threads] "
	    "[-r runs] [-f file] [-c codec]...\n"
	    "  -a          pool and store in a memfd arena, as zsd has them\n"
	    "  -b MiB      pages to use (default 256)\n"
	    "  -t threads  threads of the parallel store runs "
	    "(default: cores)\n"
	    "  -r runs     runs; the median is shown (default 3)\n"
	    "  -q          quick: 32 MiB, 1 run\n"
	    "  -w          warm pool: time writes into a store in use\n"
	    "  -m          merge pages with the same bytes (zsd's merge = "
	    "yes)\n"
	    "  -f file     pages of this file (a make-corpus corpus), not "
	    "of /usr\n"
	    "  -c codec    only this codec: lz4, zstd-1 or zstd-3 (repeatable;\n"
	    "              default: all three)\n");
	exit(2);
}

static unsigned long
parse_num(const char *s, unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	static double m[NR_CODECS][NR_MEASURES][MAX_RUNS];
	struct store_stats stats[NR_CODECS];
	uint64_t raw_bytes[NR_CODECS];
	unsigned long mib = 0, runs = 0, threads = 0;
	double med[NR_MEASURES];
	const struct bench_codec *bc;
	struct store_stats ss;
	struct corpus c;
	struct packed pk;
	struct worker *ws;
	bool quick = false;
	unsigned int r, k, j;
	long cores;
	int ch;

	while ((ch = getopt(argc, argv, "ab:t:r:c:f:mqwh")) != -1) {
		switch (ch) {
		case 'c':
			for (k = 0; k < NR_CODECS; k++)
				if (strcmp(optarg, bench_codecs[k].name) == 0)
					break;
			if (k == NR_CODECS) {
				fprintf(stderr, "store-bench: unknown codec "
				    "'%s' (lz4, zstd-1, zstd-3)\n", optarg);
				usage();
			}
			if (codec_mask == ~0u)
				codec_mask = 0;
			codec_mask |= 1u << k;
			break;
		case 'a':
			arena = true;
			break;
		case 'w':
			warm = true;
			break;
		case 'm':
			merge = true;
			break;
		case 'f':
			corpus_file = optarg;
			break;
		case 'b':
			mib = parse_num(optarg, 1, 1ul << 20);
			break;
		case 't':
			threads = parse_num(optarg, 1, 1024);
			break;
		case 'r':
			runs = parse_num(optarg, 1, MAX_RUNS);
			break;
		case 'q':
			quick = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	/* -q sets defaults; -b and -r win whatever their order. */
	if (mib == 0)
		mib = quick ? 32 : 256;
	if (runs == 0)
		runs = quick ? 1 : 3;
	if (threads == 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cores > 0 ? (unsigned long)cores : 1;
	}

	corpus_build(&c, mib);
	pk.bytes = malloc(c.nr * (size_t)ZSTD_compressBound(PG));
	pk.off = calloc(c.nr, sizeof(*pk.off));
	pk.len = calloc(c.nr, sizeof(*pk.len));
	ws = calloc(threads, sizeof(*ws));
	if (pk.bytes == NULL || pk.off == NULL || pk.len == NULL ||
	    ws == NULL)
		die("out of memory");
	if (corpus_file != NULL)
		printf("store-bench: %zu pages (%.1f MiB) of %s, %" PRIu64
		    " zero pages left out\n", c.nr, (double)c.nr * PG /
		    1048576, corpus_file, c.zero_skipped);
	else
		printf("store-bench: %zu pages (%.1f MiB; %.1f from "
		    "/usr/bin), %" PRIu64 " files, %" PRIu64 " zero pages "
		    "left out\n", c.nr, (double)c.nr * PG / 1048576,
		    (double)c.from_bin * PG / 1048576, c.files,
		    c.zero_skipped);
	printf("%lu threads (T), median of %lu run%s, %s pool%s, merge %s\n",
	    threads, runs, runs > 1 ? "s" : "", warm ?
	    "warm (pages resident)" : "fresh (pages faulted in)",
	    arena ? " in a memfd arena" : "", merge ? "yes" : "no");
	fflush(stdout);

	for (r = 0; r < runs; r++) {
		for (k = 0; k < NR_CODECS; k++) {
			if (!(codec_mask & 1u << k))
				continue;
			bc = &bench_codecs[k];
			m[k][M_RAW_C][r] = raw_compress(bc, &c, &pk,
			    &raw_bytes[k]);
			m[k][M_RAW_D][r] = raw_decompress(bc, &c, &pk);
			store_run(bc, &c, ws, 1, &m[k][M_W1][r],
			    &m[k][M_R1][r], &stats[k]);
			if (threads > 1) {
				store_run(bc, &c, ws, (unsigned int)threads,
				    &m[k][M_WT][r], &m[k][M_RT][r], &ss);
				m[k][M_RAW_CT][r] = raw_compress_threads(bc,
				    ws, (unsigned int)threads, &c);
			} else {
				m[k][M_RAW_CT][r] = m[k][M_RAW_C][r];
				m[k][M_WT][r] = m[k][M_W1][r];
				m[k][M_RT][r] = m[k][M_R1][r];
			}
		}
	}

	printf("\nthousands of pages per second; st/raw = store 1 thread / "
	    "codec alone;\nper core = store T threads / T / codec alone; "
	    "raw T = the codec alone on T\nthreads (for writes), what this "
	    "machine's cores give together\n\n");
	printf("%-7s %-6s %9s %9s %7s %9s %9s %9s\n", "codec", "op", "raw",
	    "store 1T", "st/raw", "store T", "per core", "raw T");
	for (k = 0; k < NR_CODECS; k++) {
		if (!(codec_mask & 1u << k))
			continue;
		for (j = 0; j < NR_MEASURES; j++)
			med[j] = median(m[k][j], (unsigned int)runs);
		printf("%-7s %-6s %9.1f %9.1f %7.2f %9.1f %9.2f %9.1f\n",
		    bench_codecs[k].name, "write", med[M_RAW_C] / 1e3,
		    med[M_W1] / 1e3, med[M_W1] / med[M_RAW_C],
		    med[M_WT] / 1e3,
		    med[M_WT] / (double)threads / med[M_RAW_C],
		    med[M_RAW_CT] / 1e3);
		printf("%-7s %-6s %9.1f %9.1f %7.2f %9.1f %9.2f\n",
		    bench_codecs[k].name, "read", med[M_RAW_D] / 1e3,
		    med[M_R1] / 1e3, med[M_R1] / med[M_RAW_D],
		    med[M_RT] / 1e3,
		    med[M_RT] / (double)threads / med[M_RAW_D]);
	}

	printf("\nsizes, %% of the pages' bytes: raw = the codec's output; "
	    "objects = the store's\n(raw pages at 100%%, shared ones once); "
	    "pool = pages the pool uses;\nmerged = pages that took no new "
	    "object\n\n");
	printf("%-7s %7s %8s %7s %6s %6s %7s\n", "codec", "raw", "objects",
	    "pool", "same", "huge", "merged");
	for (k = 0; k < NR_CODECS; k++) {
		double orig = (double)c.nr * PG;

		if (!(codec_mask & 1u << k))
			continue;
		printf("%-7s %6.1f%% %7.1f%% %6.1f%% %6" PRIu64 " %6" PRIu64
		    " %7" PRIu64 "\n", bench_codecs[k].name,
		    100 * raw_bytes[k] / orig,
		    100 * (double)stats[k].compr_data_size / orig,
		    100 * (double)stats[k].mem_used_total / orig,
		    stats[k].same_pages, stats[k].huge_pages,
		    stats[k].pages_merged);
	}
	free(pk.bytes);
	free(pk.off);
	free(pk.len);
	free(ws);
	free(c.pages);
	return 0;
}
