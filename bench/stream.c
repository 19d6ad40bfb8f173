/*
 * stream.c - the page stream: 4 KiB pages of the machine's own files,
 * compressed with lz4.
 *
 * Files are read whole pages at a time (a file's last partial page is
 * left out), directory by directory in byte order of the names, symbolic
 * links not followed, so the same machine gives the same stream.  Each
 * root supplies its share of the stored bytes; what a root cannot supply
 * goes to the roots after it, and /usr/lib, last, has far more than
 * enough.  All-zero pages are counted and left out (zsd stores them
 * without an object); pages lz4 cannot shrink below 4096 bytes are kept
 * whole.
 *
 * The result goes into a memfd laid out as struct stream_hdr, off[],
 * len[], then the bytes, and is mapped read-only.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define STREAM_MAGIC	0x7a732d62656e6368ull	/* "zs-bench" */
#define MAX_DEPTH	8

struct stream_hdr {
	uint64_t	magic;
	uint64_t	nr_pages, stored, raw_pages, zero_pages, files;
};

/* Where the pages come from: binaries, libraries, documentation, data. */
static struct root {
	const char	*dir;
	unsigned int	 share;		/* percent of the stored bytes */
	uint64_t	 pages, stored;	/* what it gave */
} roots[] = {
	{ "/usr/bin",		30, 0, 0 },
	{ "/usr/sbin",		 5, 0, 0 },
	{ "/usr/libexec",	 5, 0, 0 },
	{ "/usr/share/doc",	10, 0, 0 },
	{ "/usr/share",		15, 0, 0 },	/* doc excluded: a root */
	{ "/usr/lib",		35, 0, 0 },
};
#define NR_ROOTS	(sizeof(roots) / sizeof(roots[0]))

/* The stream while it is built, in ordinary memory. */
struct builder {
	uint8_t		*bytes;
	uint32_t	*off, *len;
	size_t		 bytes_cap, pages_cap;
	uint64_t	 nr_pages, stored, raw_pages, zero_pages, files;
	uint64_t	 limit;		/* stop once stored reaches it */
};

static bool
is_root(const char *path)
{
	size_t i;

	for (i = 0; i < NR_ROOTS; i++)
		if (strcmp(path, roots[i].dir) == 0)
			return true;
	return false;
}

static bool
all_zero(const uint8_t *p)
{
	size_t i;

	for (i = 0; i < BENCH_PAGE; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static int
builder_grow(struct builder *b)
{
	void *p;

	if (b->stored + BENCH_PAGE > b->bytes_cap) {
		b->bytes_cap = b->bytes_cap ? b->bytes_cap * 2 : 64u << 20;
		if ((p = realloc(b->bytes, b->bytes_cap)) == NULL)
			return -ENOMEM;
		b->bytes = p;
	}
	if (b->nr_pages == b->pages_cap) {
		b->pages_cap = b->pages_cap ? b->pages_cap * 2 : 1u << 16;
		if ((p = realloc(b->off, b->pages_cap * sizeof(*b->off))) ==
		    NULL)
			return -ENOMEM;
		b->off = p;
		if ((p = realloc(b->len, b->pages_cap * sizeof(*b->len))) ==
		    NULL)
			return -ENOMEM;
		b->len = p;
	}
	return 0;
}

static int
builder_add_page(struct builder *b, const uint8_t *page)
{
	int n, error;

	if (all_zero(page)) {
		b->zero_pages++;
		return 0;
	}
	if ((error = builder_grow(b)) != 0)
		return error;
	n = LZ4_compress_default((const char *)page,
	    (char *)b->bytes + b->stored, BENCH_PAGE, BENCH_PAGE - 1);
	if (n <= 0) {			/* did not fit in 4095 bytes */
		memcpy(b->bytes + b->stored, page, BENCH_PAGE);
		n = BENCH_PAGE;
		b->raw_pages++;
	}
	b->off[b->nr_pages] = (uint32_t)b->stored;
	b->len[b->nr_pages] = (uint32_t)n;
	b->stored += (uint64_t)n;
	b->nr_pages++;
	return 0;
}

static int
builder_add_file(struct builder *b, const char *path)
{
	uint8_t page[BENCH_PAGE];
	uint64_t before = b->nr_pages;
	int fd, error = 0;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)) < 0)
		return 0;		/* unreadable: not part of the stream */
	while (error == 0 && b->stored < b->limit &&
	    read(fd, page, BENCH_PAGE) == BENCH_PAGE)
		error = builder_add_page(b, page);
	close(fd);
	if (b->nr_pages > before)
		b->files++;
	return error;
}

static int
builder_add_tree(struct builder *b, const char *dir, int depth)
{
	struct dirent **ents;
	char path[4096];
	struct stat st;
	int n, i, error = 0;

	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (error == 0 && b->stored < b->limit &&
		    ents[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir,
		    ents[i]->d_name) < (int)sizeof(path) &&
		    lstat(path, &st) == 0) {
			if (S_ISREG(st.st_mode))
				error = builder_add_file(b, path);
			else if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH &&
			    !is_root(path))
				error = builder_add_tree(b, path, depth + 1);
		}
		free(ents[i]);
	}
	free(ents);
	return error;
}

static void
builder_free(struct builder *b)
{
	free(b->bytes);
	free(b->off);
	free(b->len);
}

static int
stream_map(struct stream *s, int fd)
{
	const struct stream_hdr *hdr;
	struct stat st;
	size_t tables;

	if (fstat(fd, &st) != 0)
		return -errno;
	if ((size_t)st.st_size < sizeof(*hdr))
		return -EINVAL;
	s->map_len = (size_t)st.st_size;
	s->map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, fd, 0);
	if (s->map == MAP_FAILED)
		return -errno;
	hdr = s->map;
	tables = sizeof(*hdr) + 2 * hdr->nr_pages * sizeof(uint32_t);
	if (hdr->magic != STREAM_MAGIC || tables + hdr->stored != s->map_len) {
		munmap(s->map, s->map_len);
		return -EINVAL;
	}
	s->fd = fd;
	s->nr_pages = hdr->nr_pages;
	s->stored = hdr->stored;
	s->raw_pages = hdr->raw_pages;
	s->zero_pages = hdr->zero_pages;
	s->files = hdr->files;
	s->off = (const uint32_t *)(hdr + 1);
	s->len = s->off + s->nr_pages;
	s->bytes = (const uint8_t *)s->map + tables;
	return 0;
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

/* Build a stream of about want_bytes stored bytes.  0 or -errno. */
int
stream_build(struct stream *s, uint64_t want_bytes)
{
	struct builder b;
	struct stream_hdr hdr;
	unsigned int i, shares_left = 0;
	int fd, error = 0;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < NR_ROOTS; i++)
		shares_left += roots[i].share;
	for (i = 0; i < NR_ROOTS && error == 0 && b.stored < want_bytes;
	    i++) {
		uint64_t pages = b.nr_pages, stored = b.stored;

		b.limit = b.stored + (want_bytes - b.stored) * roots[i].share /
		    shares_left;
		if (i == NR_ROOTS - 1)
			b.limit = want_bytes;
		shares_left -= roots[i].share;
		error = builder_add_tree(&b, roots[i].dir, 0);
		roots[i].pages = b.nr_pages - pages;
		roots[i].stored = b.stored - stored;
	}
	if (error == 0 && b.nr_pages == 0)
		error = -ENOENT;
	if (error != 0)
		goto out;

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = STREAM_MAGIC;
	hdr.nr_pages = b.nr_pages;
	hdr.stored = b.stored;
	hdr.raw_pages = b.raw_pages;
	hdr.zero_pages = b.zero_pages;
	hdr.files = b.files;
	/* Not close-on-exec: the preloaded children map it too. */
	if ((fd = memfd_create("zs-bench-stream", 0)) < 0) {
		error = -errno;
		goto out;
	}
	if ((error = write_all(fd, &hdr, sizeof(hdr))) != 0 ||
	    (error = write_all(fd, b.off, b.nr_pages * sizeof(*b.off))) != 0 ||
	    (error = write_all(fd, b.len, b.nr_pages * sizeof(*b.len))) != 0 ||
	    (error = write_all(fd, b.bytes, b.stored)) != 0 ||
	    (error = stream_map(s, fd)) != 0)
		close(fd);
out:
	builder_free(&b);
	return error;
}

/* Map the stream a parent built; fd is its memfd. */
int
stream_attach(struct stream *s, int fd)
{
	return stream_map(s, fd);
}

/*
 * Read every page of the mapping, so that it is all in this process's
 * resident set before a baseline is taken.
 */
void
stream_touch(const struct stream *s)
{
	const volatile uint8_t *p = s->map;
	size_t i;
	uint8_t sum = 0;

	for (i = 0; i < s->map_len; i += BENCH_PAGE)
		sum += p[i];
	(void)sum;
}

/* What each root gave, as comment lines. */
void
stream_print_sources(const char *prefix)
{
	size_t i;

	for (i = 0; i < NR_ROOTS; i++)
		printf("%s%-16s %3u%% asked, %8.1f MiB stored from %7" PRIu64
		    " pages\n", prefix, roots[i].dir, roots[i].share,
		    (double)roots[i].stored / 1048576, roots[i].pages);
}
