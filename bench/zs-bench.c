/*
 * zs-bench.c - libzs against general-purpose allocators on a stream of
 * lz4-compressed pages of this machine's own files.
 *
 *   zs-bench [-q] [-b MiB] [-r runs] [-m GiB] [-s seed] [-c]
 *
 * Builds the stream (stream.c), then, -r times over, runs each allocator
 * (allocators.c) through fill / free half / compact in a child process of
 * its own (run.c), then the libzs mobility run (mobility.c), and prints
 * the medians: a text table, or CSV with -c.  The exit status is 1 if any
 * run failed, an allocator merely not available does not count.
 */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MAX_RUNS	15
#define MIB		1048576.0

struct options {
	double		 bytes_mib;	/* stored bytes in the stream */
	unsigned long	 runs;
	double		 mobility_gib;	/* 0: no mobility run */
	uint64_t	 seed;
	bool		 csv;
};

static const char *const basis_names[NR_BASES] = {
	[BASIS_RSS] = "RSS growth",
	[BASIS_USED] = "pool: pages used",
	[BASIS_META] = "pool: pages used + metadata",
	[BASIS_MAPPED] = "pool: pages mapped",
};
static const char *const basis_keys[NR_BASES] = {
	[BASIS_RSS] = "rss", [BASIS_USED] = "used",
	[BASIS_META] = "meta", [BASIS_MAPPED] = "mapped",
};
static const char *const phase_keys[NR_PHASES] = {
	[PHASE_FILL] = "fill", [PHASE_HALF] = "half",
	[PHASE_COMPACT] = "compact",
};

static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: zs-bench [-q] [-b MiB] [-r runs] [-m GiB] [-s seed] [-c]\n"
	    "  -b, --bytes MiB      compressed bytes in the page stream "
	    "(512)\n"
	    "  -r, --runs N         runs of everything; medians are shown "
	    "(3, at most %d)\n"
	    "  -m, --mobility GiB   fill of the libzs mobility run, 0 to "
	    "skip (1)\n"
	    "  -s, --seed N         seed of the random frees (1)\n"
	    "  -q, --quick          -b 32 -r 1 -m 0.125 unless given\n"
	    "  -c, --csv            CSV instead of text tables\n",
	    MAX_RUNS);
	exit(status);
}

static double
parse_double(const char *s, double min, double max)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= min && v <= max))
		usage(2);
	return v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "bytes", required_argument, NULL, 'b' },
		{ "runs", required_argument, NULL, 'r' },
		{ "mobility", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "quick", no_argument, NULL, 'q' },
		{ "csv", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool quick = false, bytes = false, runs = false, mobility = false;
	int c;

	o->bytes_mib = 512;
	o->runs = 3;
	o->mobility_gib = 1;
	o->seed = 1;
	o->csv = false;
	while ((c = getopt_long(argc, argv, "b:r:m:s:qch", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'b':
			o->bytes_mib = parse_double(optarg, 1, 65536);
			bytes = true;
			break;
		case 'r':
			o->runs = (unsigned long)parse_double(optarg, 1,
			    MAX_RUNS);
			runs = true;
			break;
		case 'm':
			o->mobility_gib = parse_double(optarg, 0, 64);
			mobility = true;
			break;
		case 's':
			o->seed = (uint64_t)parse_double(optarg, 0, 1e15);
			break;
		case 'q':
			quick = true;
			break;
		case 'c':
			o->csv = true;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (quick && !bytes)
		o->bytes_mib = 32;
	if (quick && !runs)
		o->runs = 1;
	if (quick && !mobility)
		o->mobility_gib = 0.125;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of n doubles, each stride bytes after the one before. */
static double
median(const void *first, size_t stride, unsigned long n)
{
	double v[MAX_RUNS];
	unsigned long i;

	for (i = 0; i < n; i++)
		memcpy(&v[i], (const char *)first + i * stride, sizeof(v[i]));
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MED(rs, n, field) median(&(rs)[0].field, sizeof((rs)[0]), n)

/* Medians of one allocator's runs, in a struct result. */
static void
result_medians(const struct result *rs, unsigned long n, struct result *m)
{
	int b, p;

	memset(m, 0, sizeof(*m));
	m->ok = 1;
	m->fill_ops = MED(rs, n, fill_ops);
	m->free_ops = MED(rs, n, free_ops);
	m->compact_s = MED(rs, n, compact_s);
	for (p = 0; p < NR_PHASES; p++) {
		m->rss_mib[p] = MED(rs, n, rss_mib[p]);
		for (b = 0; b < NR_BASES; b++)
			m->eff[b][p] = MED(rs, n, eff[b][p]);
	}
}

static void
mobility_medians(const struct mobility *ms, unsigned long n,
    struct mobility *m)
{
	unsigned long i;

	memset(m, 0, sizeof(*m));
	m->ok = 1;
	m->fill_gib = MED(ms, n, fill_gib);
	m->live_mib = MED(ms, n, live_mib);
	m->rss_before_mib = MED(ms, n, rss_before_mib);
	m->rss_after_mib = MED(ms, n, rss_after_mib);
	m->mapped_before_mib = MED(ms, n, mapped_before_mib);
	m->mapped_after_mib = MED(ms, n, mapped_after_mib);
	m->compact_s = MED(ms, n, compact_s);
	m->moved_mib = MED(ms, n, moved_mib);
	m->moved_mib_s = MED(ms, n, moved_mib_s);
	m->shrink_s = MED(ms, n, shrink_s);
	m->shrunk_mib = MED(ms, n, shrunk_mib);
	m->report_s = MED(ms, n, report_s);
	m->reported_mib = MED(ms, n, reported_mib);
	m->settled_s = MED(ms, n, settled_s);
	for (i = 0; i < n; i++)
		m->unsettled += ms[i].unsettled;
}

/* 1 all ran, 0 not available, -1 some run failed. */
static int
runs_ok(const struct result *rs, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		if (rs[i].ok != 1)
			return rs[i].ok;
	return 1;
}

static void
print_stream(const struct stream *s, const struct options *o)
{
	printf("# stream: %" PRIu64 " pages of %" PRIu64 " files, "
	    "%.1f MiB stored (%.1f MiB before lz4), mean %" PRIu64
	    " bytes a page;\n#   %" PRIu64 " pages kept whole (4096 bytes), "
	    "%" PRIu64 " all-zero pages left out\n", s->nr_pages, s->files,
	    (double)s->stored / MIB, (double)s->nr_pages * BENCH_PAGE / MIB,
	    s->stored / s->nr_pages, s->raw_pages, s->zero_pages);
	stream_print_sources("#   ");
	printf("# medians of %lu runs (seed %" PRIu64 "...); each allocator "
	    "in a process of its own\n", o->runs, o->seed);
}

static void
print_table(const struct result *med, const int *ok)
{
	const struct result *glibc = NULL;
	unsigned int a;
	int b, p;

	for (a = 0; a < nr_allocators; a++)
		if (ok[a] == 1 && strcmp(allocators[a].name, "glibc") == 0)
			glibc = &med[a];

	printf("\n%-10s %12s %12s %10s %11s %11s\n", "throughput",
	    "fill ops/s", "free ops/s", "compact s", "fill/glibc",
	    "free/glibc");
	for (a = 0; a < nr_allocators; a++) {
		if (ok[a] != 1) {
			printf("%-10s %s\n", allocators[a].name, ok[a] == 0 ?
			    "not available" : "FAILED");
			continue;
		}
		printf("%-10s %12.0f %12.0f %10.3f", allocators[a].name,
		    med[a].fill_ops, med[a].free_ops, med[a].compact_s);
		if (glibc != NULL)
			printf(" %10.2fx %10.2fx", med[a].fill_ops /
			    glibc->fill_ops, med[a].free_ops / glibc->free_ops);
		printf("\n");
	}

	printf("\n%-40s %8s %8s %8s\n", "efficiency = bytes stored / held",
	    "fill", "half", "compact");
	for (a = 0; a < nr_allocators; a++) {
		if (ok[a] != 1)
			continue;
		for (b = 0; b < NR_BASES; b++) {
			if (b != BASIS_RSS && !allocators[a].has_pool_stats)
				continue;
			printf("%-10s %-29s", allocators[a].name,
			    basis_names[b]);
			for (p = 0; p < NR_PHASES; p++)
				printf(" %7.2f%%", 100 * med[a].eff[b][p]);
			printf("\n");
		}
	}
	printf("\nRSS growth (MiB) %23s %8s %8s\n", "fill", "half", "compact");
	for (a = 0; a < nr_allocators; a++)
		if (ok[a] == 1)
			printf("%-40s %8.1f %8.1f %8.1f\n", allocators[a].name,
			    med[a].rss_mib[PHASE_FILL],
			    med[a].rss_mib[PHASE_HALF],
			    med[a].rss_mib[PHASE_COMPACT]);
	printf("\ncompact:\n");
	for (a = 0; a < nr_allocators; a++)
		printf("  %-10s %s\n", allocators[a].name,
		    allocators[a].compact_does);
}

static void
print_csv(const struct result *med, const int *ok)
{
	unsigned int a;
	int b, p;

	printf("allocator,status,fill_ops,free_ops,compact_s");
	for (b = 0; b < NR_BASES; b++)
		for (p = 0; p < NR_PHASES; p++)
			printf(",eff_%s_%s", basis_keys[b], phase_keys[p]);
	for (p = 0; p < NR_PHASES; p++)
		printf(",rss_mib_%s", phase_keys[p]);
	printf("\n");
	for (a = 0; a < nr_allocators; a++) {
		printf("%s,%s", allocators[a].name, ok[a] == 1 ? "ok" :
		    ok[a] == 0 ? "not available" : "failed");
		if (ok[a] != 1) {
			printf("\n");
			continue;
		}
		printf(",%.0f,%.0f,%.4f", med[a].fill_ops, med[a].free_ops,
		    med[a].compact_s);
		for (b = 0; b < NR_BASES; b++)
			for (p = 0; p < NR_PHASES; p++)
				if (b == BASIS_RSS ||
				    allocators[a].has_pool_stats)
					printf(",%.5f", med[a].eff[b][p]);
				else
					printf(",");
		for (p = 0; p < NR_PHASES; p++)
			printf(",%.1f", med[a].rss_mib[p]);
		printf("\n");
	}
}

static void
print_mobility(const struct mobility *m, const struct options *o)
{
	if (o->csv) {
		printf("\nmobility_fill_gib,live_mib,rss_before_mib,"
		    "mapped_before_mib,compact_s,moved_mib,moved_mib_s,"
		    "shrink_s,shrunk_mib,report_s,reported_mib,rss_after_mib,"
		    "mapped_after_mib,settled_s,unsettled_runs\n");
		printf("%.3f,%.1f,%.1f,%.1f,%.4f,%.1f,%.0f,%.4f,%.1f,%.4f,"
		    "%.1f,%.1f,%.1f,%.4f,%d\n", m->fill_gib, m->live_mib,
		    m->rss_before_mib, m->mapped_before_mib, m->compact_s,
		    m->moved_mib, m->moved_mib_s, m->shrink_s, m->shrunk_mib,
		    m->report_s, m->reported_mib, m->rss_after_mib,
		    m->mapped_after_mib, m->settled_s, m->unsettled);
		return;
	}
	printf("\nmobility (libzs): fill %.2f GiB, free 75%% at random, then "
	    "zs_compact,\nzs_pool_shrink(UINT64_MAX), zs_pool_report; "
	    "reporting worker off; medians of %lu\n", m->fill_gib, o->runs);
	printf("  %-34s %9.1f MiB\n", "live after the free", m->live_mib);
	printf("  %-34s %9.1f MiB\n", "RSS growth before compaction",
	    m->rss_before_mib);
	printf("  %-34s %9.1f MiB\n", "pool mapped before", m->mapped_before_mib);
	printf("  %-34s %9.3f s\n", "zs_compact + zs_pool_flush",
	    m->compact_s);
	printf("  %-34s %9.1f MiB\n", "bytes moved by compaction",
	    m->moved_mib);
	printf("  %-34s %9.0f MiB/s\n", "compaction speed (moved / time)",
	    m->moved_mib_s);
	printf("  %-34s %9.3f s, %.1f MiB unmapped\n", "zs_pool_shrink",
	    m->shrink_s, m->shrunk_mib);
	printf("  %-34s %9.3f s, %.1f MiB given back\n", "zs_pool_report",
	    m->report_s, m->reported_mib);
	printf("  %-34s %9.3f s%s\n", "compaction start to RSS settled",
	    m->settled_s, m->unsettled ? " (RSS never settled: still "
	    "changing after 10 s)" : "");
	printf("  %-34s %9.1f MiB (live / RSS %.1f%%)\n",
	    "RSS growth after, settled", m->rss_after_mib,
	    100 * m->live_mib / m->rss_after_mib);
	printf("  %-34s %9.1f MiB\n", "pool mapped after", m->mapped_after_mib);
}

int
main(int argc, char **argv)
{
	static struct result rs[8][MAX_RUNS];
	struct result med[8];
	struct mobility ms[MAX_RUNS], mm;
	struct options o;
	struct stream s;
	int ok[8], status = 0, error;
	unsigned int a, j;
	unsigned long i;

	if (argc == 3 && strcmp(argv[1], "--run-child") == 0)
		return run_exec_child(argv[2]);
	parse_options(argc, argv, &o);
	if (nr_allocators > 8)
		abort();
	memset(med, 0, sizeof(med));

	if ((error = stream_build(&s, (uint64_t)(o.bytes_mib * MIB))) != 0) {
		fprintf(stderr, "zs-bench: cannot build the page stream: %s\n",
		    strerror(-error));
		return 1;
	}
	if (!o.csv)
		print_stream(&s, &o);

	/*
	 * Interleaved, and each run starting with the next allocator, so that
	 * a noisy moment or the place in the sequence hits all alike.
	 */
	for (i = 0; i < o.runs; i++)
		for (j = 0; j < nr_allocators; j++) {
			a = (unsigned int)((i + j) % nr_allocators);
			run_child(a, &s, o.seed + i, &rs[a][i]);
		}
	for (a = 0; a < nr_allocators; a++) {
		if ((ok[a] = runs_ok(rs[a], o.runs)) == 1)
			result_medians(rs[a], o.runs, &med[a]);
		else if (ok[a] < 0)
			status = 1;
	}
	if (o.csv)
		print_csv(med, ok);
	else
		print_table(med, ok);

	if (o.mobility_gib > 0) {
		for (i = 0; i < o.runs; i++) {
			mobility_child(&s, (uint64_t)(o.mobility_gib * 1024 *
			    MIB), o.seed + i, &ms[i]);
			if (ms[i].ok != 1) {
				printf("\nmobility: FAILED\n");
				return 1;
			}
		}
		mobility_medians(ms, o.runs, &mm);
		print_mobility(&mm, &o);
	}
	return status;
}
