/*
 * make-corpus.c - a file of 4 KiB pages that looks like swapped memory,
 * the same bytes every time for the same options on the same machine,
 * and the page statistics of such a file.
 *
 *	make-corpus [-n PAGES | -s SIZE] [-z ZERO%] [-f SAME%] [-r RANDOM%]
 *	    [-d DUP%] [-S SEED] [-l LEVEL] [-v] [--csv] -o FILE
 *	make-corpus [-l LEVEL] [--csv] --stats FILE
 *
 * Each page is one of five kinds: all zero; same-filled (one non-zero
 * 8-byte word, drawn from the seed, repeated); random (incompressible,
 * from the seed); a page of the machine's own files; or, with -d, a
 * duplicate: a copy of an earlier random or file page, picked by the seed
 * (a page at or before a seeded place, the first of those kinds found
 * walking back; one with none before it is a random page).  Duplicates
 * take their share out of the file pages, so -d 0 gives the corpus made
 * without it.  The kinds are
 * dealt out in exactly the requested numbers (cumulative percentages
 * rounded to whole pages) and then shuffled by the seed, so page i's kind
 * is fixed by the seed and i.  Random pages and same-filled words are a
 * function of (seed, page number) alone.
 *
 * File pages come from the roots of stream.c with its shares, walked the
 * same way: names in byte order, no symbolic links followed, whole pages
 * only, files we cannot read left out.  All their pages form one long
 * sequence; each root gives its share of the file pages (what it cannot
 * give passes to the roots after it) as runs of RUN_PAGES consecutive
 * pages spread evenly over its part of the sequence, each run at a seeded
 * place within its stretch.  The runs are then shuffled by the seed, so
 * any slice of the corpus has the mix of the whole.  A file page that is
 * all zero or same-filled is passed over for the one after it (up to
 * SKIP_MAX in a row): -z and -f alone decide how many of those the corpus
 * has.  When the roots hold fewer pages than wanted, pages are used more
 * than once (with a warning).
 *
 * -s must be a multiple of 4096: another size is refused, not rounded, so
 * that the file is always the size asked for.  Bad options exit 2, I/O
 * errors 1 (and remove the half-written output).
 *
 * The statistics are computed from the file as written, by the same code
 * as --stats, so both print the same thing.  Duplicates are found by a
 * 64-bit hash and confirmed with memcmp; a duplicate reuses the sizes its
 * first copy compressed to.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <lz4.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define PAGE		4096
#define PAGE_WORDS	(PAGE / 8)
#define CHUNK_PAGES	1024		/* 4 MiB per write(2) */
#define RUN_PAGES	8		/* file pages that go out together */
#define SKIP_MAX	1024		/* zero/same file pages passed per page */
#define MAX_DEPTH	8
#define MAX_PAGES	UINT32_MAX	/* the duplicate table holds page + 1 */
#define MIB		1048576.0

#define GOLDEN		0x9e3779b97f4a7c15ull
/* Keys that give each use of the seed a stream of its own. */
#define KEY_KINDS	0x6b696e6473ull		/* "kinds" */
#define KEY_SAME	0x73616d65ull		/* "same" */
#define KEY_RANDOM	0x72616e646f6dull	/* "random" */
#define KEY_RUNS	0x72756e73ull		/* "runs" */
#define KEY_DUP		0x647570ull		/* "dup" */

enum kind { KIND_ZERO, KIND_SAME, KIND_RANDOM, KIND_FILE, KIND_DUP,
	NR_KINDS };

struct options {
	uint64_t	 pages;
	double		 pct[KIND_FILE];	/* zero, same, random */
	double		 dup_pct;		/* copies of earlier pages */
	uint64_t	 seed;
	int		 level;			/* of zstd */
	bool		 csv, verbose;
	const char	*output;
	const char	*stats;			/* --stats FILE */
};

/* Where file pages come from, and each root's share of them (stream.c). */
static struct root {
	const char	*dir;
	unsigned int	 share;		/* percent of the file pages */
	uint64_t	 first;		/* its first page in the sequence */
	uint64_t	 pages;		/* whole pages of its files */
	uint64_t	 files;
	uint64_t	 quota;		/* pages the corpus takes from it */
} roots[] = {
	{ "/usr/bin",		30, 0, 0, 0, 0 },
	{ "/usr/sbin",		 5, 0, 0, 0, 0 },
	{ "/usr/libexec",	 5, 0, 0, 0, 0 },
	{ "/usr/share/doc",	10, 0, 0, 0, 0 },
	{ "/usr/share",		15, 0, 0, 0, 0 },	/* doc excluded: a root */
	{ "/usr/lib",		35, 0, 0, 0, 0 },
};
#define NR_ROOTS	(sizeof(roots) / sizeof(roots[0]))

/*
 * Every readable file of the roots, in walk order: file i holds pages
 * files[i].first .. files[i + 1].first - 1 of the sequence (the last one
 * up to pages - 1); its path is at names + files[i].name.
 */
struct source_file {
	uint64_t	 first;
	size_t		 name;
};

struct tree {
	struct source_file *files;
	size_t		 nr_files, files_cap;
	char		*names;
	size_t		 names_len, names_cap;
	uint64_t	 pages;
};

/* len pages of the sequence from start on, taken together. */
struct run {
	uint64_t	 start;
	uint64_t	 len;
};

struct plan {
	struct run	*runs;
	size_t		 nr_runs, runs_cap;
};

/* Hands out the file pages of the plan in order, one at a time. */
struct producer {
	const struct tree *tree;
	const struct plan *plan;
	size_t		 run;		/* the run being taken */
	uint64_t	 pos;		/* next page of the sequence to look at */
	uint64_t	 taken;		/* pages taken from the run */
	size_t		 file;		/* the file of fd, if file_ok */
	int		 fd;
	bool		 file_ok;
	uint64_t	 passed;	/* zero/same pages passed over */
	uint64_t	 unreadable;	/* files that failed open or read */
};

struct stats {
	uint64_t	 pages, zero, same, dup, incompressible;
	uint64_t	 lz4_bytes, zstd_bytes;	/* of the data pages */
	int		 level;
};

/* A data page seen before: its hash, number + 1 (0: free slot), sizes. */
struct seen {
	uint64_t	 hash;
	uint32_t	 page;
	uint16_t	 lz4, zstd;
};

static const char *created;	/* the output, removed if we fail */

static void fatalx(int, const char *, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void
fatalx(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("make-corpus: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (created != NULL)
		unlink(created);
	exit(status);
}

static void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		fatalx(1, "out of memory");
	if ((p = realloc(p, n * size)) == NULL && n * size != 0)
		fatalx(1, "out of memory");
	return p;
}

/* --- seeded numbers ------------------------------------------------------ */

/* splitmix64's finaliser: a counter through it is a good random stream. */
static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t
rng_init(uint64_t seed, uint64_t key)
{
	return mix64(seed ^ mix64(key));
}

static uint64_t
rng_next(uint64_t *state)
{
	return mix64(*state += GOLDEN);
}

/* Uniform in [0, bound). */
static uint64_t
rng_below(uint64_t *state, uint64_t bound)
{
	return (uint64_t)(((unsigned __int128)rng_next(state) * bound) >> 64);
}

/* --- the page kinds ------------------------------------------------------ */

/*
 * kinds[i] for every page: the counts are the requested percentages of
 * the pages, rounded cumulatively so they add up, dealt out in order and
 * shuffled by the seed.
 */
static uint8_t *
kinds_make(const struct options *o, uint64_t count[NR_KINDS])
{
	uint64_t state = rng_init(o->seed, KEY_KINDS), bound, prev = 0, i;
	uint64_t dups = (uint64_t)((double)o->pages * o->dup_pct / 100 + 0.5);
	double pct = 0;
	uint8_t *kinds, x;
	int k;

	kinds = xreallocarray(NULL, o->pages, 1);
	for (k = 0; k < NR_KINDS; k++) {
		if (k < KIND_FILE) {
			pct += o->pct[k];
			bound = (uint64_t)((double)o->pages * pct / 100 +
			    0.5);
			if (bound > o->pages)
				bound = o->pages;
		} else if (k == KIND_FILE)
			bound = o->pages - (dups < o->pages - prev ? dups :
			    o->pages - prev);
		else
			bound = o->pages;
		count[k] = bound - prev;
		memset(kinds + prev, k, count[k]);
		prev = bound;
	}
	for (i = o->pages; i > 1; i--) {
		uint64_t j = rng_below(&state, i);

		x = kinds[i - 1];
		kinds[i - 1] = kinds[j];
		kinds[j] = x;
	}
	return kinds;
}

/* --- the file tree ------------------------------------------------------- */

static bool
is_root(const char *path)
{
	size_t i;

	for (i = 0; i < NR_ROOTS; i++)
		if (strcmp(path, roots[i].dir) == 0)
			return true;
	return false;
}

static void
tree_add_file(struct tree *t, const char *path, uint64_t pages)
{
	size_t len = strlen(path) + 1;

	if (t->nr_files == t->files_cap) {
		t->files_cap = t->files_cap ? t->files_cap * 2 : 4096;
		t->files = xreallocarray(t->files, t->files_cap,
		    sizeof(*t->files));
	}
	if (t->names_len + len > t->names_cap) {
		while (t->names_len + len > t->names_cap)
			t->names_cap = t->names_cap ? t->names_cap * 2 :
			    1u << 20;
		t->names = xreallocarray(t->names, t->names_cap, 1);
	}
	memcpy(t->names + t->names_len, path, len);
	t->files[t->nr_files].first = t->pages;
	t->files[t->nr_files].name = t->names_len;
	t->nr_files++;
	t->names_len += len;
	t->pages += pages;
}

/* Only the size is looked at here: reading the pages is for later. */
static void
tree_walk(struct tree *t, struct root *r, const char *dir, int depth)
{
	struct dirent **ents;
	char path[PATH_MAX];
	struct stat st;
	int n, i;

	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0)
		return;			/* unreadable: not a source */
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir,
		    ents[i]->d_name) < (int)sizeof(path) &&
		    lstat(path, &st) == 0) {
			if (S_ISREG(st.st_mode) && st.st_size >= PAGE &&
			    access(path, R_OK) == 0) {
				tree_add_file(t, path,
				    (uint64_t)st.st_size / PAGE);
				r->files++;
			} else if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH &&
			    !is_root(path))
				tree_walk(t, r, path, depth + 1);
		}
		free(ents[i]);
	}
	free(ents);
}

static void
tree_build(struct tree *t)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < NR_ROOTS; i++) {
		roots[i].first = t->pages;
		tree_walk(t, &roots[i], roots[i].dir, 0);
		roots[i].pages = t->pages - roots[i].first;
	}
}

/* The file that holds page v of the sequence. */
static size_t
tree_find(const struct tree *t, uint64_t v)
{
	size_t lo = 0, hi = t->nr_files, mid;

	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (t->files[mid].first <= v)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static void
tree_free(struct tree *t)
{
	free(t->files);
	free(t->names);
}

/* --- which file pages ---------------------------------------------------- */

static void
plan_add(struct plan *p, uint64_t start, uint64_t len)
{
	if (p->nr_runs == p->runs_cap) {
		p->runs_cap = p->runs_cap ? p->runs_cap * 2 : 1024;
		p->runs = xreallocarray(p->runs, p->runs_cap,
		    sizeof(*p->runs));
	}
	p->runs[p->nr_runs].start = start;
	p->runs[p->nr_runs].len = len;
	p->nr_runs++;
}

/*
 * The quota of a root as runs of RUN_PAGES (the last one shorter).  Run b
 * owns the stretch from b * RUN_PAGES * pages / quota to where run b + 1's
 * begins, at least RUN_PAGES pages since quota <= pages, and starts at a
 * seeded place that keeps it inside.
 */
static void
plan_root(struct plan *p, const struct root *r, uint64_t *state)
{
	uint64_t b, nr_runs, start, next, len, gap;

	if (r->quota == 0)
		return;
	nr_runs = (r->quota + RUN_PAGES - 1) / RUN_PAGES;
	for (b = 0; b < nr_runs; b++) {
		start = (uint64_t)((unsigned __int128)b * RUN_PAGES *
		    r->pages / r->quota);
		next = b + 1 < nr_runs ? (uint64_t)((unsigned __int128)
		    (b + 1) * RUN_PAGES * r->pages / r->quota) : r->pages;
		len = r->quota - b * RUN_PAGES;
		if (len > RUN_PAGES)
			len = RUN_PAGES;
		gap = next - start - len;
		plan_add(p, r->first + start + rng_below(state, gap + 1), len);
	}
}

/*
 * want file pages from the tree: the roots' quotas, then the runs, in an
 * order shuffled by the seed.
 */
static void
plan_make(struct plan *p, const struct tree *t, uint64_t want,
    uint64_t seed)
{
	uint64_t state = rng_init(seed, KEY_RUNS), left = want, q, k, len;
	unsigned int shares_left = 0;
	struct run x;
	size_t i, j;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < NR_ROOTS; i++)
		shares_left += roots[i].share;
	for (i = 0; i < NR_ROOTS; i++) {
		q = i == NR_ROOTS - 1 ? left : (uint64_t)((unsigned __int128)
		    left * roots[i].share / shares_left);
		roots[i].quota = q < roots[i].pages ? q : roots[i].pages;
		left -= roots[i].quota;
		shares_left -= roots[i].share;
	}
	/* The last roots were short: whoever has pages to spare. */
	for (i = 0; i < NR_ROOTS && left > 0; i++) {
		q = roots[i].pages - roots[i].quota;
		q = q < left ? q : left;
		roots[i].quota += q;
		left -= q;
	}
	if (left == 0) {
		for (i = 0; i < NR_ROOTS; i++)
			plan_root(p, &roots[i], &state);
	} else {
		fprintf(stderr, "make-corpus: only %" PRIu64 " file pages "
		    "under the roots for %" PRIu64 " wanted: pages are used "
		    "more than once\n", t->pages, want);
		for (k = 0; k < want; k += len) {
			len = want - k < RUN_PAGES ? want - k : RUN_PAGES;
			if (len > t->pages - k % t->pages)
				len = t->pages - k % t->pages;
			plan_add(p, k % t->pages, len);
		}
	}
	for (i = p->nr_runs; i > 1; i--) {
		j = (size_t)rng_below(&state, i);
		x = p->runs[i - 1];
		p->runs[i - 1] = p->runs[j];
		p->runs[j] = x;
	}
}

/* --- making the pages ---------------------------------------------------- */

/* All 8-byte words alike: a zero or a same-filled page. */
static bool
page_uniform(const uint64_t *w)
{
	size_t i;

	for (i = 1; i < PAGE_WORDS; i++)
		if (w[i] != w[0])
			return false;
	return true;
}

static bool
read_page(int fd, uint8_t *buf, off_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < PAGE) {
		n = pread(fd, buf + done, PAGE - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

/* Page v of the sequence into buf; false if its file cannot give it. */
static bool
producer_read(struct producer *pr, uint64_t v, uint8_t *buf)
{
	const struct tree *t = pr->tree;
	size_t f = tree_find(t, v);

	if (!pr->file_ok || f != pr->file) {
		if (pr->fd >= 0)
			close(pr->fd);
		pr->file = f;
		pr->fd = open(t->names + t->files[f].name,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		pr->file_ok = pr->fd >= 0;
		if (!pr->file_ok)
			return false;
	}
	return read_page(pr->fd, buf, (off_t)(v - t->files[f].first) * PAGE);
}

/* The next file page of the plan into buf.  0 or -EIO. */
static int
producer_next(struct producer *pr, uint8_t *buf)
{
	const struct tree *t = pr->tree;
	const struct plan *p = pr->plan;
	unsigned int passed = 0;
	size_t failed = 0, next;
	uint64_t v;

	while (pr->run < p->nr_runs && pr->taken == p->runs[pr->run].len) {
		pr->run++;
		pr->taken = 0;
		if (pr->run < p->nr_runs)
			pr->pos = p->runs[pr->run].start;
	}
	if (pr->run == p->nr_runs)
		return -EIO;		/* more pages than planned: a bug */
	for (;;) {
		v = pr->pos;
		pr->pos = v + 1 < t->pages ? v + 1 : 0;
		if (!producer_read(pr, v, buf)) {
			/* Changed since the walk: go on after it. */
			pr->unreadable++;
			if (++failed > t->nr_files)
				return -EIO;
			next = pr->file + 1;
			pr->pos = next < t->nr_files ? t->files[next].first : 0;
			pr->file_ok = false;
			continue;
		}
		if (page_uniform((const uint64_t *)buf) &&
		    passed < SKIP_MAX) {
			passed++;
			pr->passed++;
			continue;
		}
		pr->taken++;
		return 0;
	}
}

/* Page i of kind k, other than a file page. */
static void
page_fill(uint8_t *buf, enum kind k, uint64_t seed, uint64_t i)
{
	uint64_t *w = (uint64_t *)buf, x, base;
	size_t j;

	switch (k) {
	case KIND_ZERO:
		memset(buf, 0, PAGE);
		break;
	case KIND_SAME:
		base = rng_init(seed, KEY_SAME) + i * GOLDEN;
		while ((x = mix64(base)) == 0)
			base += GOLDEN;
		for (j = 0; j < PAGE_WORDS; j++)
			w[j] = x;
		break;
	case KIND_RANDOM:
		/* Word j of page i: counter i * 512 + j of the stream. */
		base = rng_init(seed, KEY_RANDOM) + i * PAGE_WORDS * GOLDEN;
		for (j = 0; j < PAGE_WORDS; j++)
			w[j] = mix64(base + j * GOLDEN);
		break;
	default:
		abort();
	}
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Duplicate page i: a copy of the random or file page at or before a
 * seeded place before it, from buf (holding pages first .. i - 1) or
 * from the file written so far; a random page if there is none.
 */
static void
page_dup(const struct options *o, const uint8_t *kinds, uint64_t i,
    uint64_t first, uint8_t *buf, int fd)
{
	uint64_t state = rng_init(o->seed, KEY_DUP) + i * GOLDEN, j;
	ssize_t n;

	j = i > 0 ? rng_below(&state, i) + 1 : 0;
	while (j > 0 && kinds[j - 1] != KIND_RANDOM &&
	    kinds[j - 1] != KIND_FILE)
		j--;
	if (j == 0) {
		page_fill(buf + (i - first) * PAGE, KIND_RANDOM, o->seed, i);
		return;
	}
	j--;
	if (j >= first) {
		memcpy(buf + (i - first) * PAGE, buf + (j - first) * PAGE,
		    PAGE);
		return;
	}
	n = pread(fd, buf + (i - first) * PAGE, PAGE, (off_t)(j * PAGE));
	if (n != PAGE)
		fatalx(1, "%s: reading page %" PRIu64 " back: %s", o->output,
		    j, n < 0 ? strerror(errno) : "short read");
}

static void
corpus_write(const struct options *o, const uint8_t *kinds,
    struct producer *pr, int fd)
{
	uint64_t i, j, n;
	uint8_t *buf;
	int error;

	buf = xreallocarray(NULL, CHUNK_PAGES, PAGE);
	for (i = 0; i < o->pages; i += n) {
		n = o->pages - i < CHUNK_PAGES ? o->pages - i : CHUNK_PAGES;
		for (j = 0; j < n; j++) {
			if (kinds[i + j] == KIND_DUP)
				page_dup(o, kinds, i + j, i, buf, fd);
			else if (kinds[i + j] != KIND_FILE)
				page_fill(buf + j * PAGE, kinds[i + j], o->seed,
				    i + j);
			else if (producer_next(pr, buf + j * PAGE) != 0)
				fatalx(1, "cannot read the files' pages any "
				    "more (%" PRIu64 " unreadable)",
				    pr->unreadable);
		}
		if ((error = write_all(fd, buf, n * PAGE)) != 0)
			fatalx(1, "%s: %s", o->output, strerror(-error));
	}
	free(buf);
}

/* --- statistics ---------------------------------------------------------- */

static uint64_t
page_hash(const uint64_t *w)
{
	uint64_t h[4] = { 1, 2, 3, 4 };
	size_t i, j;

	/* Four independent lanes: the multiplies overlap. */
	for (i = 0; i < PAGE_WORDS; i += 4)
		for (j = 0; j < 4; j++) {
			h[j] = (h[j] ^ w[i + j]) * 0xff51afd7ed558ccdull;
			h[j] ^= h[j] >> 32;
		}
	return mix64(h[0] ^ mix64(h[1] ^ mix64(h[2] ^ mix64(h[3]))));
}

static void
stats_compute(const uint8_t *map, uint64_t pages, int level,
    struct stats *s)
{
	struct seen *table, *e;
	ZSTD_CCtx *cctx;
	uint64_t i, h, size = 1024;
	const uint64_t *w;
	char dst[PAGE];
	size_t z;
	int n;

	memset(s, 0, sizeof(*s));
	s->pages = pages;
	s->level = level;
	while (size < 2 * pages)
		size *= 2;
	if ((table = calloc(size, sizeof(*table))) == NULL ||
	    (cctx = ZSTD_createCCtx()) == NULL)
		fatalx(1, "out of memory");
	for (i = 0; i < pages; i++) {
		w = (const uint64_t *)(map + i * PAGE);
		if (page_uniform(w)) {
			if (w[0] == 0)
				s->zero++;
			else
				s->same++;
			continue;
		}
		h = page_hash(w);
		for (e = &table[h & (size - 1)]; e->page != 0;
		    e = &table[(size_t)(e - table + 1) & (size - 1)])
			if (e->hash == h && memcmp(map + (uint64_t)(e->page -
			    1) * PAGE, w, PAGE) == 0)
				break;
		if (e->page != 0)
			s->dup++;
		else {
			n = LZ4_compress_default((const char *)w, dst, PAGE,
			    PAGE - 1);
			z = ZSTD_compressCCtx(cctx, dst, PAGE - 1, w, PAGE,
			    level);
			e->hash = h;
			e->page = (uint32_t)(i + 1);
			e->lz4 = n > 0 ? (uint16_t)n : PAGE;
			e->zstd = ZSTD_isError(z) ? PAGE : (uint16_t)z;
		}
		if (e->lz4 == PAGE)
			s->incompressible++;
		s->lz4_bytes += e->lz4;
		s->zstd_bytes += e->zstd;
	}
	ZSTD_freeCCtx(cctx);
	free(table);
}

/* The statistics of the corpus open on fd. */
static void
stats_file(int fd, const char *path, int level, struct stats *s)
{
	struct stat st;
	void *map;

	if (fstat(fd, &st) != 0)
		fatalx(1, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size == 0 ||
	    st.st_size % PAGE != 0)
		fatalx(1, "%s: not a corpus: %jd bytes, not a whole number "
		    "of 4 KiB pages", path, (intmax_t)st.st_size);
	if ((uint64_t)st.st_size / PAGE > MAX_PAGES)
		fatalx(1, "%s: more than %" PRIu32 " pages", path, MAX_PAGES);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		fatalx(1, "%s: mmap: %s", path, strerror(errno));
	stats_compute(map, (uint64_t)st.st_size / PAGE, level, s);
	munmap(map, (size_t)st.st_size);
}

static double
pct_of(uint64_t n, uint64_t total)
{
	return 100.0 * (double)n / (double)total;
}

/* raw / compressed as text; empty when nothing was compressed. */
static const char *
ratio(char *buf, size_t size, uint64_t raw, uint64_t compressed)
{
	if (compressed == 0)
		buf[0] = '\0';
	else
		snprintf(buf, size, "%.3f", (double)raw / (double)compressed);
	return buf;
}

static void
stats_print(const struct stats *s, bool csv)
{
	uint64_t data = s->pages - s->zero - s->same;
	uint64_t data_bytes = data * PAGE, all_bytes = s->pages * PAGE;
	char r[4][32], zl[2][32];

	ratio(r[0], sizeof(r[0]), data_bytes, s->lz4_bytes);
	ratio(r[1], sizeof(r[1]), data_bytes, s->zstd_bytes);
	ratio(r[2], sizeof(r[2]), all_bytes, s->lz4_bytes);
	ratio(r[3], sizeof(r[3]), all_bytes, s->zstd_bytes);
	if (csv) {
		printf("pages,mib,zero_pct,same_pct,dup_pct,"
		    "incompressible_pct,lz4_ratio_data,zstd_ratio_data,"
		    "lz4_ratio_all,zstd_ratio_all,zstd_level,zero_pages,"
		    "same_pages,dup_pages,incompressible_pages,lz4_bytes,"
		    "zstd_bytes\n");
		printf("%" PRIu64 ",%.1f,%.2f,%.2f,%.2f,%.2f,%s,%s,%s,%s,%d,"
		    "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		    ",%" PRIu64 "\n", s->pages, (double)all_bytes / MIB,
		    pct_of(s->zero, s->pages), pct_of(s->same, s->pages),
		    pct_of(s->dup, s->pages),
		    pct_of(s->incompressible, s->pages), r[0], r[1], r[2],
		    r[3], s->level, s->zero, s->same, s->dup,
		    s->incompressible, s->lz4_bytes, s->zstd_bytes);
		return;
	}
	snprintf(zl[0], sizeof(zl[0]), "zstd-%d ratio, data", s->level);
	snprintf(zl[1], sizeof(zl[1]), "zstd-%d ratio, all", s->level);
	printf("%-20s %" PRIu64 " (%.1f MiB)\n", "pages", s->pages,
	    (double)all_bytes / MIB);
	printf("%-20s %6.2f%%  %s\n", "zero", pct_of(s->zero, s->pages),
	    "all bytes 0");
	printf("%-20s %6.2f%%  %s\n", "same-filled",
	    pct_of(s->same, s->pages), "one non-zero 8-byte word repeated");
	printf("%-20s %6.2f%%  %s\n", "data", pct_of(data, s->pages),
	    "neither: the pages that get compressed");
	printf("%-20s %6.2f%%  %s\n", "duplicate", pct_of(s->dup, s->pages),
	    "data page with the bytes of an earlier one");
	printf("%-20s %6.2f%%  %s\n", "incompressible",
	    pct_of(s->incompressible, s->pages), "lz4 output >= 4096 bytes");
	printf("%-20s %7s  %s\n", "lz4 ratio, data", *r[0] ? r[0] : "n/a",
	    "data bytes / compressed (incompressible: 4096)");
	printf("%-20s %7s\n", zl[0], *r[1] ? r[1] : "n/a");
	printf("%-20s %7s  %s\n", "lz4 ratio, all", *r[2] ? r[2] : "n/a",
	    "all bytes / compressed (zero, same-filled: 0)");
	printf("%-20s %7s\n", zl[1], *r[3] ? r[3] : "n/a");
}

/* --- options ------------------------------------------------------------- */

static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: make-corpus [-n PAGES | -s SIZE] [-z ZERO%%] [-f SAME%%] "
	    "[-r RANDOM%%]\n"
	    "                   [-d DUP%%] [-S SEED] [-l LEVEL] [-v] [--csv] "
	    "-o FILE\n"
	    "       make-corpus [-l LEVEL] [--csv] --stats FILE\n"
	    "  -n, --pages N      4 KiB pages in the corpus (65536)\n"
	    "  -s, --size SIZE    or its size: bytes, or with K, M, G, T; "
	    "a multiple of 4096\n"
	    "  -z, --zero PCT     all-zero pages (15)\n"
	    "  -f, --same PCT     same-filled pages (5)\n"
	    "  -r, --random PCT   random, incompressible pages (5); the rest "
	    "are file pages\n"
	    "  -d, --dup PCT      copies of earlier random or file pages, "
	    "taken from the\n"
	    "                     file pages' share (0)\n"
	    "  -S, --seed N       seed of the kinds, their order and contents "
	    "(1)\n"
	    "  -l, --level N      zstd level of the statistics (3)\n"
	    "  -o, --output FILE  the corpus to write\n"
	    "  -v, --verbose      where the file pages came from, on stderr\n"
	    "  -c, --csv          statistics as a CSV header and row\n"
	    "      --stats FILE   only the statistics of an existing corpus\n");
	exit(status);
}

static uint64_t
parse_pages(const char *s)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '-' || end == s || *end != '\0' || errno != 0 || v < 1 ||
	    v > MAX_PAGES)
		fatalx(2, "-n: %s is not a page count 1-%" PRIu32, s,
		    MAX_PAGES);
	return v;
}

/* Bytes with an optional K, M, G or T (powers of 1024), in pages. */
static uint64_t
parse_size(const char *s)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' && end[1] == '\0')
		switch (*end++) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		case 't': case 'T': shift = 40; break;
		default: end--;
		}
	if (*s == '-' || end == s || *end != '\0' || errno != 0 ||
	    v > (UINT64_MAX >> shift))
		fatalx(2, "-s: %s is not a size (bytes, or with K, M, G, T)",
		    s);
	v <<= shift;
	if (v == 0 || v % PAGE != 0)
		fatalx(2, "-s: %s is not a positive multiple of 4096 bytes",
		    s);
	if (v / PAGE > MAX_PAGES)
		fatalx(2, "-s: %s is more than %" PRIu32 " pages", s,
		    MAX_PAGES);
	return v / PAGE;
}

static double
parse_pct(const char *s, char opt)
{
	char *end;
	double v;

	v = strtod(s, &end);
	if (end == s || *end != '\0' || !(v >= 0 && v <= 100))
		fatalx(2, "-%c: %s is not a percentage 0-100", opt, s);
	return v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_STATS = 256 };
	static const struct option longopts[] = {
		{ "pages", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "zero", required_argument, NULL, 'z' },
		{ "same", required_argument, NULL, 'f' },
		{ "random", required_argument, NULL, 'r' },
		{ "dup", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'S' },
		{ "level", required_argument, NULL, 'l' },
		{ "output", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "csv", no_argument, NULL, 'c' },
		{ "stats", required_argument, NULL, OPT_STATS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool pages = false, size = false, making = false;
	unsigned long long seed;
	char *end;
	long level;
	int c;

	memset(o, 0, sizeof(*o));
	o->pages = 65536;
	o->pct[KIND_ZERO] = 15;
	o->pct[KIND_SAME] = 5;
	o->pct[KIND_RANDOM] = 5;
	o->seed = 1;
	o->level = 3;
	while ((c = getopt_long(argc, argv, "n:s:z:f:r:d:S:l:o:vch", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'n':
			o->pages = parse_pages(optarg);
			pages = making = true;
			break;
		case 's':
			o->pages = parse_size(optarg);
			size = making = true;
			break;
		case 'z':
			o->pct[KIND_ZERO] = parse_pct(optarg, 'z');
			making = true;
			break;
		case 'f':
			o->pct[KIND_SAME] = parse_pct(optarg, 'f');
			making = true;
			break;
		case 'r':
			o->pct[KIND_RANDOM] = parse_pct(optarg, 'r');
			making = true;
			break;
		case 'd':
			o->dup_pct = parse_pct(optarg, 'd');
			making = true;
			break;
		case 'S':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (*optarg == '-' || end == optarg || *end != '\0' ||
			    errno != 0)
				fatalx(2, "-S: %s is not a seed (0 to 2^64-1)",
				    optarg);
			o->seed = seed;
			making = true;
			break;
		case 'l':
			errno = 0;
			level = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || errno != 0 ||
			    level < ZSTD_minCLevel() ||
			    level > ZSTD_maxCLevel())
				fatalx(2, "-l: %s is not a zstd level %d-%d",
				    optarg, ZSTD_minCLevel(),
				    ZSTD_maxCLevel());
			o->level = (int)level;
			break;
		case 'o':
			o->output = optarg;
			making = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'c':
			o->csv = true;
			break;
		case OPT_STATS:
			o->stats = optarg;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "make-corpus: unexpected argument %s\n",
		    argv[optind]);
		usage(2);
	}
	if (o->stats != NULL) {
		if (making)
			fatalx(2, "--stats reads a corpus: no -n, -s, -z, -f, "
			    "-r, -d, -S or -o with it");
		return;
	}
	if (pages && size)
		fatalx(2, "-n and -s both give the size: one of them");
	if (o->output == NULL) {
		fprintf(stderr, "make-corpus: -o FILE is needed\n");
		usage(2);
	}
	/* A little slack for decimal fractions that add up to 100. */
	if (o->pct[KIND_ZERO] + o->pct[KIND_SAME] + o->pct[KIND_RANDOM] >
	    100 + 1e-9)
		fatalx(2, "-z %g + -f %g + -r %g is over 100%%",
		    o->pct[KIND_ZERO], o->pct[KIND_SAME], o->pct[KIND_RANDOM]);
	if (o->pct[KIND_ZERO] + o->pct[KIND_SAME] + o->pct[KIND_RANDOM] +
	    o->dup_pct > 100 + 1e-9)
		fatalx(2, "-z %g + -f %g + -r %g + -d %g is over 100%%",
		    o->pct[KIND_ZERO], o->pct[KIND_SAME], o->pct[KIND_RANDOM],
		    o->dup_pct);
}

/* --- main ---------------------------------------------------------------- */

static void
print_sources(const struct producer *pr)
{
	size_t i;

	for (i = 0; i < NR_ROOTS; i++)
		fprintf(stderr, "make-corpus: %-15s %3u%% asked, %7" PRIu64
		    " pages taken of %8" PRIu64 " in %6" PRIu64 " files\n",
		    roots[i].dir, roots[i].share, roots[i].quota,
		    roots[i].pages, roots[i].files);
	fprintf(stderr, "make-corpus: %zu runs; %" PRIu64 " zero or "
	    "same-filled file pages passed over, %" PRIu64 " unreadable "
	    "files\n", pr->plan->nr_runs, pr->passed, pr->unreadable);
}

int
main(int argc, char **argv)
{
	uint64_t count[NR_KINDS];
	struct producer pr;
	struct options o;
	struct stats s;
	struct plan plan;
	struct tree tree;
	struct stat st;
	uint8_t *kinds;
	int fd;

	parse_options(argc, argv, &o);
	if (o.stats != NULL) {
		if ((fd = open(o.stats, O_RDONLY | O_CLOEXEC)) < 0)
			fatalx(1, "%s: %s", o.stats, strerror(errno));
		stats_file(fd, o.stats, o.level, &s);
		close(fd);
		stats_print(&s, o.csv);
		return 0;
	}

	/*
	 * First, so that an output we cannot write fails at once.  Only a
	 * regular file: its statistics are read back through mmap, and a
	 * failure removes it (never /dev/full).
	 */
	fd = open(o.output, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		fatalx(1, "%s: %s", o.output, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		fatalx(1, "%s: not a regular file", o.output);
	created = o.output;
	if (ftruncate(fd, 0) != 0)
		fatalx(1, "%s: %s", o.output, strerror(errno));

	kinds = kinds_make(&o, count);
	memset(&tree, 0, sizeof(tree));
	memset(&plan, 0, sizeof(plan));
	if (count[KIND_FILE] > 0) {
		tree_build(&tree);
		if (tree.pages == 0)
			fatalx(1, "no readable file of 4 KiB or more under "
			    "/usr for the %" PRIu64 " file pages",
			    count[KIND_FILE]);
		plan_make(&plan, &tree, count[KIND_FILE], o.seed);
	}
	memset(&pr, 0, sizeof(pr));
	pr.tree = &tree;
	pr.plan = &plan;
	pr.fd = -1;
	if (plan.nr_runs > 0)
		pr.pos = plan.runs[0].start;
	corpus_write(&o, kinds, &pr, fd);
	if (pr.fd >= 0)
		close(pr.fd);
	if (o.verbose && count[KIND_FILE] > 0)
		print_sources(&pr);
	free(kinds);
	free(plan.runs);
	tree_free(&tree);

	stats_file(fd, o.output, o.level, &s);
	if (close(fd) != 0)
		fatalx(1, "%s: %s", o.output, strerror(errno));
	created = NULL;
	stats_print(&s, o.csv);
	return 0;
}
