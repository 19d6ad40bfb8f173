/*
 * policy.c - when idle pages are recompressed and written back by
 * themselves, and how much of the backing file a day may take.
 *
 * Every idle_interval seconds the control job (control.c) runs one
 * automatic pass, on its own thread at normal priority:
 *
 *  - recompression of the pages unused for recompress_after seconds (or
 *    marked idle), at most idle_batch of them, unless the system is short
 *    of CPU: /proc/pressure/cpu's "some avg10" above idle_cpu_pressure
 *    percent (some task waited for a CPU that share of the last 10 s);
 *  - then, with a backing file, writeback of the pages unused for
 *    writeback_after seconds, at most idle_batch of them and what is left
 *    of the day's writeback_limit, unless the disk is busy:
 *    /proc/pressure/io's "full avg10" above idle_io_pressure percent.
 *
 * Recompression comes first, so that what is written back is the
 * smaller zstd form.  A kernel without PSI (CONFIG_PSI off, or before
 * 4.20) reads as no pressure.
 *
 * The day's budget: writeback_limit bytes in any 24 hours counted from
 * the first write of a window, manual and automatic writebacks alike;
 * it starts again at zero when zsd does.  Kept by the loop thread.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "zsd.h"

#define POLICY_DAY	86400

/*
 * The avg10 of the line kind ("some" or "full") of a PSI file, in
 * percent: 0, or -errno (-ENOENT without PSI).
 */
int
policy_psi(const char *path, const char *kind, double *avg10)
{
	char line[256], want[16];
	FILE *f;
	int error = -ENODATA;

	if ((f = fopen(path, "re")) == NULL)
		return -errno;
	snprintf(want, sizeof(want), "%s avg10=", kind);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, want, strlen(want)) == 0 &&
		    sscanf(line + strlen(want), "%lf", avg10) == 1) {
			error = 0;
			break;
		}
	fclose(f);
	return error;
}

/* Whether the pressure in path is above max percent (0: never). */
static bool
policy_pressed(const char *path, const char *kind, int max, double *seen)
{
	*seen = 0;
	if (max == 0 || policy_psi(path, kind, seen) != 0)
		return false;
	return *seen > max;
}

void
policy_run(struct store *st, struct store_ctx *ctx, struct policy_run *r,
    const _Atomic bool *cancel)
{
	struct store_pass pass;

	memset(&r->recompress, 0, sizeof(r->recompress));
	memset(&r->writeback, 0, sizeof(r->writeback));
	r->cpu_pressed = r->io_pressed = false;
	if (r->recompress_after != 0) {
		r->cpu_pressed = policy_pressed(r->psi_cpu, "some",
		    r->cpu_max, &r->cpu_seen);
		if (!r->cpu_pressed) {
			pass = (struct store_pass){ .pick = PICK_IDLE,
			    .min_age = (uint32_t)r->recompress_after,
			    .threshold = (size_t)r->threshold,
			    .max_pages = r->batch, .cancel = cancel };
			store_recompress(st, ctx, &pass, &r->recompress);
		}
	}
	if (r->writeback_after != 0 && r->backing && r->wb_left != 0) {
		r->io_pressed = policy_pressed(r->psi_io, "full", r->io_max,
		    &r->io_seen);
		if (!r->io_pressed) {
			pass = (struct store_pass){ .pick = PICK_IDLE,
			    .min_age = (uint32_t)r->writeback_after,
			    .max_pages = r->batch, .cancel = cancel,
			    .max_bytes = r->wb_left == UINT64_MAX ? 0 :
			    r->wb_left };
			store_writeback(st, ctx, &pass, &r->writeback);
		}
	}
}

static int64_t
policy_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec;
}

uint64_t
policy_budget_left(struct policy_budget *b, uint64_t limit)
{
	if (limit == 0)
		return UINT64_MAX;
	if (b->used != 0 && policy_clock() - b->start >= POLICY_DAY)
		b->used = 0;
	return b->used >= limit ? 0 : limit - b->used;
}

void
policy_budget_spend(struct policy_budget *b, uint64_t bytes)
{
	if (bytes == 0)
		return;
	if (b->used == 0 || policy_clock() - b->start >= POLICY_DAY) {
		b->start = policy_clock();
		b->used = 0;
	}
	b->used += bytes;
	b->total += bytes;
}
