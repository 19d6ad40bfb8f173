/*
 * test-policy.c - the automatic idle pass: it reads pressure stall
 * information right, recompresses and writes back only pages old
 * enough, pauses each for its kind of pressure, keeps to its batch and
 * to what is left of the day's writeback budget, and the budget counts
 * a day.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "zsd.h"

#define PG	ZSD_PAGE_SIZE
#define NPAGES	256u

static char dir[PATH_MAX - 64];	/* room for the file names */
static char cpu[PATH_MAX], io[PATH_MAX], bpath[PATH_MAX];

static void
psi_write(const char *path, double some, double full)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		bail("%s: %s", path, strerror(errno));
	fprintf(f, "some avg10=%.2f avg60=1.00 avg300=0.50 total=123456\n"
	    "full avg10=%.2f avg60=0.00 avg300=0.00 total=42\n", some, full);
	fclose(f);
}

static void
test_psi(void)
{
	char path[PATH_MAX];
	double v = -1;
	FILE *f;

	int r;

	psi_write(cpu, 12.34, 0.5);
	r = policy_psi(cpu, "some", &v);
	ok(r == 0 && v > 12.33 && v < 12.35, "some avg10 read: %.2f", v);
	r = policy_psi(cpu, "full", &v);
	ok(r == 0 && v > 0.49 && v < 0.51, "full avg10 read: %.2f", v);
	snprintf(path, sizeof(path), "%s/none", dir);
	ok(policy_psi(path, "some", &v) == -ENOENT,
	    "no such file (a kernel without PSI): ENOENT");
	snprintf(path, sizeof(path), "%s/bad", dir);
	if ((f = fopen(path, "w")) == NULL)
		bail("%s: %s", path, strerror(errno));
	fputs("some avg60=3.00\nfull\n", f);
	fclose(f);
	ok(policy_psi(path, "some", &v) == -ENODATA,
	    "a file without the line: ENODATA");
}

static struct policy_run
run_args(int recompress_after, int writeback_after, uint64_t wb_left)
{
	struct policy_run r = { .recompress_after = recompress_after,
	    .writeback_after = writeback_after, .batch = NPAGES,
	    .cpu_max = 20, .io_max = 10, .backing = true,
	    .wb_left = wb_left, .psi_cpu = cpu, .psi_io = io };

	return r;
}

static void
test_run(void)
{
	static unsigned char p[PG];
	struct store_options o = { .codec = CODEC_LZ4, .zstd_level = 1,
	    .recompress_level = 9 };
	struct zs_pool *pool = zs_create_pool(NULL);
	struct backing *b;
	struct store *st;
	struct store_ctx *ctx;
	struct policy_run r;
	struct store_stats ss;
	_Atomic bool cancel = false;
	uint64_t first;
	char why[256];
	uint64_t i;
	size_t k;
	int error;

	if ((b = backing_open(bpath, NPAGES * PG, 0, why,
	    sizeof(why))) == NULL)
		bail("%s", why);
	o.backing = b;
	if (pool == NULL || (st = store_create(pool, NPAGES, &o,
	    &error)) == NULL || (ctx = store_ctx_create(st)) == NULL)
		bail("cannot make a store");
	for (i = 0; i < NPAGES; i++) {
		for (k = 0; k < PG; k++)
			p[k] = (unsigned char)("swap page idle "[(k + i) % 15]
			    ^ (k % 7 == 0 ? i : 0));
		store_write(st, ctx, i * PG, p, PG);
	}

	psi_write(cpu, 1, 0);
	psi_write(io, 50, 1);
	r = run_args(60, 120, UINT64_MAX);
	policy_run(st, ctx, &r, &cancel);
	ok(r.recompress.pages == 0 && r.writeback.pages == 0 &&
	    !r.cpu_pressed && !r.io_pressed,
	    "pages younger than recompress_after: nothing done");

	store_clock_advance(st, 61);
	r = run_args(60, 120, UINT64_MAX);
	r.batch = 100;
	policy_run(st, ctx, &r, &cancel);
	first = r.recompress.scanned;
	ok(r.recompress.pages == 100 && r.writeback.pages == 0,
	    "61 s later: one batch of 100 recompressed, none old enough to "
	    "write back (%llu, %llu)",
	    (unsigned long long)r.recompress.pages,
	    (unsigned long long)r.writeback.pages);

	psi_write(cpu, 25, 0);
	r = run_args(60, 120, UINT64_MAX);
	policy_run(st, ctx, &r, &cancel);
	ok(r.cpu_pressed && r.recompress.pages == 0 && r.cpu_seen > 24,
	    "CPU pressure 25%% over 20%%: recompression pauses");
	r.cpu_max = 0;
	policy_run(st, ctx, &r, &cancel);
	ok(!r.cpu_pressed && r.recompress.scanned == NPAGES - first,
	    "with idle_cpu_pressure 0 it goes on: the other %llu",
	    (unsigned long long)r.recompress.scanned);

	store_clock_advance(st, 60);
	psi_write(io, 0, 15);
	r = run_args(60, 120, UINT64_MAX);
	policy_run(st, ctx, &r, &cancel);
	ok(r.io_pressed && r.writeback.pages == 0,
	    "I/O pressure (full) 15%% over 10%%: writeback pauses");
	psi_write(io, 0, 2);
	r = run_args(60, 120, 3 * PG);
	policy_run(st, ctx, &r, &cancel);
	ok(!r.io_pressed && r.writeback.bytes_written == 3 * PG &&
	    r.writeback.pages > 3, "below it: writeback, within the 3 "
	    "blocks left of the day: %llu pages",
	    (unsigned long long)r.writeback.pages);
	r = run_args(60, 120, 0);
	policy_run(st, ctx, &r, &cancel);
	ok(r.writeback.pages == 0, "no budget left: no writeback");
	r = run_args(60, 0, UINT64_MAX);
	policy_run(st, ctx, &r, &cancel);
	ok(r.writeback.pages == 0, "writeback_after off: none");
	r = run_args(60, 120, UINT64_MAX);
	atomic_store(&cancel, true);
	policy_run(st, ctx, &r, &cancel);
	ok(r.writeback.pages == 0, "cancelled (zsd stopping): none");
	atomic_store(&cancel, false);
	policy_run(st, ctx, &r, &cancel);
	store_stats(st, &ss);
	ok(ss.bd_count == NPAGES, "then all of them: %llu in the file",
	    (unsigned long long)ss.bd_count);
	store_destroy(st);
	store_ctx_destroy(ctx);
	zs_destroy_pool(pool);
	backing_close(b);
}

static void
test_budget(void)
{
	struct policy_budget b = { 0 };

	ok(policy_budget_left(&b, 0) == UINT64_MAX, "no limit: no end");
	ok(policy_budget_left(&b, 10000) == 10000, "a fresh day: all of it");
	policy_budget_spend(&b, 6000);
	ok(policy_budget_left(&b, 10000) == 4000, "6000 spent: 4000 left");
	policy_budget_spend(&b, 5000);
	ok(policy_budget_left(&b, 10000) == 0 && b.total == 11000,
	    "11000 spent (a pass may end past it): none left");
	b.start -= 86400;
	ok(policy_budget_left(&b, 10000) == 10000 && b.total == 11000,
	    "a day later: all of it again, the total kept");
}

int
main(void)
{
	tap_watchdog(120);
	/* In $TMPDIR, as the other tests. */
	snprintf(dir, sizeof(dir), "%s/test-policy.XXXXXX", getenv("TMPDIR") != NULL &&
	    *getenv("TMPDIR") != '\0' ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		bail("mkdtemp %s: %s", dir, strerror(errno));
	snprintf(cpu, sizeof(cpu), "%s/cpu", dir);
	snprintf(io, sizeof(io), "%s/io", dir);
	snprintf(bpath, sizeof(bpath), "%s/backing", dir);
	test_psi();
	test_run();
	test_budget();
	unlink(cpu);
	unlink(io);
	unlink(bpath);
	snprintf(cpu, sizeof(cpu), "%s/bad", dir);
	unlink(cpu);
	rmdir(dir);
	return done_testing();
}
