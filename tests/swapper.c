/*
 * swapper.c - fill anonymous memory with known pages and check every byte
 * after the kernel has swapped them out and in.
 *
 *   swapper -m MiB [-s seed] [-w MiB] [-p FILE] [-d N]
 *
 * Meant to run in a memory cgroup smaller than MiB, so that most pages
 * go to swap while it fills them.  Each page's content is a function of
 * the seed and its index alone: 60% text-like (compressible, and headed
 * by its own index and the seed, so no two are alike), 20% zero, 10%
 * filled with one 8-byte word, 10% random.  A page that comes back from
 * swap with another page's content, or stale, or torn, fails the check.
 *
 * With -w, the first test point checks that at least that many MiB of
 * the process were in swap (VmSwap) once the fill was done: without it
 * the checks below could pass having read nothing back from swap.  With
 * -p, it then prints "# filled, waiting for FILE" and waits until FILE
 * exists before it verifies, so that a test can act on the swap meanwhile.
 *
 * With -d N, text and random pages are copies: page idx has the content
 * page idx % N would have (of its own kind), so that the process holds
 * at most 2N distinct pages that are neither zero nor same-filled.
 *
 * Verifies twice: backwards (the first pages written, the likeliest to be
 * in swap, come last) and then in a scattered order.  Output is TAP; the
 * exit status is 0 only if every page was right.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define PAGE	4096u

enum kind { K_TEXT, K_ZERO, K_SAME, K_RANDOM };

static const char *const words[] = {
	"page", "swap", "the", "of", "compressed", "memory", "zsd", "and",
	"kernel", "a", "to", "fuse", "loop", "device", "in", "data",
	"allocator", "is", "slot", "cgroup", "anonymous", "reclaim", "lru",
	"{", "}", "int", "return", "if", "for", "0x", "\n", "\t", ";",
};

static uint64_t	seed = 1;
static uint64_t	copies_of;		/* -d: 0, or N */

static uint64_t
mix(uint64_t x)
{
	/* splitmix64's finaliser: nearby inputs, unrelated outputs */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
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

static enum kind
page_kind(uint64_t idx)
{
	uint64_t r = mix(seed * 0x100000001b3ull ^ idx) % 10;

	if (r < 6)
		return K_TEXT;
	if (r < 8)
		return K_ZERO;
	if (r < 9)
		return K_SAME;
	return K_RANDOM;
}

/* The content page idx must have. */
static void
page_fill(uint8_t *p, uint64_t idx)
{
	const size_t nwords = sizeof(words) / sizeof(words[0]);
	enum kind kind = page_kind(idx);
	uint64_t src = copies_of != 0 ? idx % copies_of : idx;
	uint64_t s = mix(seed ^ mix(src)) | 1, v;
	size_t i, n;
	int len;

	switch (kind) {
	case K_TEXT:
		len = snprintf((char *)p, PAGE, "page %" PRIu64 " seed %"
		    PRIu64 ":", src, seed);
		for (i = (size_t)len; i < PAGE; ) {
			const char *w = words[next_rand(&s) % nwords];

			n = strlen(w);
			if (n > PAGE - i)
				n = PAGE - i;
			memcpy(p + i, w, n);
			i += n;
			if (i < PAGE)
				p[i++] = ' ';
		}
		break;
	case K_ZERO:
		memset(p, 0, PAGE);
		break;
	case K_SAME:
		v = mix(s);
		for (i = 0; i < PAGE; i += sizeof(v))
			memcpy(p + i, &v, sizeof(v));
		break;
	case K_RANDOM:
		for (i = 0; i < PAGE; i += sizeof(v)) {
			v = next_rand(&s);
			memcpy(p + i, &v, sizeof(v));
		}
		break;
	}
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's VmSwap in KiB, or -1: how much of it is in swap now. */
static long
vm_swap_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmSwap: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * Check every page, visiting index order(i) at step i.  Returns the
 * number of bad pages; the first is described in diag lines.
 */
static uint64_t
verify(const uint8_t *mem, uint64_t nr_pages, uint64_t stride,
    const char *what)
{
	uint8_t want[PAGE];
	uint64_t i, idx, bad = 0;
	const uint8_t *p;
	size_t d;

	for (i = 0; i < nr_pages; i++) {
		if (stride == 0)
			idx = nr_pages - 1 - i;
		else
			idx = (i * stride) % nr_pages;
		p = mem + idx * PAGE;
		page_fill(want, idx);
		if (memcmp(p, want, PAGE) == 0)
			continue;
		if (bad++ == 0) {
			for (d = 0; p[d] == want[d]; d++)
				;
			diag("%s: first bad page %" PRIu64 " (kind %d), byte "
			    "%zu: 0x%02x, expected 0x%02x", what, idx,
			    (int)page_kind(idx), d, p[d], want[d]);
		}
	}
	if (bad > 0)
		diag("%s: %" PRIu64 " bad pages of %" PRIu64, what, bad,
		    nr_pages);
	return bad;
}

static uint64_t
gcd(uint64_t a, uint64_t b)
{
	uint64_t t;

	while (b != 0) {
		t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static void
usage(void)
{
	fprintf(stderr, "usage: swapper -m MiB [-s seed] [-w MiB] "
	    "[-p FILE] [-d N]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	uint64_t mib = 0, want_swap_mib = 0, nr_pages, idx, stride, bad;
	uint64_t counts[4] = { 0 };
	uint8_t *mem;
	double t0, t;
	long swapped;
	const char *pause_file = NULL;
	char *end;
	int ch;

	while ((ch = getopt(argc, argv, "d:m:p:s:w:")) != -1) {
		switch (ch) {
		case 'd':
			copies_of = strtoull(optarg, &end, 0);
			if (*end != '\0' || copies_of == 0)
				usage();
			break;
		case 'm':
			mib = strtoull(optarg, &end, 0);
			if (*end != '\0' || mib == 0)
				usage();
			break;
		case 's':
			seed = strtoull(optarg, &end, 0);
			if (*end != '\0')
				usage();
			break;
		case 'p':
			pause_file = optarg;
			break;
		case 'w':
			want_swap_mib = strtoull(optarg, &end, 0);
			if (*end != '\0')
				usage();
			break;
		default:
			usage();
		}
	}
	if (mib == 0 || optind != argc)
		usage();
	tap_watchdog(900);

	nr_pages = mib * 1024 * 1024 / PAGE;
	mem = mmap(NULL, nr_pages * PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		bail("mmap %" PRIu64 " MiB: %s", mib, strerror(errno));
	/* Base pages, so each one is swapped on its own. */
	(void)madvise(mem, nr_pages * PAGE, MADV_NOHUGEPAGE);

	t0 = now();
	for (idx = 0; idx < nr_pages; idx++) {
		page_fill(mem + idx * PAGE, idx);
		counts[page_kind(idx)]++;
	}
	t = now() - t0;
	diag("filled %" PRIu64 " MiB in %.2f s (%" PRIu64 " text, %" PRIu64
	    " zero, %" PRIu64 " same, %" PRIu64 " random pages)", mib, t,
	    counts[K_TEXT], counts[K_ZERO], counts[K_SAME], counts[K_RANDOM]);
	swapped = vm_swap_kib();
	if (want_swap_mib > 0)
		ok(swapped >= 0 && (uint64_t)swapped >= want_swap_mib * 1024,
		    "VmSwap after the fill: %ld KiB (want >= %" PRIu64 " MiB)",
		    swapped, want_swap_mib);
	else
		diag("VmSwap after the fill: %ld KiB", swapped);
	if (pause_file != NULL) {
		diag("filled, waiting for %s", pause_file);
		tap_watchdog(0);
		while (access(pause_file, F_OK) != 0)
			usleep(100 * 1000);
		tap_watchdog(900);
	}

	t0 = now();
	bad = verify(mem, nr_pages, 0, "backwards");
	ok(bad == 0, "verified all %" PRIu64 " pages backwards in %.2f s",
	    nr_pages, now() - t0);
	diag("VmSwap after the first check: %ld KiB", vm_swap_kib());

	/* A stride prime to the page count visits every page once. */
	stride = nr_pages / 3 + 7;
	while (gcd(stride, nr_pages) != 1)
		stride++;
	t0 = now();
	bad = verify(mem, nr_pages, stride, "scattered");
	ok(bad == 0, "verified all %" PRIu64 " pages scattered in %.2f s",
	    nr_pages, now() - t0);

	munmap(mem, nr_pages * PAGE);
	return done_testing();
}
