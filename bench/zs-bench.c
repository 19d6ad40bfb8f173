/*
 * zs-bench.c - libzs against general-purpose allocators on a stream of
 * compressed pages.
 *
 * The stream: 4 KiB pages of the machine's own executables, libraries and
 * documentation, in a fixed order, each compressed with lz4 (pages that do
 * not shrink are kept whole; all-zero pages are skipped -- zsd stores them
 * without an object).  Every allocator stores the same compressed bytes.
 *
 * Each allocator runs in a forked child, so resident memory is its own:
 * fill (allocate and write every page of the stream), free half at random,
 * then compact (zs_compact + zs_pool_report for libzs, malloc_trim for
 * glibc, a purge for jemalloc, mi_collect for mimalloc).  Efficiency is
 * bytes stored / bytes held, held being the growth of the process's RSS
 * (/proc/self/statm) and, for libzs, also the pool's own count of pages
 * used (objects only, and with metadata).  Medians of -r runs.
 *
 * The mobility run (-m GiB, libzs only) fills to that many bytes, frees
 * 75% at random, then times zs_compact, zs_pool_shrink and zs_pool_report
 * until RSS settles.
 *
 *   zs-bench [-p pages] [-r runs] [-m GiB] [-s seed] [-c]
 *
 * -c prints CSV instead of tables.
 */
#include <config.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zs.h"

#define PAGE		4096

/* The stream: compressed pages back to back. */
static uint8_t		*stream;
static uint32_t		*obj_off, *obj_len;
static size_t		 nr_pages, stream_bytes, raw_pages, zero_pages;

static const char *const roots[] = {
	"/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/lib",
	"/usr/share/doc", "/usr/share/man", "/usr/libexec", "/usr/share",
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
rss_bytes(void)
{
	unsigned long size, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static bool
all_zero(const uint8_t *p)
{
	size_t i;

	for (i = 0; i < PAGE; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void
add_page(const uint8_t *page)
{
	static size_t cap;
	int n;

	if (all_zero(page)) {
		zero_pages++;
		return;
	}
	if (stream_bytes + PAGE > cap) {
		cap = cap ? cap * 2 : (size_t)64 << 20;
		stream = realloc(stream, cap);
		if (stream == NULL) {
			perror("zs-bench: stream");
			exit(1);
		}
	}
	n = LZ4_compress_default((const char *)page,
	    (char *)stream + stream_bytes, PAGE, PAGE - 1);
	if (n <= 0 || (size_t)n >= PAGE) {
		memcpy(stream + stream_bytes, page, PAGE);
		n = PAGE;
		raw_pages++;
	}
	obj_off[nr_pages] = (uint32_t)stream_bytes;
	obj_len[nr_pages] = (uint32_t)n;
	stream_bytes += (size_t)n;
	nr_pages++;
}

/* Pages of one file, until the stream is long enough. */
static void
add_file(const char *path, size_t want)
{
	uint8_t page[PAGE];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		return;
	while (nr_pages < want && read(fd, page, PAGE) == PAGE)
		add_page(page);
	close(fd);
}

static void
add_tree(const char *dir, size_t want, int depth)
{
	struct dirent **ents;
	char path[4096];
	struct stat st;
	int n, i;

	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0)
		return;
	for (i = 0; i < n; i++) {
		if (nr_pages < want && ents[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir,
		    ents[i]->d_name) < (int)sizeof(path) &&
		    lstat(path, &st) == 0) {
			if (S_ISREG(st.st_mode))
				add_file(path, want);
			else if (S_ISDIR(st.st_mode) && depth < 4)
				add_tree(path, want, depth + 1);
		}
		free(ents[i]);
	}
	free(ents);
}

static void
make_stream(size_t want)
{
	size_t i;

	obj_off = calloc(want, sizeof(*obj_off));
	obj_len = calloc(want, sizeof(*obj_len));
	if (obj_off == NULL || obj_len == NULL) {
		perror("zs-bench");
		exit(1);
	}
	for (i = 0; i < sizeof(roots) / sizeof(roots[0]) && nr_pages < want;
	    i++)
		add_tree(roots[i], want, 0);
	if (nr_pages == 0) {
		fprintf(stderr, "zs-bench: no readable pages under /usr\n");
		exit(1);
	}
}

/* ------------------------------------------------------------------ */
/* The allocators, behind one small interface.                          */

struct allocator {
	const char	*name;
	bool		 (*init)(void);
	uintptr_t	 (*store)(const void *, size_t);	/* 0: failed */
	void		 (*drop)(uintptr_t, size_t);
	void		 (*compact)(void);
	bool		 (*check)(uintptr_t, const void *, size_t);
	const char	*preload;	/* run under LD_PRELOAD of this */
};

static struct zs_pool *pool;
static int (*dl_mallctl)(const char *, void *, size_t *, void *, size_t);
static void (*dl_collect)(bool);

static bool
zs_init(void)
{
	pool = zs_create_pool(NULL);
	return pool != NULL;
}

static uintptr_t
zs_store(const void *src, size_t len)
{
	zs_handle_t h = zs_malloc(pool, len);

	if (h != 0 && zs_obj_write(pool, h, src, len) != 0) {
		zs_free(pool, h);
		h = 0;
	}
	return (uintptr_t)h;
}

static void
zs_drop(uintptr_t h, size_t len)
{
	(void)len;
	zs_free(pool, h);
}

static void
zs_compact_all(void)
{
	zs_compact(pool, NULL);
	zs_pool_flush(pool);
	zs_pool_report(pool);
}

static bool
zs_check(uintptr_t h, const void *want, size_t len)
{
	uint8_t buf[ZS_MAX_ALLOC_SIZE];

	return zs_obj_copy(pool, h, buf, len) == 0 &&
	    memcmp(buf, want, len) == 0;
}

static bool
libc_init(void)
{
	return true;
}

static uintptr_t
libc_store(const void *src, size_t len)
{
	void *p = malloc(len);

	if (p != NULL)
		memcpy(p, src, len);
	return (uintptr_t)p;
}

static void
libc_drop(uintptr_t p, size_t len)
{
	(void)len;
	free((void *)p);
}

static void
libc_compact(void)
{
	malloc_trim(0);
}

static bool
mem_check(uintptr_t p, const void *want, size_t len)
{
	return memcmp((const void *)p, want, len) == 0;
}

/*
 * jemalloc and mimalloc replace malloc itself: their runs re-execute this
 * program with the library in LD_PRELOAD (their initial-exec TLS keeps
 * them from being dlopen()ed), and then store through plain malloc.
 */
static bool
preloaded(const char *lib)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, lib) != NULL;
}

static bool
je_init(void)
{
	dl_mallctl = (int (*)(const char *, void *, size_t *, void *,
	    size_t))dlsym(RTLD_DEFAULT, "mallctl");
	return preloaded("libjemalloc") && dl_mallctl != NULL;
}

static bool
mi_init(void)
{
	dl_collect = (void (*)(bool))dlsym(RTLD_DEFAULT, "mi_collect");
	return preloaded("libmimalloc") && dl_collect != NULL;
}

static void
je_compact(void)
{
	/* Purge every arena's dirty and muzzy pages (4096 = all arenas). */
	dl_mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
}

static void
mi_compact(void)
{
	dl_collect(true);
}

static const struct allocator allocators[] = {
	{ "libzs", zs_init, zs_store, zs_drop, zs_compact_all, zs_check,
	    NULL },
	{ "glibc", libc_init, libc_store, libc_drop, libc_compact, mem_check,
	    NULL },
	{ "jemalloc", je_init, libc_store, libc_drop, je_compact, mem_check,
	    "libjemalloc.so.2" },
	{ "mimalloc", mi_init, libc_store, libc_drop, mi_compact, mem_check,
	    "libmimalloc.so.2" },
};
#define NR_ALLOCATORS	(sizeof(allocators) / sizeof(allocators[0]))

/* ------------------------------------------------------------------ */
/* One run, in a child.                                                  */

enum { FILL, HALF, COMPACT, NR_PHASES };

struct result {
	int	ok;			/* 1 ran, 0 unavailable, -1 failed */
	double	fill_ops, free_ops, compact_s;
	double	eff_rss[NR_PHASES];	/* stored / RSS growth */
	double	eff_pool[NR_PHASES];	/* libzs: stored / pages used */
	double	eff_meta[NR_PHASES];	/* libzs: with metadata */
	uint64_t rss[NR_PHASES];
};

static void
pool_basis(struct result *r, int phase, uint64_t stored)
{
	struct zs_pool_stats st;

	zs_pool_stats(pool, &st);
	r->eff_pool[phase] = (double)stored / ((double)st.pages_used * PAGE);
	r->eff_meta[phase] = (double)stored /
	    ((double)(st.pages_used + st.pages_meta) * PAGE);
}

static void
run_one(const struct allocator *a, uint64_t seed, struct result *r)
{
	uintptr_t *h = calloc(nr_pages, sizeof(*h));
	uint32_t *order = calloc(nr_pages, sizeof(*order));
	uint64_t base, stored = 0, rng = seed | 1;
	size_t i, half = nr_pages / 2;
	double t;

	memset(r, 0, sizeof(*r));
	if (h == NULL || order == NULL) {
		r->ok = -1;
		return;
	}
	/* Touch our own tables before the baseline. */
	memset(h, 0, nr_pages * sizeof(*h));
	for (i = 0; i < nr_pages; i++)
		order[i] = (uint32_t)i;
	for (i = nr_pages - 1; i > 0; i--) {
		size_t j = next_rand(&rng) % (i + 1);
		uint32_t x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	if (!a->init())
		return;			/* not installed */
	base = rss_bytes();

	t = now();
	for (i = 0; i < nr_pages; i++) {
		h[i] = a->store(stream + obj_off[i], obj_len[i]);
		if (h[i] == 0) {
			r->ok = -1;
			return;
		}
		stored += obj_len[i];
	}
	r->fill_ops = (double)nr_pages / (now() - t);
	r->rss[FILL] = rss_bytes() - base;
	r->eff_rss[FILL] = (double)stored / (double)r->rss[FILL];
	if (a->init == zs_init)
		pool_basis(r, FILL, stored);

	t = now();
	for (i = 0; i < half; i++) {
		size_t k = order[i];

		a->drop(h[k], obj_len[k]);
		stored -= obj_len[k];
		h[k] = 0;
	}
	r->free_ops = (double)half / (now() - t);
	r->rss[HALF] = rss_bytes() - base;
	r->eff_rss[HALF] = (double)stored / (double)r->rss[HALF];
	if (a->init == zs_init)
		pool_basis(r, HALF, stored);

	t = now();
	a->compact();
	r->compact_s = now() - t;
	r->rss[COMPACT] = rss_bytes() - base;
	r->eff_rss[COMPACT] = (double)stored / (double)r->rss[COMPACT];
	if (a->init == zs_init)
		pool_basis(r, COMPACT, stored);

	/* Everything left must still be there. */
	for (i = 0; i < nr_pages; i++)
		if (h[i] != 0 && !a->check(h[i], stream + obj_off[i],
		    obj_len[i])) {
			fprintf(stderr, "zs-bench: %s lost page %zu\n", a->name,
			    i);
			r->ok = -1;
			return;
		}
	r->ok = 1;
}

static unsigned long want_pages = 131072;

/*
 * Fork, run, read the result back through a pipe.  A preloaded allocator
 * runs in a fresh program image (-X), which rebuilds the same stream.
 */
static void
run_child(unsigned int idx, uint64_t seed, struct result *r)
{
	const struct allocator *a = &allocators[idx];
	char sidx[16], spages[32], sseed[32];
	int fd[2], status;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	fflush(stdout);
	if (pipe(fd) != 0 || (pid = fork()) < 0) {
		perror("zs-bench: fork");
		exit(1);
	}
	if (pid == 0) {
		close(fd[0]);
		if (a->preload != NULL) {
			snprintf(sidx, sizeof(sidx), "%u", idx);
			snprintf(spages, sizeof(spages), "%lu", want_pages);
			snprintf(sseed, sizeof(sseed), "%" PRIu64, seed);
			if (dup2(fd[1], STDOUT_FILENO) < 0 ||
			    setenv("LD_PRELOAD", a->preload, 1) != 0)
				_exit(1);
			execl("/proc/self/exe", "zs-bench", "-X", sidx, "-p",
			    spages, "-s", sseed, (char *)NULL);
			_exit(127);
		}
		run_one(a, seed, r);
		if (write(fd[1], r, sizeof(*r)) != (ssize_t)sizeof(*r))
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], r, sizeof(*r)) != (ssize_t)sizeof(*r))
		r->ok = -1;
	close(fd[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		r->ok = -1;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of field at offset off over n results. */
static double
median(const struct result *rs, unsigned int n, size_t off)
{
	double v[64];
	unsigned int i;

	for (i = 0; i < n; i++)
		memcpy(&v[i], (const char *)&rs[i] + off, sizeof(double));
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MED(rs, n, field) median(rs, n, offsetof(struct result, field))

/* ------------------------------------------------------------------ */
/* Mobility: compaction, shrink and reporting after freeing 75%.         */

struct mobility {
	int	ok;
	double	fill_s, compact_s, shrink_s, settle_s;
	double	moved_mib, moved_mib_s;
	double	rss_before_mib, rss_after_mib, live_mib, released_mib;
};

static void
mobility_one(uint64_t bytes, uint64_t seed, struct mobility *m)
{
	size_t n = 0, i, cap = bytes / 1024;
	zs_handle_t *h = calloc(cap, sizeof(*h));
	uint32_t *which = calloc(cap, sizeof(*which));
	struct zs_compact_result res;
	uint64_t base, stored = 0, live = 0, rng = seed | 1, rss, last;
	double t, stable;

	memset(m, 0, sizeof(*m));
	if (h == NULL || which == NULL || (pool = zs_create_pool(NULL)) ==
	    NULL) {
		m->ok = -1;
		return;
	}
	memset(h, 0, cap * sizeof(*h));
	memset(which, 0, cap * sizeof(*which));
	base = rss_bytes();
	t = now();
	while (stored < bytes && n < cap) {
		size_t k = n % nr_pages;

		h[n] = zs_store(stream + obj_off[k], obj_len[k]);
		if (h[n] == 0) {
			m->ok = -1;
			return;
		}
		which[n] = (uint32_t)k;
		stored += obj_len[k];
		n++;
	}
	m->fill_s = now() - t;
	for (i = 0; i < n; i++) {
		if (next_rand(&rng) % 4 != 0) {
			zs_free(pool, h[i]);
			h[i] = 0;
		} else {
			live += obj_len[which[i]];
		}
	}
	zs_pool_flush(pool);
	m->rss_before_mib = (double)(rss_bytes() - base) / 1048576;
	m->live_mib = (double)live / 1048576;

	t = now();
	zs_compact(pool, &res);
	zs_pool_flush(pool);
	m->compact_s = now() - t;
	m->moved_mib = (double)res.bytes_moved / 1048576;
	m->moved_mib_s = m->moved_mib / m->compact_s;

	t = now();
	m->released_mib = (double)zs_pool_shrink(pool, UINT64_MAX) / 1048576;
	m->shrink_s = now() - t;
	zs_pool_report(pool);
	/* Settled: no change for 200 ms. */
	last = rss_bytes();
	stable = now();
	while (now() - stable < 0.2) {
		usleep(10000);
		if ((rss = rss_bytes()) != last) {
			last = rss;
			stable = now();
		}
	}
	m->settle_s = stable - t;
	m->rss_after_mib = (double)(last - base) / 1048576;
	for (i = 0; i < n; i++)
		if (h[i] != 0 && !zs_check(h[i], stream + obj_off[which[i]],
		    obj_len[which[i]])) {
			fprintf(stderr, "zs-bench: mobility lost object %zu\n",
			    i);
			m->ok = -1;
			return;
		}
	m->ok = 1;
}

static void
mobility_child(uint64_t bytes, uint64_t seed, struct mobility *m)
{
	int fd[2], status;
	pid_t pid;

	if (pipe(fd) != 0 || (pid = fork()) < 0) {
		perror("zs-bench: fork");
		exit(1);
	}
	if (pid == 0) {
		close(fd[0]);
		mobility_one(bytes, seed, m);
		if (write(fd[1], m, sizeof(*m)) != (ssize_t)sizeof(*m))
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], m, sizeof(*m)) != (ssize_t)sizeof(*m))
		m->ok = -1;
	close(fd[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		m->ok = -1;
}

static double
median_m(const struct mobility *ms, unsigned int n, size_t off)
{
	double v[64];
	unsigned int i;

	for (i = 0; i < n; i++)
		memcpy(&v[i], (const char *)&ms[i] + off, sizeof(double));
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MEDM(ms, n, field) median_m(ms, n, offsetof(struct mobility, field))

static void
usage(void)
{
	fprintf(stderr, "usage: zs-bench [-p pages] [-r runs] [-m GiB] "
	    "[-s seed] [-c]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static struct result rs[NR_ALLOCATORS][64];
	struct mobility ms[64];
	unsigned long runs = 3;
	long child = -1;
	struct result one;
	double mob_gib = 1.0, glibc_fill = 0;
	uint64_t seed = 1;
	bool csv = false;
	unsigned int a, i;
	char *end;
	int c;

	while ((c = getopt(argc, argv, "p:r:m:s:cX:")) != -1) {
		switch (c) {
		case 'p':
			want_pages = strtoul(optarg, &end, 0);
			if (*end != '\0' || want_pages < 1000 ||
			    want_pages > (1ul << 26))
				usage();
			break;
		case 'X':	/* internal: one run, result on stdout */
			child = strtol(optarg, &end, 0);
			if (*end != '\0' || child < 0 ||
			    child >= (long)NR_ALLOCATORS)
				usage();
			break;
		case 'r':
			runs = strtoul(optarg, &end, 0);
			if (*end != '\0' || runs < 1 || runs > 63)
				usage();
			break;
		case 'm':
			mob_gib = strtod(optarg, &end);
			if (*end != '\0' || mob_gib < 0 || mob_gib > 64)
				usage();
			break;
		case 's':
			seed = strtoull(optarg, &end, 0);
			if (*end != '\0')
				usage();
			break;
		case 'c':
			csv = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	make_stream(want_pages);
	if (child >= 0) {
		run_one(&allocators[child], seed, &one);
		return write(STDOUT_FILENO, &one, sizeof(one)) ==
		    (ssize_t)sizeof(one) ? 0 : 1;
	}
	printf("# stream: %zu pages (%zu MiB) of /usr, lz4: %zu MiB stored, "
	    "mean %zu bytes, %zu kept raw, %zu zero pages skipped\n",
	    nr_pages, nr_pages * PAGE >> 20, stream_bytes >> 20,
	    stream_bytes / nr_pages, raw_pages, zero_pages);
	printf("# medians of %lu runs; each allocator in its own process\n",
	    runs);

	for (i = 0; i < runs; i++)
		for (a = 0; a < NR_ALLOCATORS; a++)
			run_child(a, seed + i, &rs[a][i]);

	if (csv)
		printf("allocator,fill_ops,free_ops,compact_s,eff_fill_rss,"
		    "eff_half_rss,eff_compact_rss,eff_fill_pool,"
		    "eff_half_pool,eff_compact_pool,eff_compact_meta\n");
	else
		printf("\n%-9s %12s %12s %8s | %21s | %s\n%-9s %12s %12s %8s "
		    "| %6s %6s %7s | %s\n", "", "fill", "free", "compact",
		    "efficiency (RSS)", "efficiency (pool pages; +meta)",
		    "allocator", "ops/s", "ops/s", "s", "fill", "half",
		    "compact", "fill     half     compact  compact+meta");
	for (a = 0; a < NR_ALLOCATORS; a++) {
		struct result *r = rs[a];
		bool zs = allocators[a].init == zs_init;

		for (i = 0; i < runs && r[i].ok == 1; i++)
			;
		if (i < runs) {
			printf(csv ? "%s,,,,,,,,,,\n" : "%-9s %s\n",
			    allocators[a].name, r[i].ok == 0 ?
			    "not installed" : "FAILED");
			continue;
		}
		if (allocators[a].init == libc_init)
			glibc_fill = MED(r, runs, fill_ops);
		if (csv) {
			printf("%s,%.0f,%.0f,%.4f,%.4f,%.4f,%.4f", allocators[a].name,
			    MED(r, runs, fill_ops), MED(r, runs, free_ops),
			    MED(r, runs, compact_s), MED(r, runs, eff_rss[FILL]),
			    MED(r, runs, eff_rss[HALF]),
			    MED(r, runs, eff_rss[COMPACT]));
			if (zs)
				printf(",%.4f,%.4f,%.4f,%.4f\n",
				    MED(r, runs, eff_pool[FILL]),
				    MED(r, runs, eff_pool[HALF]),
				    MED(r, runs, eff_pool[COMPACT]),
				    MED(r, runs, eff_meta[COMPACT]));
			else
				printf(",,,,\n");
			continue;
		}
		printf("%-9s %12.0f %12.0f %8.3f | %5.1f%% %5.1f%% %6.1f%% |",
		    allocators[a].name, MED(r, runs, fill_ops),
		    MED(r, runs, free_ops), MED(r, runs, compact_s),
		    100 * MED(r, runs, eff_rss[FILL]),
		    100 * MED(r, runs, eff_rss[HALF]),
		    100 * MED(r, runs, eff_rss[COMPACT]));
		if (zs)
			printf(" %5.2f%%   %5.2f%%   %5.2f%%   %5.2f%%",
			    100 * MED(r, runs, eff_pool[FILL]),
			    100 * MED(r, runs, eff_pool[HALF]),
			    100 * MED(r, runs, eff_pool[COMPACT]),
			    100 * MED(r, runs, eff_meta[COMPACT]));
		printf("\n");
	}
	if (!csv && glibc_fill > 0)
		printf("\nlibzs fill throughput / glibc: %.2fx\n",
		    MED(rs[0], runs, fill_ops) / glibc_fill);

	if (mob_gib > 0) {
		for (i = 0; i < runs; i++) {
			mobility_child((uint64_t)(mob_gib * (1ull << 30)),
			    seed + i, &ms[i]);
			if (ms[i].ok != 1) {
				printf("mobility run FAILED\n");
				return 1;
			}
		}
		printf("\n# mobility: fill %.2f GiB, free 75%% at random, then "
		    "zs_compact, zs_pool_shrink, zs_pool_report\n", mob_gib);
		printf("%-28s %10.2f\n%-28s %10.2f\n%-28s %10.3f\n"
		    "%-28s %10.1f\n%-28s %10.1f\n%-28s %10.3f\n"
		    "%-28s %10.1f\n%-28s %10.1f\n%-28s %10.1f\n%-28s %10.3f\n",
		    "live after free (MiB)", MEDM(ms, runs, live_mib),
		    "RSS before compact (MiB)", MEDM(ms, runs, rss_before_mib),
		    "compact time (s)", MEDM(ms, runs, compact_s),
		    "bytes moved (MiB)", MEDM(ms, runs, moved_mib),
		    "compaction speed (MiB/s)", MEDM(ms, runs, moved_mib_s),
		    "shrink time (s)", MEDM(ms, runs, shrink_s),
		    "shrink released (MiB)", MEDM(ms, runs, released_mib),
		    "RSS after (MiB)", MEDM(ms, runs, rss_after_mib),
		    "RSS after / live", MEDM(ms, runs, rss_after_mib) /
		    MEDM(ms, runs, live_mib),
		    "shrink+report to settled (s)", MEDM(ms, runs, settle_s));
	}
	free(stream);
	free(obj_off);
	free(obj_len);
	return 0;
}
